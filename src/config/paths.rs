//! Where things live on disk: the one owner of the user's directories and of every file name
//! snowflaked reads or writes — the XDG base directories (and their systemd equivalents
//! `$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY`), the socket, the daemon's log, the state
//! files, and the places systemd and launchd look for what `snowflaked install` writes.
//! Everything else asks this module rather than joining names of its own.
//!
//! Each function takes the environment as a lookup ([`Env`]) so tests can resolve paths for a
//! made-up user without touching the process environment.

use std::path::{Path, PathBuf};

/// A read-only view of environment variables.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// Why the user's home directory cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("HOME is not set")]
    HomeUnset,
    #[error("HOME ({}) is not an absolute path", .0.display())]
    HomeRelative(PathBuf),
}

/// The daemon's own directory under each base directory.
const APP_DIR: &str = "snowflaked";
/// The API socket, in the runtime directory (and launchd's socket directory).
pub const SOCKET_FILE: &str = "api.sock";
/// The log of a daemon a client started itself, in the state directory.
pub const DAEMON_LOG_FILE: &str = "daemon.log";
/// Token contexts, in the state directory (`sessions::store`).
pub const TOKENS_FILE: &str = "tokens.json";
/// Statement id → query id, in the state directory (`statements::ids`).
pub const STATEMENTS_FILE: &str = "statements.json";
/// The daemon's settings, in the config directory.
pub const CONFIG_FILE: &str = "config.toml";
/// The dotenv credentials file, in the config directory, and the name systemd's
/// `LoadCredential=` hands it over as.
pub const CREDENTIAL_NAME: &str = "snowflake.env";
/// The lock clients take (next to the socket) while one of them starts the daemon.
pub const START_LOCK_FILE: &str = "start.lock";

/// The systemd socket unit `install` enables.
pub const SOCKET_UNIT: &str = "snowflaked.socket";
/// The optional loopback TCP socket unit.
pub const TCP_SOCKET_UNIT: &str = "snowflaked-tcp.socket";
/// The service both sockets activate.
pub const SERVICE_UNIT: &str = "snowflaked.service";
/// The launchd job label (also the plist's file name).
pub const AGENT_LABEL: &str = "com.snowflaked.agent";

/// `$HOME`, which must be absolute: paths under `/` or the working directory would help
/// nobody.
pub fn home(env: &dyn Env) -> Result<PathBuf, PathError> {
    match env.var("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home),
        Some(home) => Err(PathError::HomeRelative(home)),
        None => Err(PathError::HomeUnset),
    }
}

/// The home the daemon's own directories hang from: `$HOME`, or `/` without a usable one
/// (a daemon in a bare container still starts; `install` refuses instead, via [`home`]).
fn home_or_root(env: &dyn Env) -> PathBuf {
    home(env).unwrap_or_else(|_| PathBuf::from("/"))
}

/// An XDG base directory variable. The specification says relative values are invalid and
/// to be ignored, so they are.
fn xdg_base(env: &dyn Env, name: &str) -> Option<PathBuf> {
    env.var(name)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
}

/// `$XDG_CONFIG_HOME`, default `~/.config`.
pub fn config_home(env: &dyn Env) -> PathBuf {
    xdg_base(env, "XDG_CONFIG_HOME").unwrap_or_else(|| home_or_root(env).join(".config"))
}

/// `$XDG_CONFIG_HOME/snowflaked` (default `~/.config/snowflaked`).
pub fn config_dir(env: &dyn Env) -> PathBuf {
    config_home(env).join(APP_DIR)
}

/// The daemon's config file: `$SNOWFLAKED_CONFIG`, else `config.toml` in [`config_dir`].
pub fn config_file(env: &dyn Env) -> PathBuf {
    env.var("SNOWFLAKED_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir(env).join(CONFIG_FILE))
}

/// The dotenv credentials file as the user keeps it (and the systemd service loads it).
pub fn credentials_file(env: &dyn Env) -> PathBuf {
    config_dir(env).join(CREDENTIAL_NAME)
}

/// The credentials file systemd handed over (`$CREDENTIALS_DIRECTORY`), if it did.
pub fn passed_credentials_file(env: &dyn Env) -> Option<PathBuf> {
    env.var("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(&dir).join(CREDENTIAL_NAME))
}

/// Where token contexts are persisted: `$STATE_DIRECTORY` under systemd, else
/// `$XDG_STATE_HOME/snowflaked` (default `~/.local/state/snowflaked`).
pub fn state_dir(env: &dyn Env) -> PathBuf {
    if let Some(dir) = env.var("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; ours is the first.
        return PathBuf::from(dir.split(':').next().unwrap_or(&dir));
    }
    xdg_base(env, "XDG_STATE_HOME")
        .unwrap_or_else(|| home_or_root(env).join(".local/state"))
        .join(APP_DIR)
}

/// The log of a daemon started by a client rather than an init system.
pub fn daemon_log(env: &dyn Env) -> PathBuf {
    state_dir(env).join(DAEMON_LOG_FILE)
}

/// The token state file in `state_dir`.
pub fn tokens_file(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKENS_FILE)
}

/// The statement ids file in `state_dir`.
pub fn statements_file(state_dir: &Path) -> PathBuf {
    state_dir.join(STATEMENTS_FILE)
}

/// The per-user runtime directory the socket lives in: `$XDG_RUNTIME_DIR/snowflaked`; on macOS
/// launchd's socket directory (so clients find the agent's socket); elsewhere without a
/// runtime directory (containers) `/tmp/snowflaked-$UID`.
pub fn runtime_dir(env: &dyn Env) -> PathBuf {
    match xdg_base(env, "XDG_RUNTIME_DIR") {
        Some(dir) => dir.join(APP_DIR),
        None if cfg!(target_os = "macos") => launchd_socket_dir(&home_or_root(env)),
        None => std::env::temp_dir().join(format!("snowflaked-{}", current_uid())),
    }
}

/// The default API socket.
pub fn default_socket(env: &dyn Env) -> PathBuf {
    runtime_dir(env).join(SOCKET_FILE)
}

/// Where held results spill to disk (one subdirectory per daemon).
pub fn results_dir(env: &dyn Env) -> PathBuf {
    runtime_dir(env).join("results")
}

/// The lock next to `socket` that serialises clients starting a daemon for it.
pub fn start_lock(socket_dir: &Path) -> PathBuf {
    socket_dir.join(START_LOCK_FILE)
}

/// The datagram socket (next to the daemon's socket) on which client `pid` waits for the
/// daemon it started to say READY=1.
pub fn start_notify_socket(socket_dir: &Path, pid: u32) -> PathBuf {
    socket_dir.join(format!("start-{pid}.notify"))
}

/// The real user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Snowflake's own configuration directory, as the official connectors and the Snowflake CLI
/// find it: `$SNOWFLAKE_HOME`, else `~/.snowflake` if it exists, else `~/.config/snowflake`.
pub fn snowflake_home(env: &dyn Env) -> PathBuf {
    if let Some(dir) = env.var("SNOWFLAKE_HOME") {
        return PathBuf::from(dir);
    }
    let dot = home_or_root(env).join(".snowflake");
    if dot.is_dir() {
        dot
    } else {
        config_home(env).join("snowflake")
    }
}

/// Snowflake's `connections.toml`, in [`snowflake_home`].
pub fn snowflake_connections_file(env: &dyn Env) -> PathBuf {
    snowflake_home(env).join("connections.toml")
}

/// Snowflake's `config.toml` (its `[connections]` table), in [`snowflake_home`].
pub fn snowflake_config_file(env: &dyn Env) -> PathBuf {
    snowflake_home(env).join(CONFIG_FILE)
}

/// `$XDG_CONFIG_HOME/systemd/user`, the first directory of the user manager's unit path
/// that belongs to the user.
pub fn systemd_unit_dir(env: &dyn Env) -> PathBuf {
    config_home(env).join("systemd/user")
}

/// The link `systemctl enable` makes for `unit` in `unit_dir`, from its `WantedBy=target`.
pub fn systemd_enable_link(unit_dir: &Path, wanted_by: &str, unit: &str) -> PathBuf {
    unit_dir.join(format!("{wanted_by}.wants")).join(unit)
}

/// `~/Library/LaunchAgents/com.snowflaked.agent.plist`.
pub fn launchd_plist(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{AGENT_LABEL}.plist"))
}

/// The directory of the launchd agent's socket (launchd does not create it).
pub fn launchd_socket_dir(home: &Path) -> PathBuf {
    home.join("Library/Caches").join(APP_DIR)
}

/// The plist's `SockPathName`.
pub fn launchd_socket(home: &Path) -> PathBuf {
    launchd_socket_dir(home).join(SOCKET_FILE)
}

/// The directory of the launchd agent's log (launchd does not create it).
pub fn launchd_log_dir(home: &Path) -> PathBuf {
    home.join("Library/Logs").join(APP_DIR)
}

/// The plist's `StandardErrorPath`.
pub fn launchd_log(home: &Path) -> PathBuf {
    launchd_log_dir(home).join("snowflaked.log")
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

    #[test]
    fn xdg_directories_and_their_defaults() {
        let ann = env(&[("HOME", "/home/ann")]);
        assert_eq!(config_dir(&ann), Path::new("/home/ann/.config/snowflaked"));
        assert_eq!(
            config_file(&ann),
            Path::new("/home/ann/.config/snowflaked/config.toml")
        );
        assert_eq!(
            daemon_log(&ann),
            Path::new("/home/ann/.local/state/snowflaked/daemon.log")
        );
        let xdg = env(&[
            ("HOME", "/home/ann"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("XDG_STATE_HOME", "/st"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        assert_eq!(
            credentials_file(&xdg),
            Path::new("/cfg/snowflaked/snowflake.env")
        );
        assert_eq!(systemd_unit_dir(&xdg), Path::new("/cfg/systemd/user"));
        assert_eq!(state_dir(&xdg), Path::new("/st/snowflaked"));
        assert_eq!(
            default_socket(&xdg),
            Path::new("/run/user/1000/snowflaked/api.sock")
        );
        let systemd = env(&[("STATE_DIRECTORY", "/var/lib/a:/var/lib/b")]);
        assert_eq!(state_dir(&systemd), Path::new("/var/lib/a"));
    }

    #[test]
    fn relative_xdg_values_are_ignored() {
        let relative = env(&[
            ("HOME", "/home/ann"),
            ("XDG_CONFIG_HOME", "cfg"),
            ("XDG_STATE_HOME", "st"),
        ]);
        assert_eq!(
            systemd_unit_dir(&relative),
            Path::new("/home/ann/.config/systemd/user")
        );
        assert_eq!(
            state_dir(&relative),
            Path::new("/home/ann/.local/state/snowflaked")
        );
        let runtime = env(&[("HOME", "/home/ann"), ("XDG_RUNTIME_DIR", "run")]);
        assert!(runtime_dir(&runtime).is_absolute());
    }

    #[test]
    fn home_must_be_set_and_absolute() {
        assert_eq!(home(&env(&[])), Err(PathError::HomeUnset));
        assert_eq!(
            home(&env(&[("HOME", "ann")])),
            Err(PathError::HomeRelative(PathBuf::from("ann")))
        );
        // The daemon's own directories still resolve without one.
        assert_eq!(config_dir(&env(&[])), Path::new("/.config/snowflaked"));
    }

    #[test]
    fn launchd_paths() {
        let home = Path::new("/Users/ann");
        assert_eq!(
            launchd_plist(home),
            Path::new("/Users/ann/Library/LaunchAgents/com.snowflaked.agent.plist")
        );
        assert_eq!(
            launchd_socket(home),
            Path::new("/Users/ann/Library/Caches/snowflaked/api.sock")
        );
        assert_eq!(
            launchd_log(home),
            Path::new("/Users/ann/Library/Logs/snowflaked/snowflaked.log")
        );
    }
}
