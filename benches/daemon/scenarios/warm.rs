//! Scenario 2: one warm `SELECT 1` through the CLI process, raw HTTP, curl and the client
//! crate on an already-open session, to split what the daemon and the client process add.

use std::process::Command;
use std::time::Instant;

use serde_json::json;
use snowflake_connector_rs as sf;

use crate::Settings;
use crate::harness::{Daemon, rows};
use crate::report::{Report, Stats, section};

pub fn warm_up(daemon: &Daemon, runtime: &tokio::runtime::Runtime, session: &sf::Session) {
    for _ in 0..3 {
        daemon.run(&["query", "SELECT 1", "--format", "json"]);
        daemon.query_raw(None, "SELECT 1");
        runtime.block_on(rows(session, "SELECT 1"));
    }
}

/// Returns the median statement round trip on an open crate session.
pub fn warm_statement(
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
