//! The runner: where one token's request meets a pooled Snowflake session.
//!
//! For each request it checks out a session (the token's transaction session, or the one it
//! used last), applies only the part of the token's context the session lacks, runs the
//! statements, reads the context back from Snowflake after statements that can change it,
//! pins or unpins the token on BEGIN/COMMIT/ROLLBACK, and replaces an expired session
//! transparently (log in again, re-apply the context, retry the statement once — it cannot
//! have run). Time limits and cancellation reach Snowflake through a `CancellationToken`.
//!
//! It knows nothing about HTTP: handlers call it with plain values.

mod apply;
pub mod error;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use error::RunError;

use crate::config::QuerySettings;
use crate::metrics::Metrics;
use crate::pool::{Lease, Pool, monitor};
use crate::sessions::context;
use crate::sessions::{Context, Registry};
use crate::snowflake::StatementOutput;
use crate::sql::{self, Kind, Statement};

/// A statement request, as plain values.
#[derive(Debug, Clone, Default)]
pub struct QueryInput {
    pub sql: String,
    pub max_rows: Option<u64>,
    pub timeout: Option<Duration>,
    pub read_only: Option<bool>,
    pub transaction: bool,
    /// A client-chosen id under which the running request can be cancelled.
    pub request_id: Option<String>,
    /// Bind parameters for the (single) statement; never spliced into its text.
    pub params: crate::binds::Params,
    /// A query tag for this request's statements only; the token's own tag is restored after.
    pub query_tag: Option<String>,
}

/// What a request produced.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    /// The last statement's result.
    pub output: StatementOutput,
    /// Query id and row count (rows affected for DML) of each statement, when there were
    /// several.
    pub statements: Vec<(String, u64)>,
    /// Every statement's result, in order, when there were several.
    pub results: Vec<StatementResult>,
    pub context: Context,
    pub in_transaction: bool,
    /// What the client must hear besides the result (e.g. a saved context that could not be
    /// applied).
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

/// One statement's result within a request of several.
#[derive(Debug, Clone)]
pub struct StatementResult {
    /// The statement's SQL text.
    pub sql: String,
    pub output: StatementOutput,
    /// Rows inserted, updated or deleted, for DML.
    pub rows_affected: Option<u64>,
}

/// What a DML statement changed: the sum of the `number of rows inserted/updated/deleted`
/// columns Snowflake answers INSERT, UPDATE, DELETE and MERGE with (its one row), or None for
/// any other statement.
fn rows_affected(statement: &Statement, output: &StatementOutput) -> Option<u64> {
    if statement.kind != Kind::Dml {
        return None;
    }
    let row = crate::row::values(output.rows.first()?);
    let counts: Vec<u64> = output
        .columns
        .iter()
        .zip(&row)
        .filter(|(c, _)| c.name.to_ascii_lowercase().starts_with("number of rows "))
        .filter_map(|(_, v)| v.as_u64())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// A requested context change (`snowflaked use …`, `PUT /v1/context`).
#[derive(Debug, Clone, Default)]
pub struct ContextChange {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
    /// `Some("")` clears the tag.
    pub query_tag: Option<String>,
}

/// Runs requests; shared by every connection.
pub struct Runner {
    pool: Pool,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    defaults: QuerySettings,
    /// Running requests by client-chosen id, with the token that started each.
    running: Mutex<HashMap<String, (String, CancellationToken)>>,
}

impl Runner {
    pub fn new(
        pool: Pool,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        defaults: QuerySettings,
    ) -> Self {
        // A token whose transaction was open when the previous daemon stopped (or died) lost
        // it with that daemon's sessions: its next statement is told.
        for token in registry.list() {
            if registry.in_transaction(&token.name) {
                pool.mark_transaction_lost(&token.name);
            }
        }
        Self {
            pool,
            registry,
            metrics,
            defaults,
            running: Mutex::new(HashMap::new()),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs the statements of one request for `token`.
    pub async fn query(&self, token: &str, input: QueryInput) -> Result<QueryOutcome, RunError> {
        let started = Instant::now();
        self.metrics.queries_running.fetch_add(1, Ordering::Relaxed);
        let _running = DecrementOnDrop(&self.metrics.queries_running);
        let result = self.query_inner(token, &input, started).await;
        self.metrics.record_query(started.elapsed(), result.is_ok());
        match &result {
            Ok(outcome) => tracing::info!(
                token = %crate::sessions::token::for_log(token),
                query_id = %outcome.output.query_id,
                rows = outcome.output.rows.len(),
                elapsed_ms = outcome.elapsed.as_millis() as u64,
                outcome = "ok",
                "statement served"
            ),
            Err(e) => {
                tracing::info!(token = %crate::sessions::token::for_log(token), error = %e, elapsed_ms = started.elapsed().as_millis() as u64, outcome = "failed", "statement failed")
            }
        }
        result
    }

    async fn query_inner(
        &self,
        token: &str,
        input: &QueryInput,
        started: Instant,
    ) -> Result<QueryOutcome, RunError> {
        let statements = sql::split(&input.sql)?;
        if !input.params.is_empty() && statements.len() > 1 {
            return Err(RunError::BadRequest(format!(
                "bind parameters need exactly one statement, and this request has {}; send the statements one at a time (each with its own parameters)",
                statements.len()
            )));
        }
        if input.read_only.unwrap_or(self.defaults.read_only)
            && let Some((index, refused)) = statements
                .iter()
                .enumerate()
                .find(|(_, s)| !s.is_read_only())
        {
            return Err(RunError::ReadOnly {
                statement: index + 1,
                reason: refused.refusal(),
            });
        }
        if input.transaction
            && statements
                .iter()
                .any(|s| matches!(s.kind, Kind::Begin | Kind::Commit | Kind::Rollback))
        {
            return Err(RunError::BadRequest(
                "--transaction wraps the statements in BEGIN … COMMIT itself; leave out BEGIN, COMMIT and ROLLBACK".into(),
            ));
        }
        let max_rows = match input.max_rows.unwrap_or(self.defaults.max_rows) {
            0 => None,
            n => Some(n),
        };
        let timeout = input
            .timeout
            .or(Some(self.defaults.timeout))
            .filter(|t| !t.is_zero());

        if self.pool.take_transaction_lost(token) {
            // Its session expired, broke or was rolled back by the daemon, or the daemon
            // restarted: whatever this statement is (COMMIT included), it must not run as if
            // the transaction were still there.
            self.registry.set_in_transaction(token, false);
            return Err(RunError::TransactionLost);
        }
        if input.transaction && self.pool.is_pinned(token) {
            return Err(RunError::BadRequest(
                "this token already has an open transaction; COMMIT or ROLLBACK it before using --transaction".into(),
            ));
        }
        let cancel = CancellationToken::new();
        let _registration = input
            .request_id
            .as_ref()
            .map(|id| self.register(token, id, cancel.clone()));
        self.registry.touch(token);

        let mut request = Request {
            token,
            warnings: Vec::new(),
            query_tag: input.query_tag.clone(),
        };
        let mut timed_out = false;
        let result = {
            let work = self.run_statements(
                &mut request,
                &statements,
                input.transaction,
                max_rows,
                &input.params,
                cancel.clone(),
            );
            tokio::pin!(work);
            match timeout {
                Some(limit) => {
                    tokio::select! {
                        result = &mut work => result,
                        () = tokio::time::sleep(limit) => {
                            // Let the statement see the cancellation and abort in Snowflake.
                            timed_out = true;
                            cancel.cancel();
                            work.await
                        }
                    }
                }
                None => work.await,
            }
        };
        match result {
            Err(RunError::Cancelled { .. }) if timed_out => {
                self.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                Err(RunError::Timeout(timeout.unwrap_or_default()))
            }
            Err(e @ RunError::Cancelled { .. }) => {
                self.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            Err(RunError::TransactionLost) => {
                // Told now (the pool consumed the loss when this request waited for the pin).
                self.registry.set_in_transaction(token, false);
                Err(RunError::TransactionLost)
            }
            Err(e) => Err(e.with_warnings(request.warnings)),
            Ok((output, results, in_transaction)) => Ok(QueryOutcome {
                output,
                statements: results
                    .iter()
                    .map(|r| {
                        let returned = r.output.rows.len() as u64;
                        (
                            r.output.query_id.clone(),
                            r.rows_affected.unwrap_or(returned),
                        )
                    })
                    .collect(),
                results,
                context: self.current_context(token),
                in_transaction,
                warnings: request.warnings,
                elapsed: started.elapsed(),
            }),
        }
    }

    async fn run_statements(
        &self,
        request: &mut Request<'_>,
        statements: &[Statement],
        transaction: bool,
        max_rows: Option<u64>,
        params: &crate::binds::Params,
        cancel: CancellationToken,
    ) -> Result<(StatementOutput, Vec<StatementResult>, bool), RunError> {
        let mut lease = self.checkout_for(request).await?;
        let result = self
            .run_statements_on(
                request,
                &mut lease,
                statements,
                transaction,
                max_rows,
                params,
                cancel,
            )
            .await;
        if request.query_tag.is_some() {
            self.restore_query_tag(request.token, &mut lease).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_statements_on(
        &self,
        request: &mut Request<'_>,
        lease: &mut Lease,
        statements: &[Statement],
        transaction: bool,
        max_rows: Option<u64>,
        params: &crate::binds::Params,
        cancel: CancellationToken,
    ) -> Result<(StatementOutput, Vec<StatementResult>, bool), RunError> {
        let lease = &mut *lease;
        let none = crate::binds::Params::None;
        if transaction {
            let begin = sql::split("BEGIN")?.remove(0);
            self.run_one(request, lease, &begin, Some(0), &none, cancel.clone())
                .await?;
        }
        let mut results = Vec::with_capacity(statements.len());
        for (index, statement) in statements.iter().enumerate() {
            match self
                .run_one(request, lease, statement, max_rows, params, cancel.clone())
                .await
            {
                Ok(output) => results.push(StatementResult {
                    sql: statement.text.clone(),
                    rows_affected: rows_affected(statement, &output),
                    output,
                }),
                Err(e) => {
                    let rolled_back = transaction && self.roll_back(request.token, lease).await;
                    let e = if statements.len() > 1 || transaction {
                        e.at_statement(index + 1, rolled_back)
                    } else {
                        e
                    };
                    return Err(e);
                }
            }
        }
        if transaction {
            let commit = sql::split("COMMIT")?.remove(0);
            if let Err(e) = self
                .run_one(request, lease, &commit, Some(0), &none, cancel)
                .await
            {
                self.roll_back(request.token, lease).await;
                return Err(e);
            }
        }
        let last = if results.len() == 1 {
            results.pop().map(|r| r.output)
        } else {
            results.last().map(|r| r.output.clone())
        };
        Ok((last.unwrap_or_default(), results, lease.is_pinned()))
    }

    /// Rolls back a `--transaction` request after a failure; returns whether ROLLBACK
    /// succeeded. Either way the transaction is over and the answer says how it ended.
    async fn roll_back(&self, token: &str, lease: &mut Lease) -> bool {
        if !lease.is_pinned() {
            return false;
        }
        let ok = lease
            .execute("ROLLBACK", None, CancellationToken::new())
            .await
            .is_ok();
        self.registry.set_in_transaction(token, false);
        if ok {
            lease.end_pin();
        } else {
            lease.discard_loss_reported();
        }
        ok
    }

    /// Runs one statement, keeping the token's transaction pin in step with it and replacing
    /// an expired session once (on a fresh login, never on another pooled session of the
    /// same age).
    async fn run_one(
        &self,
        request: &mut Request<'_>,
        lease: &mut Lease,
        statement: &Statement,
        max_rows: Option<u64>,
        params: &crate::binds::Params,
        cancel: CancellationToken,
    ) -> Result<StatementOutput, RunError> {
        let token = request.token;
        let mut retried = false;
        loop {
            let claimed_now = statement.kind == Kind::Begin && !lease.is_pinned();
            if claimed_now && !lease.claim_pin() {
                return Err(RunError::Conflict(
                    "another statement of this token opened a transaction at the same moment; the token's statements now run one at a time on that transaction's session — send this one again".into(),
                ));
            }
            let result = lease
                .execute_bound(&statement.text, params, max_rows, cancel.clone())
                .await;
            if claimed_now && result.is_err() {
                // The BEGIN did not (knowingly) run: nothing to pin, nothing to report lost.
                lease.end_pin();
            }
            match result {
                Ok(output) => {
                    match statement.kind {
                        Kind::Begin if claimed_now => {
                            self.registry.set_in_transaction(token, true);
                        }
                        Kind::Commit | Kind::Rollback if lease.is_pinned() => {
                            self.registry.set_in_transaction(token, false);
                            lease.end_pin();
                        }
                        _ => {}
                    }
                    if statement.may_change_context()
                        && let Err(e) = self.read_back(token, lease).await
                    {
                        // The statement ran; only learning its effect on the context failed.
                        lease.discard();
                        if statement.kind == Kind::Use {
                            return Err(RunError::Unreachable(format!(
                                "{} ran, but the session's context could not be read back ({e}); run it again",
                                statement.verb
                            )));
                        }
                        tracing::warn!(token = %crate::sessions::token::for_log(token), error = %e, "statement ran but the context could not be read back; keeping the previous context");
                    }
                    return Ok(output);
                }
                Err(e) if e.is_session_expired() && lease.is_pinned() => {
                    // Snowflake ended the session and the transaction with it; this answer
                    // tells the token.
                    self.registry.set_in_transaction(token, false);
                    lease.discard_loss_reported();
                    return Err(RunError::TransactionLost);
                }
                Err(e) if e.is_session_expired() && !retried => {
                    // Snowflake refused the statement before running it: safe to run again.
                    retried = true;
                    self.metrics
                        .session_expiry_recoveries
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        token = %crate::sessions::token::for_log(token),
                        session = lease.session_id(),
                        "session expired; logging in again and retrying"
                    );
                    lease.discard_now();
                    *lease = self.checkout_fresh_for(request).await?;
                }
                // A pinned session broken by this error is dropped when the lease goes back,
                // and the pool records the loss: the token's next statement is told.
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the session's context back from Snowflake and stores it for the token.
    async fn read_back(&self, token: &str, lease: &mut Lease) -> Result<(), RunError> {
        let query_tag = self.wanted_context(token).query_tag;
        if let Some(context) = lease.read_context(query_tag).await? {
            lease.set_context(context.clone());
            self.registry.set_context(token, context);
        }
        Ok(())
    }

    /// The context the token works in: its own, or the connection's login defaults; with the
    /// configured default query tag unless the token chose one.
    fn wanted_context(&self, token: &str) -> Context {
        let mut context = self
            .registry
            .context(token)
            .or_else(|| self.pool.login_context())
            .unwrap_or_default();
        context.query_tag = context.query_tag.or_else(|| self.default_tag(token));
        context
    }

    /// `query.tag` with its placeholders filled in for `token`.
    fn default_tag(&self, token: &str) -> Option<String> {
        let template = self.defaults.tag.as_deref().filter(|t| !t.is_empty())?;
        // Minted tokens authenticate TCP clients: QUERY_HISTORY must not show them.
        let name = if token.len() > 16 { "minted" } else { token };
        Some(
            template
                .replace("{token}", name)
                .replace("{version}", env!("CARGO_PKG_VERSION")),
        )
    }

    fn current_context(&self, token: &str) -> Context {
        self.wanted_context(token)
    }

    /// The token's context as `snowflaked context` shows it. A token that never changed its
    /// context has the connection's login defaults; before they are known this logs in once
    /// and reads them back rather than show empty values.
    pub async fn context_of(&self, token: &str) -> Result<Context, RunError> {
        if let Some(context) = self
            .registry
            .context(token)
            .or_else(|| self.pool.login_context())
        {
            return Ok(context);
        }
        let mut lease = self.pool.checkout(token, None).await?;
        if lease.context().is_some() {
            // A used session no longer shows the login defaults; a fresh one does.
            drop(lease);
            lease = self.pool.checkout_fresh(token).await?;
        }
        lease.resolve_context().await?;
        drop(lease);
        Ok(self.wanted_context(token))
    }

    /// Changes the token's context, validated by Snowflake: a name that does not exist is an
    /// error and leaves the context as it was.
    pub async fn set_context(
        &self,
        token: &str,
        change: ContextChange,
    ) -> Result<Context, RunError> {
        let mut statements = Vec::new();
        let fields: [(&str, &Option<String>, bool); 4] = [
            ("ROLE", &change.role, false),
            ("WAREHOUSE", &change.warehouse, false),
            ("DATABASE", &change.database, false),
            ("SCHEMA", &change.schema, true),
        ];
        for (keyword, value, qualified) in fields {
            if let Some(name) = value {
                let ident = context::user_identifier(name, qualified).ok_or_else(|| {
                    RunError::BadRequest(format!(
                        "{name:?} is not a valid {} name",
                        keyword.to_ascii_lowercase()
                    ))
                })?;
                statements.push(format!("USE {keyword} {ident}"));
            }
        }
        let before = self.registry.context(token);
        self.registry.touch(token);
        if !statements.is_empty() {
            let input = QueryInput {
                sql: statements.join(";\n"),
                read_only: Some(false),
                max_rows: Some(1),
                ..QueryInput::default()
            };
            if let Err(e) = self.query(token, input).await {
                // Put back exactly what the token had before the first USE.
                match before {
                    Some(context) => self.registry.set_context(token, context),
                    None => self.registry.clear_context(token),
                }
                return Err(e);
            }
        }
        if let Some(tag) = change.query_tag {
            // The token's full context: before any login its login defaults are not known yet,
            // and a tag saved on an empty context would drop them.
            let mut context = match self.registry.context(token) {
                Some(context) => context,
                None => self.context_of(token).await?,
            };
            context.query_tag = Some(tag).filter(|t| !t.is_empty());
            self.registry.set_context(token, context);
        }
        Ok(self.current_context(token))
    }

    /// Forgets a token, rolling back its open transaction first.
    pub async fn end_token(&self, token: &str) -> Result<bool, RunError> {
        if self.pool.is_pinned(token)
            && !monitor::roll_back_abandoned(&self.pool, token, "token ended").await
        {
            return Err(RunError::Conflict(format!(
                "token {token} has a statement running inside its transaction; cancel it first"
            )));
        }
        self.pool.take_transaction_lost(token);
        Ok(self.registry.remove(token))
    }

    /// The daemon is stopping: rolls back the transactions tokens left open (rather than leave
    /// them and their locks to Snowflake's session timeout; bounded, so a dead Snowflake
    /// cannot hold up the exit) and closes the pool. The tokens learn on their next statement,
    /// in the next activation, that their transaction is gone (the state file remembers).
    pub async fn shutdown(&self) {
        let tokens = self.pool.idle_pins(Duration::ZERO);
        let all = async {
            for token in &tokens {
                monitor::roll_back_abandoned(&self.pool, token, "daemon stopping").await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!(
                open = tokens.len(),
                "rolling back open transactions timed out; Snowflake ends them with the sessions"
            );
        }
        self.pool.close();
    }

    /// Cancels `token`'s running request registered under `id`; returns whether one was
    /// found. Another token's request is never touched (it is "not found" to this one).
    pub fn cancel(&self, token: &str, id: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(id) {
            Some((owner, cancel)) if owner == token => {
                cancel.cancel();
                true
            }
            _ => false,
        }
    }

    fn register(&self, token: &str, id: &str, cancel: CancellationToken) -> Registration<'_> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), (token.to_string(), cancel));
        Registration {
            runner: self,
            id: id.to_string(),
        }
    }
}

/// What one request carries through its statements: whose it is, and what it must tell the
/// client besides the result.
pub(crate) struct Request<'a> {
    token: &'a str,
    warnings: Vec<String>,
    /// `--query-tag`: the tag this request's statements run under.
    query_tag: Option<String>,
}

/// Removes a request's cancel handle when the request ends, however it ends.
struct Registration<'a> {
    runner: &'a Runner,
    id: String,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.runner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

struct DecrementOnDrop<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schedule_tests;
