//! Statements that outlive their caller, and results paged by id without running the statement
//! again (issue 10): the real binary, socket-activated, on the emulator.

use std::process::Output;

use crate::support::activator::Event;
use crate::support::{Home, emulator, http, json, stderr, stdout};

use super::WAIT;

/// Exit status of `query --wait` / `result --wait` while the statement still runs.
const STILL_RUNNING: i32 = 4;

fn generator(rows: u64) -> String {
    format!(
        "SELECT seq4() AS n, 'row ' || seq4() AS label FROM TABLE(GENERATOR(ROWCOUNT => {rows})) ORDER BY n"
    )
}

/// The still-running answer of `query --wait/--detach --format json`: exit 4 and the id.
fn still_running(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(STILL_RUNNING),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let info: serde_json::Value = serde_json::from_str(stdout(output).trim()).unwrap();
    assert_eq!(info["state"], "running");
    info["id"].as_str().unwrap().to_string()
}

fn numbers(result: &serde_json::Value) -> Vec<u64> {
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect()
}

#[test]
fn a_statement_slower_than_wait_exits_4_keeps_running_and_is_fetched_by_id() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let port = emulator.port;

    let out = home.run(
        port,
        &[
            "query",
            "SELECT SYSTEM$WAIT(2)",
            "--wait",
            "100ms",
            "--format",
            "json",
        ],
    );
    let id = still_running(&out);
    // The client is gone; the statement goes on.
    let listed = json(&home.run(port, &["queries", "--json"]));
    let mine = listed["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(mine["state"], "running");
    assert_eq!(mine["detached"], true);
    assert!(
        mine["sql"]
            .as_str()
            .unwrap()
            .starts_with("SELECT SYSTEM$WAIT")
    );

    // Another token never sees the id.
    let other = home.run(port, &["--session", "other", "result", id.as_str()]);
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("no statement has id"),
        "{}",
        stderr(&other)
    );
    let other_cancel = home.run(port, &["--session", "other", "cancel", id.as_str()]);
    assert!(!other_cancel.status.success());
    for path in [
        format!("/v1/queries/{id}"),
        format!("/v1/queries/{id}/result"),
    ] {
        let answer = http::request(&home.socket(), "GET", &path, Some("other"), "");
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    let others = http::request(
        &home.socket(),
        "GET",
        "/v1/queries?all=true",
        Some("other"),
        "",
    );
    assert_eq!(others.status, 200);
    assert!(!others.body.contains(&id), "{}", others.body);

    let result = json(&home.run(
        port,
        &["result", id.as_str(), "--wait", "60s", "--format", "json"],
    ));
    assert_eq!(result["rows"][0][0], "waited 2 seconds");
    assert_eq!(result["id"], id.as_str());
    assert_eq!(
        emulator.counter("cancelled"),
        0,
        "the client leaving did not cancel the statement"
    );
    let done = json(&home.run(port, &["queries", "--json"]));
    assert_eq!(done["statements"][0]["state"], "succeeded");

    // A quick statement with a wait answers its result directly, with its id.
    let quick = json(&home.run(
        port,
        &[
            "query",
            "SELECT 7 AS seven",
            "--wait",
            "60s",
            "--format",
            "json",
        ],
    ));
    assert_eq!(quick["rows"][0][0], 7);
    assert!(quick["id"].as_str().is_some_and(|i| !i.is_empty()));
}

#[test]
fn a_large_result_read_in_pages_equals_the_whole_with_one_statement_in_snowflake() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let mut env = home.env(emulator.port);
    // Hold at most 1 MB of rows in memory: most of the 100 000 rows spill.
    env.push(("SNOWFLAKED_RESULTS__MEMORY".into(), "1000000".into()));
    let _activator = home.activate_with(env, &["--idle-timeout", "30m"]);
    let port = emulator.port;
    home.ok(port, &["query", "SELECT 1"]);

    let before = emulator.counter("queries");
    let id = still_running(&home.run(
        port,
        &["query", &generator(100_000), "--detach", "--format", "json"],
    ));
    let whole = json(&home.run(
        port,
        &[
            "result",
            &id,
            "--wait",
            "120s",
            "--max-rows",
            "0",
            "--format",
            "json",
        ],
    ));
    assert_eq!(whole["row_count"], 100_000);
    assert_eq!(whole["truncated"], false);
    let daemons: Vec<_> = std::fs::read_dir(home.path().join("run/snowflaked/results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        daemons.len(),
        1,
        "one spill directory per daemon: {daemons:?}"
    );
    let spilled: Vec<_> = std::fs::read_dir(&daemons[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(spilled.len(), 1, "one spill file: {spilled:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&spilled[0]).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let mut paged = Vec::new();
    for page in 0..100u64 {
        let offset = (page * 1000).to_string();
        let result = json(&home.run(
            port,
            &[
                "result",
                &id,
                "--offset",
                &offset,
                "--max-rows",
                "1000",
                "--format",
                "json",
            ],
        ));
        assert_eq!(result["row_count"], 1000);
        assert_eq!(result["truncated"], page < 99, "page {page}");
        assert_eq!(result["page"]["offset"], page * 1000);
        paged.extend(result["rows"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(&paged, whole["rows"].as_array().unwrap(), "row for row");
    assert_eq!(numbers(&whole), (0..100_000).collect::<Vec<u64>>());
    assert_eq!(
        emulator.counter("queries") - before,
        1,
        "exactly one statement ran in Snowflake"
    );
}

#[test]
fn a_cut_result_pages_on_and_survives_a_daemon_restart_through_result_scan() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "300ms"]);
    let port = emulator.port;

    let first = json(&home.run(
        port,
        &[
            "query",
            &generator(300),
            "--max-rows",
            "100",
            "--format",
            "json",
        ],
    ));
    assert_eq!(first["truncated"], true);
    assert_eq!(numbers(&first), (0..100).collect::<Vec<u64>>());
    let id = first["id"].as_str().unwrap().to_string();

    // Rows past the cut come from Snowflake's result cache: RESULT_SCAN runs, the statement
    // does not.
    let second = json(&home.run(
        port,
        &[
            "result",
            &id,
            "--offset",
            "100",
            "--max-rows",
            "100",
            "--format",
            "json",
        ],
    ));
    assert_eq!(numbers(&second), (100..200).collect::<Vec<u64>>());
    assert_eq!(second["page"]["total_rows"], 300);
    assert!(daemon_log(&home).contains("result cache"));

    // A detached statement whose result Snowflake's cache cannot return (the emulator keeps
    // none for SYSTEM$WAIT).
    let waited = still_running(&home.run(
        port,
        &[
            "query",
            "SELECT SYSTEM$WAIT(1)",
            "--wait",
            "10ms",
            "--format",
            "json",
        ],
    ));
    let result = json(&home.run(
        port,
        &["result", &waited, "--wait", "60s", "--format", "json"],
    ));
    assert_eq!(result["rows"][0][0], "waited 1 seconds");

    activator.wait_for("the idle exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    let statements_file = home.path().join("state/snowflaked/statements.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&statements_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let after = json(&home.run(
        port,
        &[
            "result",
            &id,
            "--offset",
            "250",
            "--max-rows",
            "100",
            "--format",
            "json",
        ],
    ));
    assert!(activator.starts() >= 2, "a new daemon answered");
    assert_eq!(numbers(&after), (250..300).collect::<Vec<u64>>());
    assert_eq!(after["truncated"], false);
    assert_eq!(after["rows"][0][1], "row 250");

    let gone = home.run(port, &["result", &waited, "--format", "json"]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("no longer holds the result"),
        "a plain error, not a different result: {}",
        stderr(&gone)
    );
}

#[test]
fn a_cancelled_detached_statement_is_reported_cancelled_and_aborted_in_snowflake() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let port = emulator.port;

    let id = still_running(&home.run(
        port,
        &[
            "query",
            "SELECT SYSTEM$WAIT(60)",
            "--detach",
            "--format",
            "json",
        ],
    ));
    emulator.wait_until("the statement runs", |e| e.counter("running") > 0);
    home.ok(port, &["cancel", &id]);
    let result = home.run(port, &["result", &id, "--wait", "60s"]);
    assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
    assert!(stderr(&result).contains("cancelled"), "{}", stderr(&result));
    emulator.wait_until("the abort reached Snowflake", |e| {
        e.counter("cancelled") == 1
    });
    let listed = json(&home.run(port, &["queries", "--all", "--json"]));
    assert_eq!(listed["statements"][0]["state"], "cancelled");
}

#[test]
fn stop_cancels_running_detached_statements_and_records_them_cancelled() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let port = emulator.port;

    let id = still_running(&home.run(
        port,
        &[
            "query",
            "SELECT SYSTEM$WAIT(60)",
            "--detach",
            "--format",
            "json",
        ],
    ));
    emulator.wait_until("the statement runs", |e| e.counter("running") > 0);
    home.ok(port, &["stop"]);
    activator.wait_for("the daemon exits", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    emulator.wait_until("the abort reached Snowflake", |e| {
        e.counter("cancelled") == 1
    });
    let result = home.run(port, &["result", &id]);
    assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
    assert!(stderr(&result).contains("cancelled"), "{}", stderr(&result));
}

#[test]
fn idle_exit_waits_for_a_running_detached_statement() {
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "300ms"]);
    let port = emulator.port;

    let id = still_running(&home.run(
        port,
        &[
            "query",
            "SELECT SYSTEM$WAIT(2)",
            "--detach",
            "--format",
            "json",
        ],
    ));
    // No client is connected from here on; the daemon may exit only once the statement ended.
    activator.wait_for("the idle exit", WAIT, |events| {
        events.iter().any(|e| matches!(e, Event::Exited(..)))
    });
    assert_eq!(activator.starts(), 1);
    assert_eq!(
        emulator.counter("cancelled"),
        0,
        "the idle exit cancelled nothing"
    );
    // The statement finished before the exit: the statements file says so.
    let remembered =
        std::fs::read_to_string(home.path().join("state/snowflaked/statements.json")).unwrap();
    let remembered: serde_json::Value = serde_json::from_str(&remembered).unwrap();
    let entry = remembered["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .expect("remembered");
    assert_eq!(entry["state"], "succeeded");
}

fn daemon_log(home: &Home) -> String {
    std::fs::read_to_string(home.daemon_log()).unwrap_or_default()
}

#[test]
fn a_result_past_results_max_rows_is_refused_plainly_not_cut_silently() {
    let emulator = emulator::shared();
    let home = Home::new();
    let mut env = home.env(emulator.port);
    env.push(("SNOWFLAKED_RESULTS__MAX_ROWS".into(), "50".into()));
    let _activator = home.activate_with(env, &["--idle-timeout", "30m"]);
    let port = emulator.port;
    let first = json(&home.run(
        port,
        &[
            "query",
            &generator(80),
            "--wait",
            "60s",
            "--max-rows",
            "0",
            "--format",
            "json",
        ],
    ));
    assert_eq!(first["row_count"], 50);
    assert_eq!(first["truncated"], true, "the answer says rows are missing");
    let id = first["id"].as_str().unwrap();
    let past = home.run(port, &["result", id, "--offset", "50"]);
    assert!(!past.status.success());
    assert!(
        stderr(&past).contains("results.max_rows"),
        "{}",
        stderr(&past)
    );
}
