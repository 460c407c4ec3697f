//! `snowflaked install [--print] [--force]`, `uninstall` and `logs [-f]`: putting the daemon
//! under the user's init system — systemd user units on Linux, a launchd agent on macOS —
//! taking it out again, and showing its logs.
//!
//! The templates are the files in `packaging/`, embedded in the binary ([`templates`]). Each
//! platform module ([`systemd`], [`launchd`]) says which files and commands an install takes
//! (its [`Plan`], which `--print` shows) and runs its install and uninstall flow; [`files`]
//! and [`run`] are the only IO. Where files go is `config::paths`'s. This module resolves the
//! user and the binary, picks the platform and turns the outcome into an exit status: 0 done,
//! 2 not done (the reason and what to do instead have been printed).
//!
//! Both platform flows are compiled everywhere and chosen with `cfg!`, so the macOS one is
//! type-checked (and unit-tested) on Linux too.

mod files;
mod launchd;
mod run;
mod systemd;
mod templates;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::paths::{self, Env, PathError, ProcessEnv};
use files::FileSpec;
use run::{Cmd, Commands};

/// Whether this build manages a launchd agent rather than systemd user units.
const MACOS: bool = cfg!(target_os = "macos");

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the files that would be written and the commands that would run, and change
    /// nothing
    #[arg(long)]
    pub print: bool,
    /// Also replace unit files (or the plist) that were not written by `snowflaked install`
    #[arg(long)]
    pub force: bool,
}

/// The user `install` works for, resolved once from the environment.
#[derive(Debug, Clone)]
pub struct Target {
    pub home: PathBuf,
    /// The absolute, canonical path of the running binary, which the units will start.
    pub binary: PathBuf,
    pub uid: u32,
    /// Where the user manager looks for units (`$XDG_CONFIG_HOME/systemd/user`).
    pub unit_dir: PathBuf,
    /// The dotenv file the service loads as its credential.
    pub credentials: PathBuf,
    /// Where a daemon started by a client (not by the init system) writes its log.
    pub self_start_log: PathBuf,
}

impl Target {
    /// A missing or relative `HOME` is an error rather than a fallback: files written under
    /// `/` or the working directory would help nobody.
    pub fn resolve(env: &dyn Env, binary: PathBuf, uid: u32) -> Result<Target, PathError> {
        Ok(Target {
            home: paths::home(env)?,
            binary,
            uid,
            unit_dir: paths::systemd_unit_dir(env),
            credentials: paths::credentials_file(env),
            self_start_log: paths::daemon_log(env),
        })
    }
}

/// What an install writes and runs, in order (shown by `--print`).
#[derive(Debug)]
pub struct Plan {
    pub files: Vec<FileSpec>,
    pub commands: Vec<Cmd>,
    /// What the commands leave out, and why.
    pub note: String,
}

impl Plan {
    /// The files with their full content, then the commands one per line, as one would type
    /// them.
    fn render(&self) -> String {
        let mut out = String::from(
            "# What `snowflaked install` would write and run for this user; nothing has been \
             changed.\n",
        );
        for file in &self.files {
            out += &format!(
                "\n==> {} (mode {:04o}) <==\n{}",
                file.path.display(),
                files::FILE_MODE,
                file.content
            );
        }
        out += "\n==> commands <==\n";
        for command in &self.commands {
            out += &format!("{command}\n");
        }
        out + &format!("# {}\n", self.note)
    }
}

/// What `install` and `uninstall` tell the user, printed as it happens (so a slow
/// `systemctl` never leaves the terminal silent) and kept for tests.
#[derive(Debug, Default)]
pub struct Report {
    live: bool,
    lines: Vec<String>,
}

/// The command could not finish; why is in the report. Exit status 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

impl Report {
    pub fn say(&mut self, text: impl Into<String>) {
        self.add("", text.into());
    }

    /// Warnings and errors go to standard error.
    pub fn warn(&mut self, text: impl Into<String>) {
        self.add("warning: ", text.into());
    }

    /// Adds an error line and returns what the flows propagate with `?`.
    pub fn error(&mut self, text: impl Into<String>) -> Reported {
        self.add("error: ", text.into());
        Reported
    }

    pub fn ran(&mut self, command: &Cmd) {
        self.say(format!("{:<9} {command}", "ran"));
    }

    /// Says where credentials go, and warns when the file is there but would be refused.
    pub fn credentials(&mut self, target: &Target) {
        use std::os::unix::fs::PermissionsExt;
        let path = target.credentials.display();
        match std::fs::metadata(&target.credentials).map(|m| m.permissions().mode()) {
            Ok(mode) if mode & 0o077 != 0 => self.warn(format!(
                "{path} is readable by other users (mode {:04o}) and the daemon will refuse \
                 it: run `chmod 0600 {path}`",
                mode & 0o777
            )),
            Ok(_) => self.say(format!(
                "Credentials: {path} (present, private). `snowflaked config --check` tries the \
                 login."
            )),
            Err(_) => self.say(format!(
                "Credentials: put SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PAT lines in \
                 {path} and `chmod 0600` it, or keep using config.toml or Snowflake's \
                 connections.toml (see packaging/README.md). `snowflaked config --check` tries \
                 the login."
            )),
        }
    }

    /// The closing lines of a successful install: credentials, and what to try.
    pub fn try_it(&mut self, target: &Target, status: &str) {
        self.credentials(target);
        self.say(format!(
            "Try it:\n  snowflaked query \"SELECT CURRENT_VERSION()\"\n  {status}"
        ));
    }

    #[cfg(test)]
    pub fn text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }

    fn add(&mut self, prefix: &str, text: String) {
        if self.live {
            // A closed pipe (`snowflaked install | head`) must not turn into a panic halfway
            // through the work, so write errors are ignored.
            let _ = if prefix.is_empty() {
                writeln!(std::io::stdout(), "{text}")
            } else {
                writeln!(std::io::stderr(), "{prefix}{text}")
            };
        }
        self.lines.push(text);
    }
}

/// Writes the units (or the agent) for this user and enables them.
pub fn install(args: InstallArgs) -> Result<ExitCode, InstallError> {
    let target = running_binary().and_then(resolve)?;
    if args.print {
        let plan = if MACOS {
            launchd::plan(&target)
        } else {
            systemd::plan(&target)
        };
        return match plan {
            Ok(plan) => {
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = std::io::stdout().write_all(plan.render().as_bytes());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(usage_error(&format!("cannot render the files: {e}"))),
        };
    }
    let mut report = Report {
        live: true,
        ..Report::default()
    };
    if in_cargo_build_dir(&target.binary) {
        report.warn(format!(
            "the units start {}, which is in a cargo build directory; `cargo clean` would \
             remove it. `cargo install --path .` puts a lasting copy in ~/.cargo/bin (then run \
             its `snowflaked install`).",
            target.binary.display()
        ));
    }
    // (A `--socket` flag is not seen here: the dispatcher does not pass it to `install`.)
    if let Some(configured) = ProcessEnv.var("SNOWFLAKED_SOCKET").map(PathBuf::from) {
        let served = if MACOS {
            paths::launchd_socket(&target.home)
        } else {
            paths::default_socket(&ProcessEnv)
        };
        if configured != served {
            report.warn(format!(
                "SNOWFLAKED_SOCKET is set to {}, but the installed service listens on {}: \
                 commands run with this setting will not reach it. Unset the variable to use \
                 the service.",
                configured.display(),
                served.display()
            ));
        }
    }
    let commands = Commands::default();
    let outcome = if MACOS {
        launchd::install(&target, args.force, &commands, &mut report)
    } else {
        systemd::install(&target, args.force, &commands, &mut report)
    };
    Ok(exit_status(outcome))
}

/// Stops, disables and removes what `install` wrote.
pub fn uninstall() -> Result<ExitCode, InstallError> {
    // Uninstall renders nothing, so it must not fail for want of the binary's path (it may
    // have been deleted already): an empty path stands in.
    let target = resolve(running_binary().unwrap_or_default())?;
    let mut report = Report {
        live: true,
        ..Report::default()
    };
    let commands = Commands::default();
    Ok(exit_status(if MACOS {
        launchd::uninstall(&target, &commands, &mut report)
    } else {
        systemd::uninstall(&target, &commands, &mut report)
    }))
}

/// `snowflaked logs [-f]`: replaces this process with the tool that holds the daemon's logs
/// — `journalctl` for the systemd service, `tail` for the launchd agent's log file — so that
/// paging, Ctrl-C and the exit status are that tool's. Returns only when that failed. A
/// daemon a client started itself logs to a file instead, named whenever it exists and
/// whenever the usual tool is missing.
pub fn logs(follow: bool) -> Result<ExitCode, InstallError> {
    let self_start_log = paths::daemon_log(&ProcessEnv);
    let elsewhere = format!(
        "A daemon started by a snowflaked command logs to {}{}; one started with `snowflaked \
         serve` logs to its terminal.",
        self_start_log.display(),
        if self_start_log.is_file() {
            ""
        } else {
            " (there is none yet)"
        }
    );
    let command = if MACOS {
        let log = match paths::home(&ProcessEnv) {
            Ok(home) => paths::launchd_log(&home),
            Err(e) => return Err(usage_error(&e.to_string())),
        };
        if !log.is_file() {
            return Err(usage_error(&format!(
                "there is no log at {} yet (launchd creates it when the agent first starts the \
                 daemon).\n{elsewhere}",
                log.display()
            )));
        }
        // `-F` rather than `-f` when following: it keeps reading when newsyslog rotates it.
        let mut args = vec!["-n".to_string(), "200".to_string()];
        args.extend(follow.then(|| "-F".to_string()));
        args.push(log.display().to_string());
        Cmd::new("tail", args)
    } else {
        if self_start_log.is_file() {
            eprintln!(
                "note: a daemon started by a snowflaked command rather than by systemd logs to {}",
                self_start_log.display()
            );
        }
        let last: &[&str] = if follow {
            &["-f"]
        } else {
            &["--no-pager", "-n", "200"]
        };
        Cmd::new(
            "journalctl",
            ["--user", "-u", paths::SERVICE_UNIT].iter().chain(last),
        )
    };
    let error = command.exec();
    Err(if error.kind() == std::io::ErrorKind::NotFound {
        usage_error(&format!(
            "{} was not found, so the daemon's log cannot be shown.\n{elsewhere}",
            command.program
        ))
    } else {
        usage_error(&format!("cannot run {}: {error}", command.program))
    })
}

fn resolve(binary: PathBuf) -> Result<Target, InstallError> {
    Target::resolve(&ProcessEnv, binary, paths::current_uid())
        .map_err(|e| usage_error(&e.to_string()))
}

/// The binary the units will start: this one, by its real path, so that a symlink in `PATH`
/// being repointed later does not silently change what the init system runs.
fn running_binary() -> Result<PathBuf, InstallError> {
    std::env::current_exe()
        .and_then(|path| path.canonicalize())
        .map_err(|e| {
            usage_error(&format!(
                "cannot find the path of this snowflaked binary: {e}"
            ))
        })
}

/// A cargo profile directory (`target/debug`) holds `deps/` and `.fingerprint/` next to the
/// binary; units pointing there break at the next `cargo clean`.
fn in_cargo_build_dir(binary: &Path) -> bool {
    binary
        .parent()
        .is_some_and(|dir| dir.join("deps").is_dir() && dir.join(".fingerprint").is_dir())
}

fn exit_status(outcome: Result<(), Reported>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::from(2),
    }
}

/// Why `install`, `uninstall` or `logs` could not start (a usage or set-up problem, exit
/// status 2); printed by [`crate::cli::error::report`]. Failures of the steps themselves are
/// told in the step-by-step report instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InstallError(String);

fn usage_error(message: &str) -> InstallError {
    InstallError(message.to_string())
}
