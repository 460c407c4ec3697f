//! Activity tracking, the idle timer, and what the daemon tells its init system.
//!
//! The idle clock counts from the moment the last connection closed with none open, so a
//! slow query keeps the daemon alive and a quiet one lets it go. The accept loop checks the
//! idle deadline in the same task that accepts, so a connection that was accepted is always
//! counted before the daemon decides to stop; one that arrives later stays queued in the
//! socket, which the init system still holds, and starts the next instance.
//!
//! sd_notify messages (READY, STATUS, WATCHDOG, STOPPING) go to `$NOTIFY_SOCKET` when there is
//! one and are silently skipped otherwise.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often a held idle exit (see [`Activity::wait_idle`]) looks again.
const HOLD_RECHECK: Duration = Duration::from_secs(5);

/// Open connections and when the last one closed.
pub struct Activity {
    open: AtomicUsize,
    last_closed: Mutex<Instant>,
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            open: AtomicUsize::new(0),
            last_closed: Mutex::new(Instant::now()),
            changed: Notify::new(),
        }
    }
}

impl Activity {
    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// How long nothing has been open; `None` while something is.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.open() > 0 {
            return None;
        }
        Some(
            self.last_closed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed(),
        )
    }

    /// Time left before an idle exit; `None` when something is open or `timeout` is zero.
    pub fn idle_left(&self, timeout: Duration) -> Option<Duration> {
        if timeout.is_zero() {
            return None;
        }
        self.idle_for().map(|idle| timeout.saturating_sub(idle))
    }

    /// Resolves once nothing has been open for `timeout` and `hold` is false; never when
    /// `timeout` is zero. `hold` keeps the daemon alive for state that lives between
    /// connections (an open transaction); it is checked again at least every few seconds.
    pub async fn wait_idle(&self, timeout: Duration, hold: &(dyn Fn() -> bool + Send + Sync)) {
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.idle_left(timeout) {
                Some(left) if left.is_zero() && hold() => {
                    tokio::select! {
                        () = tokio::time::sleep(timeout.min(HOLD_RECHECK)) => {}
                        () = &mut notified => {}
                    }
                }
                Some(left) if left.is_zero() => return,
                Some(left) => {
                    tokio::select! {
                        () = tokio::time::sleep(left) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// Keeps one connection counted as open until dropped.
pub struct OwnedActivityGuard(std::sync::Arc<Activity>);

impl OwnedActivityGuard {
    pub fn new(activity: std::sync::Arc<Activity>) -> Self {
        activity.open.fetch_add(1, Ordering::SeqCst);
        activity.changed.notify_waiters();
        Self(activity)
    }
}

impl Drop for OwnedActivityGuard {
    fn drop(&mut self) {
        *self.0.last_closed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Gives freed heap pages back to the OS. glibc keeps the arenas a large result grew, so
/// without this an idle daemon would stay at its peak size after one big query.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Talks to the init system through `$NOTIFY_SOCKET`.
#[derive(Clone, Copy, Debug)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Notifies only when the environment names a notify socket.
    pub fn from_env() -> Self {
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(false, states)
        {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    /// Listening: the init system may hand connections over.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// About to exit; `status` says why.
    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// The watchdog interval the service manager asked for, if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        let mut usec = 0u64;
        (self.enabled && sd_notify::watchdog_enabled(false, &mut usec))
            .then(|| Duration::from_micros(usec))
    }
}

/// A short human line for `systemctl status`: `idle 4m12s left · 3 queries · 1/4 sessions`.
pub fn status_line(
    idle_left: Option<Duration>,
    idle_timeout: Duration,
    queries: u64,
    sessions_in_use: usize,
    sessions_total: usize,
    max: usize,
) -> String {
    let idle = match (idle_left, idle_timeout.is_zero()) {
        (_, true) => "no idle exit".to_string(),
        (Some(left), false) => format!(
            "idle, exits in {}",
            crate::config::duration::format_remaining(left)
        ),
        (None, false) => "busy".to_string(),
    };
    format!(
        "{idle} · {queries} queries served · sessions {sessions_in_use} busy / {sessions_total} open / {max} max"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_close() {
        let activity = Arc::new(Activity::default());
        let guard = OwnedActivityGuard::new(activity.clone());
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(
                async move { activity.wait_idle(Duration::from_secs(60), &|| false).await },
            )
        };
        tokio::time::advance(Duration::from_secs(120)).await;
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "an open connection keeps the daemon alive"
        );
        drop(guard);
        tokio::time::advance(Duration::from_secs(59)).await;
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tokio::time::advance(Duration::from_secs(2)).await;
        waiter.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_postpones_the_idle_exit_until_it_is_released() {
        let activity = Arc::new(Activity::default());
        let held = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let waiter = {
            let (activity, held) = (activity.clone(), held.clone());
            tokio::spawn(async move {
                activity
                    .wait_idle(Duration::from_secs(10), &move || {
                        held.load(Ordering::SeqCst)
                    })
                    .await
            })
        };
        tokio::time::advance(Duration::from_secs(60)).await;
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "an open transaction keeps the daemon alive"
        );
        held.store(false, Ordering::SeqCst);
        tokio::time::advance(HOLD_RECHECK).await;
        waiter.await.unwrap();
    }

    #[test]
    fn status_line_reads_well() {
        let line = status_line(
            Some(Duration::from_secs(252)),
            Duration::from_secs(1800),
            3,
            1,
            2,
            4,
        );
        assert_eq!(
            line,
            "idle, exits in 4m 12s · 3 queries served · sessions 1 busy / 2 open / 4 max"
        );
    }

    #[test]
    fn the_time_left_is_rounded_up_not_down() {
        // Just after the last connection closed, with a 2 s idle timeout.
        let line = status_line(
            Some(Duration::from_millis(1_998)),
            Duration::from_secs(2),
            0,
            0,
            0,
            4,
        );
        assert!(line.starts_with("idle, exits in 2s ·"), "{line}");
    }
}
