//! A scriptable in-memory [`Backend`] for fast, deterministic fault-injection tests.
//!
//! It is not an emulator: it understands just enough SQL to exercise the daemon's own logic
//! (`USE …`, `CURRENT_*()`, `BEGIN`/`COMMIT`/`ROLLBACK`, `SYSTEM$WAIT(n)`, `SELECT 1`) and
//! lets a test expire sessions, take Snowflake down, slow logins, and see every statement each
//! session ran. It also fails loudly if two statements ever run at once on one session,
//! which real Snowflake sessions (and the emulator) do not allow. The real path is tested
//! against the emulator; this fake is in addition, never instead.

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

#[derive(Default)]
struct FakeState {
    logins: u64,
    next_query: u64,
    down: bool,
    login_delay: Duration,
    databases: BTreeSet<String>,
    sessions: HashMap<u64, FakeSession>,
    /// (session id, statement) in execution order.
    log: Vec<(u64, String)>,
    cancelled: u64,
}

#[derive(Default, Clone)]
struct FakeSession {
    database: Option<String>,
    schema: Option<String>,
    warehouse: Option<String>,
    role: Option<String>,
    in_transaction: bool,
    expired: bool,
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

    /// Drops a database (sessions using it keep its name until they switch, as in Snowflake).
    pub fn drop_database(&self, name: &str) {
        self.lock().databases.remove(&name.to_ascii_uppercase());
    }

    /// Snowflake down (`true`) or back (`false`).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Each login takes this long.
    pub fn set_login_delay(&self, delay: Duration) {
        self.lock().login_delay = delay;
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
            state.logins += 1;
            let id = state.logins;
            state.sessions.insert(
                id,
                FakeSession {
                    role: Some("PUBLIC".into()),
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

impl Session for FakeSessionHandle {
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        Box::pin(async move {
            let query_id = {
                let mut state = self.backend.lock();
                if state.down {
                    return Err(BackendError::Unreachable(
                        "connection refused (fake)".into(),
                    ));
                }
                state.next_query += 1;
                let query_id = format!("fake-{:06}", state.next_query);
                let session = state.sessions.get_mut(&self.id).expect("session exists");
                if session.expired {
                    return Err(BackendError::SessionExpired { query_id: None });
                }
                assert!(
                    !session.busy,
                    "two statements ran at once on fake session {}",
                    self.id
                );
                session.busy = true;
                state.log.push((self.id, sql.to_string()));
                query_id
            };
            let _busy = BusyGuard(self);
            let wait = wait_seconds(sql);
            if let Some(seconds) = wait {
                let cancelled = tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => false,
                    () = cancel.cancelled() => true,
                };
                if cancelled {
                    self.backend.lock().cancelled += 1;
                    return Err(BackendError::Cancelled {
                        query_id: Some(query_id),
                    });
                }
            }
            let mut state = self.backend.lock();
            let databases = state.databases.clone();
            let session = state.sessions.get_mut(&self.id).expect("session exists");
            let output = interpret(session, &databases, sql, &query_id, wait)?;
            Ok(limit(output, max_rows))
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

fn wait_seconds(sql: &str) -> Option<f64> {
    let upper = sql.to_ascii_uppercase();
    let start = upper.find("SYSTEM$WAIT(")? + "SYSTEM$WAIT(".len();
    let end = upper[start..].find(')')? + start;
    upper[start..end].trim().parse().ok()
}

fn interpret(
    session: &mut FakeSession,
    databases: &BTreeSet<String>,
    sql: &str,
    query_id: &str,
    wait: Option<f64>,
) -> Result<StatementOutput, BackendError> {
    let text = sql.trim().trim_end_matches(';').trim();
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
                session.database = Some(name);
                session.schema = Some("PUBLIC".into());
            }
            "SCHEMA" => session.schema = Some(name),
            "WAREHOUSE" => session.warehouse = Some(name),
            "ROLE" => session.role = Some(name),
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
        let s = session.clone();
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
    match upper.as_str() {
        "BEGIN" | "BEGIN TRANSACTION" | "START TRANSACTION" => {
            session.in_transaction = true;
            return Ok(status("Statement executed successfully."));
        }
        "COMMIT" | "ROLLBACK" => {
            session.in_transaction = false;
            return Ok(status("Statement executed successfully."));
        }
        "SELECT 1" => return Ok(one_value("1", Value::from(1), query_id)),
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
