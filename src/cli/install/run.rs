//! Running `systemctl`, `launchctl`, `journalctl` and `tail`: the only place these commands
//! are started. The install flows go through the [`Runner`] trait so that their unit tests
//! record commands instead of touching the init system.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::plan::Cmd;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The program is not on `PATH`.
    NotFound,
    /// It ran and failed (or could not be started); what it said, for the user and for
    /// [`super::plan::is_no_manager`].
    Failed(String),
}

/// Runs commands to completion.
pub trait Runner {
    fn run(&mut self, cmd: &Cmd) -> Outcome;
}

/// Runs commands on this machine, with their output captured: the flows report one line per
/// command and show what a command said only when it failed.
pub struct System;

impl Runner for System {
    fn run(&mut self, cmd: &Cmd) -> Outcome {
        let output = Command::new(cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .output();
        match output {
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

/// Replaces this process with `cmd`, so that the pager, Ctrl-C and the exit status are the
/// command's own. Returns only if that failed.
pub fn exec(cmd: &Cmd) -> io::Error {
    Command::new(cmd.program).args(&cmd.args).exec()
}
