//! The figures: median and spread of a sample, the targets met or missed, and the report's
//! last line of JSON for machines.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Settings;

/// Median and spread of a sample, in milliseconds.
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Self {
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

    pub fn line(&self) -> String {
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

    pub fn json(&self) -> Value {
        json!({"n": self.n, "median": self.median, "p10": self.p10, "p90": self.p90, "p99": self.p99, "min": self.min, "max": self.max})
    }
}

#[derive(Default)]
pub struct Report {
    targets: Vec<(String, f64, f64, &'static str)>,
    fields: serde_json::Map<String, Value>,
}

impl Report {
    pub fn target(&mut self, what: &str, value: f64, limit: f64, unit: &'static str) {
        self.targets.push((what.to_string(), value, limit, unit));
    }

    pub fn add(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_string(), value);
    }

    pub fn summary(mut self, settings: &Settings, took: Duration) {
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

pub fn section(title: &str) {
    println!("\n== {title}");
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", millis(d))
}

pub fn f2(v: f64) -> String {
    format!("{v:.2} ms")
}

pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib_to_mib(kib))
}

pub fn mib_bytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}
