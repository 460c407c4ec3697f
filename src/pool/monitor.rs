//! The pool's background upkeep, one loop: heartbeat idle sessions and drop broken ones,
//! replace sessions before Snowflake's token lifetime runs out, keep the warm minimum logged
//! in, and roll back transactions whose token went quiet.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Pool;

/// The heartbeat statement: the cheapest thing Snowflake answers.
const HEARTBEAT_SQL: &str = "SELECT 1";

/// Runs until `shutdown` fires. `transaction_idle_timeout` of zero never rolls back.
pub async fn run(pool: Pool, transaction_idle_timeout: Duration, shutdown: CancellationToken) {
    let settings = pool.settings().clone();
    let tick = settings
        .heartbeat_interval
        .min(Duration::from_secs(30))
        .max(Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        tick_once(&pool, transaction_idle_timeout).await;
    }
}

/// One round of upkeep (public so tests can drive it step by step).
pub async fn tick_once(pool: &Pool, transaction_idle_timeout: Duration) {
    let (due, retired) = pool.take_due();
    if retired > 0 {
        tracing::info!(
            retired,
            "recycled sessions nearing Snowflake's token lifetime"
        );
    }
    for mut lease in due {
        let check = tokio::time::timeout(
            pool.settings().login_timeout,
            lease.execute(HEARTBEAT_SQL, Some(1), CancellationToken::new()),
        )
        .await;
        match check {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(session = lease.session_id(), error = %e, "heartbeat failed; replacing the session");
                lease.discard();
            }
            Err(_) => {
                tracing::warn!(
                    session = lease.session_id(),
                    "heartbeat timed out; replacing the session"
                );
                lease.discard();
            }
        }
    }
    if !transaction_idle_timeout.is_zero() {
        for token in pool.idle_pins(transaction_idle_timeout) {
            if roll_back_abandoned(pool, &token, "idle past tokens.transaction_idle_timeout").await
            {
                // The token did not end it: its next statement must say so.
                pool.mark_transaction_lost(&token);
            }
        }
    }
    if pool.stats().logins > 0 {
        pool.warm();
    }
}

/// Rolls back the token's open transaction if its session is at rest; returns whether it did
/// (a failed ROLLBACK drops the session, which ends the transaction in Snowflake too).
pub async fn roll_back_abandoned(pool: &Pool, token: &str, why: &str) -> bool {
    let Some(mut lease) = pool.take_pinned(token) else {
        return false;
    };
    match lease
        .execute("ROLLBACK", None, CancellationToken::new())
        .await
    {
        Ok(_) => {
            tracing::warn!(token = %crate::sessions::token::for_log(token), reason = why, "rolled back an abandoned transaction")
        }
        Err(e) => {
            tracing::warn!(token = %crate::sessions::token::for_log(token), reason = why, error = %e, "rolling back an abandoned transaction failed; dropping its session");
            lease.discard_loss_reported();
            return true;
        }
    }
    lease.end_pin();
    true
}
