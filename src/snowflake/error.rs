//! Errors from Snowflake, classified by what the caller should do: retry on a new session,
//! report a failed statement, or say Snowflake cannot be reached.

/// A failure talking to Snowflake. Messages never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// Logging in failed: bad credentials, unknown account, an unreadable key file.
    #[error("login to {connection} failed: {message}")]
    Login { connection: String, message: String },
    /// Snowflake ran the statement and it failed (syntax, missing object, privileges…).
    #[error("{message}")]
    Statement {
        message: String,
        code: Option<String>,
        sqlstate: Option<String>,
        query_id: Option<String>,
    },
    /// The session is gone: its token expired or is no longer known (every code in
    /// `connector::SESSION_GONE_CODES`, e.g. 390112 expired, 390104 after a backend restart).
    /// The statement did not run; a fresh login and one retry is the cure.
    #[error("the Snowflake session expired")]
    SessionExpired { query_id: Option<String> },
    /// Snowflake could not be reached or did not answer.
    #[error("Snowflake is unreachable: {0}")]
    Unreachable(String),
    /// The statement was cancelled (by the client, a timeout or `snowflaked cancel`).
    #[error("the statement was cancelled")]
    Cancelled { query_id: Option<String> },
    /// The statement ran, but a value of its result could not be read here (e.g. a VARIANT
    /// nested deeper than the daemon parses). The session is fine.
    #[error("a value in the result could not be read: {message}")]
    Unreadable {
        message: String,
        query_id: Option<String>,
    },
    /// Snowflake answered something the client could not understand.
    #[error("unexpected answer from Snowflake: {0}")]
    Protocol(String),
}

impl BackendError {
    /// The session is unusable and should be replaced.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, BackendError::SessionExpired { .. })
    }

    /// Snowflake (or the network to it) failed, not the statement.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, BackendError::Unreachable(_))
    }

    /// The session that produced this error should not be reused.
    pub fn poisons_session(&self) -> bool {
        matches!(
            self,
            BackendError::SessionExpired { .. }
                | BackendError::Unreachable(_)
                | BackendError::Protocol(_)
        )
    }

    /// The query id Snowflake assigned, when known.
    pub fn query_id(&self) -> Option<&str> {
        match self {
            BackendError::Statement { query_id, .. }
            | BackendError::SessionExpired { query_id }
            | BackendError::Cancelled { query_id }
            | BackendError::Unreadable { query_id, .. } => query_id.as_deref(),
            _ => None,
        }
    }
}
