//! The daemon built in-process on a temp Unix socket with the fake backend behind the
//! `Backend`/`Session` traits: fast fault injection through the real HTTP surface (Snowflake
//! down and back, pool exhaustion, metrics, shutdown over the API).

use std::sync::Arc;
use std::time::Duration;

use snowflaked::activation::{Activation, Listeners};
use snowflaked::api::{Ack, ContextResponse, QueryRequest, QueryResponse, Status};
use snowflaked::client::{Client, ClientError};
use snowflaked::config::DaemonSettings;
use snowflaked::daemon::{self, ServeOptions};
use snowflaked::server::StopCause;
use snowflaked::snowflake::fake::FakeBackend;

mod http_fuzz;

struct TestDaemon {
    dir: tempfile::TempDir,
    handle: tokio::task::JoinHandle<Result<StopCause, daemon::DaemonError>>,
    /// The loopback TCP port, when started with one.
    tcp_port: Option<u16>,
}

impl TestDaemon {
    fn start(fake: &FakeBackend, tune: impl FnOnce(&mut DaemonSettings)) -> Self {
        Self::start_on(fake, tune, false)
    }

    /// Also listening on a loopback TCP port.
    fn start_with_tcp(fake: &FakeBackend, tune: impl FnOnce(&mut DaemonSettings)) -> Self {
        Self::start_on(fake, tune, true)
    }

    fn start_on(
        fake: &FakeBackend,
        tune: impl FnOnce(&mut DaemonSettings),
        with_tcp: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let mut settings = DaemonSettings {
            state_dir: Some(dir.path().join("state")),
            // Long enough never to fire in a test, but not zero: status then reports the
            // idle time left, which shows whether other connections are open.
            idle_timeout: Duration::from_secs(3600),
            ..DaemonSettings::default()
        };
        settings.pool.min_idle = 0;
        tune(&mut settings);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let tcp = with_tcp.then(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let tcp_port = tcp.as_ref().map(|l| l.local_addr().unwrap().port());
        let listeners = Listeners {
            unix: Some((listener, socket.display().to_string())),
            tcp,
            activation: Activation::Foreground,
            bound_paths: vec![],
        };
        let handle = tokio::spawn(daemon::run(ServeOptions {
            settings,
            listeners,
            backend: Some(Arc::new(fake.clone())),
        }));
        Self {
            dir,
            handle,
            tcp_port,
        }
    }

    fn client(&self, token: &str) -> Client {
        let mut client = Client::new(
            Some(self.dir.path().join("api.sock")),
            Some(token.to_string()),
        );
        client.self_start = false;
        client
    }
}

fn sql(text: &str) -> QueryRequest {
    QueryRequest {
        sql: text.to_string(),
        ..QueryRequest::default()
    }
}

fn kind(error: ClientError) -> (u16, String) {
    match error {
        ClientError::Api { status, error } => (status, error.kind.to_string()),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn snowflake_down_is_a_502_and_the_daemon_recovers_by_itself() {
    let fake = FakeBackend::default();
    fake.set_down(true);
    let daemon = TestDaemon::start(&fake, |_| {});
    let client = daemon.client("default");
    let error = client.query(&sql("SELECT 1")).await.unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert_eq!(kind(error), (502, "snowflake_unreachable".to_string()));
    fake.set_down(false);
    let result: QueryResponse = client.query(&sql("SELECT 1")).await.unwrap();
    assert_eq!(
        snowflaked::row::values(&result.rows[0])[0],
        serde_json::json!(1)
    );
    let status: Status = client.status().await.unwrap();
    assert_eq!(status.sessions.login_failures, 1);
    assert_eq!(status.queries.failed, 1);
    assert_eq!(status.queries.served, 1);
}

#[tokio::test]
async fn more_clients_than_sessions_wait_then_fail_clearly_when_the_wait_is_too_long() {
    let fake = FakeBackend::default();
    let daemon = TestDaemon::start(&fake, |s| {
        s.pool.max_size = 1;
        s.pool.checkout_timeout = Duration::from_millis(300);
    });
    let slow = {
        let client = daemon.client("slow");
        tokio::spawn(async move { client.submit(&sql("SELECT SYSTEM$WAIT(5)"), "q-slow").await })
    };
    // Wait until the slow statement holds the only session.
    let probe = daemon.client("default");
    loop {
        let status: Status = probe.status().await.unwrap();
        if status.sessions.in_use == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let error = daemon
        .client("other")
        .query(&sql("SELECT 1"))
        .await
        .unwrap_err();
    let (status, kind_name) = kind(error);
    assert_eq!((status, kind_name.as_str()), (503, "pool_exhausted"));
    // A statement is cancelled by its own token; to any other token it does not exist.
    let foreign = probe.cancel("q-slow").await.unwrap_err();
    assert_eq!(kind(foreign).0, 404, "another token cannot cancel it");
    let _: Ack = daemon.client("slow").cancel("q-slow").await.unwrap();
    let (status, kind_name) = kind(slow.await.unwrap().unwrap_err());
    assert_eq!((status, kind_name.as_str()), (409, "cancelled"));
    assert_eq!(fake.logins(), 1, "the pool never exceeded its bound");
    assert!(daemon.client("other").query(&sql("SELECT 1")).await.is_ok());
}

#[tokio::test]
async fn metrics_expose_counters_and_a_latency_histogram() {
    let fake = FakeBackend::default();
    let daemon = TestDaemon::start(&fake, |_| {});
    let client = daemon.client("default");
    let _: QueryResponse = client.query(&sql("SELECT 1")).await.unwrap();
    let _ = client.query(&sql("FAIL now")).await.unwrap_err();
    let text = client.metrics().await.unwrap();
    for needle in [
        "snowflaked_queries_total 1",
        "snowflaked_queries_failed_total 1",
        "snowflaked_logins_total 1",
        "snowflaked_query_duration_seconds_count 2",
        "# TYPE snowflaked_query_duration_seconds histogram",
        "snowflaked_query_duration_seconds_bucket{le=\"+Inf\"} 2",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[tokio::test]
async fn use_is_checked_by_snowflake_and_contexts_are_per_token() {
    let fake = FakeBackend::with_databases(&["SALES", "HR"]);
    let daemon = TestDaemon::start(&fake, |_| {});
    let a = daemon.client("a");
    let b = daemon.client("b");
    let update = snowflaked::api::ContextUpdate {
        database: Some("sales".into()),
        ..Default::default()
    };
    let context: ContextResponse = a.set_context(&update).await.unwrap();
    assert_eq!(context.context.database.as_deref(), Some("SALES"));
    let missing = snowflaked::api::ContextUpdate {
        database: Some("nope".into()),
        ..Default::default()
    };
    let (status, kind_name) = kind(a.set_context(&missing).await.unwrap_err());
    assert_eq!((status, kind_name.as_str()), (422, "statement_failed"));
    let still: ContextResponse = a.context().await.unwrap();
    assert_eq!(
        still.context.database.as_deref(),
        Some("SALES"),
        "a failed USE changed nothing"
    );
    let other: ContextResponse = b.context().await.unwrap();
    assert_eq!(other.context.database, None, "b does not see a's database");
}

#[tokio::test]
async fn shutdown_over_the_api_drains_and_returns_the_cause() {
    let fake = FakeBackend::default();
    let daemon = TestDaemon::start(&fake, |_| {});
    let client = daemon.client("default");
    let _: QueryResponse = client.query(&sql("SELECT 1")).await.unwrap();
    let ack: Ack = client.shutdown().await.unwrap();
    assert!(ack.ok);
    let cause = tokio::time::timeout(Duration::from_secs(30), daemon.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(cause, StopCause::Requested);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_is_cut_off() {
    let fake = FakeBackend::default();
    let daemon = TestDaemon::start(&fake, |s| {
        s.write_stall_timeout = Duration::from_millis(300)
    });
    // A few megabytes of rows, far more than the socket buffers hold, and never read.
    let socket = daemon.dir.path().join("api.sock");
    let mut stalled = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let body = r#"{"sql": "ROWS 500000", "max_rows": 0}"#;
    let request = format!(
        "POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stalled, request.as_bytes())
        .await
        .unwrap();
    // The daemon gives up on it: only the probe's own connection stays open.
    let probe = daemon.client("default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status: Status = probe.status().await.unwrap();
        if status.queries.served == 1 && status.idle_left_s.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled connection was never dropped"
        );
        tokio::task::yield_now().await;
    }
    drop(stalled);
}

/// Sends one raw request on the Unix socket; returns the status and the body.
async fn raw_request(daemon: &TestDaemon, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(daemon.dir.path().join("api.sock"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test]
async fn an_unknown_key_in_a_context_change_is_a_400_naming_it() {
    let fake = FakeBackend::with_databases(&["SALES"]);
    let daemon = TestDaemon::start(&fake, |_| {});
    let body = r#"{"database": "sales", "wharehouse": "big"}"#;
    let (status, answer) = raw_request(
        &daemon,
        format!(
            "PUT /v1/context HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let error: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(error["error"]["kind"], "bad_request");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `wharehouse`"),
        "{answer}"
    );
    let context: ContextResponse = daemon.client("default").context().await.unwrap();
    assert_eq!(context.context.database, None, "nothing was changed");
    // A misspelt `read_only` must not run the statement as if it were absent.
    let body = r#"{"sql": "SELECT 1", "readonly": true}"#;
    let (status, answer) = raw_request(
        &daemon,
        format!(
            "POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("unknown field `readonly`"), "{answer}");
}

#[tokio::test]
async fn a_non_ascii_token_is_a_400_and_never_the_default_token() {
    let fake = FakeBackend::with_databases(&["SALES"]);
    let daemon = TestDaemon::start(&fake, |_| {});
    let body = r#"{"database": "sales"}"#;
    for token in ["tökén".as_bytes(), b"\xff", b"\xffdefault"] {
        let mut request = b"PUT /v1/context HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ".to_vec();
        request.extend_from_slice(token);
        request.extend_from_slice(
            format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        );
        let (status, answer) = raw_request(&daemon, &request).await;
        assert_eq!(status, 400, "{token:?}: {answer}");
        assert!(answer.contains("malformed token"), "{answer}");
    }
    let context: ContextResponse = daemon.client("default").context().await.unwrap();
    assert_eq!(context.context.database, None, "`default` was not changed");
}

#[tokio::test]
async fn an_id_typed_by_hand_cannot_bend_the_request_path() {
    let fake = FakeBackend::default();
    let daemon = TestDaemon::start(&fake, |_| {});
    let client = daemon.client("default");
    for id in ["a b", "q?x=1", "../shutdown", "é"] {
        let (status, kind_name) = kind(client.cancel(id).await.unwrap_err());
        assert_eq!((status, kind_name.as_str()), (404, "not_found"), "{id}");
        let (status, kind_name) = kind(client.statement(id).await.unwrap_err());
        assert_eq!((status, kind_name.as_str()), (404, "not_found"), "{id}");
    }
    let status: Status = client.status().await.unwrap();
    assert_eq!(status.queries.served, 0);
}
