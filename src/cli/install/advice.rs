//! The sentences `install` and `uninstall` end with: what is running now, what to try next,
//! where credentials go, and what to do when the init system cannot be reached. Pure text,
//! kept in one place so the wording stays consistent and is easy to review.

use std::path::Path;

use super::plan::{self, Target};

/// The state of the credentials file the service loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Missing,
    /// Readable by its owner only.
    Private,
    /// Readable or writable by others (the mode): the daemon refuses such a file.
    Exposed(u32),
}

impl Credentials {
    pub fn from_mode(mode: Option<u32>) -> Credentials {
        match mode {
            None => Credentials::Missing,
            Some(mode) if mode & 0o077 == 0 => Credentials::Private,
            Some(mode) => Credentials::Exposed(mode & 0o777),
        }
    }
}

/// Where credentials go; `Err` when the file exists but the daemon would refuse it.
pub fn credentials(path: &Path, state: Credentials) -> Result<String, String> {
    let path = path.display();
    match state {
        Credentials::Private => Ok(format!(
            "Credentials: {path} (present, private). `snowflaked config --check` tries the login."
        )),
        Credentials::Missing => Ok(format!(
            "Credentials: put SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PAT lines in {path} \
             and `chmod 0600` it, or keep using config.toml or Snowflake's connections.toml \
             (see packaging/README.md). `snowflaked config --check` tries the login."
        )),
        Credentials::Exposed(mode) => Err(format!(
            "{path} is readable by other users (mode {mode:04o}) and the daemon will refuse it: \
             run `chmod 0600 {path}`"
        )),
    }
}

/// After `systemctl --user enable --now snowflaked.socket` succeeded.
pub fn systemd_ready() -> String {
    format!(
        "{} is listening on $XDG_RUNTIME_DIR/snowflaked/api.sock: systemd starts the daemon at \
         the first connection, and the daemon exits again when idle.\n\
         {} (loopback TCP 127.0.0.1:8765) is written but not enabled; turn it on with \
         `systemctl --user enable --now {}`.",
        plan::SOCKET_UNIT,
        plan::TCP_SOCKET_UNIT,
        plan::TCP_SOCKET_UNIT
    )
}

/// After the agent was loaded (or found loaded).
pub fn launchd_ready(target: &Target) -> String {
    format!(
        "{} is loaded: launchd listens on {} and starts the daemon at the first connection; \
         the daemon logs to {}.",
        plan::AGENT_LABEL,
        target
            .home
            .join("Library/Caches/snowflaked/api.sock")
            .display(),
        target.launchd_log().display()
    )
}

/// When `SNOWFLAKED_SOCKET` sends commands somewhere other than where the init system
/// listens: they would not reach the installed daemon.
pub fn socket_override(configured: &Path, served: &Path) -> Option<String> {
    (configured != served).then(|| {
        format!(
            "SNOWFLAKED_SOCKET is set to {}, but the installed service listens on {}: commands \
             run with this setting will not reach it. Unset the variable to use the service.",
            configured.display(),
            served.display()
        )
    })
}

/// When a unit or the agent changed while a daemon may be running.
pub fn restart_systemd() -> String {
    format!(
        "A daemon that is running now keeps its old settings until it exits when idle; \
         `systemctl --user restart {}` applies them at once.",
        plan::SERVICE_UNIT
    )
}

/// The commands to try once the daemon is installed.
pub fn try_next(status: &str) -> String {
    format!("Try it:\n  snowflaked query \"SELECT CURRENT_VERSION()\"\n  {status}")
}

/// The status command for each platform.
pub const SYSTEMD_STATUS: &str = "systemctl --user status snowflaked";

/// `launchctl print gui/UID/com.snowflaked.agent`.
pub fn launchd_status(uid: u32) -> String {
    plan::launchctl_print(uid).to_string()
}

/// When the binary lives in a cargo target directory: the units would break at the next
/// `cargo clean`.
pub fn build_dir(binary: &Path) -> String {
    format!(
        "the units start {}, which is in a cargo build directory; `cargo clean` would remove \
         it. `cargo install --path .` puts a lasting copy in ~/.cargo/bin (then run its \
         `snowflaked install`).",
        binary.display()
    )
}

/// Why self-start is mentioned: the client leaves the socket to systemd while the units exist.
fn without_systemd(target: &Target) -> String {
    format!(
        "Or do without systemd: until the socket unit is enabled, the first snowflaked command \
         starts the daemon itself (it logs to {}), or run `snowflaked serve` in a terminal; \
         `snowflaked uninstall` removes the files again.",
        target.self_start_log.display()
    )
}

/// `systemctl --user` could not reach a user manager.
pub fn no_manager(target: &Target, command: &plan::Cmd, message: &str) -> String {
    format!(
        "the unit files are written, but nothing is enabled: systemd's user manager cannot be \
         reached.\n  `{command}` said: {message}\n\
         To finish, get a user manager and run `snowflaked install` again from that login:\n  \
         - log in through a graphical session or SSH (logind starts the user manager), or\n  \
         - run `loginctl enable-linger` to keep one running without a login (it may need an \
         administrator), then log in again.\n{}",
        without_systemd(target)
    )
}

/// `systemctl` is not installed at all.
pub fn no_systemctl(target: &Target) -> String {
    format!(
        "the unit files are written, but nothing is enabled: `systemctl` was not found, so \
         this system does not seem to run systemd.\n{}",
        without_systemd(target)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    fn target() -> Target {
        let env: HashMap<String, String> = [("HOME".to_string(), "/home/ann".to_string())].into();
        Target::resolve(&env, PathBuf::from("/usr/bin/snowflaked"), 1000).unwrap()
    }

    #[test]
    fn credential_states() {
        assert_eq!(Credentials::from_mode(None), Credentials::Missing);
        assert_eq!(Credentials::from_mode(Some(0o100600)), Credentials::Private);
        assert_eq!(
            Credentials::from_mode(Some(0o100640)),
            Credentials::Exposed(0o640)
        );
        let path = Path::new("/home/ann/.config/snowflaked/snowflake.env");
        assert!(
            credentials(path, Credentials::Missing)
                .unwrap()
                .contains("chmod 0600")
        );
        assert!(
            credentials(path, Credentials::Exposed(0o644))
                .unwrap_err()
                .contains("chmod 0600 /home/ann/.config/snowflaked/snowflake.env")
        );
    }

    #[test]
    fn a_socket_override_is_only_mentioned_when_it_differs() {
        let served = Path::new("/run/user/1000/snowflaked/api.sock");
        assert!(socket_override(served, served).is_none());
        assert!(socket_override(Path::new("/tmp/x.sock"), served).is_some());
    }

    #[test]
    fn the_no_manager_advice_names_every_way_forward() {
        let text = no_manager(
            &target(),
            &plan::daemon_reload(),
            "Failed to connect to bus",
        );
        for needle in [
            "systemctl --user daemon-reload` said: Failed to connect to bus",
            "loginctl enable-linger",
            "snowflaked install` again",
            "snowflaked uninstall",
            "snowflaked serve",
            "/home/ann/.local/state/snowflaked/daemon.log",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(no_systemctl(&target()).contains("`systemctl` was not found"));
    }
}
