//! Scenario 1: 20 sequential commands (`USE DATABASE`, then 19 `SELECT`s) through fresh
//! socket-activated daemons, against the floor of one login plus 20 round trips on one client
//! crate session and against what a tool without the daemon does (a login per command).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Settings;
use crate::harness::{Daemon, connector, rows};
use crate::report::{Report, Stats, millis, ms, section};
use crate::support::emulator::Emulator;

pub fn sequential_commands(
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
    // 1.05 since issue 9 (was 1.10): the login read-back is gone; the one after `USE` stays
    // (see README, Benchmarks).
    println!("  daemon / floor = {ratio:.3}  (target <= 1.05)");
    println!("  one-connection-per-command / daemon = {speedup:.1}x faster with the daemon");
    report.target("20 commands: daemon / floor", ratio, 1.05, "x");
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
    let result = crate::support::json(&last.expect("19 SELECTs ran"));
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
