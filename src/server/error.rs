//! The single place where failures become HTTP answers: a status code and the contract's
//! `{"error": {kind, message, code?, sqlstate?, query_id?, hint?}}` body.

use hyper::StatusCode;

use crate::api::{ErrorBody, ErrorDetail, ErrorKind};
use crate::runner::RunError;
use crate::sessions::registry::RegistryError;

/// A failure on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Box<ErrorDetail>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: Box::new(ErrorDetail::new(kind, message)),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.detail.hint = Some(hint.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, message)
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, format!("no route {path}"))
            .with_hint("routes: /health, /v1/status, /v1/query, /v1/context, /v1/sessions, /v1/queries/{id}/cancel, /v1/shutdown, /metrics")
    }

    pub fn method_not_allowed(method: &hyper::Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on {path}"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: (*self.detail).clone(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let message = error.to_string();
        match error {
            RegistryError::Full { .. } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorKind::TooManyTokens, message)
                .with_hint("end tokens no longer in use (`snowflaked session list`, `snowflaked session end TOKEN`) or raise tokens.max"),
            RegistryError::NotSaved { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::StateNotSaved, message)
                .with_hint("check that the state directory is writable and the disk not full"),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(error: RunError) -> Self {
        let message = error.to_string();
        match error {
            RunError::BadRequest(_) => ApiError::bad_request(message),
            RunError::ReadOnly { statement, .. } => {
                let mut e = ApiError::new(StatusCode::FORBIDDEN, ErrorKind::ReadOnly, message)
                    .with_hint("run it without --read-only (and without query.read_only in the config) if a write is intended");
                e.detail.statement = Some(statement);
                e
            }
            RunError::Statement {
                code,
                sqlstate,
                query_id,
                statement,
                rolled_back,
                warnings,
                ..
            } => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorKind::StatementFailed,
                    message,
                );
                e.detail.hint = hint_for(code.as_deref(), &e.detail.message);
                if rolled_back {
                    e.detail.hint = Some(match e.detail.hint.take() {
                        Some(h) => format!("the transaction was rolled back; {h}"),
                        None => {
                            "the transaction was rolled back; nothing it did was kept".to_string()
                        }
                    });
                }
                e.detail.code = code;
                e.detail.sqlstate = sqlstate;
                e.detail.query_id = query_id;
                e.detail.statement = statement;
                e.detail.warnings = warnings;
                e
            }
            RunError::Login(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, ErrorKind::LoginFailed, message)
                    .with_hint("check the connection with `snowflaked config --check`")
            }
            RunError::Unreachable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::SnowflakeUnreachable,
                message,
            )
            .with_hint("the daemon retries by itself; check the network or Snowflake's status"),
            RunError::Timeout(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Timeout, message)
                    .with_hint("raise --timeout, or narrow the query")
            }
            RunError::Cancelled { query_id } => {
                let mut e = ApiError::new(StatusCode::CONFLICT, ErrorKind::Cancelled, message);
                e.detail.query_id = query_id;
                e.detail.sqlstate = Some("57014".to_string());
                e
            }
            RunError::Unreadable { query_id, .. } => {
                let mut e = ApiError::new(StatusCode::BAD_GATEWAY, ErrorKind::ResultUnreadable, message)
                    .with_hint("the statement ran and Snowflake is fine; select the value as text (TO_JSON(col) or col::STRING) or only the part you need (col:path)");
                e.detail.query_id = query_id;
                e
            }
            RunError::Busy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::PoolExhausted,
                message,
            ),
            RunError::TransactionLost => {
                ApiError::new(StatusCode::CONFLICT, ErrorKind::TransactionLost, message)
            }
            RunError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorKind::Conflict, message)
            }
            RunError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ShuttingDown,
                message,
            )
            .with_hint("run the command again; the next daemon answers it"),
        }
    }
}

/// A short hint for the Snowflake errors people meet most.
fn hint_for(code: Option<&str>, message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let hint = match code {
        Some("002003") | Some("002043") => {
            "the object does not exist or your role cannot see it: check `snowflaked context` and switch with `snowflaked use database|schema|role NAME`"
        }
        Some("000606") => "no active warehouse: run `snowflaked use warehouse NAME`",
        Some("003001") | Some("003003") => {
            "insufficient privileges: switch role with `snowflaked use role NAME`"
        }
        Some("001003") if lower.contains("position") => {
            "syntax error: the position above counts characters from the start of the statement"
        }
        Some("001003") => "syntax error: check the SQL near the quoted text",
        _ if lower.contains("does not exist") => {
            "check `snowflaked context`; switch with `snowflaked use database|schema NAME`"
        }
        _ => return None,
    };
    Some(hint.to_string())
}

impl From<crate::statements::StatementError> for ApiError {
    fn from(error: crate::statements::StatementError) -> Self {
        use crate::statements::StatementError;
        let message = error.to_string();
        match error {
            StatementError::Failed(e) => e.into(),
            StatementError::NotFound(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound,
                message,
            )
            .with_hint(
                "ids are the ones `snowflaked query` and `snowflaked queries` show for this token",
            ),
            StatementError::Gone(_) => {
                ApiError::new(StatusCode::GONE, ErrorKind::ResultGone, message)
            }
            StatementError::Store(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::Internal,
                message,
            ),
        }
    }
}
