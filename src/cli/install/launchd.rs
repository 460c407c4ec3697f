//! `install` and `uninstall` for launchd (macOS): write the agent, create the directories
//! it names, and load or unload it in the user's GUI domain.
//!
//! Compiled on every platform (only called on macOS) so that the compiler checks it where
//! macOS is not available, and tested here with a `launchctl` stand-in on `PATH`.

use super::files::{self, Existing, FileSpec, WriteAction};
use super::run::{Cmd, Commands, Outcome};
use super::templates::{self, RenderError};
use super::{Plan, Report, Reported, Target};
use crate::config::paths::{self, AGENT_LABEL};

/// `launchctl VERB gui/UID/com.snowflaked.agent`: `print` succeeds only when the agent is
/// loaded, `bootout` unloads it (stopping a running daemon).
fn launchctl(verb: &str, target: &Target) -> Cmd {
    Cmd::new(
        "launchctl",
        [verb, &format!("gui/{}/{AGENT_LABEL}", target.uid)],
    )
}

/// Loads the agent: launchd creates its socket and starts the daemon on the first connection.
fn bootstrap(target: &Target) -> Cmd {
    let plist = paths::launchd_plist(&target.home).display().to_string();
    Cmd::new(
        "launchctl",
        ["bootstrap", &format!("gui/{}", target.uid), &plist],
    )
}

/// The directories the plist names and launchd does not create: the socket's and the log's.
fn private_dirs(target: &Target) -> [std::path::PathBuf; 2] {
    [
        paths::launchd_socket_dir(&target.home),
        paths::launchd_log_dir(&target.home),
    ]
}

/// The plist, its directories, and the bootstrap.
pub fn plan(target: &Target) -> Result<Plan, RenderError> {
    let content = templates::render_plist(&target.binary, &target.home)?;
    let mkdir = private_dirs(target)
        .map(|dir| Cmd::new("mkdir", ["-p", "-m", "0700", &dir.display().to_string()]));
    Ok(Plan {
        files: vec![FileSpec {
            path: paths::launchd_plist(&target.home),
            content,
        }],
        commands: [mkdir.to_vec(), vec![bootstrap(target)]].concat(),
        note: format!(
            "only if the agent is already loaded and the file changed, first: {}",
            launchctl("bootout", target)
        ),
    })
}

/// Writes the agent and loads it. An agent already loaded from an unchanged file is left
/// alone: booting it out would stop a daemon in the middle of its queries for nothing. A
/// changed file needs the bootout first, because bootstrapping a loaded label fails.
pub fn install(
    target: &Target,
    force: bool,
    commands: &Commands,
    report: &mut Report,
) -> Result<(), Reported> {
    let plan =
        plan(target).map_err(|e| report.error(format!("cannot write the launchd agent: {e}")))?;
    let actions = files::write_all(&plan.files, force, report)?;
    // launchd creates neither directory, and binding the socket fails without its directory.
    for dir in private_dirs(target) {
        files::ensure_private_dir(&dir, report)?;
    }
    let loaded = is_loaded(target, commands, report)?;
    let load = match (loaded, actions[0] != WriteAction::Unchanged) {
        (true, false) => {
            report.say(format!(
                "{:<9} {AGENT_LABEL} is already loaded from this file",
                "unchanged"
            ));
            vec![]
        }
        (true, true) => vec![launchctl("bootout", target), bootstrap(target)],
        (false, _) => vec![bootstrap(target)],
    };
    for command in load {
        run(&command, commands, report)?;
    }
    report.say(format!(
        "{AGENT_LABEL} is loaded: launchd listens on {} and starts the daemon at the first \
         connection; the daemon logs to {}.",
        paths::launchd_socket(&target.home).display(),
        paths::launchd_log(&target.home).display()
    ));
    report.try_it(target, &launchctl("print", target).to_string());
    Ok(())
}

/// Unloads the agent (stopping the daemon) and removes the plist, unless the plist was
/// replaced by someone else. The log directory is left: it holds the user's logs.
pub fn uninstall(
    target: &Target,
    commands: &Commands,
    report: &mut Report,
) -> Result<(), Reported> {
    let plist = paths::launchd_plist(&target.home);
    let existing = Existing::read(&plist, report)?;
    if existing != Existing::Absent && !existing.is_ours() {
        report.warn(format!(
            "left {}: it was not written by `snowflaked install` (no marker line), so it is \
             neither unloaded nor removed",
            plist.display()
        ));
        return Ok(());
    }
    // Loaded without its file (removed by hand) still means our label is running.
    if is_loaded(target, commands, report)? {
        run(&launchctl("bootout", target), commands, report)
            .map_err(|_| report.error("nothing was removed"))?;
    } else if existing == Existing::Absent {
        report.say(format!(
            "nothing to remove: {} does not exist and {AGENT_LABEL} is not loaded",
            plist.display()
        ));
        return Ok(());
    }
    files::remove(&plist, report)
}

fn run(command: &Cmd, commands: &Commands, report: &mut Report) -> Result<(), Reported> {
    match commands.run(command) {
        Outcome::Success => {
            report.ran(command);
            Ok(())
        }
        Outcome::NotFound => Err(report.error("`launchctl` was not found")),
        Outcome::Failed(message) => Err(report.error(format!("`{command}` failed: {message}"))),
    }
}

/// Whether the agent is loaded in the user's GUI domain (`launchctl print` succeeds).
fn is_loaded(target: &Target, commands: &Commands, report: &mut Report) -> Result<bool, Reported> {
    match commands.run(&launchctl("print", target)) {
        Outcome::Success => Ok(true),
        Outcome::NotFound => Err(report.error("`launchctl` was not found")),
        Outcome::Failed(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use super::*;

    /// A `launchctl` that records its calls in `calls` next to itself and keeps the agent
    /// loaded while `loaded` holds 1; only shell built-ins, as its PATH holds nothing else.
    /// Written once, before any test runs it: a script still open for writing while another
    /// thread forks cannot be executed ("Text file busy"). Each test links to it from a
    /// directory of its own.
    fn launchctl_script() -> &'static Path {
        static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
        SCRIPT.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            let path = dir.join("launchctl");
            let script = r#"#!/bin/sh
dir=${0%/*}
printf 'launchctl %s\n' "$*" >> "$dir/calls"
{ read -r loaded < "$dir/loaded"; } 2>/dev/null
case "$1" in
print) [ "$loaded" = 1 ] || { echo 'Could not find service' >&2; exit 1; } ;;
bootstrap) echo 1 > "$dir/loaded" ;;
bootout) echo 0 > "$dir/loaded" ;;
esac
"#;
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        })
    }

    struct Mac {
        home: tempfile::TempDir,
        target: Target,
        commands: Commands,
    }

    impl Mac {
        fn new() -> Mac {
            let home = tempfile::tempdir().unwrap();
            let bin = home.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            std::os::unix::fs::symlink(launchctl_script(), bin.join("launchctl")).unwrap();
            let env: HashMap<String, String> =
                [("HOME".to_string(), home.path().display().to_string())].into();
            let binary = PathBuf::from("/usr/local/bin/snowflaked");
            let target = Target::resolve(&env, binary, 501).unwrap();
            Mac {
                home,
                target,
                commands: Commands { path: Some(bin) },
            }
        }

        /// The calls since the last look.
        fn calls(&self) -> Vec<String> {
            let log = self.home.path().join("bin/calls");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            text.lines().map(str::to_string).collect()
        }

        fn install(&self) -> Report {
            let mut report = Report::default();
            install(&self.target, false, &self.commands, &mut report).unwrap();
            report
        }
    }

    #[test]
    fn install_writes_the_agent_creates_its_directories_and_loads_it_once() {
        let mac = Mac::new();
        mac.install();
        let plist = paths::launchd_plist(&mac.target.home);
        let content = std::fs::read_to_string(&plist).unwrap();
        assert!(content.contains("<string>/usr/local/bin/snowflaked</string>"));
        for dir in private_dirs(&mac.target) {
            // The directories created for launchd are the ones the plist names.
            assert!(content.contains(dir.to_str().unwrap()));
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        let print = "launchctl print gui/501/com.snowflaked.agent";
        let bootstrap = format!("launchctl bootstrap gui/501 {}", plist.display());
        assert_eq!(mac.calls(), [print, bootstrap.as_str()]);

        // Again: the same file, already loaded, so the running daemon is left alone.
        assert!(mac.install().text().contains("unchanged"));
        assert_eq!(mac.calls(), [print]);

        // A changed file is booted out and bootstrapped again.
        std::fs::write(&plist, format!("{content}<!-- edited -->\n")).unwrap();
        mac.install();
        let bootout = "launchctl bootout gui/501/com.snowflaked.agent";
        assert_eq!(mac.calls(), [print, bootout, bootstrap.as_str()]);
    }

    #[test]
    fn uninstall_unloads_and_removes_only_its_own_plist() {
        let mac = Mac::new();
        mac.install();
        mac.calls();
        uninstall(&mac.target, &mac.commands, &mut Report::default()).unwrap();
        assert_eq!(
            mac.calls(),
            [
                "launchctl print gui/501/com.snowflaked.agent",
                "launchctl bootout gui/501/com.snowflaked.agent"
            ]
        );
        let plist = paths::launchd_plist(&mac.target.home);
        assert!(!plist.exists());
        assert!(private_dirs(&mac.target)[1].is_dir(), "the logs stay");

        std::fs::write(&plist, "<plist/>\n").unwrap();
        let mut report = Report::default();
        uninstall(&mac.target, &mac.commands, &mut report).unwrap();
        assert!(mac.calls().is_empty());
        assert!(plist.exists());
        assert!(
            report
                .text()
                .contains("not written by `snowflaked install`")
        );
    }

    #[test]
    fn print_lists_the_agent_and_the_commands() {
        let mut mac = Mac::new();
        mac.target.home = PathBuf::from("/Users/my home");
        let text = plan(&mac.target).unwrap().render();
        assert!(text.contains(
            "==> /Users/my home/Library/LaunchAgents/com.snowflaked.agent.plist (mode 0644) <==\n<?xml"
        ));
        assert!(text.contains("\nmkdir -p -m 0700 '/Users/my home/Library/Caches/snowflaked'\n"));
        assert!(text.contains(
            "\nlaunchctl bootstrap gui/501 '/Users/my home/Library/LaunchAgents/com.snowflaked.agent.plist'\n"
        ));
    }
}
