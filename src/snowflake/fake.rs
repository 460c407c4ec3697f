//! A scriptable in-memory [`Backend`] for fast, deterministic fault-injection tests.
//!
//! It is not an emulator: it understands just enough SQL to exercise the daemon's own logic and
//! lets a test expire sessions, take Snowflake down, restart it, fail or slow logins, slow every
//! statement, and see every statement each session ran and in which context. It also fails
//! loudly if two statements ever run at once on one session, which real Snowflake sessions (and
//! the emulator) do not allow. The real path is tested against the emulator; this fake is in
//! addition, never instead.
//!
//! # Its dialect
//! Comments (`/* … */`, `-- …`) are ignored, so a test can tag statements (`SELECT 1 /* t3 */`).
//! - `USE DATABASE|SCHEMA|WAREHOUSE|ROLE <name>`; a database must exist ([`FakeBackend::with_databases`],
//!   [`FakeBackend::create_database`]), anything else is accepted.
//! - `SELECT CURRENT_DATABASE(), …` (the context read-back), `SELECT 1`, `SELECT SYSTEM$WAIT(n)`
//!   (takes `n` seconds, cancellable), `ROWS n` (`n` numbered rows), `FAIL…` (a compilation error).
//! - One table of string keys, outside any database so writes can be checked across restarts:
//!   `INSERT INTO <any name> VALUES (<key>)` or `INSERT <key>` adds a row (quotes around the key
//!   are dropped); `SELECT ROWS` returns the committed rows plus the session's own uncommitted
//!   ones, one `KEY` column, sorted. [`FakeBackend::committed_rows`] reads them from a test.
//! - `BEGIN` / `BEGIN TRANSACTION` / `START TRANSACTION` opens a transaction (a second BEGIN
//!   leaves it open); rows inserted inside it are seen only by that session until `COMMIT`,
//!   and `ROLLBACK` drops them. Outside a transaction a row is committed at once.
//! - Anything else answers `ok`.
//!
//! # Sessions and faults
//! A session lives as long as its handle: dropping the handle ends it and discards its
//! uncommitted rows ([`FakeBackend::live_sessions`] counts handles alive). Expiry
//! ([`FakeBackend::expire_all_sessions`]) and a restart ([`FakeBackend::restart`]) make every
//! existing session answer `SessionExpired`; a restart also discards open transactions. While
//! Snowflake is down ([`FakeBackend::set_down`]) logins and statements fail `Unreachable`; a
//! statement already running when it goes down still takes effect, but its answer is lost
//! (`Unreachable`), as when the network fails after Snowflake received the request.
//! Everything is driven by tokio timers, so it is deterministic under paused time.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Backend, BackendError, BoxFuture, ResultColumn, Session, StatementOutput};
use crate::row;

/// A fake Snowflake shared by every session it hands out.
#[derive(Clone, Default)]
pub struct FakeBackend {
    state: Arc<Mutex<FakeState>>,
}

/// A session's context as the fake knows it (what `CURRENT_*()` would report).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FakeContext {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
}

/// One statement as the fake received it.
#[derive(Debug, Clone)]
pub struct LoggedStatement {
    /// The fake's id of the session that ran it.
    pub session: u64,
    /// The statement's text, exactly as sent.
    pub sql: String,
    /// The session's context when the statement started.
    pub context: FakeContext,
    /// The bind parameters sent with it.
    pub params: crate::binds::Params,
}

#[derive(Default)]
struct FakeState {
    logins: u64,
    next_query: u64,
    down: bool,
    login_fails: bool,
    login_delay: Duration,
    statement_delay: Duration,
    databases: BTreeSet<String>,
    /// Sessions whose handle is alive, by id.
    sessions: HashMap<u64, FakeSession>,
    /// Every statement in execution order.
    log: Vec<LoggedStatement>,
    /// Committed rows of the one table, in commit order.
    committed: Vec<String>,
    cancelled: u64,
}

#[derive(Default, Clone)]
struct FakeSession {
    context: FakeContext,
    in_transaction: bool,
    /// Rows inserted inside the open transaction.
    pending: Vec<String>,
    /// The session token expired: statements are refused, a running one finishes.
    expired: bool,
    /// Snowflake restarted since the login: the session is unknown, a running statement is lost.
    gone: bool,
    busy: bool,
}

impl FakeBackend {
    /// A fake that knows the given databases (anything else does not exist).
    pub fn with_databases(names: &[&str]) -> Self {
        let fake = Self::default();
        fake.lock().databases = names.iter().map(|n| n.to_ascii_uppercase()).collect();
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live session's token becomes expired, as after an hour without renewal.
    pub fn expire_all_sessions(&self) {
        for session in self.lock().sessions.values_mut() {
            session.expired = true;
        }
    }

    /// Snowflake restarts: every existing session token becomes unknown (statements answer
    /// `SessionExpired`) and every open transaction is rolled back. Databases and committed
    /// rows survive (see [`FakeBackend::restart_empty`] for the variant that loses databases).
    pub fn restart(&self) {
        for session in self.lock().sessions.values_mut() {
            session.gone = true;
            session.in_transaction = false;
            session.pending.clear();
        }
    }

    /// A restart that also loses every database, as a fresh account would (committed rows are
    /// kept so a test can still check its writes). Sessions keep the names they had, as with
    /// [`FakeBackend::drop_database`].
    pub fn restart_empty(&self) {
        self.restart();
        self.lock().databases.clear();
    }

    /// Drops a database (sessions using it keep its name until they switch, as in Snowflake).
    pub fn drop_database(&self, name: &str) {
        self.lock().databases.remove(&name.to_ascii_uppercase());
    }

    /// Creates a database (again).
    pub fn create_database(&self, name: &str) {
        self.lock().databases.insert(name.to_ascii_uppercase());
    }

    /// Snowflake down (`true`) or back (`false`).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// While `true`, every login is refused as with bad credentials.
    pub fn set_login_fails(&self, fails: bool) {
        self.lock().login_fails = fails;
    }

    /// Each login takes this long.
    pub fn set_login_delay(&self, delay: Duration) {
        self.lock().login_delay = delay;
    }

    /// Each statement takes at least this long (cancellable, like `SYSTEM$WAIT`); its effect
    /// happens at the end.
    pub fn set_statement_delay(&self, delay: Duration) {
        self.lock().statement_delay = delay;
    }

    /// How many logins succeeded.
    pub fn logins(&self) -> u64 {
        self.lock().logins
    }

    /// How many statements were cancelled.
    pub fn cancelled(&self) -> u64 {
        self.lock().cancelled
    }

    /// Every statement run so far, with the id of the session that ran it.
    pub fn statements(&self) -> Vec<(u64, String)> {
        self.lock()
            .log
            .iter()
            .map(|s| (s.session, s.sql.clone()))
            .collect()
    }

    /// Every statement run so far, with its session and the session's context at the time.
    pub fn statement_log(&self) -> Vec<LoggedStatement> {
        self.lock().log.clone()
    }

    /// How many sessions hold an open transaction.
    pub fn open_transactions(&self) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.in_transaction)
            .count()
    }

    /// How many session handles are alive (a dropped handle is a session gone).
    pub fn live_sessions(&self) -> usize {
        self.lock().sessions.len()
    }

    /// The committed rows of the table, in commit order.
    pub fn committed_rows(&self) -> Vec<String> {
        self.lock().committed.clone()
    }
}

impl Backend for FakeBackend {
    fn login(&self) -> BoxFuture<'_, Result<Box<dyn Session>, BackendError>> {
        Box::pin(async move {
            let delay = self.lock().login_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut state = self.lock();
            if state.down {
                return Err(BackendError::Unreachable(
                    "connection refused (fake)".into(),
                ));
            }
            if state.login_fails {
                return Err(BackendError::Login {
                    connection: self.describe(),
                    message: "incorrect username or password was specified (fake)".into(),
                });
            }
            state.logins += 1;
            let id = state.logins;
            state.sessions.insert(
                id,
                FakeSession {
                    context: FakeContext {
                        role: Some("PUBLIC".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            );
            Ok(Box::new(FakeSessionHandle {
                id,
                backend: self.clone(),
            }) as Box<dyn Session>)
        })
    }

    fn describe(&self) -> String {
        "fake@fake (test)".to_string()
    }
}

struct FakeSessionHandle {
    id: u64,
    backend: FakeBackend,
}

impl Drop for FakeSessionHandle {
    /// The session ends with its handle; its uncommitted rows go with it.
    fn drop(&mut self) {
        self.backend.lock().sessions.remove(&self.id);
    }
}

impl Session for FakeSessionHandle {
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        self.execute_bound(sql, &crate::binds::Params::None, max_rows, cancel)
    }

    /// Accepts parameters and records them with the statement; they change nothing else.
    fn execute_bound<'a>(
        &'a self,
        sql: &'a str,
        params: &'a crate::binds::Params,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        Box::pin(async move {
            let (query_id, delay) = {
                let mut state = self.backend.lock();
                if state.down {
                    return Err(BackendError::Unreachable(
                        "connection refused (fake)".into(),
                    ));
                }
                state.next_query += 1;
                let query_id = format!("fake-{:06}", state.next_query);
                let delay = state.statement_delay;
                let session = state.sessions.get_mut(&self.id).expect("session exists");
                if session.expired || session.gone {
                    return Err(BackendError::SessionExpired { query_id: None });
                }
                assert!(
                    !session.busy,
                    "two statements ran at once on fake session {}",
                    self.id
                );
                session.busy = true;
                let context = session.context.clone();
                state.log.push(LoggedStatement {
                    session: self.id,
                    sql: sql.to_string(),
                    context,
                    params: params.clone(),
                });
                (query_id, delay)
            };
            let _busy = BusyGuard(self);
            let text = strip_comments(sql);
            let wait = wait_seconds(&text);
            let takes = delay + Duration::from_secs_f64(wait.unwrap_or(0.0));
            if !takes.is_zero() {
                let cancelled = tokio::select! {
                    () = tokio::time::sleep(takes) => false,
                    () = cancel.cancelled() => true,
                };
                if cancelled {
                    self.backend.lock().cancelled += 1;
                    return Err(BackendError::Cancelled {
                        query_id: Some(query_id),
                    });
                }
            }
            let mut guard = self.backend.lock();
            let state = &mut *guard;
            let session = state.sessions.get_mut(&self.id).expect("session exists");
            if session.gone {
                // Snowflake restarted while the statement ran: it is lost with the session.
                return Err(BackendError::SessionExpired {
                    query_id: Some(query_id),
                });
            }
            let output = interpret(
                session,
                &state.databases,
                &mut state.committed,
                &text,
                &query_id,
                wait,
            );
            if state.down {
                // It ran, but the answer never reached the client.
                return Err(BackendError::Unreachable(
                    "connection reset while waiting for the answer (fake)".into(),
                ));
            }
            Ok(limit(output?, max_rows))
        })
    }
}

/// Marks the session free again however the statement ends (including cancellation by drop).
struct BusyGuard<'a>(&'a FakeSessionHandle);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.backend.lock();
        if let Some(session) = state.sessions.get_mut(&self.0.id) {
            if session.busy && std::thread::panicking() {
                return;
            }
            session.busy = false;
        }
    }
}

/// The statement without its comments (string literals are not special in this dialect).
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    loop {
        let block = rest.find("/*");
        let line = rest.find("--");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                out.push(' ');
                rest = rest[b + 2..]
                    .find("*/")
                    .map_or("", |e| &rest[b + 2 + e + 2..]);
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                out.push(' ');
                rest = rest[l..].find('\n').map_or("", |e| &rest[l + e..]);
            }
            _ => {
                out.push_str(rest);
                return out.trim().to_string();
            }
        }
    }
}

fn wait_seconds(sql: &str) -> Option<f64> {
    let upper = sql.to_ascii_uppercase();
    let start = upper.find("SYSTEM$WAIT(")? + "SYSTEM$WAIT(".len();
    let end = upper[start..].find(')')? + start;
    upper[start..end].trim().parse().ok()
}

/// The key of `INSERT INTO t VALUES (<key>)` or `INSERT <key>`.
fn inserted_key(text: &str) -> Option<String> {
    let rest = text
        .get(..6)?
        .eq_ignore_ascii_case("INSERT")
        .then(|| &text[6..])?;
    let key = match (rest.find('('), rest.rfind(')')) {
        (Some(open), Some(close)) if open < close => &rest[open + 1..close],
        _ => rest,
    };
    let key = key.trim().trim_matches(|c| c == '\'' || c == '"');
    (!key.is_empty()).then(|| key.to_string())
}

fn interpret(
    session: &mut FakeSession,
    databases: &BTreeSet<String>,
    committed: &mut Vec<String>,
    text: &str,
    query_id: &str,
    wait: Option<f64>,
) -> Result<StatementOutput, BackendError> {
    let text = text.trim().trim_end_matches(';').trim();
    let upper = text.to_ascii_uppercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    let fail = |message: String, code: &str| BackendError::Statement {
        message,
        code: Some(code.to_string()),
        sqlstate: Some("02000".to_string()),
        query_id: Some(query_id.to_string()),
    };
    let status = |message: &str| one_value("status", Value::String(message.to_string()), query_id);
    if let Some(seconds) = wait {
        return Ok(one_value(
            "SYSTEM$WAIT",
            Value::String(format!("waited {seconds} seconds")),
            query_id,
        ));
    }
    if upper.starts_with("USE ") && words.len() >= 3 {
        let name = unquote(words[2]);
        let context = &mut session.context;
        match words[1].to_ascii_uppercase().as_str() {
            "DATABASE" => {
                if !databases.contains(&name) {
                    return Err(fail(
                        format!(
                            "Object does not exist, or operation cannot be performed: database {name}"
                        ),
                        "002043",
                    ));
                }
                context.database = Some(name);
                context.schema = Some("PUBLIC".into());
            }
            "SCHEMA" => context.schema = Some(name),
            "WAREHOUSE" => context.warehouse = Some(name),
            "ROLE" => context.role = Some(name),
            _ => {
                return Err(fail(
                    format!("SQL compilation error: syntax error near {}", words[1]),
                    "001003",
                ));
            }
        }
        return Ok(status("Statement executed successfully."));
    }
    if upper.starts_with("SELECT CURRENT_DATABASE()") {
        let s = session.context.clone();
        let cell = |v: Option<String>| v.map(Value::String).unwrap_or(Value::Null);
        return Ok(StatementOutput {
            query_id: query_id.to_string(),
            columns: ["DATABASE", "SCHEMA", "WAREHOUSE", "ROLE"]
                .iter()
                .map(|n| text_column(n))
                .collect(),
            rows: vec![row::from_values(&[
                cell(s.database),
                cell(s.schema),
                cell(s.warehouse),
                cell(s.role),
            ])],
            truncated: false,
        });
    }
    if let Some(key) = inserted_key(text) {
        if session.in_transaction {
            session.pending.push(key);
        } else {
            committed.push(key);
        }
        return Ok(one_value(
            "number of rows inserted",
            Value::from(1),
            query_id,
        ));
    }
    match upper.as_str() {
        "BEGIN" | "BEGIN TRANSACTION" | "START TRANSACTION" => {
            session.in_transaction = true;
            return Ok(status("Statement executed successfully."));
        }
        "COMMIT" => {
            session.in_transaction = false;
            committed.append(&mut session.pending);
            return Ok(status("Statement executed successfully."));
        }
        "ROLLBACK" => {
            session.in_transaction = false;
            session.pending.clear();
            return Ok(status("Statement executed successfully."));
        }
        "SELECT 1" => return Ok(one_value("1", Value::from(1), query_id)),
        "SELECT ROWS" => {
            let mut keys: Vec<&String> = committed.iter().chain(&session.pending).collect();
            keys.sort();
            return Ok(StatementOutput {
                query_id: query_id.to_string(),
                columns: vec![text_column("KEY")],
                rows: keys
                    .into_iter()
                    .map(|k| row::from_values(&[Value::String(k.clone())]))
                    .collect(),
                truncated: false,
            });
        }
        _ => {}
    }
    if upper.starts_with("FAIL") {
        return Err(fail(
            "SQL compilation error: syntax error line 1 at position 0 unexpected 'FAIL'.".into(),
            "001003",
        ));
    }
    if let Some(rest) = upper.strip_prefix("ROWS ") {
        let count: usize = rest.trim().parse().unwrap_or(0);
        return Ok(StatementOutput {
            query_id: query_id.to_string(),
            columns: vec![ResultColumn {
                name: "N".into(),
                ty: "NUMBER".into(),
                nullable: false,
                scale: Some(0),
            }],
            rows: (0..count)
                .map(|i| row::from_values(&[Value::from(i)]))
                .collect(),
            truncated: false,
        });
    }
    Ok(status("ok"))
}

fn unquote(word: &str) -> String {
    if word.len() >= 2 && word.starts_with('"') && word.ends_with('"') {
        word[1..word.len() - 1].to_string()
    } else {
        word.to_ascii_uppercase()
    }
}

fn text_column(name: &str) -> ResultColumn {
    ResultColumn {
        name: name.to_string(),
        ty: "TEXT".into(),
        nullable: true,
        scale: None,
    }
}

fn one_value(name: &str, value: Value, query_id: &str) -> StatementOutput {
    StatementOutput {
        query_id: query_id.to_string(),
        columns: vec![text_column(name)],
        rows: vec![row::from_values(&[value])],
        truncated: false,
    }
}

fn limit(mut output: StatementOutput, max_rows: Option<u64>) -> StatementOutput {
    if let Some(max) = max_rows
        && output.rows.len() as u64 > max
    {
        output.rows.truncate(max as usize);
        output.truncated = true;
    }
    output
}

#[cfg(test)]
mod tests {
    //! The fake's own contract, which the randomized schedule test relies on.

    use super::*;

    async fn run(session: &dyn Session, sql: &str) -> Result<StatementOutput, BackendError> {
        session.execute(sql, None, CancellationToken::new()).await
    }

    fn keys(output: &StatementOutput) -> Vec<String> {
        output
            .rows
            .iter()
            .map(|r| row::values(r)[0].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn rows_are_private_to_the_transaction_until_commit() {
        let fake = FakeBackend::default();
        let a = fake.login().await.unwrap();
        let b = fake.login().await.unwrap();
        run(&*a, "INSERT INTO t VALUES ('auto') /* t1 */")
            .await
            .unwrap();
        run(&*a, "BEGIN").await.unwrap();
        run(&*a, "INSERT kept").await.unwrap();
        assert_eq!(
            keys(&run(&*a, "SELECT ROWS").await.unwrap()),
            ["auto", "kept"]
        );
        assert_eq!(keys(&run(&*b, "SELECT ROWS").await.unwrap()), ["auto"]);
        run(&*a, "COMMIT").await.unwrap();
        run(&*a, "BEGIN").await.unwrap();
        run(&*a, "INSERT INTO t VALUES (\"dropped\")")
            .await
            .unwrap();
        run(&*a, "ROLLBACK -- changed my mind").await.unwrap();
        assert_eq!(fake.committed_rows(), ["auto", "kept"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_handle_ends_the_session_and_its_transaction() {
        let fake = FakeBackend::default();
        let a = fake.login().await.unwrap();
        let _b = fake.login().await.unwrap();
        run(&*a, "BEGIN").await.unwrap();
        run(&*a, "INSERT lost").await.unwrap();
        assert_eq!((fake.live_sessions(), fake.open_transactions()), (2, 1));
        drop(a);
        assert_eq!((fake.live_sessions(), fake.open_transactions()), (1, 0));
        assert!(fake.committed_rows().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_forgets_sessions_and_open_transactions() {
        let fake = FakeBackend::with_databases(&["DB"]);
        let a = fake.login().await.unwrap();
        run(&*a, "BEGIN").await.unwrap();
        run(&*a, "INSERT lost").await.unwrap();
        fake.restart();
        assert!(run(&*a, "COMMIT").await.unwrap_err().is_session_expired());
        assert!(fake.committed_rows().is_empty());
        assert_eq!(fake.live_sessions(), 1, "the handle is still held");
        let b = fake.login().await.unwrap();
        run(&*b, "USE DATABASE db").await.unwrap();
        fake.restart_empty();
        let c = fake.login().await.unwrap();
        assert!(run(&*c, "USE DATABASE db").await.is_err());
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn logins_can_be_refused() {
        let fake = FakeBackend::default();
        fake.set_login_fails(true);
        assert!(matches!(
            fake.login().await.err().unwrap(),
            BackendError::Login { .. }
        ));
        fake.set_login_fails(false);
        assert!(fake.login().await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_log_records_each_statements_context() {
        let fake = FakeBackend::with_databases(&["DB"]);
        let a = fake.login().await.unwrap();
        run(&*a, "USE DATABASE db /* t1 */").await.unwrap();
        run(&*a, "SELECT 1 /* t1 */").await.unwrap();
        let log = fake.statement_log();
        assert_eq!(log[0].context.database, None);
        assert_eq!(log[1].context.database.as_deref(), Some("DB"));
        assert_eq!(log[1].sql, "SELECT 1 /* t1 */");
        assert_eq!(
            crate::row::values(&run(&*a, "SELECT 1 /* tag */").await.unwrap().rows[0])[0],
            Value::from(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_statement_running_when_snowflake_goes_down_takes_effect_but_loses_its_answer() {
        let fake = FakeBackend::default();
        fake.set_statement_delay(Duration::from_secs(1));
        let a = fake.login().await.unwrap();
        let insert = run(&*a, "INSERT k");
        let outage = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            fake.set_down(true);
        };
        let (result, ()) = tokio::join!(insert, outage);
        assert!(result.unwrap_err().is_unreachable());
        assert_eq!(fake.committed_rows(), ["k"]);
    }
}
