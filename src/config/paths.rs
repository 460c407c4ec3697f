//! Where things live on disk, following the XDG base directories (and their systemd
//! equivalents `$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY`).
//!
//! Each function takes the environment as a lookup closure so tests can resolve paths for a
//! made-up user without touching the process environment.

use std::path::PathBuf;

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

fn home(env: &dyn Env) -> PathBuf {
    env.var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CONFIG_HOME/snowflaked` (default `~/.config/snowflaked`).
pub fn config_dir(env: &dyn Env) -> PathBuf {
    env.var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home(env).join(".config"))
        .join("snowflaked")
}

/// The daemon's config file.
pub fn config_file(env: &dyn Env) -> PathBuf {
    env.var("SNOWFLAKED_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| config_dir(env).join("config.toml"))
}

/// Where token contexts are persisted: `$STATE_DIRECTORY` under systemd, else
/// `$XDG_STATE_HOME/snowflaked` (default `~/.local/state/snowflaked`).
pub fn state_dir(env: &dyn Env) -> PathBuf {
    if let Some(dir) = env.var("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; ours is the first.
        return PathBuf::from(dir.split(':').next().unwrap_or(&dir));
    }
    env.var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home(env).join(".local/state"))
        .join("snowflaked")
}

/// The per-user runtime directory the socket lives in: `$XDG_RUNTIME_DIR/snowflaked`; on macOS
/// `~/Library/Caches/snowflaked` (the launchd agent's socket); elsewhere without a runtime
/// directory (containers) `/tmp/snowflaked-$UID`.
pub fn runtime_dir(env: &dyn Env) -> PathBuf {
    match env.var("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("snowflaked"),
        // Where the launchd agent's socket lives (packaging/launchd), so clients find it.
        None if cfg!(target_os = "macos") => home(env).join("Library/Caches/snowflaked"),
        None => std::env::temp_dir().join(format!("snowflaked-{}", current_uid())),
    }
}

/// The default API socket.
pub fn default_socket(env: &dyn Env) -> PathBuf {
    runtime_dir(env).join("api.sock")
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
    let dot = home(env).join(".snowflake");
    if dot.is_dir() {
        dot
    } else {
        env.var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home(env).join(".config"))
            .join("snowflake")
    }
}
