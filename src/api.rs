//! The JSON wire types of the HTTP API, shared by the server and the client.
//!
//! These are the only types (de)serialized on the wire; the rest of the crate works on plain
//! Rust types and converts at the edges. Field names are fixed by the interface contract in
//! product.md.

use serde::{Deserialize, Serialize};

/// The header that carries a client's token: `Authorization: Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";
/// The token used when a request names none.
pub const DEFAULT_TOKEN: &str = "default";
/// A client-chosen id for a running statement, so it can be cancelled before it returns.
pub const REQUEST_ID_HEADER: &str = "x-snowflaked-request-id";

/// A fresh statement id, `PREFIX-` and 16 hex digits from the OS generator: what a client sends
/// in [`REQUEST_ID_HEADER`], and what the daemon gives a statement that came without one.
/// Unique among one user's statements; not a secret (it only names a statement to its token).
pub fn new_statement_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub pid: u32,
}

/// `POST /v1/query`. Unknown keys are refused: a misspelt `read_only` must not run a write.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub transaction: bool,
    /// Bind parameters: an array for `?` placeholders or an object for `:name` ones. Plain JSON
    /// values map to text, int (integers), float (other numbers), bool and NULL; any type is
    /// given as `{"type": "date", "value": "2024-01-01"}` (see [`crate::binds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// A query tag for this request's statements only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_tag: Option<String>,
    /// Wait at most this long: the statement is then owned by the daemon (a hang-up does not
    /// cancel it) and, if still running, the answer is 202 [`StatementInfo`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Snowflake's limit on QUERY_TAG, in characters.
pub const MAX_QUERY_TAG_CHARS: usize = 2000;

/// One result column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
}

/// A token's context as the client sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_tag: Option<String>,
}

/// The result of `POST /v1/query`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryResponse {
    pub query_id: String,
    pub columns: Vec<Column>,
    /// Rows as arrays: NULL → null, BOOLEAN → bool, integers and decimals → numbers (exact),
    /// VARIANT/OBJECT/ARRAY → embedded JSON, dates and times → ISO-8601 strings.
    pub rows: Vec<crate::row::Row>,
    pub row_count: u64,
    pub truncated: bool,
    /// The statements of the request, one entry each, when there were several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementSummary>,
    /// Every statement's result, in order, when the request ran several (the last one is also
    /// the top-level result). Absent for a single statement, whose answer is the top level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<StatementResult>,
    pub context: Context,
    pub elapsed_ms: u64,
    /// True while this token holds an open transaction after the statement.
    #[serde(default)]
    pub in_transaction: bool,
    /// What the client must hear besides the result, e.g. a part of the token's saved context
    /// that Snowflake no longer accepts and the statement ran without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The daemon's id of the statement (for `result`, `cancel`); `query_id` is Snowflake's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where this answer sits in the whole result (`GET /v1/queries/{id}/result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageInfo>,
}

/// A page of a statement's result: rows `offset..offset + row_count` of `total_rows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageInfo {
    pub offset: u64,
    /// Rows in the whole result, when known.
    pub total_rows: Option<u64>,
    /// Rows exist after this page.
    pub more: bool,
}

/// A statement by its id: `GET /v1/queries/{id}`, and the 202 answer while it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementInfo {
    pub id: String,
    /// Snowflake's query id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub elapsed_ms: u64,
    /// Rows of the whole result, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The first line of the SQL.
    pub sql: String,
    /// Owned by the daemon (started with a wait).
    #[serde(default)]
    pub detached: bool,
    /// The daemon holds the rows; otherwise they come from Snowflake's result cache.
    #[serde(default)]
    pub held: bool,
    /// How it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// `GET /v1/queries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementList {
    pub statements: Vec<StatementInfo>,
}

/// One statement of a multi-statement request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementSummary {
    pub query_id: String,
    /// Rows affected for INSERT/UPDATE/DELETE/MERGE (what Snowflake's `number of rows …`
    /// columns say), rows returned otherwise.
    pub row_count: u64,
}

/// One statement's result within `results`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementResult {
    /// The statement's SQL text.
    pub statement: String,
    pub query_id: String,
    pub columns: Vec<Column>,
    pub rows: Vec<crate::row::Row>,
    /// Rows returned.
    pub row_count: u64,
    pub truncated: bool,
    /// Rows inserted, updated or deleted, for DML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
}

/// `PUT /v1/context`: fields to change; absent fields stay as they are. Unknown keys are a
/// 400 naming the key, not a 200 that changed nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An empty string clears the query tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_tag: Option<String>,
}

/// `GET /v1/context`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextResponse {
    pub token: String,
    pub context: Context,
    pub in_transaction: bool,
}

/// `GET /v1/status`, also `snowflaked status --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_s: u64,
    /// `systemd`, `launchd`, `self` or `foreground`.
    pub activation: String,
    pub idle_timeout_s: u64,
    /// Seconds until the daemon exits if nothing happens; null when it never idles out or a
    /// request is in flight.
    pub idle_left_s: Option<u64>,
    pub sessions: SessionCounts,
    pub tokens: u64,
    pub open_transactions: u64,
    pub queries: QueryCounts,
    pub connection: String,
    pub listeners: Vec<String>,
}

/// Pool occupancy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionCounts {
    /// Every session the pool holds: idle + in_use + pinned + logging_in.
    pub total: u64,
    pub in_use: u64,
    pub idle: u64,
    /// Holding a token's open transaction between its statements.
    #[serde(default)]
    pub pinned: u64,
    pub logging_in: u64,
    pub max: u64,
    pub logins: u64,
    pub login_failures: u64,
}

/// Statements served since start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryCounts {
    pub served: u64,
    pub failed: u64,
    pub running: u64,
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSession {
    pub token: String,
}

/// `GET /v1/sessions`: one entry per known token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub token: String,
    pub context: Context,
    pub in_transaction: bool,
    pub last_used_s_ago: u64,
    pub minted: bool,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `DELETE /v1/sessions/current` and `POST /v1/queries/{id}/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
    pub message: String,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, machine-readable (`kind`) and human-readable (`message`, `hint`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For a failed statement of a transaction request: its 1-based position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    /// What the token's saved context lacked when the statement ran (the client prints each
    /// on stderr, as for a successful answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ErrorDetail {
    /// The message followed by what identifies the failure, as people and models read it:
    /// `message (statement 2, code 002003, sqlstate 42S02, query id 01b2…)`.
    pub fn message_with_facts(&self) -> String {
        let facts: Vec<String> = [
            self.statement.map(|s| format!("statement {s}")),
            self.code.as_ref().map(|c| format!("code {c}")),
            self.sqlstate.as_ref().map(|s| format!("sqlstate {s}")),
            self.query_id.as_ref().map(|q| format!("query id {q}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if facts.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, facts.join(", "))
        }
    }

    /// An error with only a kind and a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            sqlstate: None,
            query_id: None,
            hint: None,
            statement: None,
            warnings: Vec::new(),
        }
    }
}

/// The `kind` of an error answer, written in snake_case on the wire. The server picks one for
/// every failure (`server::error`); the client picks its exit status from it. A kind this
/// build does not know (a newer daemon's) is kept as written in [`ErrorKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    // The request itself.
    BadRequest,
    BodyTooLarge,
    RequestTimeout,
    NotFound,
    MethodNotAllowed,
    UnknownToken,
    ForeignHost,
    Forbidden,
    TooManyTokens,
    // The statement.
    ReadOnly,
    StatementFailed,
    Cancelled,
    Timeout,
    TransactionLost,
    Conflict,
    ResultGone,
    ResultUnreadable,
    // Snowflake and the daemon.
    LoginFailed,
    SnowflakeUnreachable,
    PoolExhausted,
    ShuttingDown,
    StateNotSaved,
    Internal,
    // Only the client writes these (`query --format json` on a failure that is not the
    // daemon's answer).
    DaemonUnreachable,
    Protocol,
    Usage,
    /// A kind this build does not know, as written.
    #[serde(untagged)]
    Other(String),
}

impl ErrorKind {
    /// The wire name (`statement_failed`).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::UnknownToken => "unknown_token",
            ErrorKind::ForeignHost => "foreign_host",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::TooManyTokens => "too_many_tokens",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::StatementFailed => "statement_failed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TransactionLost => "transaction_lost",
            ErrorKind::Conflict => "conflict",
            ErrorKind::ResultGone => "result_gone",
            ErrorKind::ResultUnreadable => "result_unreadable",
            ErrorKind::LoginFailed => "login_failed",
            ErrorKind::SnowflakeUnreachable => "snowflake_unreachable",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::StateNotSaved => "state_not_saved",
            ErrorKind::Internal => "internal",
            ErrorKind::DaemonUnreachable => "daemon_unreachable",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Usage => "usage",
            ErrorKind::Other(kind) => kind,
        }
    }
}

/// `"statement_failed".into()`: the kind of that wire name (tests and the client's own kinds).
impl From<&str> for ErrorKind {
    fn from(wire: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(wire.to_string()))
            .unwrap_or_else(|_| ErrorKind::Other(wire.to_string()))
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_snake_case_on_the_wire_and_as_str_agrees() {
        use ErrorKind::*;
        let every_known = [
            BadRequest,
            BodyTooLarge,
            RequestTimeout,
            NotFound,
            MethodNotAllowed,
            UnknownToken,
            ForeignHost,
            Forbidden,
            TooManyTokens,
            ReadOnly,
            StatementFailed,
            Cancelled,
            Timeout,
            TransactionLost,
            Conflict,
            ResultGone,
            ResultUnreadable,
            LoginFailed,
            SnowflakeUnreachable,
            PoolExhausted,
            ShuttingDown,
            StateNotSaved,
            Internal,
            DaemonUnreachable,
            Protocol,
            Usage,
        ];
        for kind in every_known {
            let wire = serde_json::to_value(&kind).unwrap();
            assert_eq!(wire, serde_json::Value::String(kind.as_str().into()));
            assert_eq!(serde_json::from_value::<ErrorKind>(wire).unwrap(), kind);
        }
        assert_eq!(ErrorKind::ReadOnly.to_string(), "read_only");
        assert_eq!(ErrorKind::from("read_only"), ErrorKind::ReadOnly);
        assert_eq!(ErrorKind::from("new"), ErrorKind::Other("new".into()));
    }

    #[test]
    fn a_newer_daemons_kind_still_parses_and_round_trips() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error": {"kind": "quota_exceeded", "message": "slow down"}}"#,
        )
        .unwrap();
        assert_eq!(body.error.kind, ErrorKind::Other("quota_exceeded".into()));
        assert_eq!(
            serde_json::to_value(&body).unwrap()["error"]["kind"],
            "quota_exceeded"
        );
    }
}
