//! Scenario 5: the daemon's memory idle, under the concurrent load, while returning 100k rows,
//! and idle again afterwards, against the product's RSS targets.

use std::time::Duration;

use serde_json::json;

use crate::harness::Daemon;
use crate::report::{Report, kib_to_mib, mib, mib_bytes, millis, ms, section};
use crate::rss::{Memory, PeakMemory, RssSampler, reset_peak};

/// Rows of the large result.
const BIG_ROWS: u64 = 100_000;

/// Returns the daemon's memory while it returned the large result, and how long it took.
pub fn big_result(daemon: &Daemon) -> (PeakMemory, Duration, usize) {
    let pid = daemon.pid();
    let hwm_reset = reset_peak(pid);
    let sampler = RssSampler::start(pid);
    let sql = format!(
        "SELECT seq4() AS n, 'row ' || seq4() AS label, seq4() * 1.5 AS half FROM TABLE(GENERATOR(ROWCOUNT => {BIG_ROWS}))"
    );
    let (took, output) = daemon.run(&["query", &sql, "--max-rows", "0", "--format", "json"]);
    let sampled_kib = sampler.stop();
    let memory = Memory::read(pid);
    let result = crate::support::json(&output);
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

pub fn memory_report(
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
