//! The state file end to end, with the real binary on the emulator: uses of a token reach the
//! disk though its context never changes, acknowledged changes survive SIGKILL, temp files
//! left by a crash are removed, and the number of tokens is capped with a clear error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::activator::{Activator, Event};
use crate::support::{Home, emulator, http, json, stderr, unique_db};

const WAIT: Duration = Duration::from_secs(60);
const DAY: u64 = 24 * 3600;

fn state_dir(home: &Home) -> std::path::PathBuf {
    home.path().join("state/snowflaked")
}

/// Writes the daemon's config file; the next activation reads it.
fn write_config(home: &Home, text: &str) {
    let dir = home.path().join("config/snowflaked");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// Waits for the `n`-th exit of the activated daemon.
fn wait_for_exits(activator: &Activator, n: usize) {
    activator.wait_for("the daemon's exit", WAIT, |events| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Exited(..)))
            .count()
            >= n
    });
}

fn kill_daemon(activator: &Activator, exits_before: usize) {
    let pid = activator.running_pid().expect("a running daemon");
    // SAFETY: SIGKILL to the daemon this test's activator started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_for_exits(activator, exits_before + 1);
}

fn tokens_listed(home: &Home, port: u16) -> Vec<String> {
    let list = json(&home.run(port, &["session", "list", "--json"]));
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["token"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_token_in_daily_use_is_not_forgotten_though_its_context_never_changes() {
    let emulator = emulator::shared();
    let home = Home::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::create_dir_all(state_dir(&home)).unwrap();
    let saved = serde_json::json!({
        "version": 1,
        "tokens": {"daily": {"context": null, "minted": true, "last_used": now - 20 * DAY}},
    });
    std::fs::write(state_dir(&home).join("tokens.json"), saved.to_string()).unwrap();
    write_config(&home, "[tokens]\nttl = \"30d\"\n");
    let activator = home.activate(emulator.port, &["--idle-timeout", "200ms"]);
    // A first activation learns the login defaults (and saves them) …
    json(&home.run(emulator.port, &["query", "SELECT 1", "--format", "json"]));
    wait_for_exits(&activator, 1);
    // … so that the second saves nothing but the use of `daily`.
    json(&home.run(
        emulator.port,
        &[
            "--session",
            "daily",
            "query",
            "SELECT 1",
            "--format",
            "json",
        ],
    ));
    wait_for_exits(&activator, 2);
    // With a ttl that the use 20 days ago exceeds, only the fresh use keeps the token.
    write_config(&home, "[tokens]\nttl = \"10d\"\n");
    let tokens = tokens_listed(&home, emulator.port);
    assert!(
        tokens.contains(&"daily".to_string()),
        "the token used today is kept: {tokens:?}"
    );
}

#[test]
fn acknowledged_mints_ends_and_context_changes_survive_sigkill() {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let mut minted = Vec::new();
    for round in 0..5 {
        let answer = http::request(&home.socket(), "POST", "/v1/sessions", None, "");
        assert_eq!(answer.status, 201, "{}", answer.body);
        minted.push(answer.json()["token"].as_str().unwrap().to_string());
        let db = unique_db("sigkill");
        home.ok(
            emulator.port,
            &[
                "--session",
                "maker",
                "query",
                &format!("CREATE DATABASE {db}"),
            ],
        );
        let answer = http::request(
            &home.socket(),
            "PUT",
            "/v1/context",
            Some("ctx"),
            &format!(r#"{{"database": "{db}"}}"#),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        kill_daemon(&activator, round);
        let tokens = tokens_listed(&home, emulator.port);
        for token in &minted {
            assert!(tokens.contains(token), "round {round}: {token} lost");
        }
        let context = json(&home.run(emulator.port, &["--session", "ctx", "context", "--json"]));
        assert_eq!(context["context"]["database"], db.as_str());
    }
    let ended = minted.pop().unwrap();
    let answer = http::request(
        &home.socket(),
        "DELETE",
        "/v1/sessions/current",
        Some(&ended),
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    kill_daemon(&activator, 5);
    assert!(!tokens_listed(&home, emulator.port).contains(&ended));
}

#[test]
fn temp_files_left_by_a_crash_are_removed_at_startup() {
    let emulator = emulator::shared();
    let home = Home::new();
    std::fs::create_dir_all(state_dir(&home)).unwrap();
    // No process can have this pid (it is above the kernel's limit).
    let leftover = state_dir(&home).join(format!("tokens.json.tmp{}", i32::MAX - 1));
    std::fs::write(&leftover, "{\"version\": 1, \"tok").unwrap();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    assert_eq!(
        http::request(&home.socket(), "GET", "/health", None, "").status,
        200
    );
    assert!(!leftover.exists(), "the crash's temp file is removed");
}

#[test]
fn tokens_beyond_tokens_max_are_refused_with_a_hint() {
    let emulator = emulator::shared();
    let home = Home::new();
    write_config(&home, "[tokens]\nmax = 2\n");
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    for _ in 0..2 {
        home.ok(emulator.port, &["session", "new"]);
    }
    let out = home.run(emulator.port, &["session", "new"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("tokens.max"), "{}", stderr(&out));
    let answer = http::request(&home.socket(), "POST", "/v1/sessions", None, "");
    assert_eq!(answer.status, 429, "{}", answer.body);
    let error = &answer.json()["error"];
    assert_eq!(error["kind"], "too_many_tokens");
    assert!(error["hint"].as_str().unwrap().contains("session end"));
    // A new name is refused too, and nothing was added.
    let answer = http::request(
        &home.socket(),
        "POST",
        "/v1/query",
        Some("one-more"),
        r#"{"sql": "SELECT 1"}"#,
    );
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(tokens_listed(&home, emulator.port).len(), 2);
}
