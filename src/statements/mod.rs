//! Statements by id: who started them, what state they are in, and their results, so a client
//! can leave a long statement running and come back for its result, or page through a result
//! without running the statement again.
//!
//! Every statement gets an id (the client's request id when it sent one, else a fresh one).
//! A statement started with a wait (`wait_ms`) is *daemon-owned*: it runs in a task this
//! registry spawns and tracks, so the caller hanging up does not cancel it; without a wait the
//! request owns it as before (hang-up cancels). Both go through `Runner::query`.
//!
//! **Where the rows come from.** A daemon-owned statement fetches its whole result (up to
//! `results.max_rows`) into the [`store::ResultStore`] (memory-bounded, spilling to a private file) as soon as it finishes;
//! a request-owned one keeps the rows it fetched (at most `max_rows + 1`). snowflake-connector-rs
//! 1.1.1's `ResultCursor` downloads the remaining chunks from pre-signed URLs without the
//! session, so keeping the cursor open would be possible — but those URLs expire (hours, set by
//! Snowflake), the cursor would have to cross the `Session` trait, and an open cursor ties the
//! daemon's memory to when (if ever) a client comes back. So the rest of a result cut by
//! `max_rows`, and any result no longer held (expired, evicted, or the daemon restarted), is
//! read once from Snowflake's result cache with `SELECT * FROM TABLE(RESULT_SCAN('<query id>'))`
//! — kept 24 h for the same user, reading it re-runs nothing — and then held like any other.
//! A result that can no longer be had is an error saying so, never a different or partial one.
//!
//! Ids survive restarts in a small file of their own ([`ids`]); other tokens never see an id
//! (they get "not found").

pub mod ids;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runner::{QueryInput, QueryOutcome, RunError, Runner};
use crate::sessions::Context;
use crate::snowflake::ResultColumn;
use ids::{IdsFile, Remembered};
use store::{Page, ResultStore, StoreError};

/// Finished statements remembered at most (the oldest are forgotten first).
const MAX_REMEMBERED: usize = 1000;
/// Snowflake keeps a query's result this long for RESULT_SCAN; older ids are useless.
const RESULT_CACHE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long `stop` waits for cancelled daemon-owned statements to wind down.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Why a statement's result cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// No such id for this token (other tokens' ids included).
    #[error("no statement has id {0}")]
    NotFound(String),
    /// The statement failed (or was cancelled); this is how.
    #[error(transparent)]
    Failed(RunError),
    /// The daemon no longer holds the result and Snowflake could not return it.
    #[error("{0}")]
    Gone(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }
}

/// A statement as `queries` lists it.
#[derive(Debug, Clone)]
pub struct Info {
    pub id: String,
    pub query_id: Option<String>,
    pub state: State,
    pub started: SystemTime,
    pub elapsed: Duration,
    pub rows: Option<u64>,
    pub sql: String,
    pub detached: bool,
    /// The daemon holds its rows (a page needs no trip to Snowflake).
    pub held: bool,
    pub error: Option<RunError>,
}

/// A page of a finished statement's result.
#[derive(Debug, Clone)]
pub struct ResultPage {
    pub info: Info,
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<crate::row::Row>,
    pub offset: u64,
    pub total_rows: u64,
    /// Rows exist after this page.
    pub more: bool,
    pub context: Context,
}

/// What a wait for a statement found.
#[derive(Debug)]
pub enum Waited {
    Running(Info),
    Page(ResultPage),
}

struct Entry {
    token: String,
    query_id: Option<String>,
    sql: String,
    started: SystemTime,
    /// `None` for statements of an earlier daemon.
    clock: Option<Instant>,
    elapsed: Option<Duration>,
    state: State,
    rows: Option<u64>,
    detached: bool,
    error: Option<RunError>,
    context: Context,
    done: watch::Sender<bool>,
    /// Ends a detached statement the runner has not registered yet (daemon stopping).
    stop: CancellationToken,
}

/// The registry; shared by every connection.
pub struct Statements {
    runner: Arc<Runner>,
    store: ResultStore,
    ids: Option<IdsFile>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Ids in the order they were started, to forget the oldest first.
    order: Mutex<Vec<String>>,
    tasks: TaskTracker,
    detached_running: AtomicUsize,
    /// A statement finished since the statements file was last written.
    dirty: AtomicBool,
    /// Held while the statements file is written.
    writing: Mutex<()>,
    /// Rows in an answer when the client does not say (`query.max_rows`; 0 = all).
    default_max_rows: u64,
    /// Rows fetched at most per result (`results.max_rows`; `None`: all), so one careless
    /// `SELECT *` cannot fill the disk.
    fetch_cap: Option<u64>,
}

impl Statements {
    /// A registry over `runner`, holding results in `store` and remembering ids in `ids`
    /// (`None`: in memory only), with the ids an earlier daemon remembered.
    pub fn new(
        runner: Arc<Runner>,
        store: ResultStore,
        ids: Option<IdsFile>,
        default_max_rows: u64,
        fetch_cap: u64,
    ) -> Self {
        let mut entries = HashMap::new();
        let mut order = Vec::new();
        let now = SystemTime::now();
        for r in ids.as_ref().map(IdsFile::load).unwrap_or_default() {
            let started = UNIX_EPOCH + Duration::from_millis(r.started_ms);
            if now.duration_since(started).unwrap_or_default() > RESULT_CACHE_LIFETIME {
                continue;
            }
            let state = match r.state.as_str() {
                "succeeded" => State::Succeeded,
                "cancelled" => State::Cancelled,
                _ => State::Failed,
            };
            let error = match state {
                State::Succeeded => None,
                State::Cancelled => Some(RunError::Cancelled {
                    query_id: r.query_id.clone(),
                }),
                _ => Some(RunError::Unreachable(
                    "the statement failed under an earlier daemon; run it again to see the error"
                        .into(),
                )),
            };
            order.push(r.id.clone());
            entries.insert(
                r.id,
                Entry {
                    token: r.token,
                    query_id: r.query_id,
                    sql: r.sql,
                    started,
                    clock: None,
                    elapsed: Some(Duration::from_millis(r.elapsed_ms)),
                    state,
                    rows: r.rows,
                    detached: false,
                    error,
                    context: Context::default(),
                    done: watch::channel(true).0,
                    stop: CancellationToken::new(),
                },
            );
        }
        Self {
            runner,
            store,
            ids,
            entries: Mutex::new(entries),
            order: Mutex::new(order),
            tasks: TaskTracker::new(),
            detached_running: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
            default_max_rows,
            fetch_cap: Some(fetch_cap).filter(|&c| c > 0),
        }
    }

    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Runs a request-owned statement (the caller's future owns it: dropping it cancels);
    /// returns its id with the outcome.
    pub async fn run_owned(
        &self,
        token: &str,
        mut input: QueryInput,
    ) -> (String, Result<QueryOutcome, RunError>) {
        let id = self.register(token, &input.sql, input.request_id.take(), false);
        input.request_id = Some(id.clone());
        let result = {
            let mut unfinished = Unfinished {
                statements: self,
                id: &id,
                armed: true,
            };
            let result = self.runner.query(token, input).await;
            unfinished.armed = false;
            result
        };
        let mut result = result;
        self.finish(&id, &mut result, false);
        (id, result)
    }

    /// Starts a daemon-owned statement (the whole result is fetched and held); returns its id.
    pub fn start_detached(self: &Arc<Self>, token: &str, mut input: QueryInput) -> String {
        let id = self.register(token, &input.sql, input.request_id.take(), true);
        input.request_id = Some(id.clone());
        // The whole result (up to the cap): pages are served from what is held.
        input.max_rows = Some(self.fetch_cap.unwrap_or(0));
        self.detached_running.fetch_add(1, Ordering::SeqCst);
        let statements = self.clone();
        let token = token.to_string();
        let task_id = id.clone();
        let stopping = self
            .lock()
            .get(&id)
            .map(|e| e.stop.clone())
            .unwrap_or_default();
        self.tasks.spawn(async move {
            // Dropping the statement's future cancels it in Snowflake (the session's lease
            // sends the abort), even before the runner has registered it under its id.
            let result = tokio::select! {
                result = statements.runner.query(&token, input) => result,
                () = stopping.cancelled() => Err(RunError::Cancelled { query_id: None }),
            };
            let mut result = result;
            statements.finish(&task_id, &mut result, true);
            statements.detached_running.fetch_sub(1, Ordering::SeqCst);
        });
        id
    }

    /// Cancels `token`'s running statement `id`; returns whether one was found. Another
    /// token's statement is never touched (it is "not found" to this one).
    pub fn cancel(&self, token: &str, id: &str) -> bool {
        if self.runner.cancel(token, id) {
            return true;
        }
        // A detached statement whose task has not reached the runner yet (the 202 of a zero
        // wait can answer first): stopping its task drops it before or while it starts, which
        // cancels it in Snowflake as a dropped statement does.
        let entries = self.lock();
        match entries.get(id) {
            Some(entry)
                if entry.token == token && entry.detached && entry.state == State::Running =>
            {
                entry.stop.cancel();
                true
            }
            _ => false,
        }
    }

    /// Rows in a page when the client names no limit (`None`: all).
    pub fn page_limit(&self, asked: Option<u64>) -> u64 {
        match asked.unwrap_or(self.default_max_rows) {
            0 => u64::MAX,
            n => n,
        }
    }

    /// Daemon-owned statements still running: the daemon must not idle out under them.
    pub fn detached_running(&self) -> usize {
        self.detached_running.load(Ordering::SeqCst)
    }

    /// Waits up to `wait` for `token`'s statement `id` to finish, then answers its state or
    /// the page `offset..offset + limit` of its result.
    pub async fn wait_page(
        &self,
        token: &str,
        id: &str,
        wait: Duration,
        offset: u64,
        limit: u64,
    ) -> Result<Waited, StatementError> {
        let mut done = {
            let entries = self.lock();
            match entries.get(id) {
                Some(entry) if entry.token == token => entry.done.subscribe(),
                _ => return Err(StatementError::NotFound(id.to_string())),
            }
        };
        let _ = tokio::time::timeout(wait, done.wait_for(|finished| *finished)).await;
        let info = self
            .info(token, id)
            .ok_or_else(|| StatementError::NotFound(id.to_string()))?;
        match info.state {
            State::Running => Ok(Waited::Running(info)),
            State::Failed | State::Cancelled => Err(StatementError::Failed(
                info.error.clone().unwrap_or(RunError::Cancelled {
                    query_id: info.query_id.clone(),
                }),
            )),
            State::Succeeded => Ok(Waited::Page(self.page(token, info, offset, limit).await?)),
        }
    }

    async fn page(
        &self,
        token: &str,
        info: Info,
        offset: u64,
        limit: u64,
    ) -> Result<ResultPage, StatementError> {
        let held = self.store.page(&info.id, offset, limit)?;
        let covers = |page: &Page| page.complete || offset.saturating_add(limit) <= page.total_rows;
        let page = match held {
            Some(page) if covers(&page) => page,
            // Capped at results.max_rows: what is held is served, and the answer says rows
            // are missing (`more`); nothing past the cap can be had.
            Some(page)
                if self.fetch_cap.is_some_and(|cap| page.total_rows >= cap)
                    && offset < page.total_rows =>
            {
                page
            }
            Some(page) if self.fetch_cap.is_some_and(|cap| page.total_rows >= cap) => {
                return Err(StatementError::Gone(format!(
                    "the result of {} has more than {} rows, the most the daemon keeps (results.max_rows); narrow the query, or raise results.max_rows and run it again",
                    info.id, page.total_rows
                )));
            }
            _ => {
                self.fetch_from_result_cache(token, &info).await?;
                self.store.page(&info.id, offset, limit)?.ok_or_else(|| {
                    StatementError::Gone(format!(
                        "the result of {} expired while it was being read; ask again",
                        info.id
                    ))
                })?
            }
        };
        let context = self
            .lock()
            .get(&info.id)
            .map(|e| e.context.clone())
            .unwrap_or_default();
        let shown = page.rows.len() as u64;
        Ok(ResultPage {
            more: offset.saturating_add(shown) < page.total_rows || !page.complete,
            total_rows: page.total_rows,
            columns: page.columns,
            rows: page.rows,
            offset,
            context,
            info,
        })
    }

    /// Reads the whole result of a finished statement from Snowflake's result cache (this
    /// re-runs nothing) and holds it.
    async fn fetch_from_result_cache(
        &self,
        token: &str,
        info: &Info,
    ) -> Result<(), StatementError> {
        let gone = |why: String| {
            StatementError::Gone(format!(
                "the daemon no longer holds the result of {} and {why}; run the statement again",
                info.id
            ))
        };
        let Some(query_id) = info.query_id.as_deref() else {
            return Err(gone("it has no Snowflake query id to fetch it by".into()));
        };
        if query_id.is_empty()
            || !query_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(gone(format!(
                "its query id {query_id:?} is not one Snowflake issues"
            )));
        }
        tracing::info!(id = %info.id, query_id, "fetching a result from Snowflake's result cache");
        let input = QueryInput {
            sql: format!("SELECT * FROM TABLE(RESULT_SCAN('{query_id}'))"),
            max_rows: Some(self.fetch_cap.unwrap_or(0)),
            read_only: Some(false),
            ..QueryInput::default()
        };
        let outcome = self.runner.query(token, input).await.map_err(|e| {
            gone(format!(
                "Snowflake could not return it from its result cache (query id {query_id}; results are kept 24 hours, for the same user): {e}"
            ))
        })?;
        let output = outcome.output;
        // Never silently a different result: the row count the statement had must match.
        if let Some(expected) = info.rows
            && expected != output.rows.len() as u64
        {
            return Err(gone(format!(
                "Snowflake's result cache returned {} rows where the statement had {expected}",
                output.rows.len()
            )));
        }
        let rows = output.rows.len() as u64;
        self.store
            .insert(&info.id, output.columns, output.rows, true)?;
        if let Some(entry) = self.lock().get_mut(&info.id) {
            entry.rows = Some(rows);
        }
        Ok(())
    }

    /// `token`'s statement `id`.
    pub fn info(&self, token: &str, id: &str) -> Option<Info> {
        let entries = self.lock();
        let entry = entries.get(id).filter(|e| e.token == token)?;
        Some(self.describe(id, entry))
    }

    /// `token`'s statements, newest first: running ones and those whose results are held, or
    /// (`all`) every one remembered.
    pub fn list(&self, token: &str, all: bool) -> Vec<Info> {
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let entries = self.lock();
        order
            .iter()
            .rev()
            .filter_map(|id| entries.get(id).map(|e| (id, e)))
            .filter(|(_, e)| e.token == token)
            .map(|(id, e)| self.describe(id, e))
            .filter(|info| all || info.state == State::Running || info.held)
            .collect()
    }

    fn describe(&self, id: &str, entry: &Entry) -> Info {
        Info {
            id: id.to_string(),
            query_id: entry.query_id.clone(),
            state: entry.state,
            started: entry.started,
            elapsed: entry
                .elapsed
                .or_else(|| entry.clock.map(|c| c.elapsed()))
                .unwrap_or_default(),
            rows: entry.rows,
            sql: entry.sql.clone(),
            detached: entry.detached,
            held: self.store.holds(id),
            error: entry.error.clone(),
        }
    }

    /// Drops results held past `results.keep`.
    pub fn expire(&self) {
        let expired = self.store.expire();
        if expired > 0 {
            tracing::debug!(expired, "dropped results held past results.keep");
        }
    }

    /// The daemon is stopping: cancels the daemon-owned statements still running (in
    /// Snowflake; they are recorded as cancelled), waits a bounded time for them, and drops
    /// the held results.
    pub async fn shutdown(&self) {
        let running: Vec<(String, String)> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.detached && e.state == State::Running)
            .map(|(id, e)| (id.clone(), e.token.clone()))
            .collect();
        for (id, token) in &running {
            tracing::info!(id, "daemon stopping: cancelling a detached statement");
            // Through the runner, the abort reaches Snowflake before the statement ends; one
            // not registered there yet has not been sent and is simply dropped.
            if !self.runner.cancel(token, id)
                && let Some(entry) = self.lock().get(id)
            {
                entry.stop.cancel();
            }
        }
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("detached statements did not end after their cancellation");
        }
        self.store.clear();
        self.flush();
    }

    /// Writes the statements file if a statement finished since the last write. Called by the
    /// daemon's status loop every few seconds and when it stops, so no request waits on a
    /// file write (a crash loses at most the last few seconds of ids).
    pub fn flush(&self) {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.persist();
        }
    }

    fn register(&self, token: &str, sql: &str, wanted: Option<String>, detached: bool) -> String {
        let mut entries = self.lock();
        let id = match wanted {
            Some(id) if !entries.contains_key(&id) && valid_id(&id) => id,
            _ => crate::api::new_statement_id("q"),
        };
        entries.insert(
            id.clone(),
            Entry {
                token: token.to_string(),
                query_id: None,
                sql: first_line(sql),
                started: SystemTime::now(),
                clock: Some(Instant::now()),
                elapsed: None,
                state: State::Running,
                rows: None,
                detached,
                error: None,
                context: Context::default(),
                done: watch::channel(false).0,
                stop: CancellationToken::new(),
            },
        );
        drop(entries);
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        order.push(id.clone());
        if order.len() > MAX_REMEMBERED {
            let mut entries = self.lock();
            let mut excess = order.len() - MAX_REMEMBERED;
            order.retain(|old| {
                let forget =
                    excess > 0 && entries.get(old).is_some_and(|e| e.state != State::Running);
                if forget {
                    excess -= 1;
                    entries.remove(old);
                    self.store.remove(old);
                }
                !forget
            });
        }
        id
    }

    /// Records how a statement ended and holds its rows.
    /// `take_rows`: the rows move into the store (nobody else needs them: a detached
    /// statement); otherwise the store holds a copy and the caller answers with them.
    fn finish(&self, id: &str, result: &mut Result<QueryOutcome, RunError>, take_rows: bool) {
        let mut row_count = 0;
        let mut spilled = false;
        if let Ok(outcome) = result {
            let output = &mut outcome.output;
            row_count = output.rows.len() as u64;
            let complete = !output.truncated;
            let rows = if take_rows {
                std::mem::take(&mut output.rows)
            } else {
                output.rows.clone()
            };
            match self
                .store
                .insert(id, output.columns.clone(), rows, complete)
            {
                Ok(went_to_disk) => spilled = went_to_disk,
                // Pages then come from Snowflake's result cache.
                Err(e) => tracing::warn!(id, error = %e, "cannot hold a result"),
            }
        }
        if take_rows && spilled {
            // The rows went to disk; give the heap they took back to the OS.
            crate::lifecycle::return_free_memory();
        }
        {
            let mut entries = self.lock();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            entry.elapsed = entry.clock.map(|c| c.elapsed());
            match result {
                Ok(outcome) => {
                    entry.state = State::Succeeded;
                    entry.query_id = Some(outcome.output.query_id.clone());
                    entry.rows = (!outcome.output.truncated).then_some(row_count);
                    entry.context = outcome.context.clone();
                }
                Err(e) => {
                    entry.state = match e {
                        RunError::Cancelled { .. } => State::Cancelled,
                        _ => State::Failed,
                    };
                    entry.query_id = failed_query_id(e);
                    entry.error = Some(e.clone());
                }
            }
            entry.done.send_replace(true);
        }
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// Marks a request-owned statement whose request went away mid-run as cancelled (the
    /// runner cancelled it in Snowflake).
    fn abandon(&self, id: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(id)
            && entry.state == State::Running
        {
            entry.state = State::Cancelled;
            entry.elapsed = entry.clock.map(|c| c.elapsed());
            entry.error = Some(RunError::Cancelled { query_id: None });
            entry.done.send_replace(true);
        }
    }

    /// Writes the finished statements to the statements file.
    fn persist(&self) {
        let Some(file) = &self.ids else {
            return;
        };
        // One writer at a time, each with the newest snapshot: two writes never share the
        // temp file, and an older snapshot never replaces a newer one.
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let remembered: Vec<Remembered> = {
            let order = self.order.lock().unwrap_or_else(|e| e.into_inner());
            let entries = self.lock();
            order
                .iter()
                .filter_map(|id| {
                    let e = entries.get(id)?;
                    (e.state != State::Running).then_some(())?;
                    Some(Remembered {
                        id: id.clone(),
                        token: e.token.clone(),
                        query_id: e.query_id.clone(),
                        state: e.state.as_str().to_string(),
                        sql: e.sql.clone(),
                        started_ms: e
                            .started
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_millis() as u64,
                        elapsed_ms: e.elapsed.unwrap_or_default().as_millis() as u64,
                        rows: e.rows,
                    })
                })
                .collect()
        };
        if let Err(e) = file.save(&remembered) {
            tracing::warn!(path = %file.path().display(), error = %e, "cannot write the statements file; statement ids will not survive a restart");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a request-owned statement cancelled if its request future is dropped mid-run.
struct Unfinished<'a> {
    statements: &'a Statements,
    id: &'a str,
    armed: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.statements.abandon(self.id);
        }
    }
}

fn failed_query_id(error: &RunError) -> Option<String> {
    match error {
        RunError::Statement { query_id, .. } | RunError::Cancelled { query_id } => query_id.clone(),
        _ => None,
    }
}

/// A client-chosen id is kept when it is short and plain (it is printed and typed again).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The first non-empty line of the SQL, shortened for a listing.
fn first_line(sql: &str) -> String {
    let line = sql
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut short: String = line.chars().take(120).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_shows_the_first_line_shortened() {
        assert_eq!(first_line("\n  SELECT 1\nFROM t"), "SELECT 1");
        assert_eq!(first_line(&"x".repeat(200)).chars().count(), 121);
        assert!(valid_id("q-0a1b") && !valid_id("a b") && !valid_id(""));
    }

    /// `query --detach` (or an MCP call with `wait_s: 0`) answers before the statement's task
    /// has run; a cancel right after it must still find and stop it.
    #[tokio::test(start_paused = true)]
    async fn a_detached_statement_can_be_cancelled_before_it_has_started() {
        use crate::snowflake::fake::FakeBackend;
        let fake = FakeBackend::with_databases(&[]);
        let pool = crate::pool::Pool::new(
            Arc::new(fake.clone()),
            crate::config::PoolSettings {
                max_size: 1,
                min_idle: 0,
                checkout_timeout: Duration::from_secs(5),
                heartbeat_interval: Duration::from_secs(300),
                max_lifetime: Duration::from_secs(3000),
                login_timeout: Duration::from_secs(10),
            },
        );
        let runner = Arc::new(Runner::new(
            pool,
            Arc::new(crate::sessions::Registry::in_memory(Duration::ZERO)),
            Arc::new(crate::metrics::Metrics::default()),
            crate::config::QuerySettings::default(),
        ));
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::new(dir.path().join("r"), 1 << 20, Duration::from_secs(60));
        let statements = Arc::new(Statements::new(runner, store, None, 100, 1000));
        let input = QueryInput {
            sql: "SELECT SYSTEM$WAIT(60)".into(),
            ..QueryInput::default()
        };
        let id = statements.start_detached("t", input);
        assert!(
            !statements.cancel("other", &id),
            "another token's statement"
        );
        assert!(statements.cancel("t", &id), "found before its task ran");
        let waited = statements
            .wait_page("t", &id, Duration::from_secs(30), 0, 10)
            .await;
        assert!(
            matches!(
                waited,
                Err(StatementError::Failed(RunError::Cancelled { .. }))
            ),
            "{waited:?}"
        );
    }
}
