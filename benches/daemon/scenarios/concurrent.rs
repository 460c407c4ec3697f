//! Scenario 3: 50 concurrent clients over 8 tokens against a pool of 8 sessions (as processes
//! and as raw HTTP), against ceil(50/8) statement round trips, with `/health` probed meanwhile.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Daemon, connector, finish, raw_query, rows, spawn};
use crate::report::{Report, Stats, f2, section};
use crate::rss::{Memory, PeakMemory, RssSampler, reset_peak};
use crate::support::emulator::Emulator;
use crate::support::{assert_success, http};
use crate::{POOL_SIZE, Settings};

/// Statements in this scenario and the tokens they are spread over.
const CONCURRENT: usize = 50;
const TOKENS: usize = 8;

/// Returns the daemon's peak memory while the bursts ran.
pub fn concurrent_clients(
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
                assert_success(&output, "a concurrent client");
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
