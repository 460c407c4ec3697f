//! `install` and `uninstall` for launchd (macOS): write the agent, create the directories
//! it names, and load or unload it in the user's GUI domain.
//!
//! Compiled on every platform (only called on macOS) so that the compiler checks it where
//! macOS is not available, and unit-tested here with a recording [`Runner`].

use super::advice;
use super::files;
use super::plan::{self, RemoveAction, Target, WriteAction};
use super::report::{Report, Reported};
use super::run::{Outcome, Runner};
use super::systemd::{report_ran, say_credentials};

/// Writes the agent and loads it.
pub fn install(
    target: &Target,
    force: bool,
    runner: &mut dyn Runner,
    report: &mut Report,
) -> Result<(), Reported> {
    let file = plan::launchd_file(target)
        .map_err(|e| report.error(format!("cannot write the launchd agent: {e}")))?;
    let plist = file.path.clone();
    let files = [file];
    let actions = files::prepare_writes(&files, force, report)?;
    // launchd creates neither directory, and binding the socket fails without its directory.
    for dir in target.launchd_dirs() {
        files::ensure_private_dir(&dir, plan::PRIVATE_DIR_MODE)
            .map_err(|e| report.error(format!("cannot create {}: {e}", dir.display())))?;
        report.say(format!("{:<9} {} (mode 0700)", "directory", dir.display()));
    }
    files::apply_writes(&files, &actions, report)?;

    let loaded = is_loaded(target, runner, report)?;
    let changed = actions[0] != WriteAction::Unchanged;
    let commands = plan::launchd_load(target.uid, &plist, loaded, changed);
    if commands.is_empty() {
        report.say(format!(
            "{:<9} {} is already loaded from this file",
            "unchanged",
            plan::AGENT_LABEL
        ));
    }
    for command in commands {
        match runner.run(&command) {
            Outcome::Success => report_ran(&command, report),
            Outcome::NotFound => return Err(report.error("`launchctl` was not found")),
            Outcome::Failed(message) => {
                return Err(report.error(format!("`{command}` failed: {message}")));
            }
        }
    }
    report.say(advice::launchd_ready(target));
    say_credentials(target, report);
    report.say(advice::try_next(&advice::launchd_status(target.uid)));
    Ok(())
}

/// Unloads the agent (stopping the daemon) and removes the plist, unless the plist was
/// replaced by someone else. The log directory is left: it holds the user's logs.
pub fn uninstall(
    target: &Target,
    runner: &mut dyn Runner,
    report: &mut Report,
) -> Result<(), Reported> {
    let plist = target.plist_path();
    let existing = files::read_existing(&plist)
        .map_err(|e| report.error(format!("cannot read {}: {e}", plist.display())))?;
    let action = plan::remove_action(&existing);
    if action == RemoveAction::Keep {
        report.warn(format!(
            "left {}: it was not written by `snowflaked install` (no marker line), so it is \
             neither unloaded nor removed",
            plist.display()
        ));
        return Ok(());
    }
    // Loaded without its file (removed by hand) still means our label is running.
    if is_loaded(target, runner, report)? {
        let command = plan::launchctl_bootout(target.uid);
        match runner.run(&command) {
            Outcome::Success => report_ran(&command, report),
            Outcome::NotFound => return Err(report.error("`launchctl` was not found")),
            Outcome::Failed(message) => {
                return Err(report.error(format!(
                    "`{command}` failed: {message}\nnothing was removed"
                )));
            }
        }
    } else if action == RemoveAction::Absent {
        report.say(format!(
            "nothing to remove: {} does not exist and {} is not loaded",
            plist.display(),
            plan::AGENT_LABEL
        ));
        return Ok(());
    }
    files::remove(&plist, report)?;
    Ok(())
}

/// Whether the agent is loaded in the user's GUI domain (`launchctl print` succeeds).
fn is_loaded(
    target: &Target,
    runner: &mut dyn Runner,
    report: &mut Report,
) -> Result<bool, Reported> {
    match runner.run(&plan::launchctl_print(target.uid)) {
        Outcome::Success => Ok(true),
        Outcome::NotFound => Err(report.error("`launchctl` was not found")),
        Outcome::Failed(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;
    use crate::cli::install::plan::Cmd;

    /// Records commands; `launchctl print` succeeds only while `loaded`.
    struct FakeLaunchctl {
        loaded: bool,
        calls: Vec<String>,
    }

    impl Runner for FakeLaunchctl {
        fn run(&mut self, cmd: &Cmd) -> Outcome {
            self.calls.push(cmd.to_string());
            match cmd.args[0].as_str() {
                "print" if !self.loaded => Outcome::Failed("Could not find service".into()),
                "bootstrap" => {
                    self.loaded = true;
                    Outcome::Success
                }
                "bootout" => {
                    self.loaded = false;
                    Outcome::Success
                }
                _ => Outcome::Success,
            }
        }
    }

    fn target(home: &std::path::Path) -> Target {
        let env: HashMap<String, String> =
            [("HOME".to_string(), home.display().to_string())].into();
        Target::resolve(&env, PathBuf::from("/usr/local/bin/snowflaked"), 501).unwrap()
    }

    #[test]
    fn install_writes_the_agent_creates_its_directories_and_loads_it_once() {
        let home = tempfile::tempdir().unwrap();
        let target = target(home.path());
        let mut launchctl = FakeLaunchctl {
            loaded: false,
            calls: Vec::new(),
        };
        let mut report = Report::default();
        install(&target, false, &mut launchctl, &mut report).unwrap();
        let plist = target.plist_path();
        let content = std::fs::read_to_string(&plist).unwrap();
        assert!(content.contains("<string>/usr/local/bin/snowflaked</string>"));
        for dir in target.launchd_dirs() {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        let bootstrap = format!("launchctl bootstrap gui/501 {}", plist.display());
        assert_eq!(
            launchctl.calls,
            [
                "launchctl print gui/501/com.snowflaked.agent",
                bootstrap.as_str()
            ]
        );

        // Again: the same file, already loaded, so the running daemon is left alone.
        launchctl.calls.clear();
        let mut again = Report::default();
        install(&target, false, &mut launchctl, &mut again).unwrap();
        assert_eq!(
            launchctl.calls,
            ["launchctl print gui/501/com.snowflaked.agent"]
        );
        assert!(again.text().contains("unchanged"));

        // A changed file is booted out and bootstrapped again.
        std::fs::write(&plist, format!("{content}<!-- edited -->\n")).unwrap();
        launchctl.calls.clear();
        install(&target, false, &mut launchctl, &mut Report::default()).unwrap();
        assert_eq!(
            launchctl.calls,
            [
                "launchctl print gui/501/com.snowflaked.agent",
                "launchctl bootout gui/501/com.snowflaked.agent",
                bootstrap.as_str()
            ]
        );
    }

    #[test]
    fn uninstall_unloads_and_removes_only_its_own_plist() {
        let home = tempfile::tempdir().unwrap();
        let target = target(home.path());
        let mut launchctl = FakeLaunchctl {
            loaded: false,
            calls: Vec::new(),
        };
        install(&target, false, &mut launchctl, &mut Report::default()).unwrap();
        launchctl.calls.clear();
        uninstall(&target, &mut launchctl, &mut Report::default()).unwrap();
        assert_eq!(
            launchctl.calls,
            [
                "launchctl print gui/501/com.snowflaked.agent",
                "launchctl bootout gui/501/com.snowflaked.agent"
            ]
        );
        assert!(!target.plist_path().exists());
        // The logs stay.
        assert!(target.launchd_dirs()[1].is_dir());

        std::fs::write(target.plist_path(), "<plist/>\n").unwrap();
        launchctl.calls.clear();
        let mut report = Report::default();
        uninstall(&target, &mut launchctl, &mut report).unwrap();
        assert!(launchctl.calls.is_empty());
        assert!(target.plist_path().exists());
        assert!(
            report
                .text()
                .contains("not written by `snowflaked install`")
        );
    }
}
