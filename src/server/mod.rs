//! The hyper service: accepting connections, one request per connection, routing, and
//! turning failures into the contract's JSON errors.
//!
//! Connections are HTTP/1.1 without keep-alive (every client is a short-lived command), with
//! a deadline for the request head and body, so a slow or silent client cannot hold the daemon
//! open. Unix peers must be this user (checked with `SO_PEERCRED`); over TCP every request
//! needs a token minted over the Unix socket and a loopback `Host` (see [`auth`]). Only this
//! module knows HTTP.

pub mod auth;
pub mod error;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::Activation;
use crate::lifecycle::{Activity, OwnedActivityGuard};
use crate::metrics::Metrics;
use crate::runner::Runner;

/// Everything a request handler can reach.
pub struct AppState {
    pub runner: Arc<Runner>,
    /// Statement ids, daemon-owned statements and held results.
    pub statements: Arc<crate::statements::Statements>,
    pub metrics: Arc<Metrics>,
    pub activity: Arc<Activity>,
    pub activation: Activation,
    pub idle_timeout: Duration,
    pub max_body_bytes: usize,
    pub request_read_timeout: Duration,
    /// A client that reads none of its answer for this long is disconnected.
    pub write_stall_timeout: Duration,
    pub started: tokio::time::Instant,
    pub listeners: Vec<String>,
    /// Cancelled by `POST /v1/shutdown`.
    pub shutdown_requested: CancellationToken,
    /// Set after a large answer, so the daemon hands freed memory back once it is quiet.
    pub memory_to_return: std::sync::atomic::AtomicBool,
}

/// Where a connection came from: token rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp,
}

/// Accepts on the given listeners until `stop` resolves or idle time runs out; returns why it
/// stopped. Accepted connections are served on `tracker` and are counted as activity before
/// the idle check can run again, so none is dropped unanswered.
pub async fn accept_loop(
    state: Arc<AppState>,
    unix: Option<UnixListener>,
    tcp: Option<TcpListener>,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> StopCause {
    let my_uid = crate::config::paths::current_uid();
    // An open transaction lives between connections; the daemon must not idle out under it.
    // So does a detached statement (clients waiting on one hold a connection open).
    let pool = state.runner.pool().clone();
    let statements = state.statements.clone();
    let transaction_open = move || pool.has_pins() || statements.detached_running() > 0;
    let mut failures = AcceptFailures::new(ACCEPT_WARNING_EVERY);
    loop {
        let accept_unix = async {
            match &unix {
                Some(listener) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        let accept_tcp = async {
            match &tcp {
                Some(listener) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => return StopCause::Requested,
            accepted = accept_unix => match accepted {
                Ok(stream) => {
                    match stream.peer_cred() {
                        Ok(cred) if cred.uid() == my_uid => {}
                        Ok(cred) => {
                            tracing::warn!(peer_uid = cred.uid(), "refused a connection from another user");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the peer's credentials; refusing the connection");
                            continue;
                        }
                    }
                    let guard = OwnedActivityGuard::new(state.activity.clone());
                    tracker.spawn(serve_connection(state.clone(), stream, Transport::Unix, guard));
                }
                Err(e) => accept_failed(&mut failures, e).await,
            },
            accepted = accept_tcp => match accepted {
                Ok(stream) => {
                    let guard = OwnedActivityGuard::new(state.activity.clone());
                    tracker.spawn(serve_connection(state.clone(), stream, Transport::Tcp, guard));
                }
                Err(e) => accept_failed(&mut failures, e).await,
            },
            () = state.activity.wait_idle(state.idle_timeout, &transaction_open) => return StopCause::Idle,
        }
    }
}

/// Why the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Idle,
    Requested,
    Signal(&'static str),
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::Idle => f.write_str("idle timeout"),
            StopCause::Requested => f.write_str("shutdown requested"),
            StopCause::Signal(name) => write!(f, "{name}"),
        }
    }
}

/// At most one "accept failed" warning per this long.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(5);

async fn accept_failed(failures: &mut AcceptFailures, error: std::io::Error) {
    if let Some(suppressed) = failures.record(tokio::time::Instant::now()) {
        tracing::warn!(%error, suppressed, "accept failed (the daemon keeps serving; other failures in the next {}s are counted, not logged)", ACCEPT_WARNING_EVERY.as_secs());
    }
    // Running out of fds is transient; back off briefly instead of spinning.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Rate-limits the warning for failed accepts: out of file descriptors, every accept fails
/// (20 a second with the back-off) until a connection closes, and one line per failure would
/// flood the log.
#[derive(Debug)]
struct AcceptFailures {
    every: Duration,
    last_logged: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl AcceptFailures {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// Counts a failure at `now`; returns how many went unlogged before it when this one
    /// should be logged.
    fn record(&mut self, now: tokio::time::Instant) -> Option<u64> {
        match self.last_logged {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

async fn serve_connection<S>(
    state: Arc<AppState>,
    stream: S,
    transport: Transport,
    _activity: OwnedActivityGuard,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_state = state.clone();
    let service = service_fn(move |request| {
        let state = service_state.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(state, transport, request).await) }
    });
    // Reads are bounded by the header and body deadlines; a statement may run for hours, so
    // only a write that makes no progress (a client that stopped reading) is cut off.
    let mut io = tokio_io_timeout::TimeoutStream::new(stream);
    io.set_write_timeout(Some(state.write_stall_timeout));
    let connection = http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(state.request_read_timeout)
        .serve_connection(TokioIo::new(Box::pin(io)), service);
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    // After a large answer, hand the freed memory back as soon as nothing else is running
    // (the status loop catches the case where other connections were still open).
    if state.activity.open() <= 1
        && state
            .memory_to_return
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        let _ = tokio::task::spawn_blocking(crate::lifecycle::return_free_memory).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_accept_failures_logs_one_line_per_interval_with_the_count() {
        let mut failures = AcceptFailures::new(Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        // One minute out of file descriptors: a failure every 50 ms.
        let logged: Vec<u64> = (0..1200u32)
            .filter_map(|i| failures.record(start + Duration::from_millis(50) * i))
            .collect();
        assert_eq!(logged.len(), 12, "lines logged in a minute of failures");
        assert_eq!(logged[0], 0, "the first failure is logged at once");
        assert!(logged[1..].iter().all(|&n| n == 99), "{logged:?}");
        // After a quiet spell the next failure is logged at once, with the 99 that followed
        // the last line (at 55 s) and went unlogged.
        assert_eq!(failures.record(start + Duration::from_secs(120)), Some(99));
    }
}
