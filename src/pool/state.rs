//! The pool's state machine: which sessions exist and where each one is, with no IO and no
//! async. Every method is one transition, taken under the pool's mutex, and returns a
//! *decision* the async shell ([`super::Pool`]) carries out: hand out this session, wait for
//! that login, start a login, or wait for a session to come back.
//!
//! A place in the pool is always in exactly one of these states:
//! ```text
//! Idle(slot) ─────────take(token)──────────▶ Out{origin: Idle}
//! Pinned(token, AtRest slot) ─take(token)──▶ Out{origin: Pin(token)}, pin Leased
//! (room) ──reserve_login()──▶ LoggingIn ──ok, waiter alive──▶ Out{origin: Idle}
//!                                       ├─ok, no waiter─────▶ Idle
//!                                       └─error────────────▶ (room); error to the waiter
//! Out{Idle} ──claim_pin(token)──▶ Out{Pin(token)}          (BEGIN is about to run)
//! Out{Pin}  ──end_pin()────────▶ Out{Idle}                 (COMMIT/ROLLBACK succeeded)
//! Out{Idle} ──put(kept)────────▶ Idle
//! Out{Pin}  ──put(kept)────────▶ Pinned(token, AtRest)
//! Out{any}  ──put(discarded)───▶ (room); a pin lost this way is recorded in `lost`
//! ```
//! Only an `Out` whose origin is `Pin(token)` can end or re-park `token`'s pin: a session taken
//! from the idle set never touches a pin, whatever token it serves.
//!
//! Invariants, checked after every transition in debug builds ([`Inner::check`]):
//! - `idle + out + pinned at rest + logging in <= max` (never more sessions than allowed);
//! - every session id is in at most one place (no session shared by two statements);
//! - a pin is either at rest with its session or leased to exactly one `Out` with that pin as
//!   origin (no pinned session dropped while its transaction is open, except by `put` with
//!   `discard`, which records the loss so the token is told).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::sessions::Context;
use crate::snowflake::{BackendError, Session};

/// A logged-in session and what the pool knows about it.
pub(super) struct Slot {
    pub id: u64,
    pub session: Box<dyn Session>,
    /// The context the session has; `None` means the connection's login defaults, as a fresh
    /// session has them (their values may not be known yet: they are read back only when
    /// someone needs them, to keep logins off the request path's round trips).
    pub context: Option<Context>,
    /// The token that used it last (affinity).
    pub last_token: Option<String>,
    pub created: Instant,
    pub last_used: Instant,
}

/// Where an outstanding session came from, which decides where it goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// The idle set or a login: returns to the idle set.
    Idle,
    /// `token`'s pin: returns to the pin while the transaction stays open.
    Pin(String),
}

/// A token's open transaction.
// A pin at rest holds its session by value: there are at most `pool.max_size` pins, and boxing
// would add an allocation per transaction for no measurable gain.
#[allow(clippy::large_enum_variant)]
enum Pin {
    /// The session waits for the token's next statement.
    AtRest { slot: Slot, since: Instant },
    /// One of the token's statements is using session `session`.
    Leased { session: u64 },
}

/// What a waiter for a login receives: the session (already counted as out) or the login's
/// own error.
pub(super) type LoginResult = Result<Slot, BackendError>;

/// A login in flight, run by a task the pool owns.
struct Login {
    /// The request waiting for this session, if any; when it has gone, the session goes to
    /// the idle set instead.
    waiter: Option<oneshot::Sender<LoginResult>>,
}

/// What [`Inner::take`] decided.
// Returned once per checkout and consumed at once; boxing the session would only add an
// allocation on the hot path.
#[allow(clippy::large_enum_variant)]
pub(super) enum Take {
    /// This session, now out with the given origin.
    Ready(Slot, Origin),
    /// Wait for this login (already running) to finish.
    AwaitLogin(oneshot::Receiver<LoginResult>),
    /// A login place was reserved: start login `id` and wait for it.
    StartLogin(u64, oneshot::Receiver<LoginResult>),
    /// The pool is full and every session is busy: wait for one to come back.
    Wait,
}

/// How a session comes back from a lease.
pub(super) struct Return {
    pub slot: Slot,
    pub origin: Origin,
    /// The token it served ("" for the pool's own upkeep).
    pub token: String,
    /// Do not reuse the session (broken, expired, dropped mid-statement, or context unknown).
    pub discard: bool,
    /// The token was already told its transaction is gone; do not record the loss again.
    pub loss_reported: bool,
}

/// Occupancy, for status and metrics: every session the pool holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Logged in, waiting for a request.
    pub idle: usize,
    /// Running a request's statements (including a transaction's own statements).
    pub in_use: usize,
    /// Holding an open transaction between its token's statements.
    pub pinned: usize,
    /// Logins in flight.
    pub logging_in: usize,
    /// Tokens with an open transaction (pinned at rest or in use).
    pub open_transactions: usize,
    pub max: usize,
    pub logins: u64,
    pub login_failures: u64,
}

impl PoolStats {
    /// Every place the pool holds: never more than `max`.
    pub fn total(&self) -> usize {
        self.idle + self.in_use + self.pinned + self.logging_in
    }
}

/// The pool's state. IO-free; owned by [`super::Pool`] behind a std mutex.
pub(super) struct Inner {
    max: usize,
    idle: Vec<Slot>,
    pins: HashMap<String, Pin>,
    /// Sessions on loan, by id, with their origin.
    out: HashMap<u64, Origin>,
    logins: HashMap<u64, Login>,
    /// Tokens whose pinned session was lost (dropped while the transaction was open); each is
    /// told once, by its next statement.
    lost: HashSet<String>,
    next_session: u64,
    next_login: u64,
    closed: bool,
}

impl Inner {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            idle: Vec::new(),
            pins: HashMap::new(),
            out: HashMap::new(),
            logins: HashMap::new(),
            lost: HashSet::new(),
            next_session: 0,
            next_login: 0,
            closed: false,
        }
    }

    fn pinned_at_rest(&self) -> usize {
        self.pins
            .values()
            .filter(|p| matches!(p, Pin::AtRest { .. }))
            .count()
    }

    fn total(&self) -> usize {
        self.idle.len() + self.out.len() + self.pinned_at_rest() + self.logins.len()
    }

    /// A fresh id for a session that just logged in.
    pub fn next_session_id(&mut self) -> u64 {
        self.next_session += 1;
        self.next_session
    }

    /// Decides how `token` gets a session. `fresh` asks for a session with the connection's
    /// login defaults that no request has used (after an expiry, or when the token's context
    /// cannot be reached from a used one): it never takes an idle or pinned session, and may
    /// retire the least recently used idle session to make room for the login.
    pub fn take(
        &mut self,
        token: &str,
        wanted: Option<&Context>,
        fresh: bool,
    ) -> Result<Take, Refusal> {
        if self.closed {
            return Err(Refusal::Closed);
        }
        if !fresh && self.lost.remove(token) {
            // Checked here, atomically with the take: a statement that was waiting for the
            // token's pin when the pin was lost must not run outside the transaction.
            return Err(Refusal::TransactionLost);
        }
        let decision = self.decide(token, wanted, fresh);
        self.check();
        Ok(decision)
    }

    fn decide(&mut self, token: &str, wanted: Option<&Context>, fresh: bool) -> Take {
        if !fresh {
            if let Some(pin) = self.pins.get_mut(token) {
                // Inside a transaction only the token's own session will do, one statement at
                // a time.
                return match pin {
                    Pin::Leased { .. } => Take::Wait,
                    Pin::AtRest { slot, .. } => {
                        let id = slot.id;
                        let Some(Pin::AtRest { slot, .. }) = self
                            .pins
                            .insert(token.to_string(), Pin::Leased { session: id })
                        else {
                            unreachable!("matched AtRest above")
                        };
                        self.out.insert(id, Origin::Pin(token.to_string()));
                        Take::Ready(slot, Origin::Pin(token.to_string()))
                    }
                };
            }
            let pick = self
                .idle
                .iter()
                .position(|s| s.last_token.as_deref() == Some(token))
                .or_else(|| {
                    wanted
                        .and_then(|w| self.idle.iter().position(|s| s.context.as_ref() == Some(w)))
                })
                .or_else(|| (0..self.idle.len()).max_by_key(|&i| self.idle[i].last_used));
            if let Some(index) = pick {
                let slot = self.idle.swap_remove(index);
                self.out.insert(slot.id, Origin::Idle);
                return Take::Ready(slot, Origin::Idle);
            }
        }
        // A login already on its way that nobody waits for (a warm-up, or one whose client
        // went away) is never slower than starting another, and spares a session.
        if let Some(login) = self
            .logins
            .values_mut()
            .find(|l| l.waiter.as_ref().is_none_or(|w| w.is_closed()))
        {
            let (sender, receiver) = oneshot::channel();
            login.waiter = Some(sender);
            return Take::AwaitLogin(receiver);
        }
        if fresh && self.total() >= self.max && !self.idle.is_empty() {
            let oldest = (0..self.idle.len())
                .min_by_key(|&i| self.idle[i].last_used)
                .unwrap_or(0);
            let retired = self.idle.swap_remove(oldest);
            tracing::debug!(
                session = retired.id,
                "retired to make room for a fresh session"
            );
        }
        if self.total() < self.max {
            let (sender, receiver) = oneshot::channel();
            let id = self.reserve_login(Some(sender));
            return Take::StartLogin(id, receiver);
        }
        Take::Wait
    }

    fn reserve_login(&mut self, waiter: Option<oneshot::Sender<LoginResult>>) -> u64 {
        self.next_login += 1;
        self.logins.insert(self.next_login, Login { waiter });
        self.next_login
    }

    /// Reserves places for background logins until `min_idle` sessions are idle or on their
    /// way; returns the login ids to start.
    pub fn reserve_warm_logins(&mut self, min_idle: usize) -> Vec<u64> {
        if self.closed {
            return Vec::new();
        }
        let available = self.idle.len() + self.logins.len();
        let room = self.max.saturating_sub(self.total());
        let count = min_idle.saturating_sub(available).min(room);
        let ids = (0..count).map(|_| self.reserve_login(None)).collect();
        self.check();
        ids
    }

    /// Login `id` finished. A session goes to its waiter if one is still there (it is then
    /// out, with origin `Idle`), else to the idle set; an error goes to the waiter. Returns
    /// what the caller must send, outside the lock, and to whom.
    pub fn finish_login(
        &mut self,
        id: u64,
        result: LoginResult,
    ) -> Option<(oneshot::Sender<LoginResult>, LoginResult)> {
        let login = self.logins.remove(&id)?;
        let waiter = login.waiter.filter(|w| !w.is_closed());
        let handoff = match (result, waiter) {
            (Ok(slot), _) if self.closed => {
                drop(slot);
                None
            }
            (Ok(slot), Some(waiter)) => {
                self.out.insert(slot.id, Origin::Idle);
                Some((waiter, Ok(slot)))
            }
            (Ok(slot), None) => {
                self.idle.push(slot);
                None
            }
            (Err(e), Some(waiter)) => Some((waiter, Err(e))),
            (Err(_), None) => None,
        };
        self.check();
        handoff
    }

    /// A session handed to a login's waiter could not be delivered (the waiter left between
    /// the decision and the send): it goes to the idle set.
    pub fn undeliverable(&mut self, slot: Slot) {
        self.out.remove(&slot.id);
        if !self.closed {
            self.idle.push(slot);
        }
        self.check();
    }

    /// `token` is about to run BEGIN on the out session `session`: the session becomes the
    /// token's pin. `false` if the token already has a pin (another of its statements opened
    /// a transaction first).
    pub fn claim_pin(&mut self, token: &str, session: u64) -> bool {
        if self.pins.contains_key(token) || self.out.get(&session) != Some(&Origin::Idle) {
            return false;
        }
        self.pins.insert(token.to_string(), Pin::Leased { session });
        self.out.insert(session, Origin::Pin(token.to_string()));
        self.check();
        true
    }

    /// The pin held by out session `session` ends (COMMIT/ROLLBACK succeeded, or the BEGIN
    /// that claimed it failed): the session is an ordinary out session again.
    pub fn end_pin(&mut self, token: &str, session: u64) {
        if matches!(self.pins.get(token), Some(Pin::Leased { session: s }) if *s == session) {
            self.pins.remove(token);
            self.out.insert(session, Origin::Idle);
        }
        self.check();
    }

    /// An out session comes back.
    pub fn put(&mut self, back: Return) {
        let Return {
            mut slot,
            origin,
            token,
            discard,
            loss_reported,
        } = back;
        let recorded = self.out.remove(&slot.id);
        debug_assert_eq!(
            recorded.as_ref(),
            Some(&origin),
            "session {} returned by a lease that does not own it",
            slot.id
        );
        let keep = !discard && !self.closed;
        if keep {
            slot.last_used = Instant::now();
            if !token.is_empty() {
                slot.last_token = Some(token.clone());
            }
        }
        match origin {
            Origin::Idle => {
                if keep {
                    self.idle.push(slot);
                }
            }
            Origin::Pin(owner) => {
                let owns = matches!(self.pins.get(&owner), Some(Pin::Leased { session }) if *session == slot.id);
                debug_assert!(owns, "a pin lease came back for a pin it does not hold");
                if owns {
                    if keep {
                        let since = slot.last_used;
                        self.pins.insert(owner, Pin::AtRest { slot, since });
                    } else {
                        self.pins.remove(&owner);
                        if !loss_reported {
                            self.lost.insert(owner);
                        }
                    }
                }
            }
        }
        self.check();
    }

    /// Takes `token`'s pinned session if it is at rest (to roll back an abandoned
    /// transaction).
    pub fn take_pinned(&mut self, token: &str) -> Option<Slot> {
        let Some(Pin::AtRest { slot, .. }) = self.pins.get(token) else {
            return None;
        };
        let id = slot.id;
        let Some(Pin::AtRest { slot, .. }) = self
            .pins
            .insert(token.to_string(), Pin::Leased { session: id })
        else {
            unreachable!("checked above")
        };
        self.out.insert(id, Origin::Pin(token.to_string()));
        self.check();
        Some(slot)
    }

    /// Whether `token` has an open transaction.
    pub fn is_pinned(&self, token: &str) -> bool {
        self.pins.contains_key(token)
    }

    pub fn has_pins(&self) -> bool {
        !self.pins.is_empty()
    }

    /// Tokens whose transaction session has been at rest for at least `idle`.
    pub fn pins_at_rest_for(&self, now: Instant, idle: Duration) -> Vec<String> {
        self.pins
            .iter()
            .filter(|(_, p)| matches!(p, Pin::AtRest { since, .. } if now.duration_since(*since) >= idle))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Records that `token`'s transaction is gone (its session expired, broke, was rolled back
    /// by the daemon, or a previous daemon died with it open).
    pub fn mark_lost(&mut self, token: &str) {
        self.lost.insert(token.to_string());
    }

    /// Whether `token`'s transaction was lost since its last statement; clears the mark, so
    /// the token is told once.
    pub fn take_lost(&mut self, token: &str) -> bool {
        self.lost.remove(token)
    }

    /// Takes the idle sessions unused for `heartbeat` (they go out with origin `Idle` for a
    /// heartbeat) and drops those older than `lifetime`. Returns the taken sessions and how
    /// many were dropped.
    pub fn take_due(
        &mut self,
        now: Instant,
        heartbeat: Duration,
        lifetime: Duration,
    ) -> (Vec<Slot>, usize) {
        let before = self.idle.len();
        self.idle
            .retain(|s| now.duration_since(s.created) < lifetime);
        let retired = before - self.idle.len();
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.idle.len() {
            if now.duration_since(self.idle[i].last_used) >= heartbeat {
                let slot = self.idle.swap_remove(i);
                self.out.insert(slot.id, Origin::Idle);
                due.push(slot);
            } else {
                i += 1;
            }
        }
        self.check();
        (due, retired)
    }

    /// Stops handing out sessions: idle and pinned-at-rest sessions are dropped (open
    /// transactions should have been rolled back first), logins in flight end with nothing,
    /// and sessions still out are dropped when they come back.
    pub fn close(&mut self) -> Vec<oneshot::Sender<LoginResult>> {
        self.closed = true;
        self.idle.clear();
        let at_rest: Vec<String> = self
            .pins
            .iter()
            .filter(|(_, p)| matches!(p, Pin::AtRest { .. }))
            .map(|(t, _)| t.clone())
            .collect();
        for token in at_rest {
            self.pins.remove(&token);
            self.lost.insert(token);
        }
        let waiters = self
            .logins
            .values_mut()
            .filter_map(|l| l.waiter.take())
            .collect();
        self.check();
        waiters
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle: self.idle.len(),
            in_use: self.out.len(),
            pinned: self.pinned_at_rest(),
            logging_in: self.logins.len(),
            open_transactions: self.pins.len(),
            max: self.max,
            logins: 0,
            login_failures: 0,
        }
    }

    /// The invariants in this module's documentation; a no-op in release builds.
    pub fn check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert!(
            self.total() <= self.max,
            "pool holds {} sessions, more than its bound {}",
            self.total(),
            self.max
        );
        let mut seen = HashSet::new();
        for slot in &self.idle {
            assert!(seen.insert(slot.id), "session {} is in two places", slot.id);
            assert!(
                !self.out.contains_key(&slot.id),
                "session {} is idle and out",
                slot.id
            );
        }
        for (token, pin) in &self.pins {
            match pin {
                Pin::AtRest { slot, .. } => {
                    assert!(seen.insert(slot.id), "session {} is in two places", slot.id);
                    assert!(
                        !self.out.contains_key(&slot.id),
                        "pinned session {} is also out",
                        slot.id
                    );
                }
                Pin::Leased { session } => assert_eq!(
                    self.out.get(session),
                    Some(&Origin::Pin(token.clone())),
                    "token {token}'s pin is leased to session {session}, which does not hold it"
                ),
            }
        }
        for (id, origin) in &self.out {
            if let Origin::Pin(token) = origin {
                assert!(
                    matches!(self.pins.get(token), Some(Pin::Leased { session }) if session == id),
                    "session {id} is out for {token}'s pin, which is not leased to it"
                );
            }
        }
    }
}

/// Why [`Inner::take`] hands out nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refusal {
    /// The pool was closed (the daemon is stopping).
    Closed,
    /// The token's transaction was lost; it is told now, once.
    TransactionLost,
}
