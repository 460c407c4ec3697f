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

use super::values::{cell_to_json, type_name, type_scale};
use super::{Backend, BackendError, BoxFuture, ResultColumn, Session, StatementOutput};
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

struct ConnectorSession {
    session: Arc<sf::Session>,
}

impl Session for ConnectorSession {
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        max_rows: Option<u64>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<StatementOutput, BackendError>> {
        Box::pin(async move {
            let handle = self
                .session
                .query_handle(sql.to_string())
                .map_err(|e| classify(&e))?;
            // Cancels in Snowflake if this future is dropped (client gone) before finishing.
            let guard = CancelOnDrop(Some(handle.canceller()));
            let run = async {
                let mut cursor = handle.execute().await.map_err(|e| classify(&e))?;
                collect(&mut cursor, max_rows).await
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

async fn collect(
    cursor: &mut sf::ResultCursor,
    max_rows: Option<u64>,
) -> Result<StatementOutput, BackendError> {
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
        for row in table.dynamic_rows().map_err(|e| classify(&e))? {
            if limit.is_some_and(|limit| output.rows.len() >= limit) {
                // One row beyond the limit proves the result was cut; fetch no further.
                output.truncated = true;
                break 'partitions;
            }
            let (_, cells) = row.map_err(|e| classify(&e))?.into_parts();
            let cells: Vec<serde_json::Value> =
                cells.into_vec().into_iter().map(cell_to_json).collect();
            output.rows.push(crate::row::from_values(&cells));
        }
    }
    Ok(output)
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

/// Maps the crate's error to what the daemon does about it.
fn classify(error: &sf::Error) -> BackendError {
    let query_id = error.query_id().map(str::to_string);
    match error.kind() {
        sf::ErrorKind::SessionExpired => BackendError::SessionExpired { query_id },
        sf::ErrorKind::Network | sf::ErrorKind::Timeout => {
            BackendError::Unreachable(error.to_string())
        }
        sf::ErrorKind::Cancelled => BackendError::Cancelled { query_id },
        sf::ErrorKind::Server => BackendError::Statement {
            message: error
                .snowflake_message()
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string()),
            code: error.snowflake_code().map(str::to_string),
            sqlstate: None,
            query_id,
        },
        _ if error.is_session_expired() => BackendError::SessionExpired { query_id },
        _ => BackendError::Protocol(error.to_string()),
    }
}
