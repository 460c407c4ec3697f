//! The harness of the integration tests (`tests/it`) and of the benchmark (`benches/daemon`
//! includes this directory as a module): a private home per test with the environment of an
//! isolated user ([`Home`]), the client run with it ([`Home::run`], [`Home::ok`] when it must
//! succeed), the Snowflake emulator (our adapter over fakesnow), a socket activator that hands
//! sockets to the real binary through `LISTEN_FDS` exactly as systemd does and collects its
//! sd_notify messages, and raw HTTP for requests the real client never sends.
//!
//! Nothing here sleeps to synchronise: every wait is on a real signal (a line printed, a
//! notify datagram, a process exit, a socket answering) with a timeout.

pub mod activator;
pub mod emulator;
pub mod http;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snowflaked"))
}

/// A private home for one test: config, state and runtime directories inside a temp dir.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sfd-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run/api.sock")
    }

    /// The isolated user without any Snowflake account: home, XDG and Snowflake directories
    /// inside this home, and the daemon's socket. The live tier adds real credentials to it.
    pub fn user_env(&self) -> Vec<(String, String)> {
        let p = |sub: &str| self.path().join(sub).display().to_string();
        vec![
            ("HOME".into(), p("")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_STATE_HOME".into(), p("state")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("SNOWFLAKE_HOME".into(), p("snowflake")),
            (
                "SNOWFLAKED_SOCKET".into(),
                self.socket().display().to_string(),
            ),
        ]
    }

    /// Environment for daemon and client processes: the isolated user pointing at the
    /// emulator on `port`, logging at debug level.
    pub fn env(&self, port: u16) -> Vec<(String, String)> {
        let mut env = self.user_env();
        env.extend(
            [
                ("SNOWFLAKE_ACCOUNT", "test"),
                ("SNOWFLAKE_USER", "tester"),
                ("SNOWFLAKE_PASSWORD", "not-a-real-password"),
                ("SNOWFLAKE_HOST", "127.0.0.1"),
                ("SNOWFLAKE_PORT", &port.to_string()),
                ("SNOWFLAKE_PROTOCOL", "http"),
                ("RUST_LOG", "snowflaked=debug,info"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// A socket-activated daemon for this home (see [`activator::Activator`]), serving with
    /// `args` and logging to `daemon.log` here.
    pub fn activate(&self, port: u16, args: &[&str]) -> activator::Activator {
        self.activate_with(self.env(port), args)
    }

    /// As [`Home::activate`], with an environment of the caller's.
    pub fn activate_with(&self, env: Vec<(String, String)>, args: &[&str]) -> activator::Activator {
        activator::Activator::start(&self.socket(), &binary(), args, env, &self.daemon_log())
    }

    /// Where activated daemons of this home log.
    pub fn daemon_log(&self) -> PathBuf {
        self.path().join("daemon.log")
    }

    /// Runs the client binary with this home's environment.
    pub fn run(&self, port: u16, args: &[&str]) -> Output {
        self.command(port, args).output().expect("run snowflaked")
    }

    /// Runs the client binary with this home's environment and asserts that it succeeded.
    pub fn ok(&self, port: u16, args: &[&str]) -> Output {
        let output = self.run(port, args);
        assert_success(&output, &format!("snowflaked {args:?}"));
        output
    }

    /// The client binary with this home's environment, not started yet.
    pub fn command(&self, port: u16, args: &[&str]) -> Command {
        self.command_with(self.env(port), args)
    }

    /// The client binary with nothing of the caller's environment but `PATH` and `env`.
    pub fn command_with(&self, env: Vec<(String, String)>, args: &[&str]) -> Command {
        let mut command = isolated(binary(), env);
        command.args(args);
        command
    }

    /// Another program (a shell line, a hook, an MCP client) as this home's user would run
    /// it: nothing of the caller's environment but `PATH`, and [`Home::env`] for `port`.
    pub fn program(&self, program: impl AsRef<OsStr>, port: u16) -> Command {
        isolated(program, self.env(port))
    }

    /// What activated daemons of this home logged so far (empty before the first start).
    pub fn read_daemon_log(&self) -> String {
        std::fs::read_to_string(self.daemon_log()).unwrap_or_default()
    }
}

/// `program` with nothing of the caller's environment but `PATH`, and `env`.
fn isolated(program: impl AsRef<OsStr>, env: Vec<(String, String)>) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env);
    command
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `what` exited 0, showing its exit code, stdout and stderr otherwise.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// Asserts success and parses stdout as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    assert_success(output, "snowflaked");
    serde_json::from_str(stdout(output).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// A database name unique to one test, so tests share one emulator without interfering.
pub fn unique_db(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "T_{}_{}_{}",
        label.to_ascii_uppercase(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
