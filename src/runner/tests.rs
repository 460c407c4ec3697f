//! Runner behaviour against the fake backend: context isolation between tokens, only the
//! difference applied, expiry recovery, transactions, time limits and cancellation.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{PoolSettings, QuerySettings};
use crate::snowflake::fake::FakeBackend;

fn runner_with(fake: &FakeBackend, max_size: usize) -> Arc<Runner> {
    let pool = Pool::new(
        Arc::new(fake.clone()),
        PoolSettings {
            max_size,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3000),
            login_timeout: Duration::from_secs(10),
        },
    );
    Arc::new(Runner::new(
        pool,
        Arc::new(Registry::in_memory(Duration::ZERO)),
        Arc::new(Metrics::default()),
        QuerySettings::default(),
    ))
}

fn sql(text: &str) -> QueryInput {
    QueryInput {
        sql: text.to_string(),
        ..QueryInput::default()
    }
}

fn statements_on(fake: &FakeBackend, session: u64) -> Vec<String> {
    fake.statements()
        .into_iter()
        .filter(|(s, _)| *s == session)
        .map(|(_, t)| t)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn tokens_never_see_each_others_context_on_a_shared_session() {
    let fake = FakeBackend::with_databases(&["A_DB", "B_DB"]);
    let runner = runner_with(&fake, 1);
    runner.query("a", sql("USE DATABASE a_db")).await.unwrap();
    let b = runner.query("b", sql("USE DATABASE b_db")).await.unwrap();
    assert_eq!(b.context.database.as_deref(), Some("B_DB"));
    // Same single session: a's context is re-applied for a, and b's for b.
    let a = runner
        .query(
            "a",
            sql("SELECT CURRENT_DATABASE(), CURRENT_SCHEMA(), CURRENT_WAREHOUSE(), CURRENT_ROLE()"),
        )
        .await
        .unwrap();
    assert_eq!(
        crate::row::values(&a.output.rows[0])[0],
        serde_json::json!("A_DB")
    );
    let fresh = runner
        .query(
            "c",
            sql("SELECT CURRENT_DATABASE(), CURRENT_SCHEMA(), CURRENT_WAREHOUSE(), CURRENT_ROLE()"),
        )
        .await
        .unwrap();
    assert_eq!(
        crate::row::values(&fresh.output.rows[0])[0],
        serde_json::Value::Null,
        "a new token starts from the login defaults, not from b's database"
    );
    // b and c each needed a session without a's/b's database; no statement clears one, so each
    // got a fresh login (the pool of one retired the old session to make room).
    assert_eq!(fake.logins(), 3);
}

#[tokio::test(start_paused = true)]
async fn only_the_difference_is_replayed_and_nothing_when_the_session_matches() {
    let fake = FakeBackend::with_databases(&["DB"]);
    let runner = runner_with(&fake, 2);
    runner.query("a", sql("USE DATABASE db")).await.unwrap();
    let before = fake.statements().len();
    runner.query("a", sql("SELECT 1")).await.unwrap();
    assert_eq!(
        fake.statements().len(),
        before + 1,
        "affinity: same session, nothing replayed"
    );
    assert_eq!(fake.statements().last().unwrap().1, "SELECT 1");
}

#[tokio::test(start_paused = true)]
async fn a_failed_use_leaves_the_context_as_it_was() {
    let fake = FakeBackend::with_databases(&["GOOD"]);
    let runner = runner_with(&fake, 1);
    runner
        .set_context(
            "t",
            ContextChange {
                database: Some("good".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = runner
        .set_context(
            "t",
            ContextChange {
                database: Some("missing".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RunError::Statement { ref code, .. } if code.as_deref() == Some("002043")),
        "{err}"
    );
    assert_eq!(
        runner.registry().context("t").unwrap().database.as_deref(),
        Some("GOOD")
    );
    let bad_name = runner
        .set_context(
            "t",
            ContextChange {
                database: Some("x; DROP TABLE y".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(bad_name, RunError::BadRequest(_)));
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_is_replaced_and_the_statement_retried_with_the_context() {
    let fake = FakeBackend::with_databases(&["DB"]);
    let runner = runner_with(&fake, 2);
    runner.query("a", sql("USE DATABASE db")).await.unwrap();
    fake.expire_all_sessions();
    let outcome = runner.query("a", sql("SELECT 1")).await.unwrap();
    assert_eq!(
        crate::row::values(&outcome.output.rows[0])[0],
        serde_json::json!(1)
    );
    assert_eq!(fake.logins(), 2);
    let on_new_session = statements_on(&fake, 2);
    assert!(
        on_new_session.contains(&"USE DATABASE \"DB\"".to_string()),
        "context re-applied: {on_new_session:?}"
    );
    assert_eq!(on_new_session.last().unwrap(), "SELECT 1");
    assert_eq!(
        runner
            .metrics
            .session_expiry_recoveries
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_transaction_pins_its_session_and_other_tokens_wait() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let begun = runner.query("tx", sql("BEGIN")).await.unwrap();
    assert!(begun.in_transaction);
    let mut other = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.query("other", sql("SELECT 1")).await })
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut other)
            .await
            .is_err(),
        "the only session is pinned to tx: other must still be waiting"
    );
    let committed = runner.query("tx", sql("COMMIT")).await.unwrap();
    assert!(!committed.in_transaction);
    assert!(other.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_failing_statement_rolls_back_the_whole_transaction_request() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let input = QueryInput {
        sql: "INSERT INTO t VALUES (1); FAIL here; INSERT INTO t VALUES (2)".into(),
        transaction: true,
        ..QueryInput::default()
    };
    let err = runner.query("tx", input).await.unwrap_err();
    match err {
        RunError::Statement {
            statement,
            rolled_back,
            ..
        } => {
            assert_eq!(statement, Some(2));
            assert!(rolled_back);
        }
        other => panic!("{other:?}"),
    }
    let ran: Vec<String> = fake.statements().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        ran.iter().filter(|s| s.starts_with("INSERT")).count(),
        1,
        "stopped at the failure: {ran:?}"
    );
    assert_eq!(ran.last().unwrap(), "ROLLBACK");
    assert!(!runner.pool().is_pinned("tx"));
    assert_eq!(fake.open_transactions(), 0);
}

#[tokio::test(start_paused = true)]
async fn read_only_refuses_writes_and_says_which_statement() {
    let runner = runner_with(&FakeBackend::default(), 1);
    let input = QueryInput {
        sql: "SELECT 1; DELETE FROM t".into(),
        read_only: Some(true),
        ..QueryInput::default()
    };
    match runner.query("a", input).await.unwrap_err() {
        RunError::ReadOnly { statement, reason } => {
            assert_eq!(statement, 2);
            assert!(reason.contains("DELETE"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_time_limit_cancels_in_snowflake_and_reports_timeout() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let input = QueryInput {
        sql: "SELECT SYSTEM$WAIT(60)".into(),
        timeout: Some(Duration::from_secs(2)),
        ..QueryInput::default()
    };
    let err = runner.query("a", input).await.unwrap_err();
    assert!(matches!(err, RunError::Timeout(_)), "{err:?}");
    assert_eq!(fake.cancelled(), 1);
    // The session is usable afterwards.
    assert!(runner.query("a", sql("SELECT 1")).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn cancel_by_request_id_stops_a_running_statement() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let running = {
        let runner = runner.clone();
        tokio::spawn(async move {
            runner
                .query(
                    "a",
                    QueryInput {
                        sql: "SELECT SYSTEM$WAIT(60)".into(),
                        request_id: Some("q-1".into()),
                        ..QueryInput::default()
                    },
                )
                .await
        })
    };
    while !fake
        .statements()
        .iter()
        .any(|(_, sql)| sql.contains("SYSTEM$WAIT"))
    {
        tokio::task::yield_now().await;
    }
    assert!(
        !runner.cancel("b", "q-1"),
        "another token cannot cancel this token's statement"
    );
    assert!(runner.cancel("a", "q-1"));
    assert!(matches!(
        running.await.unwrap(),
        Err(RunError::Cancelled { .. })
    ));
    assert!(
        !runner.cancel("a", "q-1"),
        "the id is forgotten once the statement ends"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_request_cancels_and_the_session_is_not_reused_mid_statement() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let running = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.query("a", sql("SELECT SYSTEM$WAIT(60)")).await })
    };
    while runner.metrics.queries_running.load(Ordering::Relaxed) == 0
        || fake.statements().is_empty()
    {
        tokio::task::yield_now().await;
    }
    running.abort();
    let _ = running.await;
    assert!(runner.query("a", sql("SELECT 1")).await.is_ok());
    assert_eq!(
        fake.logins(),
        2,
        "the abandoned session was dropped, a new one logged in"
    );
}

#[tokio::test(start_paused = true)]
async fn ending_a_token_rolls_back_its_transaction() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    runner.query("tx", sql("BEGIN")).await.unwrap();
    assert_eq!(fake.open_transactions(), 1);
    runner.end_token("tx").await.unwrap();
    assert_eq!(fake.open_transactions(), 0);
    assert!(!runner.pool().is_pinned("tx"));
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_inside_a_transaction_is_reported_not_hidden() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    runner.query("tx", sql("BEGIN")).await.unwrap();
    fake.expire_all_sessions();
    assert!(matches!(
        runner.query("tx", sql("INSERT INTO t VALUES (1)")).await,
        Err(RunError::TransactionLost)
    ));
    assert!(!runner.pool().is_pinned("tx"));
    assert!(runner.query("tx", sql("SELECT 1")).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn max_rows_truncates_without_touching_the_sql() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let outcome = runner
        .query(
            "a",
            QueryInput {
                sql: "ROWS 10".into(),
                max_rows: Some(3),
                ..QueryInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.output.rows.len(), 3);
    assert!(outcome.output.truncated);
    assert!(
        fake.statements().iter().any(|(_, s)| s == "ROWS 10"),
        "the SQL was sent unmodified"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_whose_database_disappeared_is_not_stuck() {
    let fake = FakeBackend::with_databases(&["OLD", "NEW"]);
    let runner = runner_with(&fake, 2);
    runner.query("t", sql("USE DATABASE old")).await.unwrap();
    // Another token takes the only idle session elsewhere, and OLD is dropped meanwhile.
    fake.drop_database("OLD");
    fake.expire_all_sessions();
    let outcome = runner.query("t", sql("SELECT 1")).await.unwrap();
    assert_eq!(
        outcome.context.database, None,
        "the context Snowflake reports now"
    );
    let fixed = runner
        .set_context(
            "t",
            ContextChange {
                database: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(fixed.database.as_deref(), Some("NEW"));
}

#[tokio::test(start_paused = true)]
async fn a_transaction_rolled_back_behind_the_tokens_back_is_reported_once() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    runner.query("tx", sql("BEGIN")).await.unwrap();
    runner
        .query("tx", sql("INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    assert!(runner.registry().in_transaction("tx"));
    tokio::time::advance(Duration::from_secs(601)).await;
    crate::pool::monitor::tick_once(runner.pool(), Duration::from_secs(600)).await;
    assert_eq!(
        fake.open_transactions(),
        0,
        "the idle transaction was rolled back"
    );
    let lost = runner
        .query("tx", sql("INSERT INTO t VALUES (2)"))
        .await
        .unwrap_err();
    assert!(matches!(lost, RunError::TransactionLost), "{lost:?}");
    assert!(
        !fake
            .statements()
            .iter()
            .any(|(_, s)| s == "INSERT INTO t VALUES (2)"),
        "nothing ran outside the transaction"
    );
    assert!(
        runner.query("tx", sql("SELECT 1")).await.is_ok(),
        "reported once, then the token goes on"
    );
}

#[tokio::test(start_paused = true)]
async fn transaction_requests_refuse_to_nest_in_an_open_transaction() {
    let runner = runner_with(&FakeBackend::default(), 1);
    runner.query("tx", sql("BEGIN")).await.unwrap();
    let nested = QueryInput {
        sql: "INSERT INTO t VALUES (1)".into(),
        transaction: true,
        ..QueryInput::default()
    };
    assert!(matches!(
        runner.query("tx", nested).await,
        Err(RunError::BadRequest(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_statement_started_before_begin_does_not_end_the_transaction() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 2);
    for round in 0..3 {
        let slow = {
            let runner = runner.clone();
            tokio::spawn(async move { runner.query("t", sql("SELECT SYSTEM$WAIT(5)")).await })
        };
        while fake
            .statements()
            .iter()
            .filter(|(_, s)| s.contains("SYSTEM$WAIT"))
            .count()
            <= round
        {
            tokio::task::yield_now().await;
        }
        let begun = runner.query("t", sql("BEGIN")).await.unwrap();
        assert!(begun.in_transaction);
        slow.await.unwrap().unwrap();
        assert!(
            runner.pool().is_pinned("t"),
            "round {round}: the slow SELECT's return left the pin alone"
        );
        assert_eq!(fake.open_transactions(), 1);
        let rolled_back = runner.query("t", sql("ROLLBACK")).await.unwrap();
        assert!(!rolled_back.in_transaction);
        assert_eq!(
            fake.open_transactions(),
            0,
            "round {round}: ROLLBACK reached the transaction"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_transaction_lost_to_a_network_error_is_reported_by_the_next_statement_once() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 2);
    runner.query("t", sql("BEGIN")).await.unwrap();
    fake.set_down(true);
    assert!(matches!(
        runner.query("t", sql("INSERT INTO x VALUES (1)")).await,
        Err(RunError::Unreachable(_))
    ));
    fake.set_down(false);
    assert!(
        matches!(
            runner.query("t", sql("COMMIT")).await,
            Err(RunError::TransactionLost)
        ),
        "COMMIT must not answer success for a transaction that is gone"
    );
    assert!(!runner.registry().in_transaction("t"));
    let after = runner.query("t", sql("SELECT 1")).await.unwrap();
    assert!(!after.in_transaction, "told once; the token works again");
}

#[tokio::test(start_paused = true)]
async fn a_token_whose_database_vanished_never_runs_in_another_tokens_context() {
    let fake = FakeBackend::with_databases(&["A_DB", "B_DB"]);
    let runner = runner_with(&fake, 1);
    runner.query("a", sql("USE DATABASE a_db")).await.unwrap();
    // b takes the only session and leaves its own database on it.
    runner.query("b", sql("USE DATABASE b_db")).await.unwrap();
    fake.drop_database("A_DB");
    let outcome = runner.query("a", sql("DELETE FROM t")).await.unwrap();
    let delete_session = fake
        .statements()
        .into_iter()
        .rev()
        .find(|(_, s)| s == "DELETE FROM t")
        .map(|(session, _)| session)
        .unwrap();
    let setup = statements_on(&fake, delete_session);
    assert!(
        !setup.iter().any(|s| s.contains("B_DB")),
        "a's statement ran on a session b's context had touched: {setup:?}"
    );
    assert_eq!(
        outcome.context.database, None,
        "the login defaults, not b's"
    );
    assert_ne!(
        runner
            .registry()
            .context("a")
            .and_then(|c| c.database)
            .as_deref(),
        Some("B_DB")
    );
    assert_eq!(outcome.warnings.len(), 2, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].contains("database A_DB could not be applied"),
        "{:?}",
        outcome.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_is_retried_on_a_fresh_login_not_another_stale_one() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 3);
    // Two sessions in the pool, then Snowflake forgets both.
    let a = runner.pool().checkout("x", None).await.unwrap();
    let b = runner.pool().checkout("y", None).await.unwrap();
    drop((a, b));
    fake.expire_all_sessions();
    runner.query("t", sql("SELECT 1")).await.unwrap();
    assert_eq!(fake.logins(), 3, "one retry, on a new login");
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_is_replaced_even_when_it_is_the_pools_only_place() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    runner.query("t", sql("SELECT 1")).await.unwrap();
    fake.expire_all_sessions();
    runner.query("t", sql("SELECT 1")).await.unwrap();
    assert_eq!(fake.logins(), 2);
    assert_eq!(runner.pool().stats().total(), 1);
}

#[tokio::test]
async fn a_query_tag_set_before_any_login_keeps_the_login_defaults() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let change = ContextChange {
        query_tag: Some("agent".into()),
        ..ContextChange::default()
    };
    let context = runner.set_context("t", change).await.unwrap();
    assert_eq!(context.role.as_deref(), Some("PUBLIC"));
    assert_eq!(context.query_tag.as_deref(), Some("agent"));
    runner.query("t", sql("SELECT 1")).await.unwrap();
    let log = fake.statement_log();
    let select = log.iter().find(|s| s.sql == "SELECT 1").unwrap();
    assert_eq!(select.context.role.as_deref(), Some("PUBLIC"));
}

#[tokio::test]
async fn the_configured_default_tag_applies_to_tokens_without_their_own() {
    let fake = FakeBackend::default();
    let pool = Pool::new(
        Arc::new(fake.clone()),
        PoolSettings {
            max_size: 1,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3000),
            login_timeout: Duration::from_secs(10),
        },
    );
    let runner = Runner::new(
        pool,
        Arc::new(Registry::in_memory(Duration::ZERO)),
        Arc::new(Metrics::default()),
        QuerySettings {
            tag: Some("sfd {token} {version}".into()),
            ..QuerySettings::default()
        },
    );
    let minted = "A".repeat(40);
    runner.query("agent-1", sql("SELECT 1")).await.unwrap();
    runner.query(&minted, sql("SELECT 2")).await.unwrap();
    let change = ContextChange {
        query_tag: Some("own".into()),
        ..ContextChange::default()
    };
    runner.set_context("agent-1", change).await.unwrap();
    runner.query("agent-1", sql("SELECT 3")).await.unwrap();
    let statements: Vec<String> = fake.statements().into_iter().map(|(_, s)| s).collect();
    let version = env!("CARGO_PKG_VERSION");
    let position = |s: &str| {
        statements
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {statements:?}"))
    };
    assert!(
        position(&format!(
            "ALTER SESSION SET QUERY_TAG = 'sfd agent-1 {version}'"
        )) < position("SELECT 1")
    );
    let minted_tag = position(&format!(
        "ALTER SESSION SET QUERY_TAG = 'sfd minted {version}'"
    ));
    assert!(position("SELECT 1") < minted_tag && minted_tag < position("SELECT 2"));
    assert!(position("ALTER SESSION SET QUERY_TAG = 'own'") < position("SELECT 3"));
    assert!(!statements.iter().any(|s| s.contains(&minted)));
}

#[tokio::test]
async fn a_request_tag_applies_to_its_statements_only() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let input = QueryInput {
        query_tag: Some("it's once".into()),
        ..sql("SELECT 1")
    };
    runner.query("t", input).await.unwrap();
    runner.query("t", sql("SELECT 2")).await.unwrap();
    let statements: Vec<String> = fake.statements().into_iter().map(|(_, s)| s).collect();
    let at = |s: &str| statements.iter().position(|x| x == s).unwrap();
    let set = at("ALTER SESSION SET QUERY_TAG = 'it''s once'");
    let unset = at("ALTER SESSION UNSET QUERY_TAG");
    assert!(set < at("SELECT 1") && at("SELECT 1") < unset && unset < at("SELECT 2"));
}

#[tokio::test]
async fn bind_parameters_reach_the_session_beside_the_text() {
    let fake = FakeBackend::default();
    let runner = runner_with(&fake, 1);
    let params =
        crate::binds::Params::from_args(&[crate::binds::parse_arg("x'y").unwrap()]).unwrap();
    let input = QueryInput {
        params: params.clone(),
        ..sql("SELECT ?")
    };
    runner.query("t", input).await.unwrap();
    let log = fake.statement_log();
    let select = log.iter().find(|s| s.sql == "SELECT ?").unwrap();
    assert_eq!(select.params, params);
    // Context statements never carry them.
    assert!(
        log.iter()
            .filter(|s| s.sql != "SELECT ?")
            .all(|s| s.params.is_empty())
    );
}

#[test]
fn rows_affected_sums_snowflakes_dml_counts_once() {
    use crate::snowflake::{ResultColumn, StatementOutput};
    let output = |names: &[&str], values: serde_json::Value| StatementOutput {
        columns: names
            .iter()
            .map(|n| ResultColumn {
                name: n.to_string(),
                ty: "NUMBER".into(),
                nullable: false,
                scale: Some(0),
            })
            .collect(),
        rows: vec![crate::row::from_values(values.as_array().unwrap())],
        ..StatementOutput::default()
    };
    let statement = |sql: &str| crate::sql::split(sql).unwrap().remove(0);
    let insert = output(&["number of rows inserted"], serde_json::json!([3]));
    assert_eq!(
        super::rows_affected(&statement("INSERT INTO t VALUES (1)"), &insert),
        Some(3)
    );
    let update = output(
        &[
            "number of rows updated",
            "number of multi-joined rows updated",
        ],
        serde_json::json!([4, 4]),
    );
    assert_eq!(
        super::rows_affected(&statement("UPDATE t SET n = 1"), &update),
        Some(4)
    );
    let merge = output(
        &[
            "number of rows inserted",
            "number of rows updated",
            "number of rows deleted",
        ],
        serde_json::json!([1, 2, 3]),
    );
    assert_eq!(
        super::rows_affected(
            &statement("MERGE INTO t USING s ON t.n = s.n WHEN MATCHED THEN DELETE"),
            &merge
        ),
        Some(6)
    );
    // A SELECT that names a column the same way is not DML.
    assert_eq!(
        super::rows_affected(
            &statement("SELECT 3 AS \"number of rows inserted\""),
            &insert
        ),
        None
    );
}
