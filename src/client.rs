//! The client side of the API: find the socket, connect (starting the daemon where no init
//! system manages it), send one request, and decode the answer or the contract's error body.
//! [`Client`] has one typed method per API call, as sccache's and mini-redis's clients do, so
//! routes and HTTP methods are spelt here and in `server/` only.
//!
//! Self-start follows sccache's model: a lock so concurrent clients start one daemon, the
//! daemon spawned detached, and a startup handshake instead of polling — the client hands the
//! new daemon a private `NOTIFY_SOCKET` and waits for its `READY=1`, exactly the message
//! systemd would get.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::api::{
    self, Ack, ContextResponse, ContextUpdate, ErrorDetail, ErrorKind, NewSession, QueryRequest,
    QueryResponse, SessionList, StatementInfo, StatementList,
};
use crate::config::paths::{self, ProcessEnv};

/// A self-started daemon's log is rotated once it grows past this.
const MAX_DAEMON_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// How long a self-started daemon may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach snowflaked at {socket}: {cause}\n{advice}")]
    Unreachable {
        socket: String,
        cause: String,
        advice: String,
    },
    #[error("{}", .error.message)]
    Api {
        status: u16,
        error: Box<ErrorDetail>,
    },
    #[error("unexpected answer from snowflaked: {0}")]
    Protocol(String),
    /// The command line or its input cannot make a request (nothing was sent).
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The contract's exit status: 1 the statement failed in Snowflake, 2 usage or
    /// configuration error, 3 the daemon could not be reached or started.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => 3,
            ClientError::Protocol(_) => 3,
            ClientError::Usage(_) => 2,
            ClientError::Api { status, error } => match (*status, &error.kind) {
                (_, ErrorKind::LoginFailed) => 2,
                (422, _) => 1,
                (
                    400..=499,
                    ErrorKind::Cancelled
                    | ErrorKind::TransactionLost
                    | ErrorKind::Conflict
                    | ErrorKind::RequestTimeout
                    | ErrorKind::ResultGone,
                ) => 1,
                (400..=499, _) => 2,
                _ => 1,
            },
        }
    }
}

/// A configured client: one typed method per API call. Nothing outside this file (and the
/// server) spells a route or an HTTP method.
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    pub token: String,
    /// Start the daemon when nothing listens and no init system owns the socket.
    pub self_start: bool,
}

/// What `POST /v1/query` (or a result page) answered: the result, or — after a bounded wait —
/// the statement still running in the daemon.
#[derive(Debug, Clone)]
pub enum QueryOutcome {
    Finished(QueryResponse),
    Running(StatementInfo),
}

/// Which part of a statement's result to fetch ([`Client::result_page`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most (`None`: the daemon's default).
    pub limit: Option<u64>,
    /// How long to wait for a statement still running (`None`: not at all).
    pub wait: Option<Duration>,
}

impl Client {
    pub fn new(socket: Option<PathBuf>, token: Option<String>) -> Self {
        Self {
            socket: socket.unwrap_or_else(|| paths::default_socket(&ProcessEnv)),
            token: token.unwrap_or_else(|| api::DEFAULT_TOKEN.to_string()),
            self_start: true,
        }
    }

    /// The same daemon, speaking for `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            ..self.clone()
        }
    }

    /// The same client, but one that never starts a daemon (stopping or ending something
    /// that is not running must not start it first).
    pub fn without_self_start(&self) -> Self {
        Self {
            self_start: false,
            ..self.clone()
        }
    }

    /// `GET /health`: the daemon is up; its version and pid.
    pub async fn health(&self) -> Result<api::Health, ClientError> {
        self.get_json("/health").await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<api::Status, ClientError> {
        self.get_json("/v1/status").await
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let bytes = self.send(Method::GET, "/metrics", None, None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `POST /v1/query`, run to the end: the result (a request without `wait_ms`).
    pub async fn query(&self, request: &QueryRequest) -> Result<QueryResponse, ClientError> {
        self.send_json(Method::POST, "/v1/query", request, None)
            .await
    }

    /// `POST /v1/query` under a client-chosen id, so [`Client::cancel`] can name it while it
    /// runs. With `wait_ms` the answer may be the statement still running.
    pub async fn submit(
        &self,
        request: &QueryRequest,
        request_id: &str,
    ) -> Result<QueryOutcome, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let bytes = self
            .send(Method::POST, "/v1/query", Some(body), Some(request_id))
            .await?;
        outcome(&bytes)
    }

    /// `GET /v1/context`: this token's context.
    pub async fn context(&self) -> Result<ContextResponse, ClientError> {
        self.get_json("/v1/context").await
    }

    /// `PUT /v1/context`: change the given parts of this token's context.
    pub async fn set_context(
        &self,
        update: &ContextUpdate,
    ) -> Result<ContextResponse, ClientError> {
        self.send_json(Method::PUT, "/v1/context", update, None)
            .await
    }

    /// `GET /v1/sessions`: every token the daemon knows.
    pub async fn sessions(&self) -> Result<SessionList, ClientError> {
        self.get_json("/v1/sessions").await
    }

    /// `POST /v1/sessions`: a new random token.
    pub async fn mint_session(&self) -> Result<NewSession, ClientError> {
        self.send_json(Method::POST, "/v1/sessions", &(), None)
            .await
    }

    /// `DELETE /v1/sessions/current`: forget this client's token, rolling back its open
    /// transaction.
    pub async fn end_session(&self) -> Result<Ack, ClientError> {
        let bytes = self
            .send(Method::DELETE, "/v1/sessions/current", None, None)
            .await?;
        decode(&bytes)
    }

    /// `GET /v1/queries`: this token's running and held statements (`all`: also older ones).
    pub async fn statements(&self, all: bool) -> Result<StatementList, ClientError> {
        self.get_json(if all {
            "/v1/queries?all=true"
        } else {
            "/v1/queries"
        })
        .await
    }

    /// `GET /v1/queries/{id}`: one statement's state.
    pub async fn statement(&self, id: &str) -> Result<StatementInfo, ClientError> {
        self.get_json(&format!("/v1/queries/{}", encode_segment(id)))
            .await
    }

    /// `GET /v1/queries/{id}/result`: a page of a statement's result, never running it again;
    /// the statement's state if it is still running after `page.wait`.
    pub async fn result_page(
        &self,
        id: &str,
        page: PageRequest,
    ) -> Result<QueryOutcome, ClientError> {
        let mut path = format!(
            "/v1/queries/{}/result?offset={}",
            encode_segment(id),
            page.offset
        );
        if let Some(limit) = page.limit {
            path.push_str(&format!("&limit={limit}"));
        }
        if let Some(wait) = page.wait {
            path.push_str(&format!("&wait_ms={}", wait.as_millis()));
        }
        outcome(&self.send(Method::GET, &path, None, None).await?)
    }

    /// `POST /v1/queries/{id}/cancel`: cancel this token's statement `id` (a request id or a
    /// daemon statement id).
    pub async fn cancel(&self, id: &str) -> Result<Ack, ClientError> {
        let path = format!("/v1/queries/{}/cancel", encode_segment(id));
        self.send_json(Method::POST, &path, &(), None).await
    }

    /// `POST /v1/shutdown`: the daemon finishes running statements and exits.
    pub async fn shutdown(&self) -> Result<Ack, ClientError> {
        self.send_json(Method::POST, "/v1/shutdown", &(), None)
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.send(Method::GET, path, None, None).await?;
        decode(&bytes)
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        request_id: Option<&str>,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let bytes = self.send(method, path, Some(body), request_id).await?;
        decode(&bytes)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        request_id: Option<&str>,
    ) -> Result<Bytes, ClientError> {
        let stream = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "snowflaked")
            .header(api::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(id) = request_id {
            request = request.header(api::REQUEST_ID_HEADER, id);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(format!("the daemon closed the connection: {e}")))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("the answer was cut off: {e}")))?
            .to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(api_error(status, &bytes))
    }

    /// Connects, starting the daemon first if that is this client's job. A socket caught
    /// being replaced (a stopping daemon still holds the path, or lost it to a successor) is
    /// tried again, with short pauses, for up to [`REPLACE_WAIT`].
    async fn connect(&self) -> Result<UnixStream, ClientError> {
        let deadline = tokio::time::Instant::now() + REPLACE_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            match self.connect_once().await {
                Err(Attempt::Replaced(cause)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%cause, "the socket is being replaced; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(Attempt::Replaced(cause)) => return Err(self.unreachable(cause)),
                Err(Attempt::Failed(error)) => return Err(error),
                Ok(stream) => return Ok(stream),
            }
        }
    }

    async fn connect_once(&self) -> Result<UnixStream, Attempt> {
        let e = match UnixStream::connect(&self.socket).await {
            Ok(stream) => return Ok(stream),
            Err(e) => e,
        };
        if !(self.self_start && is_absent(&e)) {
            return Err(Attempt::Failed(self.unreachable(e.to_string())));
        }
        if let Some(manager) = init_system_owner(&self.socket) {
            return Err(Attempt::Failed(
                self.unreachable_with(e.to_string(), manager),
            ));
        }
        if let Err(error) = self.start_daemon().await {
            // The new daemon found the path taken: another daemon holds it, or is letting go.
            return Err(if self.socket.exists() {
                Attempt::Replaced(error.to_string())
            } else {
                Attempt::Failed(error)
            });
        }
        match UnixStream::connect(&self.socket).await {
            Ok(stream) => Ok(stream),
            Err(e) if is_absent(&e) => Err(Attempt::Replaced(e.to_string())),
            Err(e) => Err(Attempt::Failed(self.unreachable(e.to_string()))),
        }
    }

    fn unreachable(&self, cause: String) -> ClientError {
        let advice = match init_system_owner(&self.socket) {
            Some(advice) => advice,
            None => format!(
                "start it with `snowflaked serve --socket {}`, or install the user service with `snowflaked install`",
                self.socket.display()
            ),
        };
        self.unreachable_with(cause, advice)
    }

    fn unreachable_with(&self, cause: String, advice: String) -> ClientError {
        ClientError::Unreachable {
            socket: self.socket.display().to_string(),
            cause,
            advice,
        }
    }

    /// Starts `snowflaked serve` detached, under a lock, and waits for its READY=1.
    async fn start_daemon(&self) -> Result<(), ClientError> {
        let dir = self
            .socket
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .to_path_buf();
        let lock_path = paths::start_lock(&dir);
        let socket = self.socket.clone();
        let fail = |cause: String| self.unreachable(cause);
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fail(format!("cannot open {}: {e}", lock_path.display())))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(format!("cannot lock {}: {e}", lock_path.display())))?;
        // Another client may have started it while we waited for the lock.
        if UnixStream::connect(&socket).await.is_ok() {
            return Ok(());
        }
        let notify_path = paths::start_notify_socket(&dir, std::process::id());
        let _ = std::fs::remove_file(&notify_path);
        let notify = tokio::net::UnixDatagram::bind(&notify_path)
            .map_err(|e| fail(format!("cannot create the startup handshake socket: {e}")))?;
        let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
        let log_path = paths::daemon_log(&ProcessEnv);
        if let Some(log_dir) = log_path.parent() {
            let _ = std::fs::create_dir_all(log_dir);
        }
        let log = open_daemon_log(&log_path);
        let mut command = tokio::process::Command::new(exe);
        command
            .arg("serve")
            .arg("--self-started")
            .arg("--socket")
            .arg(&socket)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log.map_or_else(std::process::Stdio::null, std::process::Stdio::from))
            // Its own process group: the terminal's Ctrl-C must not reach the daemon.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("cannot start the daemon: {e}")))?;
        let ready = async {
            let mut buffer = [0u8; 4096];
            loop {
                let n = notify.recv(&mut buffer).await?;
                if String::from_utf8_lossy(&buffer[..n])
                    .lines()
                    .any(|l| l == "READY=1")
                {
                    return Ok::<(), io::Error>(());
                }
            }
        };
        let outcome = tokio::time::timeout(START_TIMEOUT, async {
            tokio::select! {
                ready = ready => ready.map_err(|e| e.to_string()),
                status = child.wait() => Err(match status {
                    Ok(status) => format!("the daemon exited during startup ({status}); see {}", log_path.display()),
                    Err(e) => e.to_string(),
                }),
            }
        })
        .await;
        let _ = std::fs::remove_file(&notify_path);
        drop(lock);
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(fail(cause)),
            Err(_) => Err(fail(format!(
                "the daemon did not become ready within {}s",
                START_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Opens the self-started daemon's log for appending, private to the user (0600; a log left
/// readable by an older version is made private too). One previous generation is kept, so a
/// long-lived user's log cannot grow forever.
fn open_daemon_log(log_path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = || std::fs::Permissions::from_mode(0o600);
    let previous = log_path.with_extension("log.1");
    for path in [log_path, previous.as_path()] {
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            let _ = std::fs::set_permissions(path, private());
        }
    }
    if std::fs::metadata(log_path).is_ok_and(|m| m.len() > MAX_DAEMON_LOG_BYTES) {
        let _ = std::fs::rename(log_path, &previous);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .ok()
}

/// How long a client keeps trying a socket that is being replaced.
const REPLACE_WAIT: Duration = Duration::from_secs(5);

/// One connection attempt's failure.
enum Attempt {
    /// The socket was caught between two daemons; worth another try.
    Replaced(String),
    Failed(ClientError),
}

/// Nothing listens at the path: no file, or a file nobody accepts on.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// When an init system owns this socket, how to start it (and the client must not).
fn init_system_owner(socket: &Path) -> Option<String> {
    if socket != paths::default_socket(&ProcessEnv) {
        return None;
    }
    let home = paths::home(&ProcessEnv).ok()?;
    let unit_dir = paths::systemd_unit_dir(&ProcessEnv);
    // Enabled, not merely written: `systemctl --user enable` links the unit here.
    if paths::systemd_enable_link(&unit_dir, "sockets.target", paths::SOCKET_UNIT).exists() {
        return Some("the systemd user socket owns it: run `systemctl --user start snowflaked.socket` (and see `journalctl --user -u snowflaked`)".into());
    }
    if paths::launchd_plist(&home).exists() {
        return Some("the launchd agent owns it: run `launchctl kickstart gui/$(id -u)/com.snowflaked.agent`".into());
    }
    None
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ClientError::Protocol(format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })
}

/// A result, or the state of a statement still running: a running statement's answer has a
/// `state`, a result has none.
fn outcome(bytes: &[u8]) -> Result<QueryOutcome, ClientError> {
    let answer: Box<serde_json::value::RawValue> = decode(bytes)?;
    if let Ok(running) = serde_json::from_str::<StatementInfo>(answer.get()) {
        return Ok(QueryOutcome::Running(running));
    }
    serde_json::from_str(answer.get())
        .map(QueryOutcome::Finished)
        .map_err(|e| ClientError::Protocol(format!("malformed result: {e}")))
}

/// Ids are plain, but one typed by hand must not bend the request path: anything but ASCII
/// letters, digits, `-` and `_` is percent-encoded, byte by byte of its UTF-8.
fn encode_segment(id: &str) -> String {
    let mut encoded = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<api::ErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            error: Box::new(body.error),
        },
        Err(_) => ClientError::Protocol(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_bend_the_request_path() {
        assert_eq!(encode_segment("q-0a_1"), "q-0a_1");
        assert_eq!(encode_segment("../shutdown?x"), "%2E%2E%2Fshutdown%3Fx");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    fn api(status: u16, kind: &str) -> ClientError {
        ClientError::Api {
            status,
            error: Box::new(ErrorDetail::new(kind.into(), "m")),
        }
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(api(422, "statement_failed").exit_code(), 1);
        assert_eq!(api(502, "login_failed").exit_code(), 2);
        assert_eq!(api(409, "cancelled").exit_code(), 1);
        assert_eq!(api(410, "result_gone").exit_code(), 1);
        assert_eq!(api(403, "read_only").exit_code(), 2);
        assert_eq!(api(400, "a_kind_from_a_newer_daemon").exit_code(), 2);
        assert_eq!(api(503, "pool_exhausted").exit_code(), 1);
        assert_eq!(ClientError::Usage("u".into()).exit_code(), 2);
        assert_eq!(ClientError::Protocol("p".into()).exit_code(), 3);
    }
}
