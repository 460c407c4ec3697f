//! A process's memory from `/proc/PID/status`: VmRSS and VmHWM now, VmHWM reset per phase
//! (`clear_refs`), and a sampler that records the highest VmRSS while a phase runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::report::mib;

/// VmRSS and VmHWM of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    pub fn read(pid: u32) -> Self {
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
pub struct PeakMemory {
    pub hwm_kib: Option<u64>,
    pub sampled_kib: u64,
}

impl PeakMemory {
    pub fn peak_kib(&self) -> u64 {
        self.hwm_kib.unwrap_or(0).max(self.sampled_kib)
    }

    pub fn describe(&self) -> String {
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
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
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

    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the RSS sampler")
    }
}
