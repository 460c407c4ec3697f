//! `install` and `uninstall` for a systemd user manager (Linux): write the three units,
//! reload, enable the Unix socket; or disable, stop, remove and reload.
//!
//! When no user manager can be reached, install still leaves the files in place (so that
//! `snowflaked install` again, from a login that has one, finishes the job) and fails with
//! advice; uninstall still removes them, with the enable links `systemctl` would have removed.

use super::files::{self, Existing, FileSpec, WriteAction};
use super::run::{Cmd, Commands, Outcome};
use super::templates::{self, RenderError};
use super::{Plan, Report, Reported, Target};
use crate::config::paths::{self, SERVICE_UNIT, SOCKET_UNIT, TCP_SOCKET_UNIT};

/// One unit `install` writes: its name, its template and the target whose `.wants/`
/// directory `systemctl enable` links it into (the template's `[Install] WantedBy=`).
type Unit = (&'static str, &'static str, Option<&'static str>);

/// The units, in the order they are written and reported.
const UNITS: [Unit; 3] = [
    (
        SOCKET_UNIT,
        templates::SOCKET_TEMPLATE,
        Some("sockets.target"),
    ),
    (
        TCP_SOCKET_UNIT,
        templates::TCP_SOCKET_TEMPLATE,
        Some("sockets.target"),
    ),
    (SERVICE_UNIT, templates::SERVICE_TEMPLATE, None),
];

/// The three unit files, then reload and enable the Unix socket only: the TCP socket stays off
/// because any local user can reach a loopback port.
pub fn plan(target: &Target) -> Result<Plan, RenderError> {
    let files = UNITS
        .iter()
        .map(|(name, template, _)| {
            Ok(FileSpec {
                path: target.unit_dir.join(name),
                content: templates::render_unit(template, name, &target.binary)?,
            })
        })
        .collect::<Result<_, RenderError>>()?;
    Ok(Plan {
        files,
        commands: vec![
            Cmd::systemctl(&["daemon-reload"]),
            Cmd::systemctl(&["enable", "--now", SOCKET_UNIT]),
        ],
        note: format!(
            "{TCP_SOCKET_UNIT} is written but not enabled; to listen on loopback TCP as well: \
             systemctl --user enable --now {TCP_SOCKET_UNIT}"
        ),
    })
}

/// Writes the units and enables the socket.
pub fn install(
    target: &Target,
    force: bool,
    commands: &Commands,
    report: &mut Report,
) -> Result<(), Reported> {
    let plan = plan(target).map_err(|e| report.error(format!("cannot write the units: {e}")))?;
    let actions = files::write_all(&plan.files, force, report)?;
    let without_systemd = format!(
        "Or do without systemd: until the socket unit is enabled, the first snowflaked command \
         starts the daemon itself (it logs to {}), or run `snowflaked serve` in a terminal; \
         `snowflaked uninstall` removes the files again.",
        target.self_start_log.display()
    );
    for command in &plan.commands {
        match commands.run(command) {
            Outcome::Success => report.ran(command),
            Outcome::NotFound => {
                return Err(report.error(format!(
                    "the unit files are written, but nothing is enabled: `systemctl` was not \
                     found, so this system does not seem to run systemd.\n{without_systemd}"
                )));
            }
            Outcome::Failed(message) if is_no_manager(&message) => {
                return Err(report.error(format!(
                    "the unit files are written, but nothing is enabled: systemd's user \
                     manager cannot be reached.\n  `{command}` said: {message}\n\
                     To finish, get a user manager and run `snowflaked install` again from \
                     that login:\n  \
                     - log in through a graphical session or SSH (logind starts the user \
                     manager), or\n  \
                     - run `loginctl enable-linger` to keep one running without a login (it \
                     may need an administrator), then log in again.\n{without_systemd}"
                )));
            }
            Outcome::Failed(message) => {
                return Err(report.error(format!("`{command}` failed: {message}")));
            }
        }
    }
    report.say(format!(
        "{SOCKET_UNIT} is listening on $XDG_RUNTIME_DIR/snowflaked/api.sock: systemd starts the \
         daemon at the first connection, and the daemon exits again when idle.\n\
         {TCP_SOCKET_UNIT} (loopback TCP 127.0.0.1:8765) is written but not enabled; turn it on \
         with `systemctl --user enable --now {TCP_SOCKET_UNIT}`."
    ));
    if actions
        .iter()
        .any(|a| matches!(a, WriteAction::Update | WriteAction::Replace))
    {
        report.say(format!(
            "A daemon that is running now keeps its old settings until it exits when idle; \
             `systemctl --user restart {SERVICE_UNIT}` applies them at once."
        ));
    }
    report.try_it(target, "systemctl --user status snowflaked");
    Ok(())
}

/// Stops and disables the units `install` wrote, removes them and reloads. Units whose files
/// were replaced by someone else are neither stopped nor removed, and the user is told.
pub fn uninstall(
    target: &Target,
    commands: &Commands,
    report: &mut Report,
) -> Result<(), Reported> {
    let dir = &target.unit_dir;
    let mut ours = Vec::new();
    for unit in UNITS {
        let path = dir.join(unit.0);
        match Existing::read(&path, report)? {
            Existing::Absent => {}
            existing if existing.is_ours() => ours.push(unit),
            _ => report.warn(format!(
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

    let names: Vec<&str> = ours.iter().map(|unit| unit.0).collect();
    let mut manager = true;
    for command in disable_commands(&names) {
        match commands.run(&command) {
            Outcome::Success => report.ran(&command),
            Outcome::NotFound => {
                report.warn("`systemctl` was not found; removing the files only");
                manager = false;
                break;
            }
            Outcome::Failed(message) if is_no_manager(&message) => {
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

    for (name, _, wanted_by) in &ours {
        let path = dir.join(name);
        // `systemctl disable` removes the enable link; without a manager it is done here,
        // so that a later manager does not find a link to a missing unit.
        if !manager && let Some(wanted_by) = wanted_by {
            let link = paths::systemd_enable_link(dir, wanted_by, name);
            files::remove_link_to(&link, &path, report)?;
        }
        files::remove(&path, report)?;
    }
    if manager {
        let command = Cmd::systemctl(&["daemon-reload"]);
        match commands.run(&command) {
            Outcome::Success => report.ran(&command),
            Outcome::NotFound => report.warn(format!("`{command}`: systemctl was not found")),
            Outcome::Failed(message) => report.warn(format!("`{command}` failed: {message}")),
        }
    }
    for (name, _, _) in UNITS {
        let drop_ins = dir.join(format!("{name}.d"));
        if drop_ins.is_dir() {
            report.say(format!(
                "left {}: your own settings (`systemctl --user edit`)",
                drop_ins.display()
            ));
        }
    }
    Ok(())
}

/// Before the files are removed: the sockets first, so that no new connection starts the
/// service again while it is being stopped, then the service. Only units whose files are
/// still `install`'s are named; the daemon-reload comes after the removal.
fn disable_commands(ours: &[&str]) -> Vec<Cmd> {
    let sockets = UNITS
        .iter()
        .filter(|(name, _, wanted_by)| wanted_by.is_some() && ours.contains(name))
        .map(|(name, _, _)| *name);
    let disable: Vec<&str> = ["disable", "--now"].into_iter().chain(sockets).collect();
    let mut commands = Vec::new();
    if disable.len() > 2 {
        commands.push(Cmd::systemctl(&disable));
    }
    if ours.contains(&SERVICE_UNIT) {
        commands.push(Cmd::systemctl(&["stop", SERVICE_UNIT]));
    }
    commands
}

/// Whether a failed `systemctl --user` means that no user manager can be reached, as
/// opposed to a failure of the command itself. These are the messages systemctl prints when
/// it has no bus to the manager: no session bus, no `$XDG_RUNTIME_DIR`, no systemd as init.
fn is_no_manager(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "failed to connect to bus",
        "failed to connect to user scope bus",
        "failed to get d-bus connection",
        "no medium found",
        "$dbus_session_bus_address",
        "$xdg_runtime_dir",
        "system has not been booted with systemd",
    ];
    let message = message.to_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uninstall_disables_only_the_units_that_are_still_ours() {
        let show = |ours: &[&str]| -> Vec<String> {
            disable_commands(ours).iter().map(Cmd::to_string).collect()
        };
        let stop = "systemctl --user stop snowflaked.service";
        let disable = "systemctl --user disable --now snowflaked.socket snowflaked-tcp.socket";
        assert_eq!(
            show(&[SOCKET_UNIT, TCP_SOCKET_UNIT, SERVICE_UNIT]),
            [disable, stop]
        );
        assert_eq!(show(&[SOCKET_UNIT, TCP_SOCKET_UNIT]), [disable]);
        assert_eq!(show(&[SERVICE_UNIT]), [stop]);
        assert!(show(&[]).is_empty());
    }

    #[test]
    fn enable_links_follow_the_templates_install_sections() {
        for (name, template, wanted_by) in UNITS {
            let wanted = template.lines().any(|l| l == "WantedBy=sockets.target");
            assert_eq!(wanted, wanted_by.is_some(), "{name}");
        }
    }

    #[test]
    fn no_manager_messages_are_recognised() {
        assert!(is_no_manager("Failed to connect to bus: No medium found"));
        assert!(is_no_manager(
            "Failed to connect to user scope bus via local transport: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined"
        ));
        assert!(is_no_manager(
            "System has not been booted with systemd as init system (PID 1). Can't operate."
        ));
        assert!(!is_no_manager(
            "Failed to enable unit: Unit file snowflaked.socket does not exist."
        ));
    }
}
