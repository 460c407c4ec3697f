//! The pool of logged-in Snowflake sessions.
//!
//! # Which pool, and why
//! The design card names r2d2, which is a blocking pool; snowflake-connector-rs is async, so
//! the pool must be async. bb8 (r2d2's async sibling) was considered and not chosen: a bb8
//! checkout hands out *any* idle connection, while this daemon needs three things bb8 has no
//! hook for: **token affinity** (a token gets back the session it used last, so its context
//! is usually already applied and nothing is replayed), **transaction pinning** (a session in
//! an open transaction belongs to one token until COMMIT/ROLLBACK and must never reach another
//! token, which in bb8 would mean holding a checkout across requests and losing the pool's
//! accounting), and context-aware choice (prefer a session whose context already matches).
//! So this is a small purpose-built pool in the shape pgdog uses:
//! - [`state`]: an IO-free state machine (`Inner`) behind a std mutex that is never held
//!   across an await. Each transition is one method that returns a decision; it states and
//!   checks (in debug builds) the pool's invariants.
//! - this module: the async shell that carries the decisions out. **Logins run in tasks the
//!   pool owns**, never inside a client's future: a client that hangs up while waiting for a
//!   login leaves the login running, and its session goes to the idle set for the next
//!   request; a waiter gets the login's own error when it fails.
//! - [`lease`]: RAII values that hold a place: a [`Lease`] knows where its session came from
//!   (the idle set or its token's pin) and gives it back in `Drop`, so an early return or a
//!   dropped future cannot leak a place; a login reservation is given back by its task
//!   whatever happens to it.
//! - [`monitor`]: heartbeats, recycling before Snowflake's token lifetime runs out, the warm
//!   minimum, and rolling back abandoned transactions.
//!
//! # Transactions and concurrent statements of one token
//! BEGIN makes the session that runs it the token's pin. While the pin exists, every
//! statement of that token runs on the pinned session, one at a time (later ones wait for it,
//! up to the checkout timeout). Statements the token started before BEGIN finish on their own
//! sessions and never touch the pin: only the lease that came from the pin can end it
//! (COMMIT/ROLLBACK) or park it again. If the pinned session is lost while the transaction is
//! open (it expired, broke, was dropped mid-statement, or was rolled back by the daemon), the
//! pool records the loss and the token's next statement is told, once.
//!
//! The pool knows contexts only as values attached to sessions (what each session currently
//! has); which context a token wants is the runner's business.

pub mod lease;
pub mod monitor;
mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

pub use lease::Lease;
pub use state::PoolStats;

use crate::config::PoolSettings;
use crate::sessions::Context;
use crate::snowflake::{Backend, BackendError};
use state::{Inner, LoginResult, Origin, Slot, Take};

/// Why no session could be handed out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("no Snowflake session became free within {}; all {max} are busy (raise pool.max_size or pool.checkout_timeout)", crate::config::duration::format(*.waited))]
    CheckoutTimeout { waited: Duration, max: usize },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the daemon is shutting down")]
    Closed,
    /// The token's open transaction was lost while this request waited for it.
    #[error("the token's open transaction is gone")]
    TransactionLost,
}

impl From<state::Refusal> for PoolError {
    fn from(refusal: state::Refusal) -> Self {
        match refusal {
            state::Refusal::Closed => PoolError::Closed,
            state::Refusal::TransactionLost => PoolError::TransactionLost,
        }
    }
}

struct Shared {
    backend: Arc<dyn Backend>,
    settings: PoolSettings,
    inner: Mutex<Inner>,
    /// Woken whenever a session comes back, a place frees up or the pool closes.
    returned: Notify,
    /// The context a freshly logged-in session has (the connection's defaults), once known.
    login_context: Mutex<Option<Context>>,
    logins: AtomicU64,
    login_failures: AtomicU64,
}

/// A cheap, cloneable handle to the pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    pub fn new(backend: Arc<dyn Backend>, settings: PoolSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner::new(settings.max_size)),
                backend,
                settings,
                returned: Notify::new(),
                login_context: Mutex::new(None),
                logins: AtomicU64::new(0),
                login_failures: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `user@account (source)` of the backend.
    pub fn describe(&self) -> String {
        self.shared.backend.describe()
    }

    pub fn settings(&self) -> &PoolSettings {
        &self.shared.settings
    }

    /// Presets the login defaults (remembered from an earlier run for the same connection).
    pub fn preset_login_context(&self, context: Context) {
        self.set_login_context(context);
    }

    /// Records the login defaults, read back from a fresh session.
    pub fn set_login_context(&self, context: Context) {
        *self
            .shared
            .login_context
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(context);
    }

    /// Identifies the connection, for remembering its login defaults.
    pub fn fingerprint(&self) -> String {
        self.shared.backend.fingerprint()
    }

    /// The context a fresh session starts with, once known.
    pub fn login_context(&self) -> Option<Context> {
        self.shared
            .login_context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands out a session for `token`: its pinned transaction session if it has one (waiting
    /// while another of its statements uses it), else the idle session it used last, else one
    /// whose context already equals `wanted`, else any idle one, else a login already in
    /// flight, else a new login if the pool has room; otherwise waits up to the checkout
    /// timeout for a session to come back.
    pub async fn checkout(
        &self,
        token: &str,
        wanted: Option<&Context>,
    ) -> Result<Lease, PoolError> {
        self.checkout_as(token, wanted, false).await
    }

    /// Hands out a session that has just logged in (the connection's login defaults, used by
    /// no request yet): after an expiry, so a retry never lands on another session of the
    /// same age, or when the token's context cannot be reached from a used session's.
    pub async fn checkout_fresh(&self, token: &str) -> Result<Lease, PoolError> {
        self.checkout_as(token, None, true).await
    }

    async fn checkout_as(
        &self,
        token: &str,
        wanted: Option<&Context>,
        fresh: bool,
    ) -> Result<Lease, PoolError> {
        let deadline = Instant::now() + self.shared.settings.checkout_timeout;
        loop {
            let notified = self.shared.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let decision = self.lock().take(token, wanted, fresh)?;
            match decision {
                Take::Ready(slot, origin) => {
                    return Ok(Lease::new(self.clone(), slot, origin, token, false));
                }
                Take::StartLogin(id, receiver) => {
                    self.spawn_login(id);
                    return self.await_login(receiver, token).await;
                }
                Take::AwaitLogin(receiver) => return self.await_login(receiver, token).await,
                Take::Wait => {}
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(PoolError::CheckoutTimeout {
                    waited: self.shared.settings.checkout_timeout,
                    max: self.shared.settings.max_size,
                });
            }
        }
    }

    /// Waits for a login's outcome. If this future is dropped, the receiver goes with it and
    /// the login's task puts the session into the idle set instead.
    async fn await_login(
        &self,
        receiver: oneshot::Receiver<LoginResult>,
        token: &str,
    ) -> Result<Lease, PoolError> {
        let mut receiver = DeliveryGuard {
            pool: self.clone(),
            receiver: Some(receiver),
        };
        let result = receiver
            .receiver
            .as_mut()
            .expect("receiver present until delivered")
            .await;
        receiver.receiver = None;
        match result {
            Ok(Ok(slot)) => Ok(Lease::new(self.clone(), slot, Origin::Idle, token, true)),
            Ok(Err(e)) => Err(PoolError::Backend(e)),
            // The login's task ended without an answer: the pool closed.
            Err(_) => Err(PoolError::Closed),
        }
    }

    /// Starts login `id` in a task the pool owns; the reservation is given back whatever
    /// happens to the task.
    fn spawn_login(&self, id: u64) {
        let reservation = LoginReservation {
            pool: self.clone(),
            id: Some(id),
        };
        tokio::spawn(reservation.run());
    }

    /// One login, bounded by `pool.login_timeout`.
    async fn login_slot(&self) -> Result<Slot, BackendError> {
        let started = Instant::now();
        let limit = self.shared.settings.login_timeout;
        let login = self.shared.backend.login();
        let outcome = if limit.is_zero() {
            login.await
        } else {
            match tokio::time::timeout(limit, login).await {
                Ok(outcome) => outcome,
                Err(_) => Err(BackendError::Unreachable(format!(
                    "login did not finish within {}",
                    crate::config::duration::format(limit)
                ))),
            }
        };
        let session = match outcome {
            Ok(session) => session,
            Err(e) => {
                self.shared.login_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connection = %self.describe(), error = %e, "login failed");
                return Err(e);
            }
        };
        self.shared.logins.fetch_add(1, Ordering::Relaxed);
        let id = self.lock().next_session_id();
        tracing::info!(
            session = id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "logged in to Snowflake"
        );
        let now = Instant::now();
        Ok(Slot {
            id,
            session,
            context: None,
            last_token: None,
            created: now,
            last_used: now,
        })
    }

    fn finish_login(&self, id: u64, result: LoginResult) {
        let handoff = self.lock().finish_login(id, result);
        if let Some((waiter, result)) = handoff
            && let Err(Ok(slot)) = waiter.send(result)
        {
            // The waiter left between the decision and the send.
            self.lock().undeliverable(slot);
        }
        self.shared.returned.notify_waiters();
    }

    /// Logs in sessions in the background until `min_idle` are idle or on their way; failures
    /// are logged, not raised (the next request reports its own).
    pub fn warm(&self) {
        let ids = self
            .lock()
            .reserve_warm_logins(self.shared.settings.min_idle);
        for id in ids {
            self.spawn_login(id);
        }
    }

    /// Takes the token's pinned session if it is at rest (no request of the token is using
    /// it), e.g. to roll back an abandoned transaction.
    pub fn take_pinned(&self, token: &str) -> Option<Lease> {
        let slot = self.lock().take_pinned(token)?;
        Some(Lease::new(
            self.clone(),
            slot,
            Origin::Pin(token.to_string()),
            token,
            false,
        ))
    }

    /// Tokens whose transaction session has been unused for at least `idle`.
    pub fn idle_pins(&self, idle: Duration) -> Vec<String> {
        self.lock().pins_at_rest_for(Instant::now(), idle)
    }

    /// Whether any token holds an open transaction.
    pub fn has_pins(&self) -> bool {
        self.lock().has_pins()
    }

    /// Whether the token holds an open transaction.
    pub fn is_pinned(&self, token: &str) -> bool {
        self.lock().is_pinned(token)
    }

    /// Records that `token`'s transaction is gone; its next statement is told.
    pub fn mark_transaction_lost(&self, token: &str) {
        self.lock().mark_lost(token);
    }

    /// Whether `token`'s transaction was lost since its last statement (told once).
    pub fn take_transaction_lost(&self, token: &str) -> bool {
        self.lock().take_lost(token)
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            logins: self.shared.logins.load(Ordering::Relaxed),
            login_failures: self.shared.login_failures.load(Ordering::Relaxed),
            ..self.lock().stats()
        }
    }

    /// Takes idle sessions due for a heartbeat (unused for `heartbeat_interval`) and drops
    /// those older than `max_lifetime`; the monitor checks the taken ones.
    fn take_due(&self) -> (Vec<Lease>, usize) {
        let settings = &self.shared.settings;
        let (due, retired) = self.lock().take_due(
            Instant::now(),
            settings.heartbeat_interval,
            settings.max_lifetime,
        );
        (
            due.into_iter()
                .map(|slot| Lease::new(self.clone(), slot, Origin::Idle, "", false))
                .collect(),
            retired,
        )
    }

    /// Stops handing out sessions and drops the idle ones; leases still out are dropped when
    /// they come back, and waiters for logins get [`PoolError::Closed`].
    pub fn close(&self) {
        let waiters = self.lock().close();
        drop(waiters);
        self.shared.returned.notify_waiters();
    }

    fn give_back(&self, back: state::Return) {
        self.lock().put(back);
        self.shared.returned.notify_waiters();
    }
}

/// A login place held by the pool's login task; returned exactly once, by `run` or, if the
/// task is dropped first (runtime shutting down), by `Drop`.
struct LoginReservation {
    pool: Pool,
    id: Option<u64>,
}

impl LoginReservation {
    async fn run(mut self) {
        let result = self.pool.login_slot().await;
        if let Some(id) = self.id.take() {
            self.pool.finish_login(id, result);
        }
    }
}

impl Drop for LoginReservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.pool.finish_login(
                id,
                Err(BackendError::Unreachable(
                    "the login was interrupted".into(),
                )),
            );
        }
    }
}

/// Owns a login waiter's receiver: if the waiting request is dropped after the session was
/// sent but before it was taken, the session goes back to the pool instead of vanishing.
struct DeliveryGuard {
    pool: Pool,
    receiver: Option<oneshot::Receiver<LoginResult>>,
}

impl Drop for DeliveryGuard {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if let Ok(Ok(slot)) = receiver.try_recv() {
                self.pool.lock().undeliverable(slot);
                self.pool.shared.returned.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests;
