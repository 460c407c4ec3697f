//! `snowflaked install [--print] [--force]`, `uninstall` and `logs [-f]`: putting the daemon
//! under the user's init system — systemd user units on Linux, a launchd agent on macOS —
//! taking it out again, and showing its logs.
//!
//! The templates are the files in `packaging/`, embedded in the binary. What to write and run
//! is decided by pure functions ([`templates`], [`plan`], [`script`], [`advice`]); the IO
//! ([`files`], [`run`]) and the two platform flows ([`systemd`], [`launchd`]) are kept apart
//! from them. This module only resolves the user and the binary, picks the platform and turns
//! the outcome into an exit status: 0 done, 2 not done (the reason and what to do instead
//! have been printed).
//!
//! Both platform flows are compiled everywhere and chosen with `cfg!`, so the macOS one is
//! type-checked (and unit-tested) on Linux too.

mod advice;
mod files;
mod launchd;
mod logs;
mod plan;
mod report;
mod run;
mod script;
mod systemd;
mod templates;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::paths::{self, Env, ProcessEnv};
use plan::Target;
use report::{Report, Reported};
use run::System;

/// Whether this build manages a launchd agent rather than systemd user units.
const MACOS: bool = cfg!(target_os = "macos");

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print what would be written and run, as a shell script, and change nothing
    #[arg(long)]
    pub print: bool,
    /// Also replace unit files (or the plist) that were not written by `snowflaked install`
    #[arg(long)]
    pub force: bool,
}

/// Writes the units (or the agent) for this user and enables them.
pub fn install(args: InstallArgs) -> ExitCode {
    let binary = match running_binary() {
        Ok(binary) => binary,
        Err(e) => return usage_error(&e),
    };
    let target = match Target::resolve(&ProcessEnv, binary, paths::current_uid()) {
        Ok(target) => target,
        Err(e) => return usage_error(&e),
    };
    if args.print {
        return print_plan(&target);
    }
    let mut report = Report::live();
    if in_cargo_build_dir(&target.binary) {
        report.warn(advice::build_dir(&target.binary));
    }
    if let Some(warning) = socket_override(&target) {
        report.warn(warning);
    }
    let outcome = if MACOS {
        launchd::install(&target, args.force, &mut System, &mut report)
    } else {
        systemd::install(&target, args.force, &mut System, &mut report)
    };
    exit_status(outcome)
}

/// Stops, disables and removes what `install` wrote.
pub fn uninstall() -> ExitCode {
    // Uninstall renders nothing, so it must not fail for want of the binary's path (it may
    // have been deleted already): an empty path stands in.
    let binary = running_binary().unwrap_or_default();
    let target = match Target::resolve(&ProcessEnv, binary, paths::current_uid()) {
        Ok(target) => target,
        Err(e) => return usage_error(&e),
    };
    let mut report = Report::live();
    let outcome = if MACOS {
        launchd::uninstall(&target, &mut System, &mut report)
    } else {
        systemd::uninstall(&target, &mut System, &mut report)
    };
    exit_status(outcome)
}

/// Replaces this process with the log viewer; returns only when that failed.
pub fn logs(follow: bool) -> ExitCode {
    let self_start_log = paths::state_dir(&ProcessEnv).join("daemon.log");
    let status = if MACOS {
        match plan::home(&ProcessEnv) {
            Ok(home) => logs::show_file(&plan::launchd_log(&home), follow, &self_start_log),
            Err(e) => return usage_error(&e),
        }
    } else {
        logs::show_journal(follow, &self_start_log)
    };
    ExitCode::from(status)
}

/// The binary the units will start: this one, by its real path, so that a symlink in `PATH`
/// being repointed later does not silently change what the init system runs.
fn running_binary() -> Result<PathBuf, String> {
    std::env::current_exe()
        .and_then(|path| path.canonicalize())
        .map_err(|e| format!("cannot find the path of this snowflaked binary: {e}"))
}

/// A cargo profile directory (`target/debug`) holds `deps/` and `.fingerprint/` next to the
/// binary; units pointing there break at the next `cargo clean`.
fn in_cargo_build_dir(binary: &Path) -> bool {
    binary
        .parent()
        .is_some_and(|dir| dir.join("deps").is_dir() && dir.join(".fingerprint").is_dir())
}

/// A warning when `SNOWFLAKED_SOCKET` points away from the socket the init system will own.
/// (A `--socket` flag is not seen here: the dispatcher does not pass it to `install`.)
fn socket_override(target: &Target) -> Option<String> {
    let configured = PathBuf::from(ProcessEnv.var("SNOWFLAKED_SOCKET")?);
    let served = if MACOS {
        plan::launchd_socket(&target.home)
    } else {
        paths::default_socket(&ProcessEnv)
    };
    advice::socket_override(&configured, &served)
}

fn print_plan(target: &Target) -> ExitCode {
    let steps = if MACOS {
        script::launchd_steps(target)
    } else {
        script::systemd_steps(target)
    };
    match steps {
        Ok(steps) => {
            use std::io::Write as _;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(script::render(&steps).as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&format!("cannot render the files: {e}")),
    }
}

fn exit_status(outcome: Result<(), Reported>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported) => ExitCode::from(2),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}
