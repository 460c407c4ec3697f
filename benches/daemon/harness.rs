//! The process harness of the benchmark: a socket-activated daemon in a private home (the
//! integration tests' harness, `tests/it/support`, does the activation and the environment),
//! client processes that are ended by pid if a scenario panics, and the Snowflake client crate
//! configured as the daemon configures it, for the baselines.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use snowflake_connector_rs as sf;

use crate::support::activator::Activator;
use crate::support::{Home, assert_success, http};

/// A socket-activated daemon in a private home: the activator (tests/it/support) holds the
/// socket and starts `snowflaked serve` on the first pending connection, as systemd would.
pub struct Daemon {
    // Dropped first: stops the daemon (SIGTERM to its pid) before the home disappears.
    activator: Activator,
    env: Vec<(String, String)>,
    home: Home,
}

impl Daemon {
    /// A daemon for the emulator on `port`, with `extra` settings in its environment; it
    /// starts on the first connection and stays up for 30 minutes.
    pub fn start(port: u16, extra: &[(&str, &str)]) -> Self {
        let home = Home::new();
        // The daemon logs at its default level, as in production (the tests ask for debug).
        let mut env: Vec<(String, String)> = home
            .env(port)
            .into_iter()
            .filter(|(k, _)| k != "RUST_LOG")
            .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let activator = home.activate_with(env.clone(), &["--idle-timeout", "30m"]);
        Self {
            activator,
            env,
            home,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.home.socket()
    }

    pub fn pid(&self) -> u32 {
        self.activator.running_pid().expect("the daemon is running")
    }

    /// The client binary for this daemon, its output piped, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.home.command_with(self.env.clone(), args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the CLI to completion; panics unless it succeeded.
    pub fn run(&self, args: &[&str]) -> (Duration, Output) {
        let mut command = self.command(args);
        let started = Instant::now();
        let output = finish(spawn(&mut command));
        let took = started.elapsed();
        assert_success(&output, &format!("snowflaked {args:?}"));
        (took, output)
    }

    pub fn query_raw(&self, token: Option<&str>, sql: &str) -> (Duration, http::Answer) {
        raw_query(&self.socket(), token, sql)
    }

    /// Waits (bounded) until no login is in flight and at least one session is up.
    pub fn wait_for_logins(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sessions = &self.status()["sessions"];
            if sessions["logging_in"] == 0 && sessions["total"].as_u64().unwrap_or(0) >= 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon's warm-up login never finished: {sessions}"
            );
            // Polling /v1/status is the only signal there is; a short pause keeps it cheap.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn status(&self) -> Value {
        http::request(&self.socket(), "GET", "/v1/status", None, "").json()
    }
}

/// `POST /v1/query` as raw HTTP on a new connection; panics unless it answered 200.
pub fn raw_query(socket: &Path, token: Option<&str>, sql: &str) -> (Duration, http::Answer) {
    let body = json!({ "sql": sql }).to_string();
    let started = Instant::now();
    let answer = http::request(socket, "POST", "/v1/query", token, &body);
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{sql}: {}", answer.body);
    (took, answer)
}

/// The client crate configured as the daemon configures it for the emulator (see
/// src/snowflake/connector.rs): a session parameter, because the emulator refuses a login
/// without SESSION_PARAMETERS.
pub fn connector(port: u16, database: Option<&str>) -> sf::Client {
    let mut session = sf::SessionConfig::new()
        .with_session_parameter("CLIENT_SESSION_KEEP_ALIVE", Value::Bool(false));
    if let Some(database) = database {
        session = session.with_database(database);
    }
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("emulator URL");
    let config = sf::ClientConfig::new(
        "tester",
        "test",
        sf::AuthConfig::password("not-a-real-password"),
    )
    .with_session(session)
    .with_endpoint(sf::EndpointConfig::custom_base_url(base));
    sf::Client::new(config).expect("client config")
}

/// Runs a statement and reads its whole result, as the daemon does.
pub async fn rows(session: &sf::Session, sql: &str) -> usize {
    let cursor = session
        .query(sql.to_string())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows: Vec<sf::DynamicRow> = cursor
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.len()
}

/// Pids of client processes started and not yet waited for; [`EndAll`] kills them.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn spawn(command: &mut Command) -> Child {
    let child = command.spawn().expect("start snowflaked");
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    child
}

/// Reads the child's output and reaps it. The pid leaves [`LIVE`] before the reap, so the
/// reaper can never signal a recycled pid.
pub fn finish(mut child: Child) -> Output {
    let pid = child.id();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    // stdout first: it is the big one; the client writes little to stderr.
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_end(&mut stderr);
    }
    // SAFETY: waitid with WNOWAIT only observes the exit of our own child; it stays a zombie.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT);
    }
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
    let status = child.wait().expect("reap the client");
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Ends every client process still running (a panic left them behind).
pub struct EndAll;

impl Drop for EndAll {
    fn drop(&mut self) {
        for pid in LIVE.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            // SAFETY: kill(2) of a child we started and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}
