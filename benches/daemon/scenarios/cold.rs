//! Scenario 4: cold socket activation, from a pending connection to the first `/health` answer
//! of a daemon started with that socket as fd 3.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::harness::Daemon;
use crate::report::{Report, Stats, section};
use crate::support::emulator::Emulator;

pub fn cold_activation(settings: &Settings, emulator: &Emulator, report: &mut Report) {
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
