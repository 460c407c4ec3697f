//! The client side of the API: find the socket, connect (starting the daemon where no init
//! system manages it), send one request, and decode the answer or the contract's error body.
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

use crate::api::{self, ErrorDetail};
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
            ClientError::Api { status, error } => match (*status, error.kind.as_str()) {
                (_, "login_failed") => 2,
                (422, _) => 1,
                (
                    400..=499,
                    "cancelled" | "transaction_lost" | "conflict" | "request_timeout"
                    | "result_gone",
                ) => 1,
                (400..=499, _) => 2,
                _ => 1,
            },
        }
    }
}

/// A configured client.
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    pub token: String,
    /// Start the daemon when nothing listens and no init system owns the socket.
    pub self_start: bool,
}

impl Client {
    pub fn new(socket: Option<PathBuf>, token: Option<String>) -> Self {
        Self {
            socket: socket.unwrap_or_else(|| paths::default_socket(&ProcessEnv)),
            token: token.unwrap_or_else(|| api::DEFAULT_TOKEN.to_string()),
            self_start: true,
        }
    }

    /// `GET`/`DELETE` without a body.
    pub async fn get<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let bytes = self.send(method, path, None, None).await?;
        decode(&bytes)
    }

    /// A call with a JSON body.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
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

    /// A call whose answer is plain text (`/metrics`).
    pub async fn text(&self, path: &str) -> Result<String, ClientError> {
        let bytes = self.send(Method::GET, path, None, None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
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
        let lock_path = dir.join("start.lock");
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
        let notify_path = dir.join(format!("start-{}.notify", std::process::id()));
        let _ = std::fs::remove_file(&notify_path);
        let notify = tokio::net::UnixDatagram::bind(&notify_path)
            .map_err(|e| fail(format!("cannot create the startup handshake socket: {e}")))?;
        let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
        let log_dir = paths::state_dir(&ProcessEnv);
        let _ = std::fs::create_dir_all(&log_dir);
        let log_path = log_dir.join("daemon.log");
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
                    Ok(status) => format!("the daemon exited during startup ({status}); see {}", log_dir.join("daemon.log").display()),
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
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let config =
        std::env::var_os("XDG_CONFIG_HOME").map_or_else(|| home.join(".config"), PathBuf::from);
    // Enabled, not merely written: `systemctl --user enable` links the unit here.
    if config
        .join("systemd/user/sockets.target.wants/snowflaked.socket")
        .exists()
    {
        return Some("the systemd user socket owns it: run `systemctl --user start snowflaked.socket` (and see `journalctl --user -u snowflaked`)".into());
    }
    if home
        .join("Library/LaunchAgents/com.snowflaked.agent.plist")
        .exists()
    {
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

/// What `POST /v1/query` and `GET /v1/queries/{id}/result` answer: a result (or a page of
/// one), or — after a bounded wait — the state of a statement that is still running.
#[derive(Debug, Clone)]
pub enum QueryAnswer {
    Done(Box<api::QueryResponse>),
    Running(Box<api::StatementInfo>),
}

impl QueryAnswer {
    fn decode(bytes: &[u8]) -> Result<Self, ClientError> {
        let answer: Box<serde_json::value::RawValue> = decode(bytes)?;
        // A statement's state has a `state`; a result has none.
        if let Ok(running) = serde_json::from_str::<api::StatementInfo>(answer.get()) {
            return Ok(QueryAnswer::Running(Box::new(running)));
        }
        serde_json::from_str(answer.get())
            .map(|r| QueryAnswer::Done(Box::new(r)))
            .map_err(|e| ClientError::Protocol(format!("malformed result: {e}")))
    }
}

/// Typed calls of the API, one per route.
impl Client {
    /// `POST /v1/query`; `request_id` names the statement (for `cancel`) before it answers.
    pub async fn query(
        &self,
        request: &api::QueryRequest,
        request_id: Option<&str>,
    ) -> Result<QueryAnswer, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let bytes = self
            .send(Method::POST, "/v1/query", Some(body), request_id)
            .await?;
        QueryAnswer::decode(&bytes)
    }

    /// `GET /v1/queries/{id}/result`: rows `offset..offset + limit` (`limit` None: the
    /// daemon's default, 0: all), waiting up to `wait` for a statement still running.
    pub async fn statement_result(
        &self,
        id: &str,
        offset: u64,
        limit: Option<u64>,
        wait: Option<Duration>,
    ) -> Result<QueryAnswer, ClientError> {
        let mut path = format!("/v1/queries/{}/result?offset={offset}", path_segment(id));
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        if let Some(wait) = wait {
            path.push_str(&format!("&wait_ms={}", wait.as_millis()));
        }
        let bytes = self.send(Method::GET, &path, None, None).await?;
        QueryAnswer::decode(&bytes)
    }

    /// `GET /v1/queries`: this token's running and held statements (`all`: older ones too).
    pub async fn statements(&self, all: bool) -> Result<api::StatementList, ClientError> {
        let path = if all {
            "/v1/queries?all=true"
        } else {
            "/v1/queries"
        };
        self.get(Method::GET, path).await
    }

    /// `POST /v1/queries/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Result<api::Ack, ClientError> {
        let path = format!("/v1/queries/{}/cancel", path_segment(id));
        self.call(Method::POST, &path, &(), None).await
    }

    /// `GET /v1/context`.
    pub async fn context(&self) -> Result<api::ContextResponse, ClientError> {
        self.get(Method::GET, "/v1/context").await
    }

    /// `PUT /v1/context`.
    pub async fn set_context(
        &self,
        update: &api::ContextUpdate,
    ) -> Result<api::ContextResponse, ClientError> {
        self.call(Method::PUT, "/v1/context", update, None).await
    }

    /// `POST /v1/sessions`: a new token.
    pub async fn new_session(&self) -> Result<api::NewSession, ClientError> {
        self.call(Method::POST, "/v1/sessions", &(), None).await
    }

    /// `DELETE /v1/sessions/current`: ends this client's token.
    pub async fn end_session(&self) -> Result<api::Ack, ClientError> {
        self.get(Method::DELETE, "/v1/sessions/current").await
    }
}

/// An id as one path segment: ids are plain, but one typed by hand must not bend the path.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
