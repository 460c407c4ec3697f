//! Counters and the statement latency histogram, rendered in Prometheus' text format for
//! `GET /metrics`. Everything is a lock-free atomic so recording never blocks a request.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The daemon's counters.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub queries_served: AtomicU64,
    pub queries_failed: AtomicU64,
    pub queries_running: AtomicU64,
    pub cancelled: AtomicU64,
    pub session_expiry_recoveries: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// Point-in-time values owned by other components, passed in when rendering.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub sessions_idle: usize,
    pub sessions_in_use: usize,
    pub sessions_logging_in: usize,
    pub sessions_max: usize,
    pub logins: u64,
    pub login_failures: u64,
    pub tokens: usize,
    pub open_transactions: usize,
    pub uptime_s: u64,
}

impl Metrics {
    /// Records one finished statement request.
    pub fn record_query(&self, elapsed: Duration, ok: bool) {
        if ok {
            self.queries_served.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queries_failed.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (counter, gauge) = ("counter", "gauge");
        let simple: [(&str, &str, &str, u64); 15] = [
            (
                "uptime_seconds",
                gauge,
                "Seconds since the daemon started.",
                gauges.uptime_s,
            ),
            (
                "http_requests_total",
                counter,
                "HTTP requests received.",
                load(&self.requests),
            ),
            (
                "queries_total",
                counter,
                "Statement requests that succeeded.",
                load(&self.queries_served),
            ),
            (
                "queries_failed_total",
                counter,
                "Statement requests that failed.",
                load(&self.queries_failed),
            ),
            (
                "queries_running",
                gauge,
                "Statement requests in flight.",
                load(&self.queries_running),
            ),
            (
                "queries_cancelled_total",
                counter,
                "Statements cancelled (client gone, timeout, cancel).",
                load(&self.cancelled),
            ),
            (
                "session_expiry_recoveries_total",
                counter,
                "Expired Snowflake sessions replaced transparently.",
                load(&self.session_expiry_recoveries),
            ),
            (
                "sessions_idle",
                gauge,
                "Logged-in sessions waiting for work.",
                gauges.sessions_idle as u64,
            ),
            (
                "sessions_in_use",
                gauge,
                "Sessions running a request.",
                gauges.sessions_in_use as u64,
            ),
            (
                "sessions_logging_in",
                gauge,
                "Logins in progress.",
                gauges.sessions_logging_in as u64,
            ),
            (
                "sessions_max",
                gauge,
                "Pool size bound.",
                gauges.sessions_max as u64,
            ),
            (
                "logins_total",
                counter,
                "Successful Snowflake logins.",
                gauges.logins,
            ),
            (
                "login_failures_total",
                counter,
                "Failed Snowflake logins.",
                gauges.login_failures,
            ),
            (
                "tokens",
                gauge,
                "Known client tokens.",
                gauges.tokens as u64,
            ),
            (
                "open_transactions",
                gauge,
                "Tokens holding an open transaction.",
                gauges.open_transactions as u64,
            ),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP snowflaked_{name} {help}\n# TYPE snowflaked_{name} {kind}\nsnowflaked_{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP snowflaked_query_duration_seconds Statement request latency.\n# TYPE snowflaked_query_duration_seconds histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "snowflaked_query_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "snowflaked_query_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "snowflaked_query_duration_seconds_sum {}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "snowflaked_query_duration_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let metrics = Metrics::default();
        metrics.record_query(Duration::from_millis(3), true);
        metrics.record_query(Duration::from_millis(70), false);
        let text = metrics.render(&Gauges::default());
        assert!(text.contains("snowflaked_query_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("snowflaked_query_duration_seconds_bucket{le=\"0.1\"} 2"));
        assert!(text.contains("snowflaked_query_duration_seconds_count 2"));
        assert!(text.contains("snowflaked_queries_failed_total 1"));
    }
}
