//! `install` and `uninstall` for a systemd user manager (Linux): write the three units,
//! reload, enable the Unix socket; or disable, stop, remove and reload.
//!
//! Commands go through a [`Runner`], never straight to `systemctl`, so the flows are tested
//! without a user manager. When none can be reached, install still leaves the files in place
//! (so that `snowflaked install` again, from a login that has one, finishes the job) and
//! fails with advice; uninstall still removes them.

use super::advice::{self, Credentials};
use super::files;
use super::plan::{self, Cmd, RemoveAction, Target, UNITS, WriteAction};
use super::report::{Report, Reported};
use super::run::{Outcome, Runner};

/// Writes the units and enables the socket.
pub fn install(
    target: &Target,
    force: bool,
    runner: &mut dyn Runner,
    report: &mut Report,
) -> Result<(), Reported> {
    let unit_files = plan::systemd_files(target)
        .map_err(|e| report.error(format!("cannot write the units: {e}")))?;
    let actions = files::prepare_writes(&unit_files, force, report)?;
    files::apply_writes(&unit_files, &actions, report)?;
    for command in plan::systemd_enable() {
        match runner.run(&command) {
            Outcome::Success => report_ran(&command, report),
            Outcome::NotFound => return Err(report.error(advice::no_systemctl(target))),
            Outcome::Failed(message) if plan::is_no_manager(&message) => {
                return Err(report.error(advice::no_manager(target, &command, &message)));
            }
            Outcome::Failed(message) => {
                return Err(report.error(format!("`{command}` failed: {message}")));
            }
        }
    }
    report.say(advice::systemd_ready());
    if actions
        .iter()
        .any(|a| matches!(a, WriteAction::Update | WriteAction::Replace))
    {
        report.say(advice::restart_systemd());
    }
    say_credentials(target, report);
    report.say(advice::try_next(advice::SYSTEMD_STATUS));
    Ok(())
}

/// Stops and disables the units `install` wrote, removes them and reloads. Units whose files
/// were replaced by someone else are neither stopped nor removed, and the user is told.
pub fn uninstall(
    target: &Target,
    runner: &mut dyn Runner,
    report: &mut Report,
) -> Result<(), Reported> {
    let dir = target.unit_dir();
    let mut ours = Vec::new();
    for unit in &UNITS {
        let path = dir.join(unit.name);
        let existing = files::read_existing(&path)
            .map_err(|e| report.error(format!("cannot read {}: {e}", path.display())))?;
        match plan::remove_action(&existing) {
            RemoveAction::Absent => {}
            RemoveAction::Remove => ours.push(*unit),
            RemoveAction::Keep => report.warn(format!(
                "left {}: it was not written by `snowflaked install` (no marker line), so it is \
                 not removed; delete it yourself if you no longer want it",
                path.display()
            )),
        }
    }
    if ours.is_empty() {
        report.say(format!(
            "nothing to remove: no unit written by `snowflaked install` in {}",
            dir.display()
        ));
        return Ok(());
    }

    let names: Vec<&str> = ours.iter().map(|u| u.name).collect();
    let mut manager = true;
    for command in plan::systemd_disable(&names) {
        match runner.run(&command) {
            Outcome::Success => report_ran(&command, report),
            Outcome::NotFound => {
                report.warn("`systemctl` was not found; removing the files only");
                manager = false;
                break;
            }
            Outcome::Failed(message) if plan::is_no_manager(&message) => {
                report.warn(format!(
                    "systemd's user manager cannot be reached (`{command}`: {message}); \
                     removing the files and enable links only. If a user manager runs in \
                     another login, run `systemctl --user daemon-reload` there."
                ));
                manager = false;
                break;
            }
            Outcome::Failed(message) => {
                return Err(report.error(format!(
                    "`{command}` failed: {message}\nnothing was removed"
                )));
            }
        }
    }

    for unit in &ours {
        let path = dir.join(unit.name);
        // `systemctl disable` removes the enable link; without a manager it is done here,
        // so that a later manager does not find a link to a missing unit.
        if !manager && let Some(link) = plan::enable_link(&dir, unit) {
            files::remove_link_to(&link, &path, report)?;
        }
        files::remove(&path, report)?;
    }
    if manager {
        let command = plan::daemon_reload();
        match runner.run(&command) {
            Outcome::Success => report_ran(&command, report),
            Outcome::NotFound => report.warn(format!("`{command}`: systemctl was not found")),
            Outcome::Failed(message) => report.warn(format!("`{command}` failed: {message}")),
        }
    }
    for unit in &UNITS {
        let drop_ins = dir.join(format!("{}.d", unit.name));
        if drop_ins.is_dir() {
            report.say(format!(
                "left {}: your own settings (`systemctl --user edit`)",
                drop_ins.display()
            ));
        }
    }
    Ok(())
}

pub(super) fn report_ran(command: &Cmd, report: &mut Report) {
    report.say(format!("{:<9} {command}", "ran"));
}

/// Says where credentials go, and warns when the file is there but would be refused.
pub(super) fn say_credentials(target: &Target, report: &mut Report) {
    let path = target.credentials_file();
    let state = Credentials::from_mode(files::mode(&path));
    match advice::credentials(&path, state) {
        Ok(text) => report.say(text),
        Err(text) => report.warn(text),
    }
}
