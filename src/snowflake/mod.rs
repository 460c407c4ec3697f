//! The boundary to Snowflake: the [`Backend`] (logs in) and [`Session`] (runs statements)
//! traits, the real implementation over snowflake-connector-rs ([`connector`]), and a scriptable
//! fake for fault-injection tests ([`fake`]).
//!
//! Only this module knows the Snowflake crate. Everything above it sees plain results
//! ([`StatementOutput`]) with cells already converted to JSON values, and errors classified by
//! what the caller should do about them ([`BackendError`]).

pub mod connector;
pub mod error;
pub mod fake;
pub mod rows;
pub mod values;

use std::future::Future;
use std::pin::Pin;

use tokio_util::sync::CancellationToken;

pub use error::BackendError;

/// A boxed future, so the traits stay object-safe without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that can log in to Snowflake.
pub trait Backend: Send + Sync + 'static {
    /// Logs in once and returns a fresh session.
    fn login(&self) -> BoxFuture<'_, Result<Box<dyn Session>, BackendError>>;
    /// `user@account (source)`, for messages; never contains a secret.
    fn describe(&self) -> String;
    /// Identifies what a login starts with (endpoint, user, configured defaults), so login
    /// defaults remembered for one connection are never used for another. No secrets.
    fn fingerprint(&self) -> String {
        self.describe()
    }
}

/// One logged-in Snowflake session. A session runs one statement at a time; the pool
/// guarantees that.
pub trait Session: Send + Sync {
    /// Runs one statement, fetching at most `max_rows + 1` rows when a limit is given (the
    /// extra row only tells that the result was truncated). When `cancel` fires, or the
    /// returned future is dropped before it completes, the statement is cancelled in Snowflake.
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>>;

    /// Runs one statement with bind parameters, sent beside the SQL text (never spliced into
    /// it). Sessions that cannot bind refuse parameters rather than drop them.
    fn execute_bound<'a>(
        &'a self,
        sql: &'a str,
        params: &'a crate::binds::Params,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        if params.is_empty() {
            return self.execute(sql, max_rows, cancel);
        }
        Box::pin(async {
            Err(BackendError::Protocol(
                "this session cannot send bind parameters".into(),
            ))
        })
    }
}

/// A result column as the daemon reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    pub name: String,
    /// Snowflake's type name, upper case: NUMBER, FLOAT, TEXT, BOOLEAN, DATE, TIMESTAMP_NTZ…
    pub ty: String,
    pub nullable: bool,
    pub scale: Option<u8>,
}

/// What a statement returned.
#[derive(Debug, Clone, Default)]
pub struct StatementOutput {
    pub query_id: String,
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<crate::row::Row>,
    /// More rows existed than were asked for.
    pub truncated: bool,
}
