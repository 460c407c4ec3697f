//! [`Lease`]: one session on loan to one request, which gives it back when dropped.
//!
//! A lease knows where its session came from (the idle set, a login, or its token's pin) and
//! that decides where the session goes back: an ordinary session to the idle set, a pinned
//! one to its token's pin while the transaction is open. A lease dropped in the middle of a
//! statement (its request future was dropped: the client hung up) or marked broken discards
//! its session; if that session held an open transaction the pool records the loss, so the
//! token's next statement is told.

use tokio_util::sync::CancellationToken;

use super::Pool;
use super::state::{Origin, Return, Slot};
use crate::sessions::Context;
use crate::sessions::context::{READBACK_SQL, parse_readback};
use crate::snowflake::{BackendError, StatementOutput};

/// A session on loan to one request.
pub struct Lease {
    slot: Option<Slot>,
    origin: Origin,
    pool: Pool,
    token: String,
    /// Logged in for this checkout.
    fresh: bool,
    /// A statement is running; if the lease is dropped now, the session's state is unknown.
    busy: bool,
    discard: bool,
    /// The token was told its transaction is gone (with this request's answer).
    loss_reported: bool,
}

impl Lease {
    pub(super) fn new(pool: Pool, slot: Slot, origin: Origin, token: &str, fresh: bool) -> Self {
        Self {
            slot: Some(slot),
            origin,
            pool,
            token: token.to_string(),
            fresh,
            busy: false,
            discard: false,
            loss_reported: false,
        }
    }

    fn slot(&self) -> &Slot {
        self.slot
            .as_ref()
            .expect("a lease holds its slot until dropped")
    }

    /// Runs one statement on the session. If the future is dropped before it completes, the
    /// session is discarded rather than reused with a statement possibly still running.
    pub async fn execute(
        &mut self,
        sql: &str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> Result<StatementOutput, BackendError> {
        self.execute_bound(sql, &crate::binds::Params::None, max_rows, cancel)
            .await
    }

    /// [`Lease::execute`] with bind parameters.
    pub async fn execute_bound(
        &mut self,
        sql: &str,
        params: &crate::binds::Params,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> Result<StatementOutput, BackendError> {
        self.busy = true;
        let result = self
            .slot()
            .session
            .execute_bound(sql, params, max_rows, cancel)
            .await;
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
        Ok(output
            .rows
            .first()
            .and_then(|row| parse_readback(row, query_tag)))
    }

    /// The context this session has; `None` while it has the connection's login defaults
    /// and their values have not been needed yet.
    pub fn context(&self) -> Option<&Context> {
        self.slot().context.as_ref()
    }

    /// The session's context as values, reading the login defaults back from Snowflake if
    /// this is their first use (and remembering them for the whole pool).
    pub async fn resolve_context(&mut self) -> Result<Context, BackendError> {
        if let Some(context) = self.context() {
            return Ok(context.clone());
        }
        let context = match self.pool.login_context() {
            Some(known) => known,
            None => {
                let read = self.read_context(None).await?.unwrap_or_default();
                self.pool.set_login_context(read.clone());
                read
            }
        };
        self.set_context(context.clone());
        Ok(context)
    }

    /// Records the session's context after statements changed it.
    pub fn set_context(&mut self, context: Context) {
        self.slot.as_mut().expect("slot").context = Some(context);
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
        matches!(self.origin, Origin::Pin(_))
    }

    /// BEGIN is about to run on this session: it becomes the token's pin. `false` if the
    /// token already has a transaction on another session (another of its statements opened
    /// one first), in which case nothing changed.
    pub fn claim_pin(&mut self) -> bool {
        if self.is_pinned() {
            return true;
        }
        let claimed = self.pool.lock().claim_pin(&self.token, self.session_id());
        if claimed {
            self.origin = Origin::Pin(self.token.clone());
        }
        claimed
    }

    /// The transaction ended (COMMIT/ROLLBACK succeeded, or the BEGIN that claimed the pin
    /// failed): the session may serve other tokens again.
    pub fn end_pin(&mut self) {
        if let Origin::Pin(token) = &self.origin {
            self.pool.lock().end_pin(token, self.session_id());
            self.origin = Origin::Idle;
        }
    }

    /// Gives a broken session back now, before its replacement is checked out, so that the
    /// replacement can take its place in a full pool. The lease must not be used afterwards
    /// (the caller overwrites it with the replacement).
    pub fn discard_now(&mut self) {
        self.discard = true;
        self.give_back();
    }

    fn give_back(&mut self) {
        if let Some(slot) = self.slot.take() {
            if self.busy {
                tracing::info!(session = slot.id, token = %crate::sessions::token::for_log(&self.token), "request abandoned mid-statement; session dropped");
            }
            self.pool.give_back(Return {
                slot,
                origin: std::mem::replace(&mut self.origin, Origin::Idle),
                token: std::mem::take(&mut self.token),
                discard: self.discard || self.busy,
                loss_reported: self.loss_reported,
            });
        }
    }

    /// Do not reuse this session.
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// Do not reuse this session; its token is being told now that its transaction is gone.
    pub fn discard_loss_reported(&mut self) {
        self.discard = true;
        self.loss_reported = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back();
    }
}
