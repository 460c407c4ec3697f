//! The Snowflake emulator for end-to-end tests: `tests/emulator/snowflake_emulator.py` (our
//! adapter over fakesnow) started once per test binary on a free port.
//!
//! It runs under a small shell guard that ends it when this test process's end of a pipe
//! closes, so no emulator outlives the tests, however they end. A test may stop it and start a
//! new one on the same port (a backend restart: every session and all data are gone).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub struct Emulator {
    pub port: u16,
    /// The adapter flags it was started with, for a restart.
    extra: Vec<String>,
    /// The running process (under its guard), `None` while stopped.
    guard: Mutex<Option<(Child, ChildStdin)>>,
}

/// The Python interpreter with fakesnow installed: `$SNOWFLAKED_TEST_PYTHON`, else the
/// repository's `.venv` (made by `make setup`).
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SNOWFLAKED_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the emulator needs Python with fakesnow: run `make setup` (creates .venv) or set SNOWFLAKED_TEST_PYTHON"
    );
    venv
}

/// The shared emulator, started on first use.
pub fn shared() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| start(&[]))
}

/// Starts an emulator with extra adapter flags (e.g. latency for benchmarks).
pub fn start(extra: &[&str]) -> Emulator {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let (port, process) = spawn(0, &extra);
    Emulator {
        port,
        extra,
        guard: Mutex::new(Some(process)),
    }
}

/// Starts the adapter on `port` (0: any free port); returns the port it listens on once it
/// printed its readiness line.
fn spawn(port: u16, extra: &[String]) -> (u16, (Child, ChildStdin)) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/snowflake_emulator.py");
    // `cat` returns when our end of its stdin closes (this process exited), then the guard
    // ends the emulator.
    let guard = r#"py="$1"; shift; "$py" "$@" & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid""#;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(guard)
        .arg("sh")
        .arg(python())
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the emulator");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("LISTENING ") {
                let _ = tx.send(addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the emulator printed LISTENING within 60 s")
        .expect("a port number");
    let stdin = child.stdin.take().unwrap();
    (port, (child, stdin))
}

impl Emulator {
    /// `GET /__emulator/stats`.
    pub fn stats(&self) -> serde_json::Value {
        let body = super::http::tcp_request(self.port, "GET", "/__emulator/stats", "");
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// A counter of `GET /__emulator/stats` (`running`, `cancelled`, `logins`…).
    pub fn counter(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().unwrap_or(0)
    }

    /// Waits until the stats satisfy `done`, polling the emulator (its counters are the only
    /// signal of what it is running); panics after a minute.
    pub fn wait_until(&self, what: &str, done: impl Fn(&Emulator) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting until {what}"
            );
        }
    }

    /// Makes every current session token answer like an expired Snowflake session.
    pub fn expire_sessions(&self) {
        super::http::tcp_request(self.port, "POST", "/__emulator/expire-sessions", "");
    }

    /// Changes adapter options at run time (`login_delay_ms`, `statement_delay_ms`,
    /// `refuse_logins`); returns the options in force.
    pub fn set_options(&self, options: serde_json::Value) -> serde_json::Value {
        let body = super::http::tcp_request(
            self.port,
            "POST",
            "/__emulator/options",
            &options.to_string(),
        );
        serde_json::from_str(&body).expect("options JSON")
    }

    /// How many statements running now contain `marker` in their SQL.
    pub fn running_with(&self, marker: &str) -> usize {
        self.stats()["running_sql"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|sql| sql.as_str().is_some_and(|s| s.contains(marker)))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until `count` statements containing `marker` are running in the emulator.
    pub fn wait_running_with(&self, marker: &str, count: usize) {
        self.wait_until(
            &format!("{count} statement(s) with {marker} running"),
            |e| e.running_with(marker) >= count,
        );
    }

    /// Makes the running `SYSTEM$WAIT` statements whose SQL contains `marker` answer now
    /// (successfully); returns how many were released.
    pub fn release_waits(&self, marker: &str) -> u64 {
        let body = super::http::tcp_request(
            self.port,
            "POST",
            "/__emulator/release-waits",
            &serde_json::json!({ "containing": marker }).to_string(),
        );
        serde_json::from_str::<serde_json::Value>(&body).expect("release JSON")["released"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Restarts the `peak_running` counter from the statements running now.
    pub fn reset_peak(&self) {
        super::http::tcp_request(self.port, "POST", "/__emulator/reset-peak", "");
    }

    /// Stops the emulator and waits for it to exit: Snowflake is unreachable until
    /// [`Emulator::start_again`], and every session and all data are gone.
    pub fn stop(&self) {
        let mut guard = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((mut child, stdin)) = guard.take() {
            // Closing the pipe ends `cat`; the guard then sends SIGTERM and waits for it.
            drop(stdin);
            child.wait().expect("wait for the emulator to exit");
        }
    }

    /// Starts a new emulator on the same port with the same flags (after [`Emulator::stop`]).
    pub fn start_again(&self) {
        let mut guard = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        assert!(guard.is_none(), "the emulator is still running");
        let (port, process) = spawn(self.port, &self.extra);
        assert_eq!(port, self.port);
        *guard = Some(process);
    }

    /// A backend restart: stop, then start empty on the same port.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }
}
