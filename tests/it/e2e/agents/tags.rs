//! Query tags the emulator sees (it records the tag each statement ran under, as
//! QUERY_HISTORY would): the plugin's SessionStart hook tags the agent session's token, and
//! `query --query-tag` tags one request's statements only.

use std::io::Write;
use std::process::Stdio;

use super::super::support::{Home, binary, emulator, json, stderr};

/// The query tag the emulator recorded for the statement with exactly this text.
fn tag_of(emulator: &emulator::Emulator, sql: &str) -> serde_json::Value {
    let stats = emulator.stats();
    let history = stats["history"].as_array().expect("history");
    history
        .iter()
        .rev()
        .find(|entry| entry["sql"] == sql)
        .unwrap_or_else(|| panic!("{sql} not in the emulator's history"))["query_tag"]
        .clone()
}

fn unique(label: &str) -> String {
    format!(
        "{label}-{}-{}",
        std::process::id(),
        super::super::support::unique_db("x")
    )
}

#[test]
fn the_session_start_hook_tags_the_agent_sessions_statements() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    let env_file = home.path().join("claude-env");
    std::fs::write(&env_file, "").unwrap();
    let session_id = "0b7c9e6e-agent-session_1";
    let hook =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin/hooks/session-start.sh");
    let mut command = home.program("sh", emulator.port);
    command
        .arg(hook)
        .env("SNOWFLAKED_BIN", binary())
        .env("CLAUDE_ENV_FILE", &env_file)
        .env("CLAUDE_PLUGIN_DATA", home.path().join("plugin-data"))
        .stdin(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let input = format!(r#"{{"session_id":"{session_id}","hook_event_name":"SessionStart"}}"#);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let exported = std::fs::read_to_string(&env_file).unwrap();
    let token = exported
        .trim()
        .strip_prefix("export SNOWFLAKED_SESSION='")
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or_else(|| panic!("the hook exported no token: {exported:?}"))
        .to_string();

    let sql = format!("SELECT '{}' AS agent", unique("hooked"));
    let out = home.run(
        emulator.port,
        &["--session", &token, "query", &sql, "--format", "json"],
    );
    json(&out);
    let tag = tag_of(emulator, &sql);
    let tag: serde_json::Value =
        serde_json::from_str(tag.as_str().unwrap_or_else(|| panic!("untagged: {tag}"))).unwrap();
    assert_eq!(
        tag,
        serde_json::json!({"tool": "claude-code", "session": session_id})
    );

    // Another token is not tagged.
    let sql = format!("SELECT '{}' AS other", unique("untagged"));
    json(&home.run(
        emulator.port,
        &["--session", "other", "query", &sql, "--format", "json"],
    ));
    assert!(tag_of(emulator, &sql).is_null());
}

#[test]
fn a_query_tag_option_tags_that_request_only() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    home.ok(
        emulator.port,
        &["--session", "tagged", "use", "query-tag", "mine"],
    );

    let once = format!("SELECT '{}' AS once", unique("once"));
    let hostile = r#"it's "quoted" \ and $$"#;
    let out = home.run(
        emulator.port,
        &[
            "--session",
            "tagged",
            "query",
            &once,
            "--query-tag",
            hostile,
            "--format",
            "json",
        ],
    );
    json(&out);
    assert_eq!(tag_of(emulator, &once), *hostile);

    let after = format!("SELECT '{}' AS after", unique("after"));
    json(&home.run(
        emulator.port,
        &["--session", "tagged", "query", &after, "--format", "json"],
    ));
    assert_eq!(tag_of(emulator, &after), "mine");

    let out = home.run(emulator.port, &["query", "SELECT 1", "--query-tag", ""]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
