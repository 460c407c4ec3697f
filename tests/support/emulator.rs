//! The Snowflake emulator for end-to-end tests: `tests/emulator/snowflake_emulator.py` (our
//! adapter over fakesnow) started once per test binary on a free port.
//!
//! It runs under a small shell guard that ends it when this test process's end of a pipe
//! closes, so no emulator outlives the tests, however they end.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub struct Emulator {
    pub port: u16,
    _guard: Mutex<(Child, ChildStdin)>,
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
        .args(["--host", "127.0.0.1", "--port", "0"])
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
    Emulator {
        port,
        _guard: Mutex::new((child, stdin)),
    }
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
}
