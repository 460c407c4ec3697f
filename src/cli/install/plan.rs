//! What `install` and `uninstall` do, decided without touching the machine: where the files
//! go for a given user, what they contain, which commands run in which order, what to do
//! with a file that is already there, and how to read a failed `systemctl`.
//!
//! Everything here is a pure function of its arguments so it can be unit-tested for any user
//! and either platform; the IO lives in [`super::files`], [`super::run`], [`super::systemd`]
//! and [`super::launchd`].

use std::fmt;
use std::path::{Path, PathBuf};

use super::templates::{self, RenderError};
use crate::config::paths::{self, Env};
use crate::config::sources::CREDENTIAL_NAME;

/// The socket unit `install` enables.
pub const SOCKET_UNIT: &str = "snowflaked.socket";
/// The optional loopback TCP socket unit: written, never enabled by `install`.
pub const TCP_SOCKET_UNIT: &str = "snowflaked-tcp.socket";
/// The service both sockets activate.
pub const SERVICE_UNIT: &str = "snowflaked.service";
/// The launchd job label (also the plist's file name).
pub const AGENT_LABEL: &str = "com.snowflaked.agent";
/// Unit files and the plist hold no secrets; systemd and launchd only need to read them.
pub const FILE_MODE: u32 = 0o644;
/// The launchd socket and log directories hold the API socket and the daemon's logs.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// One systemd unit `install` writes.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    pub name: &'static str,
    template: &'static str,
    /// The target whose `.wants/` directory `systemctl enable` links the unit into, from the
    /// unit's `[Install] WantedBy=`.
    pub wanted_by: Option<&'static str>,
}

/// The systemd units, in the order they are written and reported.
pub const UNITS: [Unit; 3] = [
    Unit {
        name: SOCKET_UNIT,
        template: templates::SOCKET_TEMPLATE,
        wanted_by: Some("sockets.target"),
    },
    Unit {
        name: TCP_SOCKET_UNIT,
        template: templates::TCP_SOCKET_TEMPLATE,
        wanted_by: Some("sockets.target"),
    },
    Unit {
        name: SERVICE_UNIT,
        template: templates::SERVICE_TEMPLATE,
        wanted_by: None,
    },
];

/// The user `install` works for, resolved once from the environment.
#[derive(Debug, Clone)]
pub struct Target {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, default `~/.config`: where the user manager looks for units.
    pub config_home: PathBuf,
    /// The absolute, canonical path of the running binary, which the units will start.
    pub binary: PathBuf,
    pub uid: u32,
    /// Where a daemon started by a client (not by the init system) writes its log, as
    /// `crate::client` opens it.
    pub self_start_log: PathBuf,
}

impl Target {
    /// Resolves the user's directories. A missing or relative `HOME` is an error rather than
    /// a fallback: units written under `/` or the working directory would help nobody.
    pub fn resolve(env: &dyn Env, binary: PathBuf, uid: u32) -> Result<Target, String> {
        let home = home(env)?;
        // The XDG spec says relative values are to be ignored.
        let config_home = env
            .var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".config"));
        Ok(Target {
            home,
            config_home,
            binary,
            uid,
            self_start_log: paths::state_dir(env).join("daemon.log"),
        })
    }

    /// `$XDG_CONFIG_HOME/systemd/user`, the first directory of the user manager's unit path
    /// that belongs to the user.
    pub fn unit_dir(&self) -> PathBuf {
        self.config_home.join("systemd/user")
    }

    /// The dotenv file the service loads as its `snowflake.env` credential
    /// (`LoadCredential=snowflake.env:%E/snowflaked/snowflake.env`).
    pub fn credentials_file(&self) -> PathBuf {
        self.config_home.join("snowflaked").join(CREDENTIAL_NAME)
    }

    /// `~/Library/LaunchAgents/com.snowflaked.agent.plist`.
    pub fn plist_path(&self) -> PathBuf {
        self.home
            .join("Library/LaunchAgents")
            .join(format!("{AGENT_LABEL}.plist"))
    }

    /// The directories the plist names and launchd does not create: the socket's and the
    /// log's.
    pub fn launchd_dirs(&self) -> [PathBuf; 2] {
        [
            self.home.join("Library/Caches/snowflaked"),
            self.home.join("Library/Logs/snowflaked"),
        ]
    }

    /// Where the launchd agent sends the daemon's output.
    pub fn launchd_log(&self) -> PathBuf {
        launchd_log(&self.home)
    }
}

/// The plist's `SockPathName` for a user whose home is `home`.
pub fn launchd_socket(home: &Path) -> PathBuf {
    home.join("Library/Caches/snowflaked/api.sock")
}

/// The plist's `StandardErrorPath` for a user whose home is `home`.
pub fn launchd_log(home: &Path) -> PathBuf {
    home.join("Library/Logs/snowflaked/snowflaked.log")
}

/// `$HOME`, which must be absolute.
pub fn home(env: &dyn Env) -> Result<PathBuf, String> {
    match env.var("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home),
        Some(home) => Err(format!("HOME ({}) is not an absolute path", home.display())),
        None => Err("HOME is not set".to_string()),
    }
}

/// A file to write, with its full content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    pub content: String,
    pub mode: u32,
}

/// The three unit files for `target`.
pub fn systemd_files(target: &Target) -> Result<Vec<FileSpec>, RenderError> {
    let dir = target.unit_dir();
    UNITS
        .iter()
        .map(|unit| {
            Ok(FileSpec {
                path: dir.join(unit.name),
                content: templates::render_unit(unit.template, unit.name, &target.binary)?,
                mode: FILE_MODE,
            })
        })
        .collect()
}

/// The launchd agent for `target`.
pub fn launchd_file(target: &Target) -> Result<FileSpec, RenderError> {
    Ok(FileSpec {
        path: target.plist_path(),
        content: templates::render_plist(templates::PLIST_TEMPLATE, &target.binary, &target.home)?,
        mode: FILE_MODE,
    })
}

/// The `.wants/` link `systemctl enable` creates for `unit` in `unit_dir`, if it has one.
pub fn enable_link(unit_dir: &Path, unit: &Unit) -> Option<PathBuf> {
    unit.wanted_by
        .map(|target| unit_dir.join(format!("{target}.wants")).join(unit.name))
}

/// An external command: a program looked up on `PATH` and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: &'static str,
    pub args: Vec<String>,
}

impl Cmd {
    fn new(program: &'static str, args: &[&str]) -> Cmd {
        Cmd {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn systemctl(args: &[&str]) -> Cmd {
        let mut all = vec!["--user"];
        all.extend_from_slice(args);
        Cmd::new("systemctl", &all)
    }
}

/// The command as one would type it in a shell.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            write!(f, " {}", shell_word(arg))?;
        }
        Ok(())
    }
}

/// `systemctl --user daemon-reload`: makes the user manager read changed unit files.
pub fn daemon_reload() -> Cmd {
    Cmd::systemctl(&["daemon-reload"])
}

/// After the files are written: reload, then enable and start the Unix socket only. The TCP
/// socket stays off because any local user can reach a loopback port.
pub fn systemd_enable() -> Vec<Cmd> {
    vec![
        daemon_reload(),
        Cmd::systemctl(&["enable", "--now", SOCKET_UNIT]),
    ]
}

/// Before the files are removed: the sockets first, so that no new connection starts the
/// service again while it is being stopped, then the service. Only units whose files are
/// still `install`'s are named; the daemon-reload comes after the removal.
pub fn systemd_disable(ours: &[&str]) -> Vec<Cmd> {
    let sockets: Vec<&str> = UNITS
        .iter()
        .filter(|u| u.wanted_by.is_some() && ours.contains(&u.name))
        .map(|u| u.name)
        .collect();
    let mut commands = Vec::new();
    if !sockets.is_empty() {
        let mut args = vec!["disable", "--now"];
        args.extend(sockets);
        commands.push(Cmd::systemctl(&args));
    }
    if ours.contains(&SERVICE_UNIT) {
        commands.push(Cmd::systemctl(&["stop", SERVICE_UNIT]));
    }
    commands
}

/// `gui/UID`, the launchd domain of the user's login session.
fn launchd_domain(uid: u32) -> String {
    format!("gui/{uid}")
}

/// Succeeds only when the agent is loaded.
pub fn launchctl_print(uid: u32) -> Cmd {
    Cmd::new(
        "launchctl",
        &["print", &format!("{}/{AGENT_LABEL}", launchd_domain(uid))],
    )
}

/// Unloads the agent (stopping a running daemon).
pub fn launchctl_bootout(uid: u32) -> Cmd {
    Cmd::new(
        "launchctl",
        &["bootout", &format!("{}/{AGENT_LABEL}", launchd_domain(uid))],
    )
}

/// Loads the agent: launchd creates its socket and starts the daemon on the first connection.
pub fn launchctl_bootstrap(uid: u32, plist: &Path) -> Cmd {
    Cmd {
        program: "launchctl",
        args: vec![
            "bootstrap".to_string(),
            launchd_domain(uid),
            plist.display().to_string(),
        ],
    }
}

/// How to (re)load the agent. An agent already loaded from an unchanged file is left alone:
/// booting it out would stop a daemon in the middle of its queries for nothing. A changed
/// file needs the bootout first, because bootstrapping a loaded label fails.
pub fn launchd_load(uid: u32, plist: &Path, loaded: bool, changed: bool) -> Vec<Cmd> {
    match (loaded, changed) {
        (true, false) => Vec::new(),
        (true, true) => vec![launchctl_bootout(uid), launchctl_bootstrap(uid, plist)],
        (false, _) => vec![launchctl_bootstrap(uid, plist)],
    }
}

/// What is at a file's path before `install` or `uninstall` acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Absent,
    /// A regular file with UTF-8 content.
    Text(String),
    /// A symlink, a directory, or a file that is not text: never written by `install`, so
    /// someone else manages it.
    Other,
}

/// What `install` does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    Create,
    /// The file already holds exactly this content; it is left as it is.
    Unchanged,
    /// An earlier `install` wrote it (the marker is there); it is rewritten.
    Update,
    /// Someone else's file, overwritten because `--force` was given.
    Replace,
    /// Someone else's file, kept: `install` stops before changing anything.
    Refuse,
}

impl WriteAction {
    /// The verb reported for the file.
    pub fn verb(self) -> &'static str {
        match self {
            WriteAction::Create => "created",
            WriteAction::Unchanged => "unchanged",
            WriteAction::Update => "updated",
            WriteAction::Replace => "replaced",
            WriteAction::Refuse => "kept",
        }
    }

    /// Whether the file's content changes.
    pub fn writes(self) -> bool {
        matches!(
            self,
            WriteAction::Create | WriteAction::Update | WriteAction::Replace
        )
    }
}

/// Decides what to do with one file. Files carrying the marker are `install`'s own and are
/// brought up to date; anything else is the user's and only replaced when forced.
pub fn write_action(existing: &Existing, rendered: &str, force: bool) -> WriteAction {
    match existing {
        Existing::Absent => WriteAction::Create,
        Existing::Text(text) if text == rendered => WriteAction::Unchanged,
        Existing::Text(text) if templates::has_marker(text) => WriteAction::Update,
        _ if force => WriteAction::Replace,
        _ => WriteAction::Refuse,
    }
}

/// What `uninstall` does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveAction {
    Absent,
    Remove,
    /// Not written by `install` (any more): left in place, and the user is told.
    Keep,
}

/// Decides whether `uninstall` may remove a file: only when it carries the marker.
pub fn remove_action(existing: &Existing) -> RemoveAction {
    match existing {
        Existing::Absent => RemoveAction::Absent,
        Existing::Text(text) if templates::has_marker(text) => RemoveAction::Remove,
        _ => RemoveAction::Keep,
    }
}

/// Whether a failed `systemctl --user` means that no user manager can be reached, as
/// opposed to a failure of the command itself. These are the messages systemctl prints when
/// it has no bus to the manager: no session bus, no `$XDG_RUNTIME_DIR`, no systemd as init.
pub fn is_no_manager(message: &str) -> bool {
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

/// `word` quoted for a POSIX shell when it holds anything but plainly safe characters.
pub fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ann() -> Target {
        Target::resolve(
            &env(&[("HOME", "/home/ann")]),
            PathBuf::from("/home/ann/.cargo/bin/snowflaked"),
            1000,
        )
        .unwrap()
    }

    #[test]
    fn units_go_to_the_xdg_config_home_or_dot_config() {
        assert_eq!(
            ann().unit_dir(),
            Path::new("/home/ann/.config/systemd/user")
        );
        let xdg = Target::resolve(
            &env(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/cfg")]),
            PathBuf::from("/b"),
            1,
        )
        .unwrap();
        assert_eq!(xdg.unit_dir(), Path::new("/cfg/systemd/user"));
        assert_eq!(
            xdg.credentials_file(),
            Path::new("/cfg/snowflaked/snowflake.env")
        );
        let relative = Target::resolve(
            &env(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "cfg")]),
            PathBuf::from("/b"),
            1,
        )
        .unwrap();
        assert_eq!(
            relative.unit_dir(),
            Path::new("/home/ann/.config/systemd/user")
        );
    }

    #[test]
    fn a_missing_or_relative_home_is_an_error() {
        assert!(Target::resolve(&env(&[]), PathBuf::from("/b"), 1).is_err());
        assert!(Target::resolve(&env(&[("HOME", "ann")]), PathBuf::from("/b"), 1).is_err());
    }

    #[test]
    fn the_systemd_plan_writes_three_units_and_enables_only_the_unix_socket() {
        let files = systemd_files(&ann()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "snowflaked.socket",
                "snowflaked-tcp.socket",
                "snowflaked.service"
            ]
        );
        assert!(files.iter().all(|f| f.mode == 0o644));
        let commands: Vec<String> = systemd_enable().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            commands,
            [
                "systemctl --user daemon-reload",
                "systemctl --user enable --now snowflaked.socket"
            ]
        );
    }

    #[test]
    fn uninstall_names_only_units_that_are_still_ours() {
        let all = systemd_disable(&[SOCKET_UNIT, TCP_SOCKET_UNIT, SERVICE_UNIT]);
        let text: Vec<String> = all.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            [
                "systemctl --user disable --now snowflaked.socket snowflaked-tcp.socket",
                "systemctl --user stop snowflaked.service"
            ]
        );
        let service_replaced = systemd_disable(&[SOCKET_UNIT, TCP_SOCKET_UNIT]);
        assert_eq!(service_replaced.len(), 1);
        let only_service = systemd_disable(&[SERVICE_UNIT]);
        assert_eq!(
            only_service[0].to_string(),
            "systemctl --user stop snowflaked.service"
        );
        assert!(systemd_disable(&[]).is_empty());
    }

    #[test]
    fn sockets_have_enable_links_and_the_service_has_none() {
        let dir = Path::new("/u");
        assert_eq!(
            enable_link(dir, &UNITS[0]).unwrap(),
            Path::new("/u/sockets.target.wants/snowflaked.socket")
        );
        assert!(enable_link(dir, &UNITS[2]).is_none());
        // The links follow the templates' [Install] sections.
        for unit in UNITS {
            let wanted = unit
                .template
                .lines()
                .any(|l| l == "WantedBy=sockets.target");
            assert_eq!(wanted, unit.wanted_by.is_some(), "{}", unit.name);
        }
    }

    #[test]
    fn launchd_paths_and_load_commands() {
        let t = Target::resolve(
            &env(&[("HOME", "/Users/ann")]),
            PathBuf::from("/opt/homebrew/bin/snowflaked"),
            501,
        )
        .unwrap();
        let plist = t.plist_path();
        assert_eq!(
            plist,
            Path::new("/Users/ann/Library/LaunchAgents/com.snowflaked.agent.plist")
        );
        let file = launchd_file(&t).unwrap();
        // The directories created for launchd are the ones the plist names.
        for dir in t.launchd_dirs() {
            assert!(file.content.contains(dir.to_str().unwrap()));
        }
        assert!(file.content.contains(t.launchd_log().to_str().unwrap()));
        let show = |cmds: Vec<Cmd>| cmds.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let bootstrap = "launchctl bootstrap gui/501 /Users/ann/Library/LaunchAgents/com.snowflaked.agent.plist";
        assert_eq!(show(launchd_load(501, &plist, false, true)), [bootstrap]);
        assert_eq!(show(launchd_load(501, &plist, false, false)), [bootstrap]);
        assert_eq!(
            show(launchd_load(501, &plist, true, true)),
            ["launchctl bootout gui/501/com.snowflaked.agent", bootstrap]
        );
        assert!(launchd_load(501, &plist, true, false).is_empty());
        assert_eq!(
            launchctl_print(501).to_string(),
            "launchctl print gui/501/com.snowflaked.agent"
        );
    }

    #[test]
    fn write_decisions() {
        let ours = format!("# {}\nold\n", templates::MARKER);
        let rendered = format!("# {}\nnew\n", templates::MARKER);
        let text = |s: &str| Existing::Text(s.to_string());
        assert_eq!(
            write_action(&Existing::Absent, &rendered, false),
            WriteAction::Create
        );
        assert_eq!(
            write_action(&text(&rendered), &rendered, false),
            WriteAction::Unchanged
        );
        assert_eq!(
            write_action(&text(&ours), &rendered, false),
            WriteAction::Update
        );
        assert_eq!(
            write_action(&text("[Unit]\n"), &rendered, false),
            WriteAction::Refuse
        );
        assert_eq!(
            write_action(&text("[Unit]\n"), &rendered, true),
            WriteAction::Replace
        );
        assert_eq!(
            write_action(&Existing::Other, &rendered, false),
            WriteAction::Refuse
        );
        assert_eq!(
            write_action(&Existing::Other, &rendered, true),
            WriteAction::Replace
        );
        assert!(!WriteAction::Unchanged.writes() && WriteAction::Update.writes());
    }

    #[test]
    fn remove_decisions() {
        let ours = Existing::Text(format!("# {}\n", templates::MARKER));
        assert_eq!(remove_action(&Existing::Absent), RemoveAction::Absent);
        assert_eq!(remove_action(&ours), RemoveAction::Remove);
        assert_eq!(
            remove_action(&Existing::Text("[Unit]\n".into())),
            RemoveAction::Keep
        );
        assert_eq!(remove_action(&Existing::Other), RemoveAction::Keep);
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

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/home/ann/x.socket"), "/home/ann/x.socket");
        assert_eq!(shell_word("/my files/x"), "'/my files/x'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
