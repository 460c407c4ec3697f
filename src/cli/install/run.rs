//! External commands — `systemctl`, `launchctl`, `journalctl`, `tail`, `mkdir` — as values
//! that print the way one would type them, and the only place they are started.
//!
//! Programs are looked up on `PATH`. That is also how the flows are tested: the tests point
//! [`Commands::path`] (unit tests) or the binary's `PATH` (tests/install.rs) at a directory of
//! stand-ins that record their arguments, so no init system is touched.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A program looked up on `PATH` and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: &'static str,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new<S: ToString>(program: &'static str, args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd {
            program,
            args: args.into_iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `systemctl --user ARGS`.
    pub fn systemctl(args: &[&str]) -> Cmd {
        Cmd::new("systemctl", ["--user"].iter().chain(args))
    }

    /// Replaces this process with the command, so that the pager, Ctrl-C and the exit status
    /// are the command's own. Returns only if that failed.
    pub fn exec(&self) -> io::Error {
        Command::new(self.program).args(&self.args).exec()
    }
}

/// The command as one would type it in a POSIX shell: words quoted only when they hold
/// anything but plainly safe characters.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            let safe = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
            if safe {
                write!(f, " {arg}")?;
            } else {
                write!(f, " '{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The program is not on `PATH`.
    NotFound,
    /// It ran and failed (or could not be started); what it said.
    Failed(String),
}

/// Runs commands to completion with their output captured: the flows report one line per
/// command and show what a command said only when it failed.
#[derive(Debug, Default)]
pub struct Commands {
    /// The `PATH` to look programs up on; `None` keeps this process's.
    pub path: Option<PathBuf>,
}

impl Commands {
    pub fn run(&self, cmd: &Cmd) -> Outcome {
        let mut command = Command::new(cmd.program);
        command.args(&cmd.args).stdin(Stdio::null());
        if let Some(path) = &self.path {
            // Set on the command, PATH is also where the program itself is looked up.
            command.env("PATH", path);
        }
        match command.output() {
            Ok(output) if output.status.success() => Outcome::Success,
            Ok(output) => {
                let said = [&output.stderr, &output.stdout]
                    .into_iter()
                    .map(|bytes| String::from_utf8_lossy(bytes).trim().to_string())
                    .find(|text| !text.is_empty());
                Outcome::Failed(said.unwrap_or_else(|| output.status.to_string()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::NotFound,
            Err(e) => Outcome::Failed(format!("cannot run {}: {e}", cmd.program)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_print_as_typed_with_words_quoted_only_when_needed() {
        let cmd = Cmd::new(
            "x",
            ["/home/ann/x.socket", "/my files/x", "it's", "", "$HOME"],
        );
        assert_eq!(
            cmd.to_string(),
            r#"x /home/ann/x.socket '/my files/x' 'it'\''s' '' '$HOME'"#
        );
        assert_eq!(
            Cmd::systemctl(&["daemon-reload"]).to_string(),
            "systemctl --user daemon-reload"
        );
    }
}
