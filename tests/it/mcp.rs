//! `snowflaked mcp` driven by a real MCP client nobody here wrote: the official MCP Python SDK
//! (tests/mcp/driver.py) spawns the real binary over stdio, against a socket-activated daemon
//! on the emulator. Each scenario asserts inside the driver; this side provides the daemon,
//! checks what only it can see (tokens ended, daemon restarts), and shows the driver's output
//! when it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::activator::Event;
use crate::support::{Home, binary, emulator, http, stderr, stdout, unique_db};

const WAIT: Duration = Duration::from_secs(60);

fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/driver.py")
}

/// The driver with this home's environment, running `scenario`.
fn driver_command(home: &Home, port: u16, scenario: &str, args: &[&str]) -> Command {
    let mut command = Command::new(emulator::python());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(home.env(port))
        // Only warnings from the server: its stderr is the test's stderr.
        .env("RUST_LOG", "warn")
        .arg(driver())
        .arg(scenario)
        .arg(binary())
        .args(args);
    command
}

fn assert_ok(output: &Output, home: &Home) {
    assert!(
        output.status.success() && stdout(output).trim_end().ends_with("OK"),
        "the MCP driver failed ({:?})\nstdout: {}\nstderr: {}\ndaemon log: {}",
        output.status,
        stdout(output),
        stderr(output),
        std::fs::read_to_string(home.daemon_log()).unwrap_or_default()
    );
}

/// A new database with a PUBLIC schema (the emulator makes none by itself).
fn create_db(home: &Home, port: u16, db: &str) {
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
    ] {
        // Through a token of its own, so the default token's context stays untouched.
        let out = home.run(port, &["--session", "setup", "query", &sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
}

/// `db.PUBLIC.ORDERS (ID, CUSTOMER_ID, NOTE)` with three rows, for the catalog tools.
fn create_orders(home: &Home, port: u16, db: &str) {
    let table = format!("{db}.PUBLIC.ORDERS");
    for sql in [
        format!("CREATE TABLE {table} (ID INT, CUSTOMER_ID INT, NOTE TEXT)"),
        format!("INSERT INTO {table} VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 10, 'c')"),
    ] {
        let out = home.run(port, &["--session", "setup", "query", &sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
}

/// Minted tokens the daemon still knows: every `snowflaked mcp` ends its own on exit.
fn minted_tokens(home: &Home) -> usize {
    let answer = http::request(&home.socket(), "GET", "/v1/sessions", None, "");
    answer.json()["sessions"]
        .as_array()
        .expect("a session list")
        .iter()
        .filter(|s| s["minted"] == true)
        .count()
}

#[test]
fn read_only_tools_errors_and_protocol_errors() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("mcp_ro");
    create_db(&home, emulator.port, &db);
    create_orders(&home, emulator.port, &db);

    let output = driver_command(&home, emulator.port, "read_only", &[&db])
        .output()
        .unwrap();
    assert_ok(&output, &home);
    assert_eq!(minted_tokens(&home), 0, "the server ended its token");
    // The default token was not touched by the MCP client's `use`.
    let context = http::request(&home.socket(), "GET", "/v1/context", None, "").json();
    assert_ne!(context["context"]["database"], db.as_str());
}

#[test]
fn writes_need_allow_writes_and_run_in_one_transaction() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("mcp_rw");
    create_db(&home, emulator.port, &db);

    let output = driver_command(&home, emulator.port, "writes", &[&db])
        .output()
        .unwrap();
    assert_ok(&output, &home);
}

#[test]
fn two_mcp_clients_at_once_keep_their_own_contexts() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let (db_a, db_b) = (unique_db("mcp_a"), unique_db("mcp_b"));
    for db in [&db_a, &db_b] {
        create_db(&home, emulator.port, db);
    }

    let output = driver_command(&home, emulator.port, "concurrent", &[&db_a, &db_b])
        .output()
        .unwrap();
    assert_ok(&output, &home);
    assert_eq!(minted_tokens(&home), 0, "both servers ended their tokens");
}

#[test]
fn one_mcp_session_survives_the_daemon_idling_out_between_two_calls() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "500ms"]);
    let db = unique_db("mcp_idle");
    create_db(&home, emulator.port, &db);

    let mut child = driver_command(&home, emulator.port, "idle", &[&db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line from the driver").unwrap();
    assert_eq!(first, "WAITING-FOR-IDLE-EXIT");
    // The daemon that served the first call has exited and none runs now.
    activator.wait_for("the daemon's idle exit", WAIT, |events| {
        matches!(events.last(), Some(Event::Exited(..)))
    });
    let starts_before = activator.starts();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(
        status.success() && rest.last().map(String::as_str) == Some("OK"),
        "the MCP driver failed ({status:?}): {rest:?}\ndaemon log: {}",
        std::fs::read_to_string(home.daemon_log()).unwrap_or_default()
    );
    assert!(
        activator.starts() > starts_before,
        "the second call re-activated the daemon"
    );
}

#[test]
fn an_unreachable_daemon_is_a_tool_error_not_a_crash() {
    let home = Home::new();
    let mut command = driver_command(&home, 9, "unreachable", &[]);
    // A socket whose directory cannot be created: nothing listens and nothing can start.
    command.env("SNOWFLAKED_SOCKET", "/proc/snowflaked-nowhere/api.sock");
    let output = command.output().unwrap();
    assert_ok(&output, &home);
}

/// A bare JSON-RPC conversation over the server's pipes, for what a client library hides:
/// every stdout line is a protocol message (even with debug logging on), the exact error
/// codes, and a token given with `--session` that is used and left alone.
struct Raw {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Raw {
    fn start(home: &Home, port: u16, args: &[&str]) -> Self {
        let mut child = home
            .command(port, args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    fn send(&mut self, message: serde_json::Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The answer to request `id`; every line on the way must be JSON-RPC.
    fn answer(&mut self, id: u64) -> serde_json::Value {
        loop {
            let line = self.lines.recv_timeout(WAIT).expect("an answer on stdout");
            let message: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-protocol line ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn call(&mut self, id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        self.answer(id)
    }

    /// Closes stdin, as a client going away does, and returns the exit status and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.child.stdin.take());
        let output = self.child.wait_with_output().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            serde_json::from_str::<serde_json::Value>(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-protocol line ({e}): {line}"));
        }
        (output.status, stderr(&output))
    }
}

fn initialize(raw: &mut Raw) {
    let init = raw.call(
        1,
        "initialize",
        serde_json::json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}
        }),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "snowflaked", "{init}");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    raw.send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
}

#[test]
fn stdout_carries_only_protocol_and_a_given_session_is_used_and_kept() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("mcp_raw");
    create_db(&home, emulator.port, &db);

    let mut raw = Raw::start(&home, emulator.port, &["--session", "editor-1", "mcp"]);
    initialize(&mut raw);
    let used = raw.call(
        2,
        "tools/call",
        serde_json::json!({"name": "use", "arguments": {"database": db}}),
    );
    assert_eq!(used["result"]["isError"], false, "{used}");
    let unknown = raw.call(
        3,
        "tools/call",
        serde_json::json!({"name": "execute", "arguments": {"sql": "DELETE FROM T"}}),
    );
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-writes")
    );
    let bad = raw.call(
        4,
        "tools/call",
        serde_json::json!({"name": "query", "arguments": {"sql": 42}}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let failed = raw.call(
        5,
        "tools/call",
        serde_json::json!({"name": "query", "arguments": {"sql": "SELEC 1"}}),
    );
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    let (status, stderr) = raw.finish();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "logs go to stderr: {stderr}"
    );
    // MCP clients keep the server's stderr in a log file: no terminal colour codes there.
    assert!(!stderr.contains('\x1b'), "plain text logs: {stderr:?}");

    // The named token was used, and is still there for its owner.
    let context = http::request(&home.socket(), "GET", "/v1/context", Some("editor-1"), "").json();
    assert_eq!(context["context"]["database"], db.as_str(), "{context}");
    assert_eq!(minted_tokens(&home), 0, "nothing was minted");
}

/// Waits until the daemon runs a statement of any token.
fn wait_for_a_running_statement(home: &Home) {
    let running = || {
        http::request(&home.socket(), "GET", "/v1/status", None, "").json()["queries"]["running"]
            .as_u64()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + WAIT;
    while running() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never ran"
        );
        std::thread::yield_now();
    }
}

/// `query` starts its statement with a bounded wait, so the daemon owns it and a closed
/// connection alone no longer cancels it; the server cancels the statements its minted token
/// left running before ending that token, since nobody could read their results after.
#[test]
fn a_client_that_goes_away_mid_query_cancels_the_statement_and_ends_the_token() {
    // An emulator of its own, so its counters count this test's statement only.
    let emulator = &emulator::start(&[]);
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let cancelled_before = emulator.counter("cancelled");

    let mut raw = Raw::start(&home, emulator.port, &["mcp"]);
    initialize(&mut raw);
    raw.send(serde_json::json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": "SELECT SYSTEM$WAIT(30)"}}
    }));
    wait_for_a_running_statement(&home);
    emulator.wait_until("the statement runs in Snowflake", |e| {
        e.counter("running") > 0
    });
    // Closing stdin is how an MCP client goes away. rmcp lets in-flight calls finish for up to
    // 5 s (a client may close stdin and still read the answers); then the server cancels what
    // its token left running, ends the token and exits.
    let (status, stderr) = raw.finish();
    assert!(status.success(), "{status:?}: {stderr}");
    emulator.wait_until("the statement is cancelled in Snowflake", |e| {
        e.counter("cancelled") > cancelled_before
    });
    assert_eq!(minted_tokens(&home), 0, "the token was ended");
}

/// A token given with `--session` outlives the MCP client, and so do its statements: the
/// token's owner picks up the result later with `snowflaked result ID`.
#[test]
fn a_given_sessions_statement_outlives_the_mcp_client_and_its_result_can_be_fetched() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);

    let mut raw = Raw::start(&home, emulator.port, &["--session", "editor-2", "mcp"]);
    initialize(&mut raw);
    let started = raw.call(
        2,
        "tools/call",
        serde_json::json!({"name": "query", "arguments": {"sql": "SELECT SYSTEM$WAIT(2) AS W", "wait_s": 0}}),
    );
    let facts = &started["result"]["structuredContent"];
    assert_eq!(facts["state"], "running", "{started}");
    let id = facts["id"].as_str().expect("an id").to_string();
    let (status, server_log) = raw.finish();
    assert!(status.success(), "{status:?}: {server_log}");

    let out = home.run(
        emulator.port,
        &[
            "--session",
            "editor-2",
            "result",
            &id,
            "--wait",
            "60s",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(result["row_count"], 1, "{result}");
}

/// An MCP client that cancels its own request (notifications/cancelled, e.g. the user pressed
/// stop) cancels the statement in Snowflake, and the server serves on.
#[test]
fn a_cancelled_tool_call_cancels_its_statement() {
    let emulator = &emulator::start(&[]);
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let cancelled_before = emulator.counter("cancelled");

    let mut raw = Raw::start(&home, emulator.port, &["mcp"]);
    initialize(&mut raw);
    raw.send(serde_json::json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": "SELECT SYSTEM$WAIT(30)"}}
    }));
    wait_for_a_running_statement(&home);
    emulator.wait_until("the statement runs in Snowflake", |e| {
        e.counter("running") > 0
    });
    raw.send(serde_json::json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "the user pressed stop"}
    }));
    emulator.wait_until("the statement is cancelled in Snowflake", |e| {
        e.counter("cancelled") > cancelled_before
    });
    let context = raw.call(
        3,
        "tools/call",
        serde_json::json!({"name": "context", "arguments": {}}),
    );
    assert_eq!(context["result"]["isError"], false, "{context}");
    let (status, stderr) = raw.finish();
    assert!(status.success(), "{status:?}: {stderr}");
}

/// `@modelcontextprotocol/inspector`'s CLI mode (the TypeScript SDK), when
/// `SNOWFLAKED_TEST_MCP_INSPECTOR` names its binary (`make test` installs the pinned one with
/// tests/mcp/install_inspector.sh); without it this prints one line and passes.
#[test]
fn the_mcp_inspector_cli_lists_and_calls_every_tool() {
    let Some(inspector) = std::env::var_os("SNOWFLAKED_TEST_MCP_INSPECTOR") else {
        println!(
            "MCP Inspector test skipped: set SNOWFLAKED_TEST_MCP_INSPECTOR (make test-mcp-inspector installs it)"
        );
        return;
    };
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("mcp_inspector");
    create_db(&home, emulator.port, &db);
    create_orders(&home, emulator.port, &db);
    let socket = format!("SNOWFLAKED_SOCKET={}", home.socket().display());
    // Each run is a new MCP client: its own `snowflaked mcp`, its own token.
    let inspect = |args: &[&str]| -> (Option<i32>, serde_json::Value, String) {
        let output = Command::new(&inspector)
            .env("HOME", home.path())
            .env("NO_COLOR", "1")
            .args(["--cli", "-e", &socket])
            .arg(binary())
            .args(["mcp", "--allow-writes"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let json = serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}\n{}",
                stdout(&output),
                stderr(&output)
            )
        });
        (output.status.code(), json, stderr(&output))
    };
    let call = |tool: &str, args: &[&str]| {
        let mut all = vec!["--method", "tools/call", "--tool-name", tool, "--tool-arg"];
        all.extend_from_slice(args);
        inspect(&all)
    };

    // --strict: exit 6 on any schema portability problem of error severity.
    let (code, listed, stderr) = inspect(&["--strict", "--method", "tools/list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "query", "execute", "use", "context", "describe", "tables", "columns", "result",
            "queries", "cancel"
        ]
    );

    let table = format!("{db}.PUBLIC.T");
    let (code, written, stderr) = call(
        "execute",
        &[&format!(
            "sql=CREATE TABLE {table} (n INT); INSERT INTO {table} VALUES (1), (2), (3)"
        )],
    );
    assert_eq!(code, Some(0), "{written} {stderr}");
    let (code, read, stderr) = call(
        "query",
        &[
            &format!("sql=SELECT COUNT(*) AS N FROM {table}"),
            "max_rows=5",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read["structuredContent"]["rows"], serde_json::json!([[3]]));
    let (code, used, stderr) = call("use", &[&format!("database={db}")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        used["structuredContent"]["context"]["database"],
        db.as_str()
    );
    let (code, context, stderr) = inspect(&["--method", "tools/call", "--tool-name", "context"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(
        context["structuredContent"]["context"]["database"],
        db.as_str(),
        "a new MCP client does not inherit another one's context"
    );
    // Binds: the inspector passes `params` as JSON.
    let (code, bound, stderr) = call("query", &["sql=SELECT ? + 1 AS N", "params=[41]"]);
    assert_eq!(code, Some(0), "{bound} {stderr}");
    assert_eq!(
        bound["structuredContent"]["rows"],
        serde_json::json!([[42]])
    );
    // The catalog and long-statement tools through runs that share one token given with
    // SNOWFLAKED_SESSION (its context, and its statements, outlive each run).
    let shared = |tool: &str, args: &[&str]| -> (Option<i32>, serde_json::Value, String) {
        let mut all = vec![
            "-e",
            "SNOWFLAKED_SESSION=inspector",
            "--method",
            "tools/call",
            "--tool-name",
            tool,
        ];
        for arg in args {
            all.extend_from_slice(&["--tool-arg", arg]);
        }
        inspect(&all)
    };
    let (code, _, stderr) = shared("use", &[&format!("database={db}"), "schema=PUBLIC"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, described, stderr) = shared("describe", &["name=orders", "sample=1"]);
    assert_eq!(code, Some(0), "{described} {stderr}");
    assert_eq!(described["structuredContent"]["columns"]["row_count"], 3);
    assert_eq!(described["structuredContent"]["sample"]["row_count"], 1);
    let (code, tables, stderr) = shared("tables", &["pattern=ord"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        tables["structuredContent"]["rows"][0][1], "ORDERS",
        "{tables}"
    );
    let (code, columns, stderr) = shared("columns", &["pattern=customer"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        columns["structuredContent"]["rows"][0][2], "CUSTOMER_ID",
        "{columns}"
    );
    let (code, running, stderr) = shared("query", &["sql=SELECT SYSTEM$WAIT(1) AS W", "wait_s=0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        running["structuredContent"]["state"], "running",
        "{running}"
    );
    let id = running["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, queries, stderr) = shared("queries", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        queries["structuredContent"]["statements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str()),
        "{queries}"
    );
    let (code, result, stderr) = shared("result", &[&format!("id={id}"), "wait_s=30"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        result["structuredContent"]["state"], "succeeded",
        "{result}"
    );
    let (code, slow, stderr) = shared("query", &["sql=SELECT SYSTEM$WAIT(60)", "wait_s=0"]);
    assert_eq!(code, Some(0), "{stderr}");
    let slow = slow["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, cancelled, stderr) = shared("cancel", &[&format!("id={slow}")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        cancelled["structuredContent"]["state"], "cancelled",
        "{cancelled}"
    );
    // A failed statement is a tool error, which the inspector reports and exits 5 for.
    let (code, failed, _) = call("query", &["sql=SELECT * FROM NO_SUCH_TABLE_HERE"]);
    assert_eq!(code, Some(5), "{failed}");
    assert_eq!(minted_tokens(&home), 0, "every run ended its token");
}
