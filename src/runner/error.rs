//! Why a request could not be served, classified so the server can pick the HTTP status and
//! the client a hint. The mapping to HTTP lives in `server::error`, nowhere else.

use std::time::Duration;

use crate::pool::PoolError;
use crate::snowflake::BackendError;
use crate::sql::SqlError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The SQL could not be lexed, or the request was contradictory.
    #[error("{0}")]
    BadRequest(String),
    /// `--read-only` refused a statement.
    #[error("read-only mode refused statement {statement}: {reason}")]
    ReadOnly { statement: usize, reason: String },
    /// Snowflake ran a statement and it failed.
    #[error("{message}")]
    Statement {
        message: String,
        code: Option<String>,
        sqlstate: Option<String>,
        query_id: Option<String>,
        /// 1-based position when the request had several statements.
        statement: Option<usize>,
        /// A transaction request was rolled back because of this failure.
        rolled_back: bool,
        /// What the token's saved context lacked when the statement ran (a dropped database,
        /// a revoked role): often the reason it failed, so the client must see it here too.
        warnings: Vec<String>,
    },
    /// Logging in failed (credentials, account, key file).
    #[error("{0}")]
    Login(String),
    /// Snowflake or the network to it is down.
    #[error("{0}")]
    Unreachable(String),
    /// The statement ran past its time limit and was cancelled.
    #[error("the statement did not finish within {} and was cancelled", crate::config::duration::format(*.0))]
    Timeout(Duration),
    /// Someone cancelled the statement.
    #[error("the statement was cancelled")]
    Cancelled { query_id: Option<String> },
    /// The statement ran but a value of its result could not be read.
    #[error("{message}")]
    Unreadable {
        message: String,
        query_id: Option<String>,
    },
    /// Every session is busy.
    #[error("{0}")]
    Busy(String),
    /// The token's open transaction is gone (its session expired, it sat idle past the limit,
    /// or the daemon restarted); Snowflake rolled it back.
    #[error(
        "this token's open transaction is gone and was rolled back (its Snowflake session expired, it sat idle past tokens.transaction_idle_timeout, or the daemon restarted); nothing since BEGIN was kept — run the transaction again"
    )]
    TransactionLost,
    /// The token has a statement running and the operation needs it idle.
    #[error("{0}")]
    Conflict(String),
    /// The daemon is stopping.
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl From<SqlError> for RunError {
    fn from(e: SqlError) -> Self {
        RunError::BadRequest(format!("cannot parse the SQL: {e}"))
    }
}

impl From<BackendError> for RunError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Statement {
                message,
                code,
                sqlstate,
                query_id,
            } => RunError::Statement {
                message,
                code,
                sqlstate,
                query_id,
                statement: None,
                rolled_back: false,
                warnings: Vec::new(),
            },
            BackendError::Login { .. } => RunError::Login(e.to_string()),
            BackendError::Unreachable(_) | BackendError::Protocol(_) => {
                RunError::Unreachable(e.to_string())
            }
            BackendError::SessionExpired { .. } => {
                RunError::Unreachable(format!("{e}, and logging in again did not help"))
            }
            BackendError::Cancelled { query_id } => RunError::Cancelled { query_id },
            BackendError::Unreadable { ref query_id, .. } => RunError::Unreadable {
                message: e.to_string(),
                query_id: query_id.clone(),
            },
        }
    }
}

impl From<PoolError> for RunError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(b) => b.into(),
            PoolError::CheckoutTimeout { .. } => RunError::Busy(e.to_string()),
            PoolError::Closed => RunError::ShuttingDown,
            PoolError::TransactionLost => RunError::TransactionLost,
        }
    }
}

impl RunError {
    /// Attaches the request's context warnings to a failed statement.
    pub fn with_warnings(mut self, request_warnings: Vec<String>) -> Self {
        if let RunError::Statement { warnings, .. } = &mut self {
            *warnings = request_warnings;
        }
        self
    }

    /// Attaches the failing statement's position in a multi-statement request.
    pub fn at_statement(mut self, index: usize, rolled_back_now: bool) -> Self {
        if let RunError::Statement {
            statement,
            rolled_back,
            ..
        } = &mut self
        {
            *statement = Some(index);
            *rolled_back = rolled_back_now;
        }
        self
    }
}
