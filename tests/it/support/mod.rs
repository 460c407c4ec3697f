//! Test support shared by the integration tests: the Snowflake emulator (our adapter over
//! fakesnow), a socket activator that hands sockets to the real binary through `LISTEN_FDS`
//! exactly as systemd does and collects its sd_notify messages, and small clients (the real
//! `snowflaked` binary, and raw HTTP for malformed requests).
//!
//! Nothing here sleeps to synchronise: every wait is on a real signal (a line printed, a
//! notify datagram, a process exit, a socket answering) with a timeout.

pub mod activator;
pub mod emulator;
pub mod http;

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

    /// Environment for daemon and client processes: an isolated user pointing at `port`.
    pub fn env(&self, port: u16) -> Vec<(String, String)> {
        let p = |sub: &str| self.path().join(sub).display().to_string();
        vec![
            ("HOME".into(), p("")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_STATE_HOME".into(), p("state")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("SNOWFLAKE_HOME".into(), p("snowflake")),
            ("SNOWFLAKE_ACCOUNT".into(), "test".into()),
            ("SNOWFLAKE_USER".into(), "tester".into()),
            ("SNOWFLAKE_PASSWORD".into(), "not-a-real-password".into()),
            ("SNOWFLAKE_HOST".into(), "127.0.0.1".into()),
            ("SNOWFLAKE_PORT".into(), port.to_string()),
            ("SNOWFLAKE_PROTOCOL".into(), "http".into()),
            (
                "SNOWFLAKED_SOCKET".into(),
                self.socket().display().to_string(),
            ),
            ("RUST_LOG".into(), "snowflaked=debug,info".into()),
        ]
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

    pub fn command(&self, port: u16, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in self.env(port) {
            command.env(k, v);
        }
        command.args(args);
        command
    }
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and parses stdout as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
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
