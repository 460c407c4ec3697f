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
//! So this is a small purpose-built pool in bb8's model: a shared state machine behind a
//! mutex that is never held across an await, RAII [`Lease`]s that return their session on
//! drop, a bounded size with a checkout timeout, and a [`monitor`] task for heartbeats,
//! recycling before Snowflake's token lifetime runs out, the warm minimum, and abandoned
//! transactions.
//!
//! The pool knows contexts only as values attached to sessions (what each session currently
//! has); which context a token wants is the runner's business.

pub mod monitor;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::PoolSettings;
use crate::sessions::Context;
use crate::sessions::context::{READBACK_SQL, parse_readback};
use crate::snowflake::{Backend, BackendError, Session};

/// Why no session could be handed out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("no Snowflake session became free within {}; all {max} are busy (raise pool.max_size or pool.checkout_timeout)", crate::config::duration::format(*.waited))]
    CheckoutTimeout { waited: Duration, max: usize },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the daemon is shutting down")]
    Closed,
}

/// A pooled session and what the pool knows about it.
struct Slot {
    id: u64,
    session: Box<dyn Session>,
    /// The context this session currently has.
    context: Context,
    /// The token that used it last (affinity).
    last_token: Option<String>,
    created: Instant,
    last_used: Instant,
}

/// A session held for one token's open transaction.
struct Pin {
    /// `None` while one of the token's requests is using it.
    slot: Option<Slot>,
    last_used: Instant,
}

#[derive(Default)]
struct State {
    idle: Vec<Slot>,
    pins: HashMap<String, Pin>,
    in_use: usize,
    logging_in: usize,
    /// Background (warm-up) logins in flight, counted in `logging_in` too.
    warming: usize,
    /// Requests waiting for one of those instead of logging in themselves.
    warm_claims: usize,
    next_id: u64,
    closed: bool,
}

impl State {
    fn total(&self) -> usize {
        self.idle.len()
            + self.in_use
            + self.logging_in
            + self.pins.values().filter(|p| p.slot.is_some()).count()
    }
}

/// Occupancy, for status and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub idle: usize,
    pub in_use: usize,
    pub logging_in: usize,
    pub pinned: usize,
    pub max: usize,
    pub logins: u64,
    pub login_failures: u64,
}

struct Shared {
    backend: Arc<dyn Backend>,
    settings: PoolSettings,
    state: Mutex<State>,
    /// Woken whenever a session is returned or a slot frees up.
    returned: Notify,
    /// The context a freshly logged-in session has (the connection's defaults), learnt at
    /// the first login.
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
                backend,
                settings,
                state: Mutex::new(State::default()),
                returned: Notify::new(),
                login_context: Mutex::new(None),
                logins: AtomicU64::new(0),
                login_failures: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Hands out a session for `token`: its pinned transaction session if it has one, else
    /// the idle session it used last, else one whose context already equals `wanted`, else any
    /// idle one, else a new login if the pool has room; otherwise waits up to the checkout
    /// timeout.
    pub async fn checkout(
        &self,
        token: &str,
        wanted: Option<&Context>,
    ) -> Result<Lease, PoolError> {
        let deadline = Instant::now() + self.shared.settings.checkout_timeout;
        loop {
            let notified = self.shared.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_take(token, wanted)? {
                Take::Ready(lease) => return Ok(*lease),
                Take::Login => return self.login_for(token).await,
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

    /// Hands out a brand-new session (used when the token's context cannot be reached from
    /// any pooled session's context). Waits for room like [`Pool::checkout`].
    pub async fn checkout_fresh(&self, token: &str) -> Result<Lease, PoolError> {
        let deadline = Instant::now() + self.shared.settings.checkout_timeout;
        loop {
            let notified = self.shared.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reserve_fresh_login()? {
                return self.login_for(token).await;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(PoolError::CheckoutTimeout {
                    waited: self.shared.settings.checkout_timeout,
                    max: self.shared.settings.max_size,
                });
            }
        }
    }

    /// Reserves a login place for a fresh session, retiring the least recently used idle
    /// session if the pool is full; `false` if every session is busy.
    fn reserve_fresh_login(&self) -> Result<bool, PoolError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PoolError::Closed);
        }
        if state.total() >= self.shared.settings.max_size && !state.idle.is_empty() {
            let oldest = (0..state.idle.len())
                .min_by_key(|&i| state.idle[i].last_used)
                .unwrap_or(0);
            let retired = state.idle.remove(oldest);
            tracing::debug!(
                session = retired.id,
                "retired to make room for a fresh session"
            );
        }
        if state.total() < self.shared.settings.max_size {
            state.logging_in += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn try_take(&self, token: &str, wanted: Option<&Context>) -> Result<Take, PoolError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PoolError::Closed);
        }
        if let Some(pin) = state.pins.get_mut(token) {
            // The token is inside a transaction: only its own session will do.
            return Ok(match pin.slot.take() {
                Some(slot) => {
                    state.in_use += 1;
                    Take::Ready(Box::new(self.lease(slot, token, true)))
                }
                None => Take::Wait,
            });
        }
        let pick = state
            .idle
            .iter()
            .position(|s| s.last_token.as_deref() == Some(token))
            .or_else(|| wanted.and_then(|w| state.idle.iter().position(|s| &s.context == w)))
            .or_else(|| (0..state.idle.len()).max_by_key(|&i| state.idle[i].last_used));
        if let Some(index) = pick {
            let slot = state.idle.swap_remove(index);
            state.in_use += 1;
            return Ok(Take::Ready(Box::new(self.lease(slot, token, false))));
        }
        if state.warming > state.warm_claims {
            // A background login is already on its way (e.g. the one started at activation):
            // waiting for it is never slower than starting another, and spares a session.
            state.warm_claims += 1;
            return Ok(Take::Wait);
        }
        if state.total() < self.shared.settings.max_size {
            state.logging_in += 1;
            return Ok(Take::Login);
        }
        Ok(Take::Wait)
    }

    fn lease(&self, slot: Slot, token: &str, pinned: bool) -> Lease {
        Lease {
            slot: Some(slot),
            pool: self.clone(),
            token: token.to_string(),
            pinned,
            discard: false,
            fresh: false,
            busy: false,
        }
    }

    /// Logs in (a `logging_in` place is already reserved) and hands the session to `token`.
    async fn login_for(&self, token: &str) -> Result<Lease, PoolError> {
        let result = self.login_slot(false).await;
        let mut state = self.lock();
        state.logging_in -= 1;
        match result {
            Ok(slot) => {
                state.in_use += 1;
                drop(state);
                let mut lease = self.lease(slot, token, false);
                lease.fresh = true;
                Ok(lease)
            }
            Err(e) => {
                drop(state);
                self.shared.returned.notify_waiters();
                Err(e.into())
            }
        }
    }

    /// One login. The context a fresh session starts in is the same for every login of the
    /// connection, so it is read back from Snowflake only when it is not known yet or when
    /// `refresh` asks (background logins refresh it, off the request path).
    async fn login_slot(&self, refresh: bool) -> Result<Slot, BackendError> {
        let started = Instant::now();
        let session = match self.shared.backend.login().await {
            Ok(session) => session,
            Err(e) => {
                self.shared.login_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(connection = %self.describe(), error = %e, "login failed");
                return Err(e);
            }
        };
        let known = self.login_context();
        let context = match known {
            Some(context) if !refresh => context,
            _ => {
                let readback = session
                    .execute(READBACK_SQL, Some(1), CancellationToken::new())
                    .await?;
                let context = first_context(&readback, None).unwrap_or_default();
                *self
                    .shared
                    .login_context
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(context.clone());
                context
            }
        };
        self.shared.logins.fetch_add(1, Ordering::Relaxed);
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            state.next_id
        };
        tracing::info!(
            session = id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "logged in to Snowflake"
        );
        let now = Instant::now();
        Ok(Slot {
            id,
            session,
            context,
            last_token: None,
            created: now,
            last_used: now,
        })
    }

    /// Logs in sessions in the background until `min_idle` are available; failures are
    /// logged, not raised (the next request reports them).
    pub fn warm(&self) {
        let wanted = {
            let state = self.lock();
            let available = state.idle.len() + state.logging_in;
            let room = self.shared.settings.max_size.saturating_sub(state.total());
            self.shared
                .settings
                .min_idle
                .saturating_sub(available)
                .min(room)
        };
        for _ in 0..wanted {
            {
                let mut state = self.lock();
                state.logging_in += 1;
                state.warming += 1;
            }
            let pool = self.clone();
            tokio::spawn(async move {
                let result = pool.login_slot(true).await;
                let mut state = pool.lock();
                state.logging_in -= 1;
                state.warming -= 1;
                // Its waiter (if any) now finds the session idle, or logs in itself on failure.
                state.warm_claims = state.warm_claims.saturating_sub(1).min(state.warming);
                if let Ok(slot) = result
                    && !state.closed
                {
                    state.idle.push(slot);
                }
                drop(state);
                pool.shared.returned.notify_waiters();
            });
        }
    }

    /// Takes the token's pinned session if it is at rest (no request of the token is using
    /// it), e.g. to roll back an abandoned transaction.
    pub fn take_pinned(&self, token: &str) -> Option<Lease> {
        let mut state = self.lock();
        let slot = state.pins.get_mut(token)?.slot.take()?;
        state.in_use += 1;
        Some(self.lease(slot, token, true))
    }

    /// Tokens whose transaction session has been unused for at least `idle`.
    pub fn idle_pins(&self, idle: Duration) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .pins
            .iter()
            .filter(|(_, p)| p.slot.is_some() && now.duration_since(p.last_used) >= idle)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Whether any token holds an open transaction.
    pub fn has_pins(&self) -> bool {
        !self.lock().pins.is_empty()
    }

    /// Whether the token holds an open transaction.
    pub fn is_pinned(&self, token: &str) -> bool {
        self.lock().pins.contains_key(token)
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            idle: state.idle.len(),
            in_use: state.in_use,
            logging_in: state.logging_in,
            pinned: state.pins.len(),
            max: self.shared.settings.max_size,
            logins: self.shared.logins.load(Ordering::Relaxed),
            login_failures: self.shared.login_failures.load(Ordering::Relaxed),
        }
    }

    /// Takes idle sessions due for a heartbeat (unused for `heartbeat_interval`) or a
    /// replacement (older than `max_lifetime`); the monitor checks or drops them.
    fn take_due(&self) -> (Vec<Lease>, usize) {
        let settings = &self.shared.settings;
        let now = Instant::now();
        let mut state = self.lock();
        let before = state.idle.len();
        state
            .idle
            .retain(|s| now.duration_since(s.created) < settings.max_lifetime);
        let retired = before - state.idle.len();
        let mut due = Vec::new();
        let mut i = 0;
        while i < state.idle.len() {
            if now.duration_since(state.idle[i].last_used) >= settings.heartbeat_interval {
                let slot = state.idle.swap_remove(i);
                due.push(slot);
            } else {
                i += 1;
            }
        }
        state.in_use += due.len();
        drop(state);
        (
            due.into_iter()
                .map(|slot| self.lease(slot, "", false))
                .collect(),
            retired,
        )
    }

    /// Stops handing out sessions and drops the idle ones; leases still out are dropped when
    /// they come back.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.idle.clear();
        drop(state);
        self.shared.returned.notify_waiters();
    }

    fn give_back(&self, mut slot: Slot, token: &str, pinned: bool, discard: bool) {
        let mut state = self.lock();
        state.in_use -= 1;
        if discard || state.closed {
            if pinned {
                state.pins.remove(token);
            }
            tracing::debug!(session = slot.id, "session dropped");
        } else {
            slot.last_used = Instant::now();
            if !token.is_empty() {
                slot.last_token = Some(token.to_string());
            }
            if pinned {
                let pin = state.pins.entry(token.to_string()).or_insert(Pin {
                    slot: None,
                    last_used: slot.last_used,
                });
                pin.last_used = slot.last_used;
                pin.slot = Some(slot);
            } else {
                state.pins.remove(token);
                state.idle.push(slot);
            }
        }
        drop(state);
        self.shared.returned.notify_waiters();
    }
}

/// The context in the answer to [`READBACK_SQL`].
fn first_context(
    output: &crate::snowflake::StatementOutput,
    query_tag: Option<String>,
) -> Option<Context> {
    output
        .rows
        .first()
        .and_then(|row| parse_readback(row, query_tag))
}

enum Take {
    Ready(Box<Lease>),
    Login,
    Wait,
}

/// A session on loan to one request. Dropping it returns the session to the pool: to the
/// token's pin while a transaction is open, to the idle list otherwise, or nowhere if it was
/// marked broken (or dropped in the middle of a statement, when its state is unknown).
pub struct Lease {
    slot: Option<Slot>,
    pool: Pool,
    token: String,
    pinned: bool,
    discard: bool,
    fresh: bool,
    busy: bool,
}

impl Lease {
    /// Runs one statement on the session. If the future is dropped before it completes, the
    /// session is discarded rather than reused with a statement possibly still running.
    pub async fn execute(
        &mut self,
        sql: &str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> Result<crate::snowflake::StatementOutput, BackendError> {
        self.busy = true;
        let slot = self
            .slot
            .as_ref()
            .expect("a lease holds its slot until dropped");
        let result = slot.session.execute(sql, max_rows, cancel).await;
        self.busy = false;
        if let Err(e) = &result
            && e.poisons_session()
        {
            self.discard = true;
        }
        result
    }

    /// Reads the session's context back from Snowflake (`CURRENT_*()`); `query_tag`, which
    /// Snowflake does not report that way, is the caller's.
    pub async fn read_context(
        &mut self,
        query_tag: Option<String>,
    ) -> Result<Option<Context>, BackendError> {
        let output = self
            .execute(READBACK_SQL, Some(1), CancellationToken::new())
            .await?;
        Ok(first_context(&output, query_tag))
    }

    /// The context this session currently has.
    pub fn context(&self) -> &Context {
        &self.slot.as_ref().expect("slot").context
    }

    /// Records the session's context after statements changed it.
    pub fn set_context(&mut self, context: Context) {
        self.slot.as_mut().expect("slot").context = context;
    }

    /// The pool's id of this session, for logs.
    pub fn session_id(&self) -> u64 {
        self.slot.as_ref().map_or(0, |s| s.id)
    }

    /// Whether this session was logged in for this checkout.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Whether the session holds the token's open transaction.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Keep this session for the token until its transaction ends.
    pub fn pin(&mut self) {
        self.pinned = true;
    }

    /// The transaction ended: the session may serve other tokens again.
    pub fn unpin(&mut self) {
        self.pinned = false;
    }

    /// Do not reuse this session.
    pub fn discard(&mut self) {
        self.discard = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let discard = self.discard || self.busy;
            if self.busy {
                tracing::info!(session = slot.id, token = %crate::sessions::token::for_log(&self.token), "request abandoned mid-statement; session dropped");
            }
            self.pool.give_back(slot, &self.token, self.pinned, discard);
        }
    }
}

#[cfg(test)]
mod tests;
