//! `snowflaked install`, `uninstall` and `logs` run as the real binary against a made-up user:
//! a temporary home and config directory, and stand-ins for `systemctl` and `journalctl`
//! first (and alone) on `PATH` that record their arguments. The real `systemctl` is never
//! reachable from these tests, and no systemd manager is needed or started.
//!
//! Also the contract between `packaging/` and the daemon: the fd names and the socket path the
//! units declare are the ones the daemon and the client use.

use std::path::{Path, PathBuf};

use snowflaked::activation::{API_FD_NAME, API_TCP_FD_NAME};
use snowflaked::config::paths;

fn packaging(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key=` settings in a unit file (comments and other keys skipped).
fn settings<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_socket_unit_names_its_fd_and_path_as_the_daemon_expects() {
    let unit = packaging("systemd/snowflaked.socket");
    assert_eq!(settings(&unit, "FileDescriptorName"), [API_FD_NAME]);
    // `%t` is the user manager's $XDG_RUNTIME_DIR: the unit must listen exactly where the
    // client looks by default.
    let runtime = "/run/user/1000";
    let env =
        std::collections::HashMap::from([("XDG_RUNTIME_DIR".to_string(), runtime.to_string())]);
    let default_socket = paths::default_socket(&env);
    let relative = default_socket.strip_prefix(runtime).unwrap();
    assert_eq!(relative, Path::new("snowflaked/api.sock"));
    assert_eq!(
        settings(&unit, "ListenStream"),
        [format!("%t/{}", relative.display())]
    );
}

#[test]
fn the_tcp_socket_unit_names_its_fd_and_activates_the_shared_service() {
    let unit = packaging("systemd/snowflaked-tcp.socket");
    assert_eq!(settings(&unit, "FileDescriptorName"), [API_TCP_FD_NAME]);
    assert_eq!(settings(&unit, "Service"), ["snowflaked.service"]);
}

#[test]
fn the_launchd_agent_names_its_socket_as_the_daemon_expects() {
    let plist = packaging("launchd/com.snowflaked.agent.plist");
    assert!(plist.contains(&format!("<key>{API_FD_NAME}</key>")));
    assert!(plist.contains("<string>@HOME@/Library/Caches/snowflaked/api.sock</string>"));
}

/// The commands, as run on Linux with stand-ins for systemctl and journalctl.
#[cfg(not(target_os = "macos"))]
mod systemd {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Output};
    use std::sync::OnceLock;

    use super::*;

    const UNITS: [&str; 3] = [
        "snowflaked.socket",
        "snowflaked-tcp.socket",
        "snowflaked.service",
    ];

    /// Directories to use as the whole `PATH`.
    struct Stubs {
        /// `systemctl` and `journalctl` that record their arguments and succeed.
        working: PathBuf,
        /// A `systemctl` that fails as it does where no user manager runs.
        no_manager: PathBuf,
        /// Nothing at all.
        empty: PathBuf,
    }

    /// Written once, before any test starts a process: a script still open for writing in
    /// one thread while another forks cannot be executed ("Text file busy").
    fn stubs() -> &'static Stubs {
        static STUBS: OnceLock<Stubs> = OnceLock::new();
        STUBS.get_or_init(|| {
            let root = tempfile::Builder::new()
                .prefix("install-stubs-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap()
                .keep();
            let recorder = |name: &str, then: &str| {
                format!("#!/bin/sh\nprintf '{name} %s\\n' \"$*\" >> \"$STUB_LOG\"\n{then}\n")
            };
            let stubs = Stubs {
                working: root.join("working"),
                no_manager: root.join("no-manager"),
                empty: root.join("empty"),
            };
            let scripts = [
                (&stubs.working, "systemctl", recorder("systemctl", "exit 0")),
                (
                    &stubs.working,
                    "journalctl",
                    recorder("journalctl", "exit 0"),
                ),
                (
                    &stubs.no_manager,
                    "systemctl",
                    recorder(
                        "systemctl",
                        "echo 'Failed to connect to bus: No medium found' >&2\nexit 1",
                    ),
                ),
            ];
            for dir in [&stubs.working, &stubs.no_manager, &stubs.empty] {
                std::fs::create_dir_all(dir).unwrap();
            }
            for (dir, name, script) in scripts {
                let path = dir.join(name);
                std::fs::write(&path, script).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            stubs
        })
    }

    /// A made-up user: a home, a separate $XDG_CONFIG_HOME (unless told otherwise) and a
    /// log of the stand-ins' calls.
    struct User {
        root: tempfile::TempDir,
        xdg_config: bool,
    }

    impl User {
        fn new() -> User {
            stubs();
            User {
                root: tempfile::tempdir().unwrap(),
                xdg_config: true,
            }
        }

        fn without_xdg_config_home() -> User {
            User {
                xdg_config: false,
                ..User::new()
            }
        }

        fn home(&self) -> PathBuf {
            self.root.path().join("home")
        }

        fn config_home(&self) -> PathBuf {
            if self.xdg_config {
                self.root.path().join("config")
            } else {
                self.home().join(".config")
            }
        }

        fn unit_dir(&self) -> PathBuf {
            self.config_home().join("systemd/user")
        }

        fn state_home(&self) -> PathBuf {
            self.root.path().join("state")
        }

        /// Runs `snowflaked ARGS` with nothing but `path` on `PATH`.
        fn run(&self, path: &Path, args: &[&str]) -> Output {
            self.run_with(path, args, &[])
        }

        /// Runs `snowflaked ARGS` with nothing but `path` on `PATH` and `env` set as well.
        fn run_with(&self, path: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
            let mut command = Command::new(env!("CARGO_BIN_EXE_snowflaked"));
            command
                .args(args)
                .env_clear()
                .envs(env.iter().copied())
                .env("HOME", self.home())
                .env("PATH", path)
                .env("XDG_STATE_HOME", self.state_home())
                .env("STUB_LOG", self.root.path().join("calls.log"));
            if self.xdg_config {
                command.env("XDG_CONFIG_HOME", self.config_home());
            }
            command.output().unwrap()
        }

        /// The stand-ins' calls so far, one per line.
        fn calls(&self) -> Vec<String> {
            match std::fs::read_to_string(self.root.path().join("calls.log")) {
                Ok(text) => text.lines().map(str::to_string).collect(),
                Err(_) => Vec::new(),
            }
        }

        fn unit(&self, name: &str) -> Option<String> {
            std::fs::read_to_string(self.unit_dir().join(name)).ok()
        }
    }

    fn stdout(output: &Output) -> String {
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn stderr(output: &Output) -> String {
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    fn assert_status(output: &Output, code: i32) {
        assert_eq!(
            output.status.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            stdout(output),
            stderr(output)
        );
    }

    fn binary() -> PathBuf {
        std::fs::canonicalize(env!("CARGO_BIN_EXE_snowflaked")).unwrap()
    }

    const ENABLE: [&str; 2] = [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now snowflaked.socket",
    ];

    #[test]
    fn install_writes_the_units_for_this_binary_and_enables_only_the_unix_socket() {
        let user = User::new();
        let output = user.run(&stubs().working, &["install"]);
        assert_status(&output, 0);

        for name in UNITS {
            let unit = user
                .unit(name)
                .unwrap_or_else(|| panic!("{name} not written"));
            assert!(
                !unit.contains("@SNOWFLAKED_BIN@"),
                "{name} keeps the placeholder"
            );
            assert!(unit.starts_with("# Written by `snowflaked install`"));
            let mode = std::fs::metadata(user.unit_dir().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{name}");
            assert!(stdout(&output).contains(&format!(
                "created   {}",
                user.unit_dir().join(name).display()
            )));
        }
        let service = user.unit("snowflaked.service").unwrap();
        assert_eq!(
            settings(&service, "ExecStart"),
            [format!("{} serve", binary().display())]
        );
        assert_eq!(user.calls(), ENABLE);

        let said = stdout(&output);
        for needle in [
            "ran       systemctl --user daemon-reload",
            "ran       systemctl --user enable --now snowflaked.socket",
            "snowflaked query \"SELECT CURRENT_VERSION()\"",
            "systemctl --user status snowflaked",
            "systemctl --user enable --now snowflaked-tcp.socket",
            &user
                .config_home()
                .join("snowflaked/snowflake.env")
                .display()
                .to_string(),
            "chmod 0600",
        ] {
            assert!(said.contains(needle), "{needle:?} missing from:\n{said}");
        }
    }

    #[test]
    fn installing_again_rewrites_nothing_and_says_unchanged() {
        let user = User::new();
        assert_status(&user.run(&stubs().working, &["install"]), 0);
        let first: Vec<String> = UNITS.iter().map(|n| user.unit(n).unwrap()).collect();
        let again = user.run(&stubs().working, &["install"]);
        assert_status(&again, 0);
        let second: Vec<String> = UNITS.iter().map(|n| user.unit(n).unwrap()).collect();
        assert_eq!(first, second);
        for name in UNITS {
            assert!(stdout(&again).contains(&format!(
                "unchanged {}",
                user.unit_dir().join(name).display()
            )));
        }
        assert_eq!(user.calls(), [ENABLE, ENABLE].concat());
        // No temporary file is left next to the units.
        let mut entries: Vec<String> = std::fs::read_dir(user.unit_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [
                "snowflaked-tcp.socket",
                "snowflaked.service",
                "snowflaked.socket"
            ]
        );
    }

    #[test]
    fn without_xdg_config_home_the_units_go_to_dot_config() {
        let user = User::without_xdg_config_home();
        assert_status(&user.run(&stubs().working, &["install"]), 0);
        assert!(
            user.home()
                .join(".config/systemd/user/snowflaked.socket")
                .is_file()
        );
    }

    #[test]
    fn print_shows_the_files_and_commands_and_changes_nothing() {
        let user = User::new();
        let output = user.run(&stubs().working, &["install", "--print"]);
        assert_status(&output, 0);
        let script = stdout(&output);
        for name in UNITS {
            assert!(script.contains(&format!(
                "==> {} (mode 0644) <==",
                user.unit_dir().join(name).display()
            )));
        }
        assert!(script.contains(&format!("ExecStart={} serve\n", binary().display())));
        assert!(script.contains(
            "\nsystemctl --user daemon-reload\nsystemctl --user enable --now snowflaked.socket\n"
        ));
        assert!(!user.config_home().exists(), "--print created files");
        assert!(user.calls().is_empty(), "--print ran {:?}", user.calls());
    }

    /// Exit status 2: the install did not reach its goal (a listening socket), which scripts
    /// must be able to tell, and rerunning it from a login with a user manager finishes it. The
    /// files stay so that this rerun, or the printed systemctl commands, is all it takes.
    #[test]
    fn without_a_user_manager_the_files_are_written_and_the_way_forward_is_explained() {
        let user = User::new();
        let output = user.run(&stubs().no_manager, &["install"]);
        assert_status(&output, 2);
        for name in UNITS {
            assert!(user.unit(name).is_some(), "{name} not written");
        }
        assert_eq!(user.calls(), ["systemctl --user daemon-reload"]);
        let said = stderr(&output);
        for needle in [
            "nothing is enabled",
            "Failed to connect to bus",
            "loginctl enable-linger",
            "snowflaked install` again",
            "snowflaked uninstall",
            "snowflaked serve",
            &user
                .state_home()
                .join("snowflaked/daemon.log")
                .display()
                .to_string(),
        ] {
            assert!(said.contains(needle), "{needle:?} missing from:\n{said}");
        }
    }

    #[test]
    fn without_systemctl_the_files_are_written_and_it_says_so() {
        let user = User::new();
        let output = user.run(&stubs().empty, &["install"]);
        assert_status(&output, 2);
        assert!(user.unit("snowflaked.socket").is_some());
        assert!(stderr(&output).contains("`systemctl` was not found"));
    }

    #[test]
    fn a_unit_someone_else_wrote_is_only_replaced_with_force() {
        let user = User::new();
        std::fs::create_dir_all(user.unit_dir()).unwrap();
        let theirs = "[Service]\nExecStart=/usr/bin/true\n";
        std::fs::write(user.unit_dir().join("snowflaked.service"), theirs).unwrap();

        let refused = user.run(&stubs().working, &["install"]);
        assert_status(&refused, 2);
        assert_eq!(user.unit("snowflaked.service").unwrap(), theirs);
        assert!(
            user.unit("snowflaked.socket").is_none(),
            "a refused install wrote files"
        );
        assert!(user.calls().is_empty());
        assert!(stderr(&refused).contains("--force"));

        let forced = user.run(&stubs().working, &["install", "--force"]);
        assert_status(&forced, 0);
        assert!(stdout(&forced).contains("replaced"));
        assert!(
            user.unit("snowflaked.service")
                .unwrap()
                .starts_with("# Written by")
        );
    }

    #[test]
    fn uninstall_stops_and_removes_exactly_what_install_wrote() {
        let user = User::new();
        assert_status(&user.run(&stubs().working, &["install"]), 0);
        let unrelated = user.unit_dir().join("other.service");
        std::fs::write(&unrelated, "[Service]\nExecStart=/usr/bin/true\n").unwrap();

        let output = user.run(&stubs().working, &["uninstall"]);
        assert_status(&output, 0);
        assert_eq!(
            user.calls()[ENABLE.len()..],
            [
                "systemctl --user disable --now snowflaked.socket snowflaked-tcp.socket",
                "systemctl --user stop snowflaked.service",
                "systemctl --user daemon-reload",
            ]
        );
        for name in UNITS {
            assert!(user.unit(name).is_none(), "{name} left behind");
            assert!(stdout(&output).contains(&format!(
                "removed   {}",
                user.unit_dir().join(name).display()
            )));
        }
        assert!(unrelated.is_file(), "an unrelated unit was removed");

        // Nothing left to do: no systemctl call, success.
        let again = user.run(&stubs().working, &["uninstall"]);
        assert_status(&again, 0);
        assert!(stdout(&again).contains("nothing to remove"));
        assert_eq!(user.calls().len(), ENABLE.len() + 3);
    }

    #[test]
    fn uninstall_keeps_a_unit_the_user_replaced_and_says_so() {
        let user = User::new();
        assert_status(&user.run(&stubs().working, &["install"]), 0);
        let theirs = "[Service]\nExecStart=/usr/bin/true\n";
        std::fs::write(user.unit_dir().join("snowflaked.service"), theirs).unwrap();

        let output = user.run(&stubs().working, &["uninstall"]);
        assert_status(&output, 0);
        assert_eq!(user.unit("snowflaked.service").unwrap(), theirs);
        assert!(user.unit("snowflaked.socket").is_none());
        assert!(stderr(&output).contains("not written by `snowflaked install`"));
        // Their service is neither stopped nor reloaded away; our sockets are disabled.
        assert_eq!(
            user.calls()[ENABLE.len()..],
            [
                "systemctl --user disable --now snowflaked.socket snowflaked-tcp.socket",
                "systemctl --user daemon-reload",
            ]
        );
    }

    #[test]
    fn uninstall_without_a_user_manager_removes_the_files_and_their_enable_links() {
        let user = User::new();
        assert_status(&user.run(&stubs().working, &["install"]), 0);
        // What `systemctl enable` would have created (the stand-in does not).
        let wants = user.unit_dir().join("sockets.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(
            user.unit_dir().join("snowflaked.socket"),
            wants.join("snowflaked.socket"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            user.unit_dir().join("other.socket"),
            wants.join("other.socket"),
        )
        .unwrap();

        let output = user.run(&stubs().no_manager, &["uninstall"]);
        assert_status(&output, 0);
        for name in UNITS {
            assert!(user.unit(name).is_none(), "{name} left behind");
        }
        assert!(std::fs::symlink_metadata(wants.join("snowflaked.socket")).is_err());
        assert!(std::fs::symlink_metadata(wants.join("other.socket")).is_ok());
        assert!(stderr(&output).contains("cannot be reached"));
    }

    #[test]
    fn credentials_the_daemon_would_refuse_and_a_socket_that_misses_the_service_are_warned_of() {
        let user = User::new();
        let credentials = user.config_home().join("snowflaked/snowflake.env");
        std::fs::create_dir_all(credentials.parent().unwrap()).unwrap();
        std::fs::write(&credentials, "SNOWFLAKE_USER=u\n").unwrap();
        std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o640)).unwrap();
        let runtime = user.root.path().join("run");
        let install_with_socket = |socket: &Path| {
            let env = [
                ("XDG_RUNTIME_DIR", runtime.as_path()),
                ("SNOWFLAKED_SOCKET", socket),
            ];
            let output = user.run_with(&stubs().working, &["install"], &env);
            assert_status(&output, 0);
            stderr(&output)
        };
        let said = install_with_socket(&runtime.join("snowflaked/api.sock"));
        assert!(!said.contains("SNOWFLAKED_SOCKET"), "{said}");
        let refused = format!(
            "(mode 0640) and the daemon will refuse it: run `chmod 0600 {}`",
            credentials.display()
        );
        assert!(said.contains(&refused), "{said}");
        let said = install_with_socket(Path::new("/tmp/elsewhere.sock"));
        let missed = "SNOWFLAKED_SOCKET is set to /tmp/elsewhere.sock, but the installed service";
        assert!(said.contains(missed), "{said}");
    }

    #[test]
    fn logs_shows_the_journal_of_the_service() {
        let user = User::new();
        assert_status(&user.run(&stubs().working, &["logs"]), 0);
        assert_status(&user.run(&stubs().working, &["logs", "-f"]), 0);
        assert_eq!(
            user.calls(),
            [
                "journalctl --user -u snowflaked.service --no-pager -n 200",
                "journalctl --user -u snowflaked.service -f",
            ]
        );
    }

    #[test]
    fn logs_without_journalctl_says_where_else_to_look() {
        let user = User::new();
        let output = user.run(&stubs().empty, &["logs"]);
        assert_status(&output, 2);
        let said = stderr(&output);
        assert!(said.contains("journalctl was not found"));
        assert!(
            said.contains(
                &user
                    .state_home()
                    .join("snowflaked/daemon.log")
                    .display()
                    .to_string()
            )
        );
    }
}

/// On macOS the client's default socket must be the one the launchd agent listens on.
#[cfg(target_os = "macos")]
#[test]
fn the_launchd_socket_is_the_clients_default_on_macos() {
    let home = std::env::var("HOME").unwrap();
    let env = std::collections::HashMap::from([("HOME".to_string(), home.clone())]);
    assert_eq!(
        paths::default_socket(&env),
        PathBuf::from(home).join("Library/Caches/snowflaked/api.sock")
    );
}
