//! `cargo bench --bench daemon`: what the daemon saves and what it costs, each figure a ratio
//! against a baseline measured in the same run, on the same emulator with the same injected
//! latency (the product's "Targets"). Five scenarios: 20 sequential commands (daemon vs one
//! connection per command vs the floor of one login plus 20 round trips), a warm statement
//! (CLI process, raw HTTP, and the client crate on an open session, with and without
//! latency), 50 concurrent clients over 8 tokens with `/health` probed meanwhile, cold socket
//! activation to the first `/health` answer, and the daemon's memory (idle, under load, while
//! returning 100k rows).
//!
//! Knobs: `BENCH_LOGIN_MS` (default 500) and `BENCH_STATEMENT_MS` (default 60) are the
//! latency the emulator adds to each login and statement; `BENCH_QUICK=1` runs fewer
//! repetitions; `SNOWFLAKED_TEST_PYTHON` names the Python with fakesnow (else `.venv`).
//! Everything is loopback; every process started here is ended by its pid, also on panic.
//! The report ends with one line of JSON for machines.

#[path = "../../tests/it/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use snowflake_connector_rs as sf;
use support::activator::Activator;
use support::emulator::{self, Emulator};
use support::{Home, binary, http};

/// Statements in scenario 3 and the tokens they are spread over.
const CONCURRENT: usize = 50;
const TOKENS: usize = 8;
const POOL_SIZE: usize = 8;
/// Rows of the large result in scenario 5.
const BIG_ROWS: u64 = 100_000;

fn main() {
    // `cargo test --all-targets` also runs bench binaries (without `--bench`); a 90-second
    // measurement is no test, so it only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("the daemon benchmark runs under `cargo bench --bench daemon` (make bench)");
        return;
    }
    // Declared first so it is dropped last: ends any client process still running on panic.
    let _reaper = EndAll;
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("snowflaked daemon benchmark");
    println!(
        "  binary {}\n  emulator latency: login {} ms, statement {} ms{}\n",
        binary().display(),
        settings.login_ms,
        settings.statement_ms,
        if settings.quick {
            "  (BENCH_QUICK: fewer repetitions)"
        } else {
            ""
        }
    );
    let bench_started = Instant::now();
    let latency = emulator::start(&[
        "--login-delay-ms",
        &settings.login_ms.to_string(),
        "--statement-delay-ms",
        &settings.statement_ms.to_string(),
    ]);
    let zero = emulator::start(&["--login-delay-ms", "0", "--statement-delay-ms", "0"]);
    let mut report = Report::default();

    let database = format!("BENCH_{}", std::process::id());
    runtime.block_on(async {
        let setup = connector(latency.port, None)
            .create_session()
            .await
            .expect("login to the emulator");
        rows(&setup, &format!("CREATE DATABASE {database}")).await;
    });

    sequential_commands(&settings, &runtime, &latency, &database, &mut report);

    // One long-lived daemon on the latency emulator serves scenarios 2, 3 and 5.
    let main = Daemon::start(
        latency.port,
        &[("SNOWFLAKED_POOL__MAX_SIZE", &POOL_SIZE.to_string())],
    );
    let session = runtime
        .block_on(connector(latency.port, None).create_session())
        .expect("login to the emulator");
    warm_up(&main, &runtime, &session);
    // The pool's own warm-up login runs in the background; idle means it is done too.
    main.wait_for_logins();
    let idle = Memory::read(main.pid());
    let rtt = warm_statement(
        "with latency",
        &settings,
        &runtime,
        &main,
        &session,
        &mut report,
        "warm",
    );

    {
        let unloaded = Daemon::start(
            zero.port,
            &[("SNOWFLAKED_POOL__MAX_SIZE", &POOL_SIZE.to_string())],
        );
        let session = runtime
            .block_on(connector(zero.port, None).create_session())
            .expect("login to the emulator");
        warm_up(&unloaded, &runtime, &session);
        warm_statement(
            "without latency (statement delay 0)",
            &settings,
            &runtime,
            &unloaded,
            &session,
            &mut report,
            "warm_zero",
        );
    }

    let load_peak = concurrent_clients(&settings, &runtime, &latency, &main, rtt, &mut report);
    let big = big_result(&main);
    // A second of real idleness: whatever the daemon keeps after that, it keeps while idle.
    std::thread::sleep(Duration::from_millis(1000));
    let after = Memory::read(main.pid());
    drop(main);

    cold_activation(&settings, &latency, &mut report);
    memory_report(idle, load_peak, big, after, &mut report);

    report.summary(&settings, bench_started.elapsed());
}

/// The knobs, from the environment.
struct Settings {
    login_ms: u64,
    statement_ms: u64,
    quick: bool,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: u64| {
            std::env::var(name).ok().map_or(default, |v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a number of milliseconds"))
            })
        };
        Self {
            login_ms: number("BENCH_LOGIN_MS", 500),
            statement_ms: number("BENCH_STATEMENT_MS", 60),
            quick: std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1"),
        }
    }

    fn pick(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: 20 sequential commands.

fn sequential_commands(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    emulator: &Emulator,
    database: &str,
    report: &mut Report,
) {
    section("1. 20 sequential commands (USE DATABASE, then 19 SELECTs)");
    let reps = settings.pick(5, 1);
    let baseline_reps = settings.pick(3, 1);
    let (mut daemon, mut floor, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so slow drift of the machine touches every variant alike.
    for rep in 0..reps {
        daemon.push(sequence_through_daemon(emulator.port, database));
        floor.push(runtime.block_on(sequence_on_one_session(emulator.port, database)));
        if rep < baseline_reps {
            baseline
                .push(runtime.block_on(sequence_connection_per_command(emulator.port, database)));
        }
    }
    let nominal = Duration::from_millis(settings.login_ms + 20 * settings.statement_ms);
    let (d, f, b) = (Stats::of(&daemon), Stats::of(&floor), Stats::of(&baseline));
    println!(
        "  (a) daemon: 20 snowflaked processes, socket-activated fresh  {}",
        d.line()
    );
    println!(
        "  (b) one connection per command (crate, in-process)            {}",
        b.line()
    );
    println!(
        "  (c) floor: 1 login + 20 statements on one crate session       {}",
        f.line()
    );
    println!(
        "      nominal floor from the injected latency: {}",
        ms(nominal)
    );
    let ratio = d.median / f.median;
    let speedup = b.median / d.median;
    println!("  daemon / floor = {ratio:.3}  (target <= 1.10)");
    println!("  one-connection-per-command / daemon = {speedup:.1}x faster with the daemon");
    report.target("20 commands: daemon / floor", ratio, 1.10, "x");
    report.add(
        "sequential",
        json!({"daemon_ms": d.json(), "floor_ms": f.json(), "per_command_ms": b.json(), "nominal_floor_ms": millis(nominal), "daemon_over_floor": ratio, "speedup_vs_per_command": speedup}),
    );
}

fn select(i: usize) -> String {
    format!("SELECT {i} AS n, CURRENT_DATABASE() AS db")
}

fn sequence_through_daemon(port: u16, database: &str) -> Duration {
    let daemon = Daemon::start(port, &[]);
    let started = Instant::now();
    daemon.run(&["use", "database", database]);
    let mut last = None;
    for i in 1..20 {
        last = Some(daemon.run(&["query", &select(i), "--format", "json"]).1);
    }
    let elapsed = started.elapsed();
    let result = parse(&last.expect("19 SELECTs ran"));
    assert_eq!(
        result["rows"][0][1].as_str(),
        Some(database),
        "the USE carried over to later commands: {result}"
    );
    elapsed
}

async fn sequence_on_one_session(port: u16, database: &str) -> Duration {
    let started = Instant::now();
    let session = connector(port, None).create_session().await.expect("login");
    rows(&session, &format!("USE DATABASE {database}")).await;
    for i in 1..20 {
        rows(&session, &select(i)).await;
    }
    started.elapsed()
}

/// What a tool without the daemon does: a new client and login for every command, the
/// database given at login because the previous command's USE is gone.
async fn sequence_connection_per_command(port: u16, database: &str) -> Duration {
    let started = Instant::now();
    let session = connector(port, None).create_session().await.expect("login");
    rows(&session, &format!("USE DATABASE {database}")).await;
    for i in 1..20 {
        let session = connector(port, Some(database))
            .create_session()
            .await
            .expect("login");
        rows(&session, &select(i)).await;
    }
    started.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: one warm statement.

fn warm_up(daemon: &Daemon, runtime: &tokio::runtime::Runtime, session: &sf::Session) {
    for _ in 0..3 {
        daemon.run(&["query", "SELECT 1", "--format", "json"]);
        daemon.query_raw(None, "SELECT 1");
        runtime.block_on(rows(session, "SELECT 1"));
    }
}

/// Returns the median statement round trip on an open crate session.
fn warm_statement(
    label: &str,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    daemon: &Daemon,
    session: &sf::Session,
    report: &mut Report,
    key: &str,
) -> f64 {
    section(&format!("2. Warm `SELECT 1`, {label}"));
    let iterations = settings.pick(30, 10);
    let (mut process, mut raw, mut direct, mut bare, mut curl) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let socket = daemon.socket().display().to_string();
    for i in 0..iterations {
        // Rotate the order so no variant always follows another.
        for variant in 0..5 {
            match (i + variant) % 5 {
                // The same request through curl, the baseline for what a client process costs.
                4 => {
                    let started = Instant::now();
                    let output = Command::new("curl")
                        .args([
                            "-sS",
                            "--fail",
                            "--unix-socket",
                            &socket,
                            "-H",
                            "Authorization: Bearer default",
                        ])
                        .args(["-d", r#"{"sql": "SELECT 1"}"#, "http://snowflaked/v1/query"])
                        .output()
                        .expect("curl is installed");
                    curl.push(started.elapsed());
                    assert!(
                        output.status.success(),
                        "curl: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                0 => process.push(daemon.run(&["query", "SELECT 1", "--format", "json"]).0),
                1 => raw.push(daemon.query_raw(None, "SELECT 1").0),
                2 => {
                    let started = Instant::now();
                    runtime.block_on(rows(session, "SELECT 1"));
                    direct.push(started.elapsed());
                }
                // Not a target: what starting and ending the binary costs by itself, to
                // split (a)-(b) into process start-up and the client's own work.
                _ => bare.push(daemon.run(&["--version"]).0),
            }
        }
    }
    let (a, b, c, d, e) = (
        Stats::of(&process),
        Stats::of(&raw),
        Stats::of(&direct),
        Stats::of(&bare),
        Stats::of(&curl),
    );
    println!("  (a) `snowflaked query` process       {}", a.line());
    println!("  (b) raw HTTP over the Unix socket    {}", b.line());
    println!("  (c) crate, already-open session      {}", c.line());
    println!(
        "  (d) `snowflaked --version` process   {}  (diagnostic: spawn, exec, exit)",
        d.line()
    );
    println!("  (e) `curl --unix-socket` process    {}", e.line());
    let daemon_ratio = b.median / c.median;
    let daemon_added = b.median - c.median;
    let process_added = a.median - b.median;
    println!(
        "  (b)/(c) = {daemon_ratio:.3}  (the daemon adds {daemon_added:.2} ms; target ratio <= 1.05)"
    );
    println!("  (a)-(b) = {process_added:.2} ms  (the client process's own cost; target <= 2 ms)");
    println!(
        "  (e)-(b) = {:.2} ms  (curl's own cost, the same request; snowflaked query / curl = {:.3})",
        e.median - b.median,
        a.median / e.median
    );
    println!(
        "            of which starting and ending a snowflaked process (d) = {:.2} ms, the rest {:.2} ms",
        d.median,
        a.median - b.median - d.median
    );
    report.target(
        &format!("warm statement {label}: daemon / crate"),
        daemon_ratio,
        1.05,
        "x",
    );
    report.target(
        &format!("warm statement {label}: client process adds"),
        process_added,
        2.0,
        "ms",
    );
    report.add(
        key,
        json!({"process_ms": a.json(), "raw_http_ms": b.json(), "crate_ms": c.json(), "version_process_ms": d.json(), "curl_ms": e.json(), "curl_adds_ms": e.median - b.median, "daemon_over_crate": daemon_ratio, "daemon_adds_ms": daemon_added, "process_adds_ms": process_added}),
    );
    c.median
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: 50 concurrent clients over 8 tokens.

/// Returns the daemon's peak memory while the bursts ran.
fn concurrent_clients(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    emulator: &Emulator,
    daemon: &Daemon,
    rtt_ms: f64,
    report: &mut Report,
) -> PeakMemory {
    section(&format!(
        "3. {CONCURRENT} concurrent clients over {TOKENS} tokens, pool max_size {POOL_SIZE}"
    ));
    // Fill the pool: more concurrent requests than sessions make it log in up to its limit.
    burst_raw(daemon, 2 * POOL_SIZE);
    let status = daemon.status();
    println!(
        "  pool after warm-up: {} sessions (max {})",
        status["sessions"]["total"], status["sessions"]["max"]
    );

    let reps = settings.pick(3, 1);
    let pid = daemon.pid();
    let hwm_reset = reset_peak(pid);
    let sampler = RssSampler::start(pid);
    let (mut process_walls, mut process_requests, mut raw_walls, mut raw_requests) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut health = Vec::new();
    for _ in 0..reps {
        let probe = HealthProbe::start(daemon.socket());
        let burst = burst_processes(daemon, CONCURRENT);
        health.extend(probe.stop());
        process_walls.push(burst.wall);
        process_requests.extend(burst.requests);

        let probe = HealthProbe::start(daemon.socket());
        let burst = burst_raw(daemon, CONCURRENT);
        health.extend(probe.stop());
        raw_walls.push(burst.wall);
        raw_requests.extend(burst.requests);
    }
    let sampled_kib = sampler.stop();
    let memory = Memory::read(pid);
    let peak = PeakMemory {
        hwm_kib: hwm_reset.then_some(memory.hwm_kib),
        sampled_kib,
    };

    // What the emulator itself allows: the same 50 statements on 8 open crate sessions.
    let direct: Vec<Duration> = (0..reps)
        .map(|_| runtime.block_on(burst_on_crate_sessions(emulator.port)))
        .collect();

    let waves = CONCURRENT.div_ceil(POOL_SIZE);
    let nominal = waves as f64 * rtt_ms;
    let (pw, rw, dw) = (
        Stats::of(&process_walls),
        Stats::of(&raw_walls),
        Stats::of(&direct),
    );
    let (pr, rr, h) = (
        Stats::of(&process_requests),
        Stats::of(&raw_requests),
        Stats::of(&health),
    );
    println!(
        "  wall time, {CONCURRENT} `snowflaked --session tokK query` processes  {}",
        pw.line()
    );
    println!(
        "  wall time, {CONCURRENT} raw HTTP requests (threads)              {}",
        rw.line()
    );
    println!(
        "  wall time, {CONCURRENT} statements on {POOL_SIZE} open crate sessions     {}",
        dw.line()
    );
    println!(
        "  per request (processes): p50 {}  p99 {}  max {}",
        f2(pr.p50),
        f2(pr.p99),
        f2(pr.max)
    );
    println!(
        "  per request (raw HTTP):  p50 {}  p99 {}  max {}",
        f2(rr.p50),
        f2(rr.p99),
        f2(rr.max)
    );
    println!(
        "  reference: ceil({CONCURRENT}/{POOL_SIZE}) = {waves} statement round trips x {rtt_ms:.2} ms (scenario 2c) = {nominal:.1} ms"
    );
    let process_ratio = pw.median / nominal;
    let raw_ratio = rw.median / nominal;
    println!(
        "  processes / reference = {process_ratio:.3}; raw HTTP / reference = {raw_ratio:.3}  (target <= 1.20)"
    );
    println!(
        "  processes / crate sessions = {:.3}; raw HTTP / crate sessions = {:.3}",
        pw.median / dw.median,
        rw.median / dw.median
    );
    println!(
        "  /health while the queries ran ({} probes): {}  p99 {}",
        h.n,
        h.line(),
        f2(h.p99)
    );
    report.target(
        "50 concurrent (processes) / ceil(50/8) round trips",
        process_ratio,
        1.20,
        "x",
    );
    report.target(
        "50 concurrent (raw HTTP) / ceil(50/8) round trips",
        raw_ratio,
        1.20,
        "x",
    );
    report.target(
        "/health p99 during the concurrent queries",
        h.p99,
        5.0,
        "ms",
    );
    report.add(
        "concurrent",
        json!({
            "clients": CONCURRENT, "tokens": TOKENS, "pool_max_size": POOL_SIZE,
            "reference_ms": nominal, "statement_round_trip_ms": rtt_ms,
            "process_wall_ms": pw.json(), "raw_wall_ms": rw.json(), "crate_sessions_wall_ms": dw.json(),
            "process_request_ms": pr.json(), "raw_request_ms": rr.json(),
            "process_over_reference": process_ratio, "raw_over_reference": raw_ratio,
            "health_ms": h.json(),
        }),
    );
    peak
}

struct Burst {
    wall: Duration,
    requests: Vec<Duration>,
}

/// All clients as real `snowflaked` processes, spawned back to back.
fn burst_processes(daemon: &Daemon, clients: usize) -> Burst {
    let started = Instant::now();
    let waiters: Vec<JoinHandle<Duration>> = (0..clients)
        .map(|i| {
            let token = format!("tok{}", i % TOKENS);
            let sql = format!("SELECT {i} AS n");
            let mut command =
                daemon.command(&["--session", &token, "query", &sql, "--format", "json"]);
            let spawned = Instant::now();
            let child = spawn(&mut command);
            std::thread::spawn(move || {
                let output = finish(child);
                let took = spawned.elapsed();
                check(&output);
                took
            })
        })
        .collect();
    let requests = waiters
        .into_iter()
        .map(|w| w.join().expect("a client waiter"))
        .collect();
    Burst {
        wall: started.elapsed(),
        requests,
    }
}

/// All clients as raw HTTP requests from threads released together.
fn burst_raw(daemon: &Daemon, clients: usize) -> Burst {
    let gate = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<JoinHandle<Duration>> = (0..clients)
        .map(|i| {
            let gate = gate.clone();
            let socket = daemon.socket();
            std::thread::spawn(move || {
                let token = format!("tok{}", i % TOKENS);
                gate.wait();
                raw_query(&socket, Some(&token), &format!("SELECT {i} AS n")).0
            })
        })
        .collect();
    gate.wait();
    let started = Instant::now();
    let requests = threads
        .into_iter()
        .map(|t| t.join().expect("a request thread"))
        .collect();
    Burst {
        wall: started.elapsed(),
        requests,
    }
}

/// The same statements on `POOL_SIZE` open crate sessions, each taking the next statement
/// as soon as it is free: the emulator's own capacity, without any daemon.
async fn burst_on_crate_sessions(port: u16) -> Duration {
    let client = connector(port, None);
    let mut sessions = Vec::new();
    for _ in 0..POOL_SIZE {
        sessions.push(client.create_session());
    }
    let mut open = Vec::new();
    for login in sessions {
        open.push(Arc::new(login.await.expect("login")));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = open
        .into_iter()
        .map(|session| {
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::SeqCst) < CONCURRENT {
                    rows(&session, "SELECT 1").await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a crate worker");
    }
    started.elapsed()
}

/// Probes `GET /health` every few milliseconds until stopped.
struct HealthProbe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Duration>>,
}

impl HealthProbe {
    fn start(socket: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let answer = http::request(&socket, "GET", "/health", None, "");
                    samples.push(started.elapsed());
                    assert_eq!(answer.status, 200, "/health: {}", answer.body);
                    // A pause between probes: a health checker polls, it does not hammer.
                    std::thread::sleep(Duration::from_millis(5));
                }
                samples
            })
        };
        Self { stop, thread }
    }

    fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the health probe")
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 4: cold activation.

fn cold_activation(settings: &Settings, emulator: &Emulator, report: &mut Report) {
    section(
        "4. Cold activation: pending connection -> daemon started with it as fd 3 -> /health answer",
    );
    let starts = settings.pick(10, 3);
    let mut samples = Vec::new();
    for _ in 0..starts {
        let daemon = Daemon::start(emulator.port, &[]);
        let started = Instant::now();
        // The activator notices the pending connection and starts the daemon with the socket.
        let mut stream =
            UnixStream::connect(daemon.socket()).expect("connect to the activation socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        samples.push(started.elapsed());
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "/health after activation: {}",
            String::from_utf8_lossy(&answer)
        );
        // The daemon logs in ahead of the first statement as soon as it starts; stopping it
        // mid-login would only make the emulator log a disconnect, so let that finish first.
        daemon.wait_for_logins();
    }
    let s = Stats::of(&samples);
    println!("  connect -> answer, {} cold starts  {}", s.n, s.line());
    report.target(
        "cold activation to first /health answer (median)",
        s.median,
        20.0,
        "ms",
    );
    report.add("cold_activation_ms", s.json());
}

// ---------------------------------------------------------------------------------------------
// Scenario 5: memory.

/// Returns the daemon's memory while it returned the large result, and how long it took.
fn big_result(daemon: &Daemon) -> (PeakMemory, Duration, usize) {
    let pid = daemon.pid();
    let hwm_reset = reset_peak(pid);
    let sampler = RssSampler::start(pid);
    let sql = format!(
        "SELECT seq4() AS n, 'row ' || seq4() AS label, seq4() * 1.5 AS half FROM TABLE(GENERATOR(ROWCOUNT => {BIG_ROWS}))"
    );
    let (took, output) = daemon.run(&["query", &sql, "--max-rows", "0", "--format", "json"]);
    let sampled_kib = sampler.stop();
    let memory = Memory::read(pid);
    let result = parse(&output);
    assert_eq!(
        result["row_count"].as_u64(),
        Some(BIG_ROWS),
        "the whole result came back"
    );
    let peak = PeakMemory {
        hwm_kib: hwm_reset.then_some(memory.hwm_kib),
        sampled_kib,
    };
    (peak, took, output.stdout.len())
}

fn memory_report(
    idle: Memory,
    load: PeakMemory,
    big: (PeakMemory, Duration, usize),
    after: Memory,
    report: &mut Report,
) {
    section("5. Daemon memory (/proc/PID/status)");
    let (big_peak, big_took, big_bytes) = big;
    println!(
        "  idle after warm-up:            VmRSS {}  (VmHWM since start {})",
        mib(idle.rss_kib),
        mib(idle.hwm_kib)
    );
    println!("  peak during scenario 3:        {}", load.describe());
    println!(
        "  peak returning {BIG_ROWS} rows:     {}  ({} of JSON to the client in {})",
        big_peak.describe(),
        mib_bytes(big_bytes),
        ms(big_took)
    );
    println!(
        "  idle again after all of that:  VmRSS {}  (VmHWM {})",
        mib(after.rss_kib),
        mib(after.hwm_kib)
    );
    report.target("idle RSS", kib_to_mib(idle.rss_kib), 15.0, "MiB");
    report.target(
        "peak RSS, 50 concurrent clients",
        kib_to_mib(load.peak_kib()),
        40.0,
        "MiB",
    );
    report.target(
        "peak RSS, 100k-row result",
        kib_to_mib(big_peak.peak_kib()),
        40.0,
        "MiB",
    );
    // The idle target applies to a daemon that has been used, too: memory kept after a big
    // result is memory an idle daemon holds for the rest of its life.
    report.target(
        "idle RSS again after the 100k-row result",
        kib_to_mib(after.rss_kib),
        15.0,
        "MiB",
    );
    report.add(
        "memory_mib",
        json!({
            "idle_rss": kib_to_mib(idle.rss_kib), "idle_hwm": kib_to_mib(idle.hwm_kib),
            "concurrent_peak": kib_to_mib(load.peak_kib()), "big_result_peak": kib_to_mib(big_peak.peak_kib()),
            "big_result_ms": millis(big_took), "big_result_json_mib": big_bytes as f64 / 1048576.0,
            "idle_after_rss": kib_to_mib(after.rss_kib),
        }),
    );
}

/// VmRSS and VmHWM of a process, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

impl Memory {
    fn read(pid: u32) -> Self {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        };
        Self {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }
}

/// The highest RSS seen during a phase: VmHWM after resetting it (exact), and the highest
/// VmRSS a 2 ms sampler saw (a cross-check, and the only figure where the reset is refused).
#[derive(Debug, Clone, Copy)]
struct PeakMemory {
    hwm_kib: Option<u64>,
    sampled_kib: u64,
}

impl PeakMemory {
    fn peak_kib(&self) -> u64 {
        self.hwm_kib.unwrap_or(0).max(self.sampled_kib)
    }

    fn describe(&self) -> String {
        match self.hwm_kib {
            Some(hwm) => format!(
                "VmHWM {} (sampled VmRSS max {})",
                mib(hwm),
                mib(self.sampled_kib)
            ),
            None => format!(
                "sampled VmRSS max {} (VmHWM could not be reset)",
                mib(self.sampled_kib)
            ),
        }
    }
}

/// Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`) so a phase's peak is its own.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(Ordering::SeqCst) {
                    peak = peak.max(Memory::read(pid).rss_kib);
                    std::thread::sleep(Duration::from_millis(2));
                }
                peak.max(Memory::read(pid).rss_kib)
            })
        };
        Self { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the RSS sampler")
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon under test, the client crate, and the processes started here.

/// A socket-activated daemon in a private home: the activator (tests/support) holds the
/// socket and starts `snowflaked serve` on the first pending connection, as systemd would.
struct Daemon {
    // Dropped first: stops the daemon (SIGTERM to its pid) before the home disappears.
    activator: Activator,
    env: Vec<(String, String)>,
    home: Home,
}

impl Daemon {
    fn start(port: u16, extra: &[(&str, &str)]) -> Self {
        let home = Home::new();
        // The daemon logs at its default level, as in production (the tests ask for debug).
        let mut env: Vec<(String, String)> = home
            .env(port)
            .into_iter()
            .filter(|(k, _)| k != "RUST_LOG")
            .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let log = home.path().join("daemon.log");
        let activator = Activator::start(
            &home.socket(),
            &binary(),
            &["--idle-timeout", "30m"],
            env.clone(),
            &log,
        );
        Self {
            activator,
            env,
            home,
        }
    }

    fn socket(&self) -> PathBuf {
        self.home.socket()
    }

    fn pid(&self) -> u32 {
        self.activator.running_pid().expect("the daemon is running")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the CLI to completion; panics unless it succeeded.
    fn run(&self, args: &[&str]) -> (Duration, Output) {
        let mut command = self.command(args);
        let started = Instant::now();
        let output = finish(spawn(&mut command));
        let took = started.elapsed();
        check(&output);
        (took, output)
    }

    fn query_raw(&self, token: Option<&str>, sql: &str) -> (Duration, http::Answer) {
        raw_query(&self.socket(), token, sql)
    }

    /// Waits (bounded) until no login is in flight and at least one session is up.
    fn wait_for_logins(&self) {
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

    fn status(&self) -> Value {
        http::request(&self.socket(), "GET", "/v1/status", None, "").json()
    }
}

/// `POST /v1/query` as raw HTTP on a new connection; panics unless it answered 200.
fn raw_query(socket: &std::path::Path, token: Option<&str>, sql: &str) -> (Duration, http::Answer) {
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
fn connector(port: u16, database: Option<&str>) -> sf::Client {
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
async fn rows(session: &sf::Session, sql: &str) -> usize {
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

fn spawn(command: &mut Command) -> Child {
    let child = command.spawn().expect("start snowflaked");
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    child
}

/// Reads the child's output and reaps it. The pid leaves [`LIVE`] before the reap, so the
/// reaper can never signal a recycled pid.
fn finish(mut child: Child) -> Output {
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
struct EndAll;

impl Drop for EndAll {
    fn drop(&mut self) {
        for pid in LIVE.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            // SAFETY: kill(2) of a child we started and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

fn check(output: &Output) {
    assert!(
        output.status.success(),
        "snowflaked failed ({:?}): {}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn parse(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report.

/// Median and spread of a sample, in milliseconds.
struct Stats {
    n: usize,
    median: f64,
    p10: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Self {
        assert!(!samples.is_empty(), "no samples");
        let mut v: Vec<f64> = samples.iter().map(|d| millis(*d)).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        // Nearest rank: with few samples p99 is the maximum, which is what it should mean.
        let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            n,
            median,
            p10: rank(0.10),
            p50: median,
            p90: rank(0.90),
            p99: rank(0.99),
            min: v[0],
            max: v[n - 1],
        }
    }

    fn line(&self) -> String {
        format!(
            "median {}  (p10 {}, p90 {}, min {}, max {}; n={})",
            f2(self.median),
            f2(self.p10),
            f2(self.p90),
            f2(self.min),
            f2(self.max),
            self.n
        )
    }

    fn json(&self) -> Value {
        json!({"n": self.n, "median": self.median, "p10": self.p10, "p90": self.p90, "p99": self.p99, "min": self.min, "max": self.max})
    }
}

#[derive(Default)]
struct Report {
    targets: Vec<(String, f64, f64, &'static str)>,
    fields: serde_json::Map<String, Value>,
}

impl Report {
    fn target(&mut self, what: &str, value: f64, limit: f64, unit: &'static str) {
        self.targets.push((what.to_string(), value, limit, unit));
    }

    fn add(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_string(), value);
    }

    fn summary(mut self, settings: &Settings, took: Duration) {
        section("Targets");
        let mut missed = Vec::new();
        for (what, value, limit, unit) in &self.targets {
            let ok = value <= limit;
            if !ok {
                missed.push(what.clone());
            }
            println!(
                "  [{}] {what}: {value:.3} {unit} (target <= {limit} {unit})",
                if ok { "met   " } else { "MISSED" }
            );
        }
        println!(
            "\n  {} of {} targets met; whole run {:.1} s",
            self.targets.len() - missed.len(),
            self.targets.len(),
            took.as_secs_f64()
        );
        self.fields.insert("missed".into(), json!(missed));
        self.fields
            .insert("run_s".into(), json!(took.as_secs_f64()));
        self.fields.insert(
            "latency_ms".into(),
            json!({"login": settings.login_ms, "statement": settings.statement_ms, "quick": settings.quick}),
        );
        println!();
        println!(
            "{}",
            json!({ "bench": "snowflaked-daemon", "results": Value::Object(self.fields) })
        );
    }
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", millis(d))
}

fn f2(v: f64) -> String {
    format!("{v:.2} ms")
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib_to_mib(kib))
}

fn mib_bytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}
