//! The pool and runner under real agent behaviour (issue 9), end to end: the real binary,
//! socket-activated by the tests' activator, the real client crate and the emulator. One test
//! per defect: hang-ups during logins, a statement of the same token racing a transaction, the
//! backend restarting or going away inside a transaction, a token whose database vanished, a
//! backend restart under load, a waiter of a failing login, and the status of every session.
//!
//! Slow statements are `SYSTEM$WAIT(600)` with a unique marker in their SQL; the test waits
//! until the emulator reports them running and ends them when it chooses
//! (`/__emulator/release-waits`), so no interleaving depends on timing.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::activator::Activator;
use super::support::{Home, emulator, http, json as json_of, stderr, stdout, unique_db};
use super::{WAIT, count_rows, create_db};

/// A daemon for `home` with extra `SNOWFLAKED_*` settings.
fn daemon(home: &Home, port: u16, settings: &[(&str, &str)]) -> Activator {
    let mut env = home.env(port);
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    home.activate_with(env, &["--idle-timeout", "30m"])
}

/// `POST /v1/query` as `token`.
fn query_at(socket: &std::path::Path, token: &str, sql: &str) -> http::Answer {
    let body = json!({ "sql": sql }).to_string();
    http::request(socket, "POST", "/v1/query", Some(token), &body)
}

fn query(home: &Home, token: &str, sql: &str) -> http::Answer {
    query_at(&home.socket(), token, sql)
}

/// A statement that must succeed; its answer.
fn ok(home: &Home, token: &str, sql: &str) -> Value {
    let answer = query(home, token, sql);
    assert_eq!(
        answer.status,
        200,
        "{token}: {sql}: {}\n{}",
        answer.body,
        daemon_log(home)
    );
    answer.json()
}

/// The same statement on a thread, for statements that run while the test does more.
fn in_background(home: &Home, token: &str, sql: &str) -> JoinHandle<http::Answer> {
    let socket = home.socket();
    let (token, sql) = (token.to_string(), sql.to_string());
    std::thread::spawn(move || query_at(&socket, &token, &sql))
}

/// A slow statement for `token` that ends only when the test releases `marker`.
fn slow_sql(marker: &str) -> String {
    format!("SELECT SYSTEM$WAIT(600) AS w, '{marker}' AS marker")
}

/// `GET /v1/status`.
fn status(home: &Home) -> Value {
    let answer = http::request(&home.socket(), "GET", "/v1/status", None, "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Polls the daemon's status until `done` holds; panics with the last status after `timeout`.
fn wait_status(home: &Home, what: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let now = status(home);
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; status: {now:#}\n{}",
            daemon_log(home)
        );
    }
}

/// `GET /v1/context` as `token`.
fn context(home: &Home, token: &str) -> Value {
    let answer = http::request(&home.socket(), "GET", "/v1/context", Some(token), "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// The tail of the daemon's log, for failure messages.
fn daemon_log(home: &Home) -> String {
    let log = std::fs::read_to_string(home.daemon_log()).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!("--- daemon log (last 40 lines) ---\n{tail}")
}

/// The error kind of an error answer.
fn error_kind(answer: &http::Answer) -> String {
    serde_json::from_str::<Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"]["kind"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The `warnings` of an answer: top level, or inside `error` for an error answer.
fn warnings(answer: &http::Answer) -> Vec<String> {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    [&body["warnings"], &body["error"]["warnings"]]
        .into_iter()
        .filter_map(|w| w.as_array())
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

/// A client that sends a statement as `token` and gives up (hangs up) after `patience`, like
/// an agent's tool call that times out. Returns whether it got an answer first.
fn impatient_client(socket: PathBuf, token: String, patience: Duration) -> bool {
    use std::io::{Read, Write};
    let body = json!({ "sql": "SELECT 1" }).to_string();
    let request = format!(
        "POST /v1/query HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    stream.write_all(request.as_bytes()).unwrap();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut answer = Vec::new();
    let answered = stream.read_to_end(&mut answer).is_ok() && !answer.is_empty();
    // Dropping the stream is the hang-up.
    answered
}

/// Issue 9, defect 1: a hang-up during a login leaked its pool place for good ("3 logging in"
/// forever, then 503 for everyone).
#[test]
fn hang_ups_during_logins_leak_nothing_and_the_pool_serves_at_full_width() {
    // Its own emulator: its logins are slowed to 3 s.
    let emulator = emulator::start(&["--login-delay-ms", "3000"]);
    let home = Home::new();
    let _daemon = daemon(
        &home,
        emulator.port,
        &[
            ("SNOWFLAKED_POOL__MAX_SIZE", "4"),
            ("SNOWFLAKED_POOL__CHECKOUT_TIMEOUT", "20s"),
        ],
    );

    // 32 clients of fresh tokens give up after 0.5 s, in the middle of 3 s logins.
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let socket = home.socket();
            std::thread::spawn(move || {
                impatient_client(socket, format!("impatient{i}"), Duration::from_millis(500))
            })
        })
        .collect();
    let answered = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .filter(|&answered| answered)
        .count();
    assert_eq!(
        answered, 0,
        "every client gave up before its login finished"
    );

    // Once the emulator has answered every login, the pool has nothing logging in.
    emulator.wait_until("the logins in progress finish", |e| {
        e.counter("logins_running") == 0
    });
    let rest = wait_status(
        &home,
        "nothing is logging in or in use",
        Duration::from_secs(30),
        |s| s["sessions"]["logging_in"] == 0 && s["sessions"]["in_use"] == 0,
    );
    assert!(
        rest["sessions"]["total"].as_u64().unwrap() <= 4,
        "total ≤ max: {rest:#}"
    );

    // Then it serves 4 slow statements at once: all four run in the emulator together.
    emulator.set_options(json!({ "login_delay_ms": 0 }));
    emulator.reset_peak();
    let marker = unique_db("wide");
    let slow: Vec<_> = (0..4)
        .map(|i| in_background(&home, &format!("wide{i}"), &slow_sql(&marker)))
        .collect();
    emulator.wait_running_with(&marker, 4);
    let busy = status(&home);
    assert_eq!(busy["sessions"]["in_use"], 4, "{busy:#}");
    assert_eq!(emulator.release_waits(&marker), 4);
    for answer in slow {
        let answer = answer.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert!(emulator.counter("peak_running") >= 4);
}

/// Issue 9, defect 2: a statement of the same token that started before BEGIN ended the
/// transaction when it returned; the INSERT then ran in autocommit and ROLLBACK kept the row.
#[test]
fn a_statement_started_before_begin_does_not_end_the_tokens_transaction() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port, &[]);
    let table = super::create_table(&home, emulator.port, "setup", "txrace");
    for round in 0..3 {
        let marker = unique_db(&format!("race{round}"));
        // The slow SELECT starts first and is still running while BEGIN and INSERT go in.
        let select = in_background(&home, "agent", &slow_sql(&marker));
        emulator.wait_running_with(&marker, 1);
        let begun = ok(&home, "agent", "BEGIN");
        assert_eq!(begun["in_transaction"], true, "round {round}: {begun}");
        let inserted = ok(
            &home,
            "agent",
            &format!("INSERT INTO {table} VALUES ({round})"),
        );
        assert_eq!(
            inserted["in_transaction"], true,
            "round {round}: {inserted}"
        );
        // Now the SELECT finishes, on its own session.
        assert_eq!(emulator.release_waits(&marker), 1);
        let selected = select.join().unwrap();
        assert_eq!(selected.status, 200, "round {round}: {}", selected.body);
        assert_eq!(
            context(&home, "agent")["in_transaction"],
            true,
            "round {round}: the returning SELECT ended the transaction"
        );
        let rolled_back = ok(&home, "agent", "ROLLBACK");
        assert_eq!(rolled_back["in_transaction"], false);
        assert_eq!(
            count_rows(&home, emulator.port, &table),
            0,
            "round {round}: the rolled-back row is visible to another token"
        );
    }
}

/// BEGIN and one INSERT as `token` into a new table; returns the table.
fn open_transaction(home: &Home, port: u16, token: &str, label: &str) -> String {
    let table = super::create_table(home, port, "setup", label);
    ok(home, token, "BEGIN");
    let inserted = ok(home, token, &format!("INSERT INTO {table} VALUES (1)"));
    assert_eq!(inserted["in_transaction"], true, "{inserted}");
    table
}

/// After a lost transaction: the token's next statement is told so (409 `transaction_lost`),
/// once; the one after runs, outside any transaction.
fn assert_told_once(home: &Home, token: &str, next: &str) {
    let lost = query(home, token, next);
    assert_eq!(
        (lost.status, error_kind(&lost).as_str()),
        (409, "transaction_lost"),
        "{next}: {}\n{}",
        lost.body,
        daemon_log(home)
    );
    let after = ok(home, token, "SELECT 1 AS one");
    assert_eq!(after["in_transaction"], false, "{after}");
    assert_eq!(context(home, token)["in_transaction"], false);
}

/// Issue 9, defect 3: a backend restart inside a transaction lost it silently. The next
/// statement, a SELECT or the COMMIT itself, must get `transaction_lost`, once.
#[test]
fn a_backend_restart_inside_a_transaction_is_reported_once_as_transaction_lost() {
    // Its own emulator: it is restarted.
    let emulator = emulator::start(&[]);
    for next in ["SELECT 2 AS two", "COMMIT"] {
        // A daemon per case, so the second does not start with the first's stale sessions.
        let home = Home::new();
        let _daemon = daemon(&home, emulator.port, &[]);
        open_transaction(&home, emulator.port, "tx", "restarttx");
        emulator.restart();
        assert_told_once(&home, "tx", next);
    }
}

/// Issue 9, defect 3, unreachable: BEGIN; INSERT; Snowflake goes away (502); it comes back:
/// the next statement is told the transaction is gone instead of running in autocommit.
#[test]
fn an_unreachable_backend_inside_a_transaction_is_502_then_transaction_lost() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port, &[]);
    open_transaction(&home, emulator.port, "tx", "downtx");
    emulator.stop();
    let down = query(&home, "tx", "SELECT 2 AS two");
    assert_eq!(
        (down.status, error_kind(&down).as_str()),
        (502, "snowflake_unreachable"),
        "{}",
        down.body
    );
    emulator.start_again();
    assert_told_once(&home, "tx", "COMMIT");
}

/// Makes `db.PUBLIC.T` with `rows` as `token` and leaves `token` in that schema.
fn table_in_own_schema(home: &Home, port: u16, token: &str, db: &str, rows: &[i32]) {
    create_db(home, port, token, db);
    ok(home, token, &format!("USE SCHEMA {db}.PUBLIC"));
    ok(home, token, "CREATE TABLE T (n INT)");
    let values: Vec<String> = rows.iter().map(|n| format!("({n})")).collect();
    ok(
        home,
        token,
        &format!("INSERT INTO T VALUES {}", values.join(", ")),
    );
    let saved = context(home, token);
    assert_eq!(saved["context"]["database"].as_str(), Some(db), "{saved}");
}

/// A's saved context after its database vanished: never B's, never the vanished one.
fn assert_context_is_not(home: &Home, token: &str, forbidden: &[&str]) {
    let saved = context(home, token);
    let text = saved["context"].to_string();
    for db in forbidden {
        assert!(
            !text.contains(db),
            "{token}'s saved context names {db}: {saved}"
        );
    }
}

/// Issue 9, defect 4: token A's database was dropped by another token; A's `DELETE FROM T`
/// ran in the pooled session's context, which was B's, and deleted B's rows.
#[test]
fn a_token_whose_database_was_dropped_never_touches_another_tokens_tables() {
    let emulator = emulator::shared();
    let home = Home::new();
    // One Snowflake session for everyone: whatever A runs on was last used by B.
    let _daemon = daemon(&home, emulator.port, &[("SNOWFLAKED_POOL__MAX_SIZE", "1")]);
    let (db_a, db_b) = (unique_db("gone_a"), unique_db("keep_b"));
    table_in_own_schema(&home, emulator.port, "tok_b", &db_b, &[1, 2, 3]);
    table_in_own_schema(&home, emulator.port, "tok_a", &db_a, &[9]);
    ok(&home, "dropper", &format!("DROP DATABASE {db_a}"));
    // B uses the session last, so it is in B's context when A gets it.
    let b_count = ok(&home, "tok_b", "SELECT COUNT(*) FROM T");
    assert_eq!(b_count["rows"][0][0], 3);

    let delete = query(&home, "tok_a", "DELETE FROM T");
    assert_eq!(
        count_rows(&home, emulator.port, &format!("{db_b}.PUBLIC.T")),
        3,
        "A's DELETE deleted B's rows: {}",
        delete.body
    );
    let told = warnings(&delete);
    assert!(
        !told.is_empty(),
        "A's answer warns that its saved context could not be applied: {}",
        delete.body
    );
    if delete.status == 200 {
        let ran_in = delete.json()["context"].to_string();
        assert!(!ran_in.contains(&db_b), "A ran in B's context: {ran_in}");
    }
    assert_context_is_not(&home, "tok_a", &[&db_b, &db_a]);
    // B is untouched, and still in its own context.
    let b_after = ok(&home, "tok_b", "SELECT COUNT(*) FROM T");
    assert_eq!(b_after["rows"][0][0], 3);
    assert_eq!(b_after["context"]["database"].as_str(), Some(db_b.as_str()));
}

/// Issue 9, defect 4, the backend restarted empty: A's database is gone with everything else;
/// B builds its own table again; A's `DELETE FROM T` must not reach it, and the client prints
/// the warning on stderr.
#[test]
fn after_a_backend_restart_a_token_whose_database_is_gone_is_warned_and_touches_nothing_else() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port, &[("SNOWFLAKED_POOL__MAX_SIZE", "1")]);
    let (db_a, db_b) = (unique_db("lost_a"), unique_db("new_b"));
    table_in_own_schema(&home, emulator.port, "tok_a", &db_a, &[9]);
    emulator.restart();
    table_in_own_schema(&home, emulator.port, "tok_b", &db_b, &[1, 2, 3]);

    let delete = home.run(
        emulator.port,
        &["--session", "tok_a", "query", "DELETE FROM T"],
    );
    assert_eq!(
        count_rows(&home, emulator.port, &format!("{db_b}.PUBLIC.T")),
        3,
        "A's DELETE deleted B's rows: {}",
        stderr(&delete)
    );
    assert!(
        stderr(&delete).lines().any(|l| l.starts_with("warning: ")),
        "the client prints the warning: {}",
        stderr(&delete)
    );
    assert_context_is_not(&home, "tok_a", &[&db_b, &db_a]);
}

/// Issue 9, defect 5: after a backend restart every stale pooled session answered 390104,
/// which became a 502, and the one retry could land on another stale session.
#[test]
fn a_backend_restart_costs_no_request_a_failure() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port, &[("SNOWFLAKED_POOL__MAX_SIZE", "4")]);
    let mut failures = Vec::new();
    // Three restarts, each with four warm pooled sessions that all go stale at once.
    for cycle in 0..3 {
        let marker = unique_db(&format!("warm{cycle}"));
        let warming: Vec<_> = (0..4)
            .map(|i| in_background(&home, &format!("warm{i}"), &slow_sql(&marker)))
            .collect();
        emulator.wait_running_with(&marker, 4);
        assert_eq!(emulator.release_waits(&marker), 4);
        for answer in warming {
            let answer = answer.join().unwrap();
            if answer.status != 200 {
                failures.push(format!(
                    "cycle {cycle} warm-up: {} {}",
                    answer.status, answer.body
                ));
            }
        }
        wait_status(&home, "four idle sessions", WAIT, |s| {
            s["sessions"]["idle"] == 4
        });

        emulator.restart();

        // Concurrent statements, then sequential ones: every one succeeds.
        let concurrent: Vec<_> = (0..8)
            .map(|n| {
                let token = format!("after{}", n % 5);
                (n, in_background(&home, &token, &format!("SELECT {n} AS n")))
            })
            .collect();
        for (n, answer) in concurrent {
            let answer = answer.join().unwrap();
            if answer.status != 200 || answer.json()["rows"][0][0] != n {
                failures.push(format!(
                    "cycle {cycle} concurrent {n}: {} {}",
                    answer.status, answer.body
                ));
            }
        }
        for n in 0..8 {
            let answer = query(&home, &format!("seq{}", n % 3), &format!("SELECT {n} AS n"));
            if answer.status != 200 || answer.json()["rows"][0][0] != n {
                failures.push(format!(
                    "cycle {cycle} sequential {n}: {} {}",
                    answer.status, answer.body
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 48 requests failed after restarts:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        daemon_log(&home)
    );
}

/// Issue 9, defect 6: a request waiting for a login that fails was answered 503 "all sessions
/// are busy" instead of the login's own error.
#[test]
fn requests_waiting_for_a_failing_login_get_the_logins_error() {
    let emulator = emulator::start(&[]);
    // Every login is refused (bad credentials), after a while.
    emulator.set_options(json!({ "refuse_logins": true, "login_delay_ms": 1500 }));
    let home = Home::new();
    let _daemon = daemon(
        &home,
        emulator.port,
        &[
            ("SNOWFLAKED_POOL__MAX_SIZE", "2"),
            ("SNOWFLAKED_POOL__CHECKOUT_TIMEOUT", "5s"),
        ],
    );
    let waiting: Vec<_> = (0..8)
        .map(|i| in_background(&home, &format!("waiter{i}"), "SELECT 1"))
        .collect();
    let mut wrong = Vec::new();
    for (i, answer) in waiting.into_iter().enumerate() {
        let answer = answer.join().unwrap();
        let cause = answer.body.contains("Incorrect username or password");
        if (answer.status, error_kind(&answer).as_str()) != (502, "login_failed") || !cause {
            wrong.push(format!("waiter{i}: {} {}", answer.status, answer.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "every waiter gets 502 with the login's cause:\n{}",
        wrong.join("\n")
    );
    // Once logins work again, so does the daemon.
    emulator.set_options(json!({ "refuse_logins": false, "login_delay_ms": 0 }));
    ok(&home, "waiter0", "SELECT 1");
}

/// Issue 9, defect 7: status counted idle + in use + logging in and missed a pinned session
/// at rest.
#[test]
fn status_reports_every_session_by_state_including_a_pinned_one_at_rest() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port, &[]);
    let sum = |s: &Value| {
        ["idle", "in_use", "pinned", "logging_in"]
            .iter()
            .map(|k| s["sessions"][k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    ok(&home, "tx", "BEGIN");
    let held = json_of(&home.run(emulator.port, &["status", "--json"]));
    let sessions = &held["sessions"];
    for field in ["idle", "in_use", "pinned", "logging_in", "total"] {
        assert!(
            sessions[field].is_u64(),
            "status has sessions.{field}: {held:#}"
        );
    }
    assert_eq!(sessions["pinned"], 1, "{held:#}");
    assert_eq!(sessions["in_use"], 0, "nothing runs now: {held:#}");
    assert_eq!(sessions["total"].as_u64(), Some(sum(&held)), "{held:#}");
    assert!(sum(&held) >= 1);
    // And people see it too.
    let shown = stdout(&home.ok(emulator.port, &["status"]));
    assert!(shown.contains("1 pinned"), "{shown}");

    ok(&home, "tx", "ROLLBACK");
    let after = json_of(&home.run(emulator.port, &["status", "--json"]));
    assert_eq!(after["sessions"]["pinned"], 0, "{after:#}");
    assert_eq!(
        after["sessions"]["total"].as_u64(),
        Some(sum(&after)),
        "{after:#}"
    );
}
