//! The live tier: the same real binary against real Snowflake, when credentials are in the
//! environment (`SNOWFLAKED_LIVE=1` plus `SNOWFLAKE_ACCOUNT`, `SNOWFLAKE_USER` and a credential,
//! optionally `SNOWFLAKE_WAREHOUSE`/`ROLE`). Without them it prints one line and passes.

use crate::support::{Home, assert_success, json, stderr};

/// The caller's Snowflake variables, or `None` (with the skip line printed).
fn live_credentials() -> Option<Vec<(String, String)>> {
    let wanted = std::env::var("SNOWFLAKED_LIVE").is_ok_and(|v| v == "1");
    let has = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    let credential = has("SNOWFLAKE_PAT")
        || has("SNOWFLAKE_PASSWORD")
        || has("SNOWFLAKE_PRIVATE_KEY_FILE")
        || has("SNOWFLAKE_TOKEN");
    if !(wanted && has("SNOWFLAKE_ACCOUNT") && has("SNOWFLAKE_USER") && credential) {
        println!(
            "live Snowflake tests skipped: set SNOWFLAKED_LIVE=1, SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PAT (or another credential) to run them"
        );
        return None;
    }
    Some(
        std::env::vars()
            .filter(|(k, _)| k.starts_with("SNOWFLAKE_"))
            .collect(),
    )
}

fn client(home: &Home, credentials: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut env = home.user_env();
    env.push(("SNOWFLAKED_IDLE_TIMEOUT".into(), "20s".into()));
    env.extend(credentials.iter().cloned());
    home.command_with(env, args).output().unwrap()
}

#[test]
fn live_round_trip_and_per_token_context() {
    let Some(credentials) = live_credentials() else {
        return;
    };
    let home = Home::new();
    let result = json(&client(
        &home,
        &credentials,
        &[
            "query",
            "SELECT CURRENT_VERSION() AS v, 1::NUMBER(10,2) AS d",
            "--format",
            "json",
        ],
    ));
    assert!(result["rows"][0][0].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(result["rows"][0][1].to_string(), "1.00");
    // Two tokens, two schemas of the shared sample database (present in every account).
    let a = client(
        &home,
        &credentials,
        &["--session", "live-a", "use", "database", "SNOWFLAKE"],
    );
    assert_success(&a, "use database");
    let context_a = json(&client(
        &home,
        &credentials,
        &["--session", "live-a", "context", "--json"],
    ));
    let context_b = json(&client(
        &home,
        &credentials,
        &["--session", "live-b", "context", "--json"],
    ));
    assert_eq!(context_a["context"]["database"], "SNOWFLAKE");
    assert_ne!(context_b["context"]["database"], "SNOWFLAKE");
    let bad = client(
        &home,
        &credentials,
        &["query", "SELECT * FROM no_such_table_snowflaked"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("query id"), "{}", stderr(&bad));
    let _ = client(&home, &credentials, &["stop"]);
}
