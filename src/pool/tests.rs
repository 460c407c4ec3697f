//! Pool behaviour against the fake backend, with paused time where timers matter.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::snowflake::fake::FakeBackend;

fn settings(max_size: usize) -> PoolSettings {
    PoolSettings {
        max_size,
        min_idle: 1,
        checkout_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(3000),
        login_timeout: Duration::from_secs(10),
    }
}

#[tokio::test(start_paused = true)]
async fn never_more_sessions_than_the_bound_and_waiters_time_out() {
    let fake = FakeBackend::default();
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    let a = pool.checkout("a", None).await.unwrap();
    let b = pool.checkout("b", None).await.unwrap();
    assert_eq!(pool.stats().in_use, 2);
    let err = pool.checkout("c", None).await.err().expect("pool is full");
    assert!(
        matches!(err, PoolError::CheckoutTimeout { max: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pool.max_size"));
    drop(a);
    let c = pool.checkout("c", None).await.unwrap();
    assert_eq!(
        fake.logins(),
        2,
        "the returned session was reused, not a new login"
    );
    drop((b, c));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_the_session_as_soon_as_it_is_returned() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(1));
    let first = pool.checkout("a", None).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.checkout("b", None).await.map(|l| l.session_id()) })
    };
    tokio::task::yield_now().await;
    let id = first.session_id();
    drop(first);
    assert_eq!(waiter.await.unwrap().unwrap(), id);
}

#[tokio::test(start_paused = true)]
async fn a_token_gets_back_the_session_it_used_last() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(3));
    let a = pool.checkout("a", None).await.unwrap();
    let b = pool.checkout("b", None).await.unwrap();
    let (a_id, b_id) = (a.session_id(), b.session_id());
    drop(b);
    drop(a);
    assert_eq!(pool.checkout("b", None).await.unwrap().session_id(), b_id);
    assert_eq!(pool.checkout("a", None).await.unwrap().session_id(), a_id);
}

#[tokio::test(start_paused = true)]
async fn a_pinned_session_never_reaches_another_token() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(1));
    let mut lease = pool.checkout("tx", None).await.unwrap();
    assert!(lease.claim_pin());
    lease
        .execute("BEGIN", None, CancellationToken::new())
        .await
        .unwrap();
    drop(lease);
    assert!(pool.is_pinned("tx"));
    // The only session is pinned: another token waits and times out.
    assert!(matches!(
        pool.checkout("other", None).await,
        Err(PoolError::CheckoutTimeout { .. })
    ));
    let mut again = pool.checkout("tx", None).await.unwrap();
    assert!(again.is_pinned());
    again
        .execute("COMMIT", None, CancellationToken::new())
        .await
        .unwrap();
    again.end_pin();
    drop(again);
    assert!(!pool.is_pinned("tx"));
    assert!(pool.checkout("other", None).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn abandoned_transactions_are_rolled_back_by_the_monitor() {
    let fake = FakeBackend::default();
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    let mut lease = pool.checkout("tx", None).await.unwrap();
    assert!(lease.claim_pin());
    lease
        .execute("BEGIN", None, CancellationToken::new())
        .await
        .unwrap();
    drop(lease);
    assert_eq!(fake.open_transactions(), 1);
    monitor::tick_once(&pool, Duration::from_secs(600)).await;
    assert!(pool.is_pinned("tx"), "not idle long enough yet");
    tokio::time::advance(Duration::from_secs(601)).await;
    monitor::tick_once(&pool, Duration::from_secs(600)).await;
    assert!(!pool.is_pinned("tx"));
    assert_eq!(fake.open_transactions(), 0);
    assert_eq!(fake.statements().last().unwrap().1, "ROLLBACK");
}

#[tokio::test(start_paused = true)]
async fn broken_idle_sessions_are_replaced_and_old_ones_recycled() {
    let fake = FakeBackend::default();
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    drop(pool.checkout("a", None).await.unwrap());
    assert_eq!(pool.stats().idle, 1);
    fake.expire_all_sessions();
    tokio::time::advance(Duration::from_secs(61)).await;
    monitor::tick_once(&pool, Duration::ZERO).await;
    // The heartbeat found the expired session, dropped it, and the warm minimum logged in anew.
    tokio::task::yield_now().await;
    while pool.stats().logging_in > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.logins(), 2);
    assert_eq!(pool.stats().idle, 1);
    tokio::time::advance(Duration::from_secs(3001)).await;
    monitor::tick_once(&pool, Duration::ZERO).await;
    while pool.stats().logging_in > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.logins(), 3, "a session past max_lifetime was replaced");
}

#[tokio::test(start_paused = true)]
async fn a_dead_backend_is_an_error_not_a_hang_and_recovery_is_automatic() {
    let fake = FakeBackend::default();
    fake.set_down(true);
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    let err = pool.checkout("a", None).await.err().unwrap();
    assert!(
        matches!(err, PoolError::Backend(BackendError::Unreachable(_))),
        "{err}"
    );
    assert_eq!(pool.stats().logging_in, 0);
    fake.set_down(false);
    assert!(pool.checkout("a", None).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn logins_read_nothing_back_until_the_defaults_are_needed() {
    let fake = FakeBackend::default();
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    let mut a = pool.checkout("a", None).await.unwrap();
    assert!(fake.statements().is_empty(), "a login costs no statement");
    assert!(
        a.context().is_none(),
        "a fresh session has the login defaults"
    );
    let defaults = a.resolve_context().await.unwrap();
    assert_eq!(defaults.role.as_deref(), Some("PUBLIC"));
    assert_eq!(pool.login_context(), Some(defaults.clone()));
    let mut b = pool.checkout("b", None).await.unwrap();
    assert_eq!(b.resolve_context().await.unwrap(), defaults);
    assert_eq!(
        fake.statements().len(),
        1,
        "the defaults were read back once, for the whole pool"
    );
    drop((a, b));
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_for_the_warm_up_login_instead_of_starting_another() {
    let fake = FakeBackend::default();
    fake.set_login_delay(Duration::from_millis(500));
    let pool = Pool::new(Arc::new(fake.clone()), settings(4));
    pool.warm();
    let lease = pool.checkout("a", None).await.unwrap();
    assert_eq!(
        fake.logins(),
        1,
        "one login served both the warm-up and the request"
    );
    drop(lease);
}

#[tokio::test(start_paused = true)]
async fn clients_that_hang_up_during_logins_leak_no_place() {
    let fake = FakeBackend::default();
    fake.set_login_delay(Duration::from_secs(3));
    let pool = Pool::new(Arc::new(fake.clone()), settings(2));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let token = format!("t{i}");
                tokio::time::timeout(Duration::from_millis(500), pool.checkout(&token, None))
                    .await
                    .is_err()
            })
        })
        .collect();
    for client in clients {
        assert!(
            client.await.unwrap(),
            "the client gave up before the login ended"
        );
    }
    // The logins the clients started keep running in the pool's own tasks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = pool.stats();
    assert_eq!(
        (stats.logging_in, stats.in_use, stats.idle),
        (0, 0, 2),
        "{stats:?}"
    );
    // The next requests are served at full width by those sessions, without a new login.
    let (a, b) = (
        pool.checkout("a", None).await.unwrap(),
        pool.checkout("b", None).await.unwrap(),
    );
    assert_eq!(fake.logins(), 2);
    drop((a, b));
    assert_eq!(pool.stats().idle, 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_for_a_warm_up_login_gets_the_logins_own_error() {
    let fake = FakeBackend::default();
    fake.set_login_delay(Duration::from_secs(1));
    fake.set_down(true);
    let pool = Pool::new(Arc::new(fake.clone()), settings(1));
    pool.warm();
    let err = pool
        .checkout("a", None)
        .await
        .err()
        .expect("the login fails");
    assert!(
        matches!(err, PoolError::Backend(BackendError::Unreachable(_))),
        "the cause, not 'all sessions are busy': {err}"
    );
    assert_eq!(pool.stats().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn only_the_lease_from_the_pin_ends_or_parks_the_pin() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(2));
    // A statement of token t started before its BEGIN…
    let before_begin = pool.checkout("t", None).await.unwrap();
    // …and the BEGIN, on a second session.
    let mut begin = pool.checkout("t", None).await.unwrap();
    let pinned_session = begin.session_id();
    assert!(begin.claim_pin());
    begin
        .execute("BEGIN", None, CancellationToken::new())
        .await
        .unwrap();
    drop(begin);
    // The earlier statement finishing must not touch the transaction.
    drop(before_begin);
    assert!(pool.is_pinned("t"));
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.pinned, stats.total()),
        (1, 1, 2),
        "{stats:?}"
    );
    let again = pool.checkout("t", None).await.unwrap();
    assert_eq!(again.session_id(), pinned_session);
    assert!(again.is_pinned());
    // While the pin is in use, the token's other statements wait for it, one at a time.
    assert!(matches!(
        pool.checkout("t", None).await,
        Err(PoolError::CheckoutTimeout { .. })
    ));
    drop(again);
}

#[tokio::test(start_paused = true)]
async fn a_pinned_session_lost_is_reported_once() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(1));
    let mut lease = pool.checkout("t", None).await.unwrap();
    assert!(lease.claim_pin());
    lease
        .execute("BEGIN", None, CancellationToken::new())
        .await
        .unwrap();
    lease.discard();
    drop(lease);
    assert!(!pool.is_pinned("t"));
    assert!(pool.take_transaction_lost("t"));
    assert!(!pool.take_transaction_lost("t"), "told once");
    assert_eq!(pool.stats().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hang_up_mid_statement_in_a_transaction_drops_the_session_and_records_the_loss() {
    let pool = Pool::new(Arc::new(FakeBackend::default()), settings(1));
    let mut lease = pool.checkout("t", None).await.unwrap();
    assert!(lease.claim_pin());
    lease
        .execute("BEGIN", None, CancellationToken::new())
        .await
        .unwrap();
    let statement = async move {
        lease
            .execute("SELECT SYSTEM$WAIT(10)", None, CancellationToken::new())
            .await
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(1), statement)
            .await
            .is_err()
    );
    assert!(pool.take_transaction_lost("t"));
    let stats = pool.stats();
    assert_eq!(
        (stats.total(), stats.open_transactions),
        (0, 0),
        "{stats:?}"
    );
}
