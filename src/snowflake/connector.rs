//! The real [`Backend`]: snowflake-connector-rs 1.1.1.
//!
//! What the crate lacks, the layers above compensate for: it has no heartbeat or token
//! renewal (the pool checks idle sessions and replaces them before they expire), no logout
//! (sessions end by expiring on Snowflake's side), and no report of the context a statement
//! left behind (the runner reads `CURRENT_*()` back after statements that can change it).

use std::sync::Arc;
use std::time::Duration;

use snowflake_connector_rs as sf;
use tokio_util::sync::CancellationToken;

use super::rows::JsonRow;
use super::values::{type_name, type_scale};
use super::{Backend, BackendError, BoxFuture, ResultColumn, Session, StatementOutput};
use crate::binds::{BindType, BindValue, Params};
use crate::config::{Auth, ConnectionSettings};

/// Logs in with one configured connection.
pub struct ConnectorBackend {
    client: sf::Client,
    describe: String,
    fingerprint: String,
    login_timeout: Duration,
}

impl ConnectorBackend {
    /// Prepares the client; nothing is sent to Snowflake until [`Backend::login`].
    pub fn new(
        settings: &ConnectionSettings,
        login_timeout: Duration,
    ) -> Result<Self, BackendError> {
        let describe = settings.describe();
        let fingerprint = format!(
            "{}@{} {} db={:?} schema={:?} warehouse={:?} role={:?}",
            settings.user,
            settings.account,
            settings.base_url().unwrap_or_default(),
            settings.database,
            settings.schema,
            settings.warehouse,
            settings.role
        );
        let login_error = |message: String| BackendError::Login {
            connection: describe.clone(),
            message,
        };
        let auth = match &settings.auth {
            Auth::Password(secret) | Auth::Pat(secret) => sf::AuthConfig::password(secret.expose()),
            Auth::OAuth(secret) => sf::AuthConfig::oauth(secret.expose()),
            Auth::KeyPair {
                private_key_file,
                passphrase,
            } => {
                crate::config::sources::require_private(private_key_file)
                    .map_err(|e| login_error(e.to_string()))?;
                let pem = std::fs::read_to_string(private_key_file).map_err(|e| {
                    login_error(format!(
                        "cannot read private key {}: {e}",
                        private_key_file.display()
                    ))
                })?;
                let key = match passphrase {
                    Some(p) => {
                        sf::KeyPairConfig::from_encrypted_pem(pem, p.expose().as_bytes().to_vec())
                    }
                    None => sf::KeyPairConfig::from_pem(pem),
                };
                sf::AuthConfig::key_pair(key)
            }
        };
        // Snowflake keep-alive is the pool's job; saying so also gives the login request the
        // SESSION_PARAMETERS object some servers insist on.
        let mut session = sf::SessionConfig::new()
            .with_session_parameter("CLIENT_SESSION_KEEP_ALIVE", serde_json::Value::Bool(false));
        if let Some(v) = &settings.warehouse {
            session = session.with_warehouse(v);
        }
        if let Some(v) = &settings.database {
            session = session.with_database(v);
        }
        if let Some(v) = &settings.schema {
            session = session.with_schema(v);
        }
        if let Some(v) = &settings.role {
            session = session.with_role(v);
        }
        // The runner enforces per-request time limits and cancels in Snowflake; the crate's own
        // response timeout only guards against a server that never answers.
        let query =
            sf::QueryConfig::new().with_query_response_timeout(Duration::from_secs(24 * 3600));
        let mut config = sf::ClientConfig::new(&settings.user, &settings.account, auth)
            .with_session(session)
            .with_query(query);
        if let Some(base) = settings.base_url() {
            let url = url::Url::parse(&base)
                .map_err(|e| login_error(format!("invalid host/port/protocol {base:?}: {e}")))?;
            config = config.with_endpoint(sf::EndpointConfig::custom_base_url(url));
        }
        let client = sf::Client::new(config).map_err(|e| login_error(e.to_string()))?;
        Ok(Self {
            client,
            describe,
            fingerprint,
            login_timeout,
        })
    }
}

impl Backend for ConnectorBackend {
    fn login(&self) -> BoxFuture<'_, Result<Box<dyn Session>, BackendError>> {
        Box::pin(async move {
            let attempt =
                tokio::time::timeout(self.login_timeout, self.client.create_session()).await;
            match attempt {
                Err(_) => Err(BackendError::Unreachable(format!(
                    "login to {} did not answer within {}",
                    self.describe,
                    crate::config::duration::format(self.login_timeout)
                ))),
                Ok(Err(e)) => Err(classify_login_error(&self.describe, &e)),
                Ok(Ok(session)) => Ok(Box::new(ConnectorSession {
                    session: Arc::new(session),
                    timezone: std::sync::Mutex::new(None),
                }) as Box<dyn Session>),
            }
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// Adds one validated value to a statement through the crate's typed wrappers (which encode it
/// as Snowflake's connectors do). Integers and exact decimals go as `FIXED` text, which is how
/// Snowflake takes NUMBER(38, s) beyond what a machine integer holds; NULLs keep their type.
macro_rules! add_bind {
    ($statement:expr, $value:expr, |$s:ident, $b:ident| $add:expr) => {{
        use sf::bind::{Binary, BindType as Wire, RawBind};
        let $s = $statement;
        match $value {
            BindValue::Text(v) => {
                let $b = v.clone();
                $add
            }
            BindValue::Int(n) => {
                let $b = RawBind::new(Wire::Fixed, n.to_string());
                $add
            }
            BindValue::Number(v) => {
                let $b = RawBind::new(Wire::Fixed, v.clone());
                $add
            }
            BindValue::Float(v) => {
                let $b = *v;
                $add
            }
            BindValue::Bool(v) => {
                let $b = *v;
                $add
            }
            BindValue::Date(v) => {
                let $b = *v;
                $add
            }
            BindValue::Time(v) => {
                let $b = sf::bind::Time::try_from(*v).map_err(|e| classify(&e))?;
                $add
            }
            BindValue::TimestampNtz(v) => {
                let $b = sf::bind::TimestampNtz::try_from(*v).map_err(|e| classify(&e))?;
                $add
            }
            BindValue::TimestampLtz(v) => {
                let $b = sf::bind::TimestampLtz::try_from(*v).map_err(|e| classify(&e))?;
                $add
            }
            BindValue::TimestampTz(v) => {
                let $b = sf::bind::TimestampTz::try_from(*v).map_err(|e| classify(&e))?;
                $add
            }
            BindValue::Binary(v) => {
                let $b = Binary::new(v.clone());
                $add
            }
            BindValue::Null(ty) => {
                let $b = RawBind::null(match ty {
                    BindType::Text => Wire::Text,
                    BindType::Int | BindType::Number => Wire::Fixed,
                    BindType::Float => Wire::Real,
                    BindType::Bool => Wire::Boolean,
                    BindType::Date => Wire::Date,
                    BindType::Time => Wire::Time,
                    BindType::TimestampNtz => Wire::TimestampNtz,
                    BindType::TimestampLtz => Wire::TimestampLtz,
                    BindType::TimestampTz => Wire::TimestampTz,
                    BindType::Binary => Wire::Binary,
                });
                $add
            }
        }
    }};
}

struct ConnectorSession {
    session: Arc<sf::Session>,
    /// The session's TIMEZONE parameter, read from Snowflake the first time a result has a
    /// TIMESTAMP_LTZ column, forgotten when a statement may have changed it.
    timezone: std::sync::Mutex<Option<chrono_tz::Tz>>,
}

impl ConnectorSession {
    /// The session's TIMEZONE, asking Snowflake when it is not known.
    async fn timezone(&self) -> Result<chrono_tz::Tz, BackendError> {
        if let Some(tz) = *self.timezone.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(tz);
        }
        let handle = self
            .session
            .query_handle("SHOW PARAMETERS LIKE 'TIMEZONE' IN SESSION".to_string())
            .map_err(|e| classify(&e))?;
        let mut cursor = handle.execute().await.map_err(|e| classify(&e))?;
        let shown = collect(&mut cursor, Some(10), None).await?;
        let value = shown
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case("value"))
            .and_then(|i| {
                shown.rows.iter().find_map(|row| {
                    let cells = crate::row::values(row);
                    let is_timezone = cells.first()?.as_str()?.eq_ignore_ascii_case("TIMEZONE");
                    is_timezone.then(|| cells.get(i)?.as_str().map(str::to_string))?
                })
            })
            .ok_or_else(|| {
                BackendError::Protocol(
                    "SHOW PARAMETERS did not report the session's TIMEZONE".into(),
                )
            })?;
        let tz = parse_timezone(&value).ok_or_else(|| {
            BackendError::Protocol(format!(
                "the session's TIMEZONE {value:?} is not a time zone this daemon knows"
            ))
        })?;
        *self.timezone.lock().unwrap_or_else(|e| e.into_inner()) = Some(tz);
        Ok(tz)
    }
}

/// An IANA time zone name as Snowflake's TIMEZONE parameter holds it (`America/Los_Angeles`,
/// `UTC`, `Etc/UTC`).
fn parse_timezone(name: &str) -> Option<chrono_tz::Tz> {
    name.trim().parse::<chrono_tz::Tz>().ok()
}

/// Whether a statement may change the session's TIMEZONE (`ALTER SESSION SET TIMEZONE`, a
/// script that does): any mention makes the daemon read it again when it next needs it.
fn may_change_timezone(sql: &str) -> bool {
    sql.to_ascii_uppercase().contains("TIMEZONE")
}

impl Session for ConnectorSession {
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        self.execute_bound(sql, &Params::None, max_rows, cancel)
    }

    fn execute_bound<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        Box::pin(async move {
            let handle = match params {
                Params::None => self.session.query_handle(sql.to_string()),
                Params::Positional(values) => {
                    let mut statement = sf::Statement::new_positional(sql.to_string());
                    for value in values {
                        statement = add_bind!(statement, value, |s, b| s.bind(b));
                    }
                    self.session.query_handle(statement)
                }
                Params::Named(values) => {
                    let mut statement = sf::Statement::new_named(sql.to_string());
                    for (name, value) in values {
                        statement =
                            add_bind!(statement, value, |s, b| s.bind_named(name.clone(), b));
                    }
                    self.session.query_handle(statement)
                }
            }
            .map_err(|e| classify(&e))?;
            // Cancels in Snowflake if this future is dropped (client gone) before finishing.
            let guard = CancelOnDrop(Some(handle.canceller()));
            if may_change_timezone(sql) {
                *self.timezone.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            let run = async {
                let mut cursor = handle.execute().await.map_err(|e| classify(&e))?;
                let has_ltz = cursor
                    .schema()
                    .columns()
                    .iter()
                    .any(|c| matches!(c.ty(), sf::ColumnType::TimestampLtz { .. }));
                // Without the session's zone the instants are still exact, shown in UTC.
                let timezone = match has_ltz {
                    true => self
                        .timezone()
                        .await
                        .inspect_err(|e| tracing::warn!(error = %e, "cannot read the session's TIMEZONE; TIMESTAMP_LTZ shown in UTC"))
                        .ok(),
                    false => None,
                };
                collect(&mut cursor, max_rows, timezone).await
            };
            let result = tokio::select! {
                result = run => result,
                () = cancel.cancelled() => Err(BackendError::Cancelled { query_id: None }),
            };
            match &result {
                // Finished: nothing left to cancel.
                Ok(_)
                | Err(BackendError::Statement { .. })
                | Err(BackendError::SessionExpired { .. }) => guard.disarm(),
                // Cancelled by the caller, who is still here: the abort is sent before the
                // answer, so it also reaches Snowflake when the daemon exits right after.
                Err(_) if cancel.is_cancelled() => guard.abort_now().await,
                Err(_) => drop(guard),
            }
            result
        })
    }
}

/// Sends Snowflake an abort for the statement unless disarmed.
struct CancelOnDrop(Option<sf::QueryCanceller>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }

    /// Sends the abort now and waits (boundedly) for Snowflake's answer.
    async fn abort_now(mut self) {
        if let Some(canceller) = self.0.take() {
            match tokio::time::timeout(ABORT_TIMEOUT, canceller.cancel()).await {
                Ok(Ok(status)) => tracing::info!(
                    request_id = canceller.request_id(),
                    ?status,
                    "statement cancelled in Snowflake"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(request_id = canceller.request_id(), error = %e, "cancelling the statement failed")
                }
                Err(_) => tracing::warn!(
                    request_id = canceller.request_id(),
                    "Snowflake did not answer the abort in time"
                ),
            }
        }
    }
}

/// How long an explicit cancellation waits for Snowflake to acknowledge the abort.
const ABORT_TIMEOUT: Duration = Duration::from_secs(5);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(canceller) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                match canceller.cancel().await {
                    Ok(status) => tracing::info!(request_id = canceller.request_id(), ?status, "statement cancelled in Snowflake"),
                    Err(e) => tracing::warn!(request_id = canceller.request_id(), error = %e, "cancelling the statement failed"),
                }
            });
        }
    }
}

/// Reads the result; TIMESTAMP_LTZ cells are shown in `timezone` (the session's).
async fn collect(
    cursor: &mut sf::ResultCursor,
    max_rows: Option<u64>,
    timezone: Option<chrono_tz::Tz>,
) -> Result<StatementOutput, BackendError> {
    let ltz_columns: Vec<usize> = cursor
        .schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.ty(), sf::ColumnType::TimestampLtz { .. }))
        .map(|(i, _)| i)
        .collect();
    let columns = cursor
        .schema()
        .columns()
        .iter()
        .map(|c| ResultColumn {
            name: c.name().to_string(),
            ty: type_name(c.ty()),
            nullable: c.is_nullable(),
            scale: type_scale(c.ty()),
        })
        .collect();
    let mut output = StatementOutput {
        query_id: cursor.query_id().to_string(),
        columns,
        ..Default::default()
    };
    let limit = max_rows.map(|m| m as usize);
    'partitions: while let Some(table) = cursor.next_table().await.map_err(|e| classify(&e))? {
        for row in table.rows::<JsonRow>().map_err(|e| classify(&e))? {
            if limit.is_some_and(|limit| output.rows.len() >= limit) {
                // One row beyond the limit proves the result was cut; fetch no further.
                output.truncated = true;
                break 'partitions;
            }
            let JsonRow(mut cells) = row.map_err(|e| unreadable(&e, &output.query_id))?;
            if let Some(tz) = timezone {
                for &i in &ltz_columns {
                    if let Some(cell) = cells.get_mut(i) {
                        super::values::in_timezone(cell, tz);
                    }
                }
            }
            output.rows.push(crate::row::from_values(&cells));
        }
    }
    Ok(output)
}

/// A row the daemon could not convert: the statement ran, the result is fine in Snowflake,
/// only reading one of its values failed here.
fn unreadable(error: &sf::Error, query_id: &str) -> BackendError {
    match error.kind() {
        sf::ErrorKind::Decode => BackendError::Unreadable {
            message: if error.to_string().contains("recursion limit") {
                format!(
                    "a VARIANT, OBJECT or ARRAY nested deeper than {} levels: {error}",
                    super::rows::MAX_JSON_DEPTH
                )
            } else {
                error.to_string()
            },
            query_id: Some(query_id.to_string()).filter(|q| !q.is_empty()),
        },
        _ => classify(error),
    }
}

fn classify_login_error(describe: &str, error: &sf::Error) -> BackendError {
    match error.kind() {
        sf::ErrorKind::Network | sf::ErrorKind::Timeout => {
            BackendError::Unreachable(format!("login to {describe}: {error}"))
        }
        _ => BackendError::Login {
            connection: describe.to_string(),
            message: error.to_string(),
        },
    }
}

/// Snowflake codes that mean the session token is no longer accepted: the session is gone, the
/// statement did not run, and only a new login helps. Each is named in the official
/// connectors' sources (Python `network.py`, Node.js `gs_errors.js`, JDBC `Constants`).
pub(crate) const SESSION_GONE_CODES: &[(&str, &str)] = &[
    // Node.js SESSION_TOKEN_INVALID; what Snowflake (and the emulator) answer, at HTTP 401,
    // for a token it does not know, e.g. after a backend restart.
    (
        "390104",
        "the session token is invalid: \"User must login again\"",
    ),
    // Node.js GONE_SESSION: the session was closed or dropped on Snowflake's side.
    ("390111", "the session no longer exists"),
    // Python SESSION_EXPIRED_GS_CODE, JDBC SESSION_EXPIRED_GS_CODE: the token's validity ran out.
    ("390112", "the session token expired"),
    // Python MASTER_TOKEN_NOTFOUND_GS_CODE: the session cannot be renewed any more.
    ("390113", "the session's master token was not found"),
    // Python MASTER_TOKEN_EXPIRED_GS_CODE, JDBC AUTH_TOKEN_EXPIRED_GS_CODE, Node.js
    // MASTER_TOKEN_EXPIRED: the session outlived its master token (about four hours).
    ("390114", "the session's master token expired"),
    // Python MASTER_TOKEN_INVALD_GS_CODE: the session's master token is not accepted.
    ("390115", "the session's master token is invalid"),
];

/// Whether `code` is one of [`SESSION_GONE_CODES`].
pub(crate) fn is_session_gone_code(code: &str) -> bool {
    SESSION_GONE_CODES.iter().any(|(gone, _)| *gone == code)
}

/// Maps the crate's error to what the daemon does about it.
fn classify(error: &sf::Error) -> BackendError {
    classify_parts(ErrorParts {
        kind: error.kind(),
        code: error.snowflake_code(),
        message: error.snowflake_message(),
        text: error.to_string(),
        query_id: error.query_id().map(str::to_string),
    })
}

/// What [`classify`] reads from the crate's error; a plain struct so the classification can be
/// tested (the crate's error values cannot be built outside it).
struct ErrorParts<'a> {
    kind: sf::ErrorKind,
    code: Option<&'a str>,
    message: Option<&'a str>,
    /// The error's display text: for a non-2xx answer the crate keeps only
    /// `HTTP {status}: {body preview}`, so the Snowflake code of a 401 is read from here.
    text: String,
    query_id: Option<String>,
}

fn classify_parts(error: ErrorParts<'_>) -> BackendError {
    let ErrorParts {
        kind,
        code,
        message,
        text,
        query_id,
    } = error;
    match kind {
        sf::ErrorKind::SessionExpired => BackendError::SessionExpired { query_id },
        // A session-gone code that the crate does not know (it knows only 390112).
        sf::ErrorKind::Server if code.is_some_and(is_session_gone_code) => {
            BackendError::SessionExpired { query_id }
        }
        sf::ErrorKind::Network if http_status_means_session_gone(&text) => {
            BackendError::SessionExpired { query_id }
        }
        sf::ErrorKind::Network | sf::ErrorKind::Timeout => BackendError::Unreachable(text),
        sf::ErrorKind::Cancelled => BackendError::Cancelled { query_id },
        sf::ErrorKind::Server => BackendError::Statement {
            message: message.map(str::to_string).unwrap_or(text),
            code: code.map(str::to_string),
            sqlstate: None,
            query_id,
        },
        _ if code.is_some_and(is_session_gone_code) => BackendError::SessionExpired { query_id },
        _ => BackendError::Protocol(text),
    }
}

/// A statement answered with a non-2xx HTTP status (`HTTP {status}: {body}` in the crate's
/// words) whose body carries a session-gone code, or with 401 at all: a statement request's
/// only credential is its session token, so "unauthorized" means that token was refused.
fn http_status_means_session_gone(text: &str) -> bool {
    let Some((status, body)) = text
        .strip_prefix("HTTP ")
        .and_then(|rest| rest.split_once(": "))
    else {
        return false;
    };
    if status == "401" {
        return true;
    }
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|body| {
            body.get("code")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .is_some_and(|code| is_session_gone_code(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(kind: sf::ErrorKind, code: Option<&'static str>, text: &str) -> ErrorParts<'static> {
        ErrorParts {
            kind,
            code,
            message: Some("from Snowflake"),
            text: text.to_string(),
            query_id: Some("q1".into()),
        }
    }

    #[test]
    fn every_session_gone_code_is_session_expiry_whatever_the_crate_calls_it() {
        for (code, why) in SESSION_GONE_CODES {
            for kind in [
                sf::ErrorKind::Server,
                sf::ErrorKind::SessionExpired,
                sf::ErrorKind::Auth,
                sf::ErrorKind::Protocol,
            ] {
                let error = classify_parts(parts(kind, Some(code), "Snowflake server error"));
                assert!(
                    error.is_session_expired(),
                    "{code} ({why}) as {kind:?} became {error:?}"
                );
            }
        }
    }

    #[test]
    fn a_401_for_an_unknown_token_is_session_expiry_not_unreachable() {
        // What the emulator (fakesnow) answers for a token it does not know, e.g. after a
        // restart, in the crate's words.
        let text = r#"HTTP 401: {"data":null,"code":"390104","message":"User must login again to access the service.","success":false}"#;
        let error = classify_parts(parts(sf::ErrorKind::Network, None, text));
        assert!(error.is_session_expired(), "{error:?}");
        // A 401 whose body is cut or not JSON still means the token was refused.
        let error = classify_parts(parts(sf::ErrorKind::Network, None, "HTTP 401: <html>"));
        assert!(error.is_session_expired(), "{error:?}");
    }

    #[test]
    fn other_http_statuses_carrying_a_session_gone_code_are_session_expiry() {
        let text =
            r#"HTTP 403: {"code":"390111","message":"Session no longer exists.","success":false}"#;
        let error = classify_parts(parts(sf::ErrorKind::Network, None, text));
        assert!(error.is_session_expired(), "{error:?}");
    }

    /// Answers each HTTP request on `listener` with the next of `answers` (status, body).
    async fn scripted_server(listener: tokio::net::TcpListener, answers: Vec<(u16, &'static str)>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the head and a body of Content-Length bytes.
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.ok();
        }
    }

    /// The real client crate against a server that logs in, then refuses the token the way
    /// Snowflake (and the emulator after a restart) does: HTTP 401, code 390104.
    #[tokio::test]
    async fn the_crate_sees_a_401_session_token_invalid_as_session_expiry() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(scripted_server(
            listener,
            vec![
                (
                    200,
                    r#"{"success":true,"data":{"token":"t1","masterToken":"m1"}}"#,
                ),
                (
                    401,
                    r#"{"data":null,"code":"390104","message":"User must login again to access the service.","success":false}"#,
                ),
                (
                    200,
                    r#"{"data":{"queryId":"q2"},"code":"390111","message":"Session no longer exists.","success":false}"#,
                ),
            ],
        ));
        let settings = crate::config::ConnectionSettings {
            source: crate::config::ConnectionSource::Environment("test".into()),
            account: "test".into(),
            user: "tester".into(),
            auth: Auth::Password(crate::secret::Secret::new("not-a-real-password")),
            host: Some("127.0.0.1".into()),
            port: Some(port),
            protocol: Some("http".into()),
            warehouse: None,
            database: None,
            schema: None,
            role: None,
        };
        let backend = ConnectorBackend::new(&settings, Duration::from_secs(30)).unwrap();
        let session = backend.login().await.expect("login");
        for _ in 0..2 {
            let error = session
                .execute("SELECT 1", None, CancellationToken::new())
                .await
                .expect_err("the token was refused");
            assert!(error.is_session_expired(), "{error:?}");
        }
        server.await.unwrap();
    }

    #[test]
    fn other_failures_keep_their_meaning() {
        let unreachable = classify_parts(parts(sf::ErrorKind::Network, None, "network error"));
        assert!(unreachable.is_unreachable(), "{unreachable:?}");
        let server_5xx = classify_parts(parts(
            sf::ErrorKind::Network,
            None,
            r#"HTTP 503: {"code":"390100","success":false}"#,
        ));
        assert!(server_5xx.is_unreachable(), "{server_5xx:?}");
        let timeout = classify_parts(parts(sf::ErrorKind::Timeout, None, "timed out"));
        assert!(timeout.is_unreachable(), "{timeout:?}");
        // A failed statement, even one whose code starts with 390 (bad credentials is a
        // login matter, not a dead session), stays a statement error with its code.
        for code in ["002003", "390100", "390110"] {
            let statement = classify_parts(parts(sf::ErrorKind::Server, Some(code), "x"));
            match statement {
                BackendError::Statement {
                    code: Some(c),
                    message,
                    query_id,
                    ..
                } => {
                    assert_eq!(c, code);
                    assert_eq!(message, "from Snowflake");
                    assert_eq!(query_id.as_deref(), Some("q1"));
                }
                other => panic!("{code} became {other:?}"),
            }
        }
        let cancelled = classify_parts(parts(sf::ErrorKind::Cancelled, Some("000604"), "x"));
        assert!(matches!(cancelled, BackendError::Cancelled { .. }));
        let protocol = classify_parts(parts(sf::ErrorKind::Protocol, None, "bad payload"));
        assert!(matches!(protocol, BackendError::Protocol(_)));
    }
}
