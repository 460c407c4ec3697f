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

// The benchmark shares the integration tests' harness (private homes, the socket activator,
// the emulator, raw HTTP) as source. The test crate compiles all of it with dead-code checks
// on; this binary uses a part, so unused items are allowed here only.
#[allow(dead_code)]
#[path = "../../tests/it/support/mod.rs"]
mod support;

mod harness;
mod report;
mod rss;
mod scenarios;

use std::time::{Duration, Instant};

use harness::{Daemon, EndAll, connector, rows};
use report::Report;
use rss::Memory;
use scenarios::{cold, concurrent, memory, sequential, warm};
use support::{binary, emulator};

/// The pool's size in scenarios 2, 3 and 5 (and the number of crate sessions compared with it).
const POOL_SIZE: usize = 8;

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

    sequential::sequential_commands(&settings, &runtime, &latency, &database, &mut report);

    // One long-lived daemon on the latency emulator serves scenarios 2, 3 and 5.
    let main = Daemon::start(
        latency.port,
        &[("SNOWFLAKED_POOL__MAX_SIZE", &POOL_SIZE.to_string())],
    );
    let session = runtime
        .block_on(connector(latency.port, None).create_session())
        .expect("login to the emulator");
    warm::warm_up(&main, &runtime, &session);
    // The pool's own warm-up login runs in the background; idle means it is done too.
    main.wait_for_logins();
    let idle = Memory::read(main.pid());
    let rtt = warm::warm_statement(
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
        warm::warm_up(&unloaded, &runtime, &session);
        warm::warm_statement(
            "without latency (statement delay 0)",
            &settings,
            &runtime,
            &unloaded,
            &session,
            &mut report,
            "warm_zero",
        );
    }

    let load_peak =
        concurrent::concurrent_clients(&settings, &runtime, &latency, &main, rtt, &mut report);
    let big = memory::big_result(&main);
    // A second of real idleness: whatever the daemon keeps after that, it keeps while idle.
    std::thread::sleep(Duration::from_millis(1000));
    let after = Memory::read(main.pid());
    drop(main);

    cold::cold_activation(&settings, &latency, &mut report);
    memory::memory_report(idle, load_peak, big, after, &mut report);

    report.summary(&settings, bench_started.elapsed());
}

/// The knobs, from the environment.
pub struct Settings {
    pub login_ms: u64,
    pub statement_ms: u64,
    pub quick: bool,
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

    pub fn pick(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}
