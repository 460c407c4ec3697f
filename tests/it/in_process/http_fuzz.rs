//! Property test of the HTTP request path (fuzzing in CI, bounded in time): an in-process
//! daemon on the fake backend, listening on a Unix socket and on loopback TCP, gets generated
//! requests — methods, paths, Host and Authorization headers with arbitrary bytes, tokens,
//! request ids, and bodies of every JSON shape (`\u0000`, huge numbers, wrong types, unknown
//! keys) or no JSON at all. Every answer must be well formed: JSON (a success, or
//! `{"error": {"kind", "message"}}` with a status that fits), Prometheus text for `/metrics`,
//! or hyper's own bare 4xx for bytes HTTP forbids; and the daemon must still answer `/health`
//! afterwards.
//!
//! A failure prints the minimal request; proptest keeps its seed in
//! `tests/it/in_process/http_fuzz.proptest-regressions` so the next run replays it first.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use super::TestDaemon;
use snowflaked::snowflake::fake::FakeBackend;

/// Requests per run: enough to cover the grammar's combinations, few enough for CI.
const CASES: u32 = 4000;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    Unix,
    Tcp,
}

/// One generated request; `http_valid` says whether every byte is one HTTP allows, so that
/// only our JSON may answer it.
#[derive(Clone)]
struct Generated {
    transport: Transport,
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    http_valid: bool,
}

/// Shown as the bytes that went on the wire, escaped, so a failure can be replayed by hand.
impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| b.escape_ascii().to_string();
        f.debug_struct("Generated")
            .field("transport", &self.transport)
            .field("request_line", &format!("{} {}", self.method, self.path))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", text(v)))
                    .collect::<Vec<_>>(),
            )
            .field("body", &text(&self.body))
            .field("http_valid", &self.http_valid)
            .finish()
    }
}

/// `(bytes, whether they are valid in a header value)`.
fn header_value(minted: String) -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Bearer default", "Bearer agent-1", "Bearer x.y_z", "bearer  fuzz ", "Bearer ",
            "Bearer has space", "Basic dXNlcjpwYXNz", "Bearer tökén", "Bearer a;b",
            "Bearer sfd_0000000000000000000000000000000000000000",
        ])
        .prop_map(|v| (v.as_bytes().to_vec(), true)),
        6 => prop::sample::select(vec!["Bearer default", "Bearer agent-1", "bearer fuzz"])
            .prop_map(|v| (v.as_bytes().to_vec(), true)),
        4 => Just((format!("Bearer {minted}").into_bytes(), true)),
        1 => "[a-zA-Z0-9_.-]{0,140}".prop_map(|t| (format!("Bearer {t}").into_bytes(), true)),
        // obs-text and visible ASCII: HTTP allows these bytes, so the daemon must answer.
        2 => prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..40)
            .prop_map(|mut v| { v.splice(0..0, b"Bearer ".iter().copied()); (v, true) }),
        // Control bytes (not CR or LF, which would end the header line): hyper refuses these.
        1 => prop::collection::vec(prop_oneof![0x00u8..0x09, 0x0bu8..0x0d, 0x0eu8..0x20, 0x7fu8..=0x7f], 1..4)
            .prop_map(|v| (v, false)),
    ]
}

fn host() -> impl Strategy<Value = Option<(Vec<u8>, bool)>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "localhost", "127.0.0.1", "127.0.0.1:8080", "[::1]:1", "LOCALHOST", "localhost",
            "127.0.0.1:1", "localhost:2",
            "attacker.example", "localhost.attacker.example", "10.0.0.1", "[::2]", "snowflaked",
            "localhost:99999", "",
        ])
        .prop_map(|h| Some((h.as_bytes().to_vec(), true))),
        1 => prop::collection::vec(0x80u8..=0xff, 1..8).prop_map(|v| Some((v, true))),
        1 => Just(None),
    ]
}

fn method() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        8 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "get"])
            .prop_map(|m| (m.to_string(), true)),
        1 => "[A-Z]{1,12}".prop_map(|m| (m, true)),
        1 => Just(("G(E)T".to_string(), false)),
    ]
}

fn path() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        // Every route but /v1/shutdown, which would end the run.
        8 => prop::sample::select(vec![
            "/health", "/metrics", "/v1/status", "/v1/query", "/v1/query", "/v1/query",
            "/v1/context", "/v1/context", "/v1/sessions", "/v1/sessions/current",
            "/v1/queries/q-1/cancel", "/v1/queries/%ff%00/cancel", "/v1/shutdown/now", "/",
            "//", "/v1/", "/v1//query", "/%00", "/health?x=1", "/v1/query#frag",
        ])
        .prop_map(|p| (p.to_string(), true)),
        2 => "(/[a-zA-Z0-9%._~-]{0,12}){1,4}".prop_map(|p| (p, true)),
        1 => Just(("/v1/qu ery".to_string(), false)),
        1 => Just(("http://attacker.example/health".to_string(), true)),
    ]
}

/// A JSON value of any shape, including the awkward ones.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(serde_json::from_str::<Value>("1e400").unwrap_or(Value::Null)),
        Just(serde_json::from_str::<Value>("123456789012345678901234567890").unwrap()),
        Just(json!(-1)),
        prop::sample::select(vec![
            "SELECT 1",
            "select 1; select 2",
            "FAIL on purpose",
            "ROWS 3",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "USE DATABASE nope",
            "SELECT '\u{0}'",
            "\u{0}",
            "",
            "   ",
            "DELETE FROM t",
            "SELECT 1 -- note\r; DELETE FROM t",
            "SELECT SYSTEM$CANCEL_ALL_QUERIES(1)",
            "SELECT 'x",
            "tökén",
            "\u{feff}SELECT 1",
        ])
        .prop_map(|s| json!(s)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "sql",
                    "max_rows",
                    "timeout_ms",
                    "read_only",
                    "transaction",
                    "database",
                    "schema",
                    "warehouse",
                    "role",
                    "query_tag",
                    "unknown",
                    "readonly",
                    "\u{0}",
                ])
                .prop_map(str::to_string),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        6 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        // A query that runs, possibly with wrong-typed or extra fields.
        3 => (json_value(), prop::sample::select(vec!["max_rows", "timeout_ms", "read_only", "transaction", "unknown"]))
            .prop_map(|(v, key)| serde_json::to_vec(&serde_json::json!({"sql": "SELECT 1", key: v})).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(b"{\"sql\": \"SELECT 1\"".to_vec()),
    ]
}

fn request(minted: String) -> impl Strategy<Value = Generated> {
    (
        prop_oneof![3 => Just(Transport::Unix), 2 => Just(Transport::Tcp)],
        prop_oneof![
            1 => (method(), path()),
            // A route as the contract names it, so that requests get past routing.
            1 => prop::sample::select(vec![
                ("POST", "/v1/query"), ("POST", "/v1/query"), ("POST", "/v1/query"),
                ("GET", "/v1/context"), ("PUT", "/v1/context"), ("PUT", "/v1/context"),
                ("GET", "/health"), ("GET", "/metrics"), ("GET", "/v1/status"),
                ("POST", "/v1/sessions"), ("GET", "/v1/sessions"),
                ("DELETE", "/v1/sessions/current"), ("POST", "/v1/queries/q-1/cancel"),
            ])
            .prop_map(|(m, p)| ((m.to_string(), true), (p.to_string(), true))),
        ],
        host(),
        prop::option::weighted(0.7, header_value(minted.clone())),
        prop::option::weighted(0.2, header_value(minted)),
        body(),
        any::<bool>(),
    )
        .prop_map(
            |(
                transport,
                ((method, method_ok), (path, path_ok)),
                host,
                auth,
                request_id,
                body,
                content_type,
            )| {
                let mut http_valid = method_ok && path_ok;
                let mut headers = Vec::new();
                if let Some((value, ok)) = host {
                    http_valid &= ok;
                    headers.push(("Host".to_string(), value));
                }
                if let Some((value, ok)) = auth {
                    http_valid &= ok;
                    headers.push(("Authorization".to_string(), value));
                }
                if let Some((value, ok)) = request_id {
                    http_valid &= ok;
                    headers.push(("X-Snowflaked-Request-Id".to_string(), value));
                }
                if content_type {
                    headers.push(("Content-Type".to_string(), b"application/json".to_vec()));
                }
                Generated {
                    transport,
                    method,
                    path,
                    headers,
                    body,
                    http_valid,
                }
            },
        )
}

/// The raw answer: status, content type and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn send(socket: &Path, tcp_port: u16, request: &Generated) -> Result<Answer, String> {
    let mut bytes = format!("{} {} HTTP/1.1\r\n", request.method, request.path).into_bytes();
    for (name, value) in &request.headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", request.body.len()).as_bytes());
    bytes.extend_from_slice(&request.body);
    let mut answer = Vec::new();
    let result = match request.transport {
        Transport::Unix => {
            let mut stream =
                std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let _ = stream.write_all(&bytes);
            stream.read_to_end(&mut answer)
        }
        Transport::Tcp => {
            let mut stream =
                std::net::TcpStream::connect(("127.0.0.1", tcp_port)).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let _ = stream.write_all(&bytes);
            stream.read_to_end(&mut answer)
        }
    };
    // A reset after a complete answer (the daemon closed before reading all we sent) is fine.
    if let Err(e) = result
        && answer.is_empty()
    {
        return Err(format!("no answer: {e}"));
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of head in {:?}", String::from_utf8_lossy(&answer)))?;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body: answer[split + 4..].to_vec(),
    })
}

/// Statuses the contract gives errors, by kind.
fn fits(status: u16, kind: &str) -> bool {
    matches!(
        (status, kind),
        (400, "bad_request")
            | (401, "unknown_token")
            | (403, "forbidden" | "read_only")
            | (404, "not_found")
            | (405, "method_not_allowed")
            | (408, "request_timeout")
            | (409, "cancelled" | "conflict" | "transaction_lost")
            | (413, "body_too_large")
            | (421, "foreign_host")
            | (422, "statement_failed")
            | (502, "login_failed" | "snowflake_unreachable")
            | (503, "pool_exhausted" | "shutting_down")
            | (504, "timeout")
    )
}

/// The token an Authorization header names when it is well formed: `Bearer` (any case), then
/// 1-128 letters, digits, `_`, `-` and `.`; `Err` when it is not.
fn named_token(request: &Generated) -> Result<Option<String>, ()> {
    let Some((_, value)) = request.headers.iter().find(|(n, _)| n == "Authorization") else {
        return Ok(None);
    };
    let value = std::str::from_utf8(value).map_err(|_| ())?;
    let (scheme, token) = value.split_once(' ').ok_or(())?;
    let token = token.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && (1..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if well_formed {
        Ok(Some(token.to_string()))
    } else {
        Err(())
    }
}

fn check(request: &Generated, answer: &Answer, minted: &str) -> Result<(), TestCaseError> {
    if answer.body.is_empty() && !request.http_valid {
        // hyper's own refusal of bytes HTTP forbids, before any route runs.
        prop_assert!(
            matches!(answer.status, 400 | 414 | 431 | 501 | 505),
            "{answer:?}"
        );
        return Ok(());
    }
    if request.method == "HEAD" {
        // An answer to HEAD has no body, only the head of what GET would get.
        prop_assert!(answer.body.is_empty(), "{answer:?}");
        prop_assert!(
            answer.status >= 400
                || request.path.starts_with("/metrics")
                    == answer.content_type.starts_with("text/plain"),
            "{answer:?}"
        );
        return Ok(());
    }
    if answer.status == 200 && answer.content_type.starts_with("text/plain") {
        prop_assert!(
            request.path.starts_with("/metrics"),
            "text answer for {}",
            request.path
        );
        return Ok(());
    }
    prop_assert_eq!(
        answer.content_type.as_str(),
        "application/json",
        "{:?}",
        answer
    );
    let value: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
        TestCaseError::fail(format!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(&answer.body)
        ))
    })?;
    if answer.status >= 400 {
        let kind = value["error"]["kind"].as_str().unwrap_or_default();
        prop_assert!(value["error"]["message"].is_string(), "{value}");
        prop_assert!(
            fits(answer.status, kind),
            "{} with kind {kind:?}: {value}",
            answer.status
        );
    } else {
        prop_assert!(value.is_object() && value.get("error").is_none(), "{value}");
    }
    let token = named_token(request);
    if token.is_err() && answer.status != 421 {
        // A malformed token never falls back to `default`, whatever its bytes.
        prop_assert_eq!(answer.status, 400, "malformed token answered {:?}", value);
    }
    if request.transport == Transport::Tcp && answer.status < 400 {
        let token = token.ok().flatten();
        prop_assert_eq!(
            token.as_deref(),
            Some(minted),
            "TCP without the minted token"
        );
        // Over TCP only a loopback Host and a minted token get through.
        let host = request
            .headers
            .iter()
            .find(|(n, _)| n == "Host")
            .map(|(_, v)| v.as_slice());
        // A port may follow the name (`localhost:8080`); the unit tests of `auth.rs` check
        // the exact grammar, this checks that nothing else gets through.
        let name = host.map(|h| h.split(|&b| b == b':').next().unwrap_or_default());
        prop_assert!(
            matches!(host, Some(h) if h.starts_with(b"127.") || h.starts_with(b"[::1]"))
                || matches!(name, Some(n) if n.eq_ignore_ascii_case(b"localhost")),
            "TCP with Host {:?} answered {}",
            host.map(String::from_utf8_lossy),
            answer.status
        );
    }
    Ok(())
}

#[test]
fn every_answer_is_well_formed_and_the_daemon_survives() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = FakeBackend::default();
    let daemon = {
        let _entered = runtime.enter();
        TestDaemon::start_with_tcp(&fake, |s| {
            s.request_read_timeout = Duration::from_secs(5);
        })
    };
    let socket = daemon.dir.path().join("api.sock");
    let port = daemon.tcp_port.expect("a TCP listener");
    let minted = runtime
        .block_on(daemon.client("default").mint_session())
        .unwrap()
        .token;

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        max_shrink_time: 30_000,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&request(minted.clone()), |request| {
        let answer = send(&socket, port, &request).map_err(TestCaseError::fail)?;
        *statuses.lock().unwrap().entry(answer.status).or_default() += 1;
        check(&request, &answer, &minted)
    });
    println!(
        "HTTP fuzz: {CASES} requests in {:.1?}; answers by status: {:?}",
        started.elapsed(),
        statuses.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    // Still alive and answering.
    let health = Generated {
        transport: Transport::Unix,
        method: "GET".into(),
        path: "/health".into(),
        headers: vec![("Host".into(), b"localhost".to_vec())],
        body: Vec::new(),
        http_valid: true,
    };
    let answer = send(&socket, port, &health).expect("the daemon answers after the fuzz");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!daemon.handle.is_finished());
}
