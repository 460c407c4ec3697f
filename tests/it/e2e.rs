//! End to end on the real wire: the real `snowflaked` binary, snowflake-connector-rs, the
//! Snowflake emulator, and sockets handed over through `LISTEN_FDS` exactly as systemd does
//! (by our activator, and by `systemd-socket-activate` itself).

use crate::support;

/// The pool and runner under agents' behaviour and backend faults (issue 9).
mod pool;

/// Bind parameters, query tags and catalog commands (issue 12, items 10–12).
mod agents;

/// Statements by id: bounded waits, paging, held and re-fetched results (issue 10).
mod results;

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::activator::{Activator, Event};
use crate::support::{Home, binary, emulator, http, json, stderr, stdout, unique_db};

const WAIT: Duration = Duration::from_secs(60);

fn activator(home: &Home, port: u16, args: &[&str]) -> Activator {
    home.activate(port, args)
}

/// A new database with one table `T (n INT)`, created through `token`; returns the table's
/// qualified name.
fn create_table(home: &Home, port: u16, token: &str, label: &str) -> String {
    let db = unique_db(label);
    create_db(home, port, token, &db);
    let table = format!("{db}.PUBLIC.T");
    home.ok(
        port,
        &[
            "--session",
            token,
            "query",
            &format!("CREATE TABLE {table} (n INT)"),
        ],
    );
    table
}

/// Rows in `table`, counted through another token.
fn count_rows(home: &Home, port: u16, table: &str) -> serde_json::Value {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    json(&home.run(
        port,
        &["--session", "reader", "query", &sql, "--format", "json"],
    ))["rows"][0][0]
        .clone()
}

/// Creates a database with its PUBLIC schema (the emulator does not create it).
fn create_db(home: &Home, port: u16, token: &str, name: &str) {
    for sql in [
        format!("CREATE DATABASE {name}"),
        format!("CREATE SCHEMA {name}.PUBLIC"),
    ] {
        home.ok(
            port,
            &["--session", token, "query", &sql, "--format", "json"],
        );
    }
}

#[test]
fn a_query_round_trips_through_a_socket_activated_daemon() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);

    let out = home.run(emulator.port, &["query", "SELECT 1 AS one, 'snow' AS word, NULL AS nothing, 2.50::NUMBER(10,2) AS price, TRUE AS yes", "--format", "json"]);
    let result = json(&out);
    assert_eq!(result["columns"][0]["name"], "ONE");
    assert_eq!(result["rows"][0][0], 1);
    assert_eq!(result["rows"][0][1], "snow");
    assert!(result["rows"][0][2].is_null());
    assert_eq!(
        result["rows"][0][3].to_string(),
        "2.50",
        "decimals keep their scale exactly"
    );
    assert_eq!(result["rows"][0][4], true);
    assert_eq!(result["row_count"], 1);
    assert_eq!(result["truncated"], false);
    assert!(result["query_id"].as_str().is_some_and(|q| !q.is_empty()));
    assert!(result["context"].is_object() && result["elapsed_ms"].is_number());

    let table = home.ok(emulator.port, &["query", "SELECT 'a|b' AS x"]);
    assert!(
        stdout(&table).contains("a|b") && stdout(&table).contains("1 row"),
        "{}",
        stdout(&table)
    );

    let status = json(&home.run(emulator.port, &["status", "--json"]));
    assert_eq!(status["activation"], "systemd");
    assert_eq!(
        status["pid"].as_u64().map(|p| p as u32),
        activator.running_pid()
    );
    assert!(status["queries"]["served"].as_u64().unwrap() >= 2);
    for field in [
        "version",
        "uptime_s",
        "idle_timeout_s",
        "idle_left_s",
        "sessions",
        "tokens",
        "queries",
    ] {
        assert!(status.get(field).is_some(), "status has {field}");
    }
    let notes = activator.notifications();
    assert!(
        notes.iter().any(|n| n.lines().any(|l| l == "READY=1")),
        "READY=1 sent: {notes:?}"
    );
    assert_eq!(activator.starts(), 1, "one daemon served every command");
}

#[test]
fn idle_exit_signals_stopping_and_the_next_connection_reactivates() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = activator(&home, emulator.port, &["--idle-timeout", "300ms"]);
    home.ok(emulator.port, &["query", "SELECT 1"]);
    activator.wait_for("the first idle exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    let exits = activator.exits();
    assert!(
        exits[0].success(),
        "an idle exit is a clean exit: {:?}",
        exits[0]
    );
    let notes = activator.notifications();
    let stopping = notes
        .iter()
        .position(|n| n.contains("STOPPING=1"))
        .expect("STOPPING=1 sent");
    let ready = notes.iter().position(|n| n.contains("READY=1")).unwrap();
    assert!(ready < stopping);
    assert!(
        notes[stopping].contains("idle"),
        "the status says why: {}",
        notes[stopping]
    );
    home.ok(emulator.port, &["query", "SELECT 2"]);
    assert_eq!(activator.starts(), 2);
}

#[test]
fn no_request_is_lost_across_many_idle_exit_cycles() {
    let emulator = emulator::shared();
    let home = Home::new();
    // A short idle timeout so requests keep racing the daemon's decision to stop.
    let activator = activator(&home, emulator.port, &["--idle-timeout", "40ms"]);
    let mut answered = 0;
    for round in 0..10u64 {
        if round % 2 == 1 {
            // Every other round starts cold: wait until the daemon has really gone (every
            // instance started has exited — counting exits from "now" would miss one that
            // already went while this thread was descheduled, and wait forever).
            activator.wait_for("an idle exit", WAIT, |events| {
                let count = |started: bool| {
                    events
                        .iter()
                        .filter(|e| match e {
                            Event::Started => started,
                            Event::Exited(..) => !started,
                            Event::Notify(_) => false,
                        })
                        .count()
                };
                count(true) == count(false)
            });
        }
        // Ten clients at once, some of them arriving as the previous instance idles out.
        let children: Vec<_> = (0..10u64)
            .map(|i| {
                let n = round * 10 + i;
                home.command(
                    emulator.port,
                    &["query", &format!("SELECT {n} AS n"), "--format", "json"],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            let result = json(&out);
            assert_eq!(result["rows"][0][0], round * 10 + i as u64);
            answered += 1;
        }
    }
    assert_eq!(answered, 100);
    let starts = activator.starts();
    assert!(
        starts >= 5,
        "the daemon went through several idle exits ({starts} starts)"
    );
    assert!(
        activator.exits().iter().all(|s| s.success()),
        "every exit was clean: {:?}\n{}",
        activator.exits(),
        home.read_daemon_log()
    );
}

#[test]
fn sigterm_lets_a_running_query_finish_then_exits_cleanly() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    home.ok(emulator.port, &["query", "SELECT 1"]);
    let pid = activator.running_pid().expect("daemon running");
    let slow = home
        .command(
            emulator.port,
            &["query", "SELECT SYSTEM$WAIT(1.5) AS w", "--format", "json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the daemon reports the statement running before signalling it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = json(&home.run(emulator.port, &["status", "--json"]));
        if status["queries"]["running"].as_u64() == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow query never started"
        );
    }
    // SAFETY: SIGTERM to the daemon this test's activator started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = slow.wait_with_output().unwrap();
    let result = json(&out);
    assert!(
        result["rows"][0][0].as_str().unwrap().contains("waited"),
        "{result}"
    );
    activator.wait_for("the daemon's exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    assert!(activator.exits()[0].success(), "{:?}", activator.exits());
    assert!(
        activator
            .notifications()
            .iter()
            .any(|n| n.contains("STOPPING=1") && n.contains("SIGTERM"))
    );
}

#[test]
fn bad_input_gets_the_contracts_errors() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let socket = home.socket();

    let malformed = http::request(&socket, "POST", "/v1/query", None, "{not json");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["kind"], "bad_request");

    let huge = format!("{{\"sql\": \"SELECT '{}'\"}}", "x".repeat(2 * 1024 * 1024));
    let too_large = http::request(&socket, "POST", "/v1/query", None, &huge);
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json()["error"]["kind"], "body_too_large");

    let unknown = http::request(&socket, "GET", "/v2/nothing", None, "");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["kind"], "not_found");

    let wrong_method = http::request(&socket, "DELETE", "/v1/query", None, "");
    assert_eq!(wrong_method.status, 405);

    let bad_token = http::request(&socket, "GET", "/v1/context", Some("no spaces allowed"), "");
    assert_eq!(bad_token.status, 400);

    let unterminated = http::request(
        &socket,
        "POST",
        "/v1/query",
        None,
        r#"{"sql": "SELECT 'oops"}"#,
    );
    assert_eq!(unterminated.status, 400);
    assert!(
        unterminated.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unterminated")
    );

    let broken = http::request(&socket, "POST", "/v1/query", None, r#"{"sql": "SELEC 1"}"#);
    assert_eq!(broken.status, 422);
    let error = &broken.json()["error"];
    assert_eq!(error["kind"], "statement_failed");
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{error}"
    );
    assert!(
        error["query_id"].as_str().is_some_and(|q| !q.is_empty()),
        "{error}"
    );

    // The CLI maps a failed statement to exit 1 and prints code and query id.
    let cli = home.run(emulator.port, &["query", "SELEC 1"]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(
        stderr(&cli).contains("code ") && stderr(&cli).contains("query id"),
        "{}",
        stderr(&cli)
    );
}

#[test]
fn a_dead_backend_is_a_clear_502_and_the_daemon_stays_up() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = Home::new();
    let activator = activator(&home, closed, &["--idle-timeout", "30m"]);
    let answer = http::request(
        &home.socket(),
        "POST",
        "/v1/query",
        None,
        r#"{"sql": "SELECT 1"}"#,
    );
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.json()["error"]["kind"], "snowflake_unreachable");
    let cli = home.run(closed, &["query", "SELECT 1"]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(stderr(&cli).contains("unreachable"), "{}", stderr(&cli));
    let health = http::request(&home.socket(), "GET", "/health", None, "");
    assert_eq!(health.status, 200);
    assert_eq!(activator.starts(), 1, "the daemon did not crash");
    assert!(
        !home.read_daemon_log().contains("not-a-real-password"),
        "no secret in the logs"
    );
}

#[test]
fn a_silent_client_is_cut_off_and_cannot_keep_the_daemon_alive() {
    let emulator = emulator::shared();
    let home = Home::new();
    let mut env = home.env(emulator.port);
    env.push(("SNOWFLAKED_REQUEST_READ_TIMEOUT".into(), "300ms".into()));
    let activator = home.activate_with(env, &["--idle-timeout", "200ms"]);
    // Connect and say nothing.
    let mut silent = std::os::unix::net::UnixStream::connect(home.socket()).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut buffer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut silent, &mut buffer);
    // The daemon hung up on it, then idled out.
    activator.wait_for("the idle exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    assert!(activator.exits()[0].success());
}

#[test]
fn systemd_socket_activate_hands_over_the_socket() {
    let emulator = emulator::shared();
    let home = Home::new();
    let mut command = Command::new("systemd-socket-activate");
    command
        .args([
            "-l",
            &home.socket().display().to_string(),
            "--fdname",
            "api",
        ])
        .arg("-E")
        .arg("HOME")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in home.env(emulator.port) {
        command.env(&key, value);
        command.arg("-E").arg(key);
    }
    let log = std::fs::File::create(home.daemon_log()).unwrap();
    let mut activate = command
        .arg("--")
        .arg(binary())
        .args(["serve", "--idle-timeout", "30m"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("systemd-socket-activate is installed (apt-get install systemd)");
    // It binds before it waits; connecting succeeds once the socket exists and answers.
    let deadline = std::time::Instant::now() + WAIT;
    while !home.socket().exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "systemd-socket-activate never bound {}",
            home.socket().display()
        );
        std::thread::yield_now();
    }
    let result = json(&home.run(
        emulator.port,
        &["query", "SELECT 42 AS answer", "--format", "json"],
    ));
    assert_eq!(result["rows"][0][0], 42);
    let status = json(&home.run(emulator.port, &["status", "--json"]));
    assert_eq!(status["activation"], "systemd");
    assert_eq!(
        status["pid"].as_u64(),
        Some(u64::from(activate.id())),
        "systemd-socket-activate exec'd the daemon in place"
    );
    // SAFETY: SIGTERM to the process this test started.
    unsafe { libc::kill(activate.id() as i32, libc::SIGTERM) };
    let status = activate.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", home.read_daemon_log());
}

#[test]
fn tokens_keep_separate_contexts_under_concurrency() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let dbs: Vec<String> = (0..4).map(|i| unique_db(&format!("iso{i}"))).collect();
    for (i, db) in dbs.iter().enumerate() {
        create_db(&home, emulator.port, &format!("tok{i}"), db);
        home.ok(
            emulator.port,
            &["--session", &format!("tok{i}"), "use", "database", db],
        );
    }
    // 4 tokens × 6 concurrent clients over a pool of 4 sessions: each must see its own database.
    let children: Vec<_> = (0..24)
        .map(|n| {
            let token = format!("tok{}", n % 4);
            let child = home
                .command(
                    emulator.port,
                    &[
                        "--session",
                        &token,
                        "query",
                        "SELECT CURRENT_DATABASE() AS db",
                        "--format",
                        "json",
                    ],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (n % 4, child)
        })
        .collect();
    for (i, child) in children {
        let result = json(&child.wait_with_output().unwrap());
        assert_eq!(
            result["rows"][0][0].as_str(),
            Some(dbs[i].as_str()),
            "token tok{i} saw another token's database"
        );
        assert_eq!(
            result["context"]["database"].as_str(),
            Some(dbs[i].as_str())
        );
    }
}

#[test]
fn contexts_survive_a_daemon_restart() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = activator(&home, emulator.port, &["--idle-timeout", "200ms"]);
    let db = unique_db("persist");
    create_db(&home, emulator.port, "keeper", &db);
    home.ok(
        emulator.port,
        &["--session", "keeper", "use", "database", &db],
    );
    activator.wait_for("the idle exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    let context = json(&home.run(emulator.port, &["--session", "keeper", "context", "--json"]));
    assert_eq!(context["context"]["database"].as_str(), Some(db.as_str()));
    let result = json(&home.run(
        emulator.port,
        &[
            "--session",
            "keeper",
            "query",
            "SELECT CURRENT_DATABASE()",
            "--format",
            "json",
        ],
    ));
    assert_eq!(result["rows"][0][0].as_str(), Some(db.as_str()));
    assert!(activator.starts() >= 2);
    let state = home.path().join("state/snowflaked/tokens.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn an_expired_snowflake_session_is_replaced_transparently() {
    // Its own emulator: expiring every session must not disturb the other tests.
    let emulator = &emulator::start(&[]);
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("expiry");
    create_db(&home, emulator.port, "exp", &db);
    home.ok(emulator.port, &["--session", "exp", "use", "database", &db]);
    emulator.expire_sessions();
    let result = json(&home.run(
        emulator.port,
        &[
            "--session",
            "exp",
            "query",
            "SELECT CURRENT_DATABASE()",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        result["rows"][0][0].as_str(),
        Some(db.as_str()),
        "context re-applied on the new session"
    );
    let metrics = home.run(emulator.port, &["metrics"]);
    assert!(
        stdout(&metrics).contains("snowflaked_session_expiry_recoveries_total 1"),
        "{}",
        stdout(&metrics)
    );
}

#[test]
fn a_rolled_back_transaction_is_invisible_to_other_tokens() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let table = create_table(&home, emulator.port, "writer", "tx");
    let failed = home.run(
        emulator.port,
        &[
            "--session",
            "writer",
            "query",
            "--transaction",
            &format!("INSERT INTO {table} VALUES (1); INSERT INTO {table} VALUES ('not a number')"),
        ],
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("statement 2") && stderr(&failed).contains("rolled back"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(
        count_rows(&home, emulator.port, &table),
        0,
        "nothing of the failed transaction is visible"
    );
    // An explicit transaction pins the writer; another token does not see uncommitted rows.
    home.ok(emulator.port, &["--session", "writer", "query", "BEGIN"]);
    home.ok(
        emulator.port,
        &[
            "--session",
            "writer",
            "query",
            &format!("INSERT INTO {table} VALUES (7)"),
        ],
    );
    let context = json(&home.run(emulator.port, &["--session", "writer", "context", "--json"]));
    assert_eq!(context["in_transaction"], true);
    home.ok(emulator.port, &["--session", "writer", "query", "ROLLBACK"]);
    assert_eq!(count_rows(&home, emulator.port, &table), 0);
}

#[test]
fn a_client_that_disconnects_mid_query_cancels_it_in_snowflake() {
    // An emulator of its own: its `running` and `cancelled` counters must count this test's
    // statement only, not another test's SYSTEM$WAIT (which made the wait below pass before
    // this statement reached Snowflake, so it was never cancelled there).
    let emulator = &emulator::start(&[]);
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    home.ok(emulator.port, &["query", "SELECT 1"]);
    let cancelled_before = emulator.counter("cancelled");
    // Its own text: other tests' statements run on the shared emulator at the same time.
    let sql = format!(
        "SELECT SYSTEM$WAIT(30) AS disconnecting_{}",
        std::process::id()
    );
    let mut client = home
        .command(emulator.port, &["query", &sql])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    emulator.wait_until("the statement runs", |e| {
        e.stats()["running_sql"]
            .as_array()
            .is_some_and(|running| running.iter().any(|s| *s == *sql))
    });
    client.kill().unwrap();
    client.wait().unwrap();
    emulator.wait_until("the statement is cancelled in Snowflake", |e| {
        e.counter("cancelled") > cancelled_before
    });
    // The daemon still serves.
    home.ok(emulator.port, &["query", "SELECT 1"]);
}

#[test]
fn a_timeout_cancels_and_answers_504() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let answer = http::request(
        &home.socket(),
        "POST",
        "/v1/query",
        None,
        r#"{"sql": "SELECT SYSTEM$WAIT(30)", "timeout_ms": 300}"#,
    );
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert_eq!(answer.json()["error"]["kind"], "timeout");
}

#[test]
fn a_query_tag_belongs_to_its_token() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    home.ok(
        emulator.port,
        &["--session", "tagged", "use", "query-tag", "nightly-report"],
    );
    let result = json(&home.run(
        emulator.port,
        &[
            "--session",
            "tagged",
            "query",
            "SELECT 1",
            "--format",
            "json",
        ],
    ));
    assert_eq!(result["context"]["query_tag"], "nightly-report");
    let other = json(&home.run(emulator.port, &["--session", "plain", "context", "--json"]));
    assert!(
        other["context"]
            .get("query_tag")
            .is_none_or(|t| t.is_null()),
        "{other}"
    );
    home.ok(
        emulator.port,
        &["--session", "tagged", "use", "query-tag", ""],
    );
    let result = json(&home.run(
        emulator.port,
        &[
            "--session",
            "tagged",
            "query",
            "SELECT 1",
            "--format",
            "json",
        ],
    ));
    assert!(
        result["context"]
            .get("query_tag")
            .is_none_or(|t| t.is_null()),
        "{result}"
    );
}

#[test]
fn a_transaction_cut_off_by_a_daemon_stop_is_rolled_back_and_reported() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let table = create_table(&home, emulator.port, "tx", "stoptx");
    home.ok(emulator.port, &["--session", "tx", "query", "BEGIN"]);
    home.ok(
        emulator.port,
        &[
            "--session",
            "tx",
            "query",
            &format!("INSERT INTO {table} VALUES (1)"),
        ],
    );
    home.ok(emulator.port, &["stop"]);
    activator.wait_for("the daemon's exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    let next = home.run(
        emulator.port,
        &[
            "--session",
            "tx",
            "query",
            &format!("INSERT INTO {table} VALUES (2)"),
        ],
    );
    assert_eq!(next.status.code(), Some(1));
    assert!(
        stderr(&next).contains("transaction is gone"),
        "{}",
        stderr(&next)
    );
    assert_eq!(
        count_rows(&home, emulator.port, &table),
        0,
        "the cut-off transaction was rolled back"
    );
    assert!(home.read_daemon_log().contains("daemon stopping"));
}

#[test]
fn read_only_refuses_writes_hidden_behind_a_carriage_return_or_in_a_system_function() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let table = create_table(&home, emulator.port, "writer", "readonly_cr");
    let insert = format!("INSERT INTO {table} VALUES (1), (2)");
    home.ok(emulator.port, &["--session", "writer", "query", &insert]);
    for sql in [
        format!("SELECT 1 AS one -- note\r; DELETE FROM {table}"),
        format!("SELECT 1 AS one // note\r; DELETE FROM {table}"),
        format!("SELECT 1 AS one -- note\x0b; DELETE FROM {table}"),
    ] {
        let out = home.run(
            emulator.port,
            &["--session", "writer", "query", "--read-only", &sql],
        );
        assert_eq!(out.status.code(), Some(2), "{sql:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
    let refused = home.run(
        emulator.port,
        &[
            "query",
            "--read-only",
            "SELECT SYSTEM$CANCEL_ALL_QUERIES(1)",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("SYSTEM$CANCEL_ALL_QUERIES may change state"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        count_rows(&home, emulator.port, &table),
        2,
        "the DELETE never ran"
    );
    // Without --read-only the same text is two statements, and both run.
    home.ok(
        emulator.port,
        &[
            "--session",
            "writer",
            "query",
            &format!("SELECT 1 AS one -- note\r; DELETE FROM {table}"),
        ],
    );
    assert_eq!(count_rows(&home, emulator.port, &table), 0);
}

#[test]
fn a_non_ascii_token_is_refused_and_never_taken_as_default() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = activator(&home, emulator.port, &["--idle-timeout", "30m"]);
    let db = unique_db("tokens");
    create_db(&home, emulator.port, "maker", &db);
    let body = format!(r#"{{"database": "{db}"}}"#);
    for token in ["tökén".as_bytes(), b"\xff", b"\xffdefault"] {
        let mut request = b"PUT /v1/context HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ".to_vec();
        request.extend_from_slice(token);
        request.extend_from_slice(
            format!(
                "\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let answer = http::raw(&home.socket(), &request);
        assert_eq!(answer.status, 400, "{token:?}: {}", answer.body);
        assert_eq!(answer.json()["error"]["kind"], "bad_request");
    }
    let context = json(&home.run(emulator.port, &["context", "--json"]));
    assert_ne!(
        context["context"]["database"],
        db.as_str(),
        "`default` was not changed: {context}"
    );
}
