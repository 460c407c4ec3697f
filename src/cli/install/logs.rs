//! `snowflaked logs [-f]`: hands the terminal to the tool that holds the daemon's logs —
//! `journalctl` for the systemd service, `tail` for the launchd agent's log file — by
//! replacing this process, so that paging, Ctrl-C and the exit status are that tool's.
//!
//! A daemon a client started itself (no init system) logs to a file instead; that file is
//! named whenever it exists, and whenever the usual tool is missing.

use std::io;
use std::path::Path;

use super::run::Cmd;
use crate::config::paths::SERVICE_UNIT;

/// `journalctl --user -u snowflaked.service`: following, or the last 200 lines without a
/// pager.
pub fn journalctl(follow: bool) -> Cmd {
    let last: &[&str] = if follow {
        &["-f"]
    } else {
        &["--no-pager", "-n", "200"]
    };
    Cmd::new(
        "journalctl",
        ["--user", "-u", SERVICE_UNIT].iter().chain(last),
    )
}

/// `tail -n 200 [-F] LOG`. `-F` rather than `-f` when following: it keeps reading when
/// newsyslog rotates the file.
pub fn tail(log: &Path, follow: bool) -> Cmd {
    let follow = if follow { "-F" } else { "" };
    let log = log.display().to_string();
    Cmd::new(
        "tail",
        ["-n", "200", follow, &log]
            .into_iter()
            .filter(|a| !a.is_empty()),
    )
}

/// Runs `journalctl` in place of this process. Returns (with the exit status) only when it
/// could not.
pub fn show_journal(follow: bool, self_start_log: &Path) -> u8 {
    if self_start_log.is_file() {
        eprintln!(
            "note: a daemon started by a snowflaked command rather than by systemd logs to {}",
            self_start_log.display()
        );
    }
    let error = journalctl(follow).exec();
    if error.kind() == io::ErrorKind::NotFound {
        eprintln!(
            "error: journalctl was not found, so the systemd journal cannot be shown.\n{}",
            elsewhere(self_start_log)
        );
    } else {
        eprintln!("error: cannot run journalctl: {error}");
    }
    2
}

/// Runs `tail` on the launchd agent's log file in place of this process. Returns (with the
/// exit status) only when it could not.
pub fn show_file(log: &Path, follow: bool, self_start_log: &Path) -> u8 {
    if !log.is_file() {
        eprintln!(
            "error: there is no log at {} yet (launchd creates it when the agent first starts \
             the daemon).\n{}",
            log.display(),
            elsewhere(self_start_log)
        );
        return 2;
    }
    let error = tail(log, follow).exec();
    eprintln!("error: cannot run tail: {error}");
    2
}

/// Where else logs may be.
fn elsewhere(self_start_log: &Path) -> String {
    let state = if self_start_log.is_file() {
        ""
    } else {
        " (there is none yet)"
    };
    format!(
        "A daemon started by a snowflaked command logs to {}{state}; one started with \
         `snowflaked serve` logs to its terminal.",
        self_start_log.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journalctl_pages_nothing_unless_following() {
        assert_eq!(
            journalctl(false).to_string(),
            "journalctl --user -u snowflaked.service --no-pager -n 200"
        );
        assert_eq!(
            journalctl(true).to_string(),
            "journalctl --user -u snowflaked.service -f"
        );
    }

    #[test]
    fn tail_reads_the_agent_log() {
        let log = Path::new("/Users/ann/Library/Logs/snowflaked/snowflaked.log");
        assert_eq!(
            tail(log, false).to_string(),
            "tail -n 200 /Users/ann/Library/Logs/snowflaked/snowflaked.log"
        );
        assert_eq!(
            tail(log, true).to_string(),
            "tail -n 200 -F /Users/ann/Library/Logs/snowflaked/snowflaked.log"
        );
    }
}
