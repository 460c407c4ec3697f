//! The randomized schedule test: several tokens drive one daemon (a [`Runner`] over a
//! [`Pool`] over the fake backend) the way agents do — parallel calls on one token, fast and
//! slow SELECTs, USE, BEGIN/INSERT/COMMIT/ROLLBACK, `--transaction` batches, cancels, time
//! limits and clients that hang up at any moment — while Snowflake expires sessions, goes
//! down, refuses or slows logins, restarts (with or without its databases) and the daemon
//! itself stops and starts again over the same token registry.
//!
//! Each schedule runs on its own current-thread runtime with paused time, so waits are free
//! and a seed replays the same schedule (up to the fairness of `tokio::select!`, whose random
//! branch order tokio does not let a stable build seed). When everything has quiesced it
//! checks what must hold whatever happened:
//! - the pool is at rest: nothing in use, nothing logging in, `idle + pinned <= max`, and the
//!   fake has exactly those sessions alive (none after the daemon stopped);
//! - every write the client was told is committed is there once, every write that was rolled
//!   back (or belonged to a transaction the token was told is lost) is not, and writes whose
//!   fate the client cannot know may go either way (see [`TokenModel`]);
//! - each token's saved context is one its own USE statements could have set (or the login
//!   defaults, once a database it used vanished);
//! - no statement of a token ran in a session whose database or warehouse only another token
//!   chose (statements carry a `/* tN */` tag and the fake logs each one with its context).
//!
//! `SCHEDULE_SEED=n cargo test --lib schedule_tests` replays one seed and prints its trace;
//! `SCHEDULE_CASES=n` runs more (or fewer) schedules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastrand::Rng;
use tokio::sync::Notify;
use tokio::time::sleep;
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::PoolSettings;
use crate::snowflake::fake::FakeBackend;

/// Schedules per run unless `SCHEDULE_CASES` says otherwise; the last [`RANDOM_SEEDS`] of them
/// use fresh seeds, the rest a fixed range.
const DEFAULT_CASES: u64 = 3000;
const RANDOM_SEEDS: u64 = 4;
/// Fixed seeds start here (any number would do; a fixed one keeps CI comparable).
const FIXED_SEED_BASE: u64 = 0x5eed_0000;

#[test]
fn randomized_schedules_keep_the_pool_at_rest_and_every_write_where_it_belongs() {
    let seeds = seeds();
    let replay = seeds.len() == 1;
    let started = std::time::Instant::now();
    let mut failures: Vec<(u64, Vec<String>, Vec<String>)> = Vec::new();
    for &seed in &seeds {
        let report = run_schedule(seed);
        if replay {
            eprintln!("trace of seed {seed}:\n  {}", report.trace.join("\n  "));
        }
        if !report.violations.is_empty() {
            failures.push((seed, report.violations, report.trace));
        }
    }
    eprintln!(
        "{} randomized schedules in {:.2?} ({} failed)",
        seeds.len(),
        started.elapsed(),
        failures.len()
    );
    if failures.is_empty() {
        return;
    }
    let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (seed, violations, _) in &failures {
        for kind in violations
            .iter()
            .map(|v| v.split(':').next().unwrap_or(v).to_string())
            .collect::<BTreeSet<_>>()
        {
            by_kind.entry(kind).or_default().push(*seed);
        }
    }
    let mut message = format!(
        "{} of {} schedules broke an invariant; replay one with SCHEDULE_SEED=<seed>\n",
        failures.len(),
        seeds.len()
    );
    for (kind, seeds) in &by_kind {
        let shown: Vec<String> = seeds.iter().take(8).map(u64::to_string).collect();
        message += &format!(
            "  {kind}: {} schedules, e.g. seeds {}\n",
            seeds.len(),
            shown.join(", ")
        );
    }
    let (seed, violations, trace) = &failures[0];
    message += &format!(
        "first failing seed {seed}:\n    {}\n  its trace (last 60 events):\n    {}",
        violations.join("\n    "),
        trace[trace.len().saturating_sub(60)..].join("\n    ")
    );
    panic!("{message}");
}

/// `SCHEDULE_SEED` alone, or a fixed range plus a few fresh seeds.
fn seeds() -> Vec<u64> {
    if let Some(seed) = env_number("SCHEDULE_SEED") {
        return vec![seed];
    }
    let cases = env_number("SCHEDULE_CASES").unwrap_or(DEFAULT_CASES);
    let random = RANDOM_SEEDS.min(cases);
    let mut seeds: Vec<u64> = (0..cases - random).map(|i| FIXED_SEED_BASE + i).collect();
    let mut fresh = Rng::new();
    seeds.extend((0..random).map(|_| fresh.u64(..)));
    seeds
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

struct Report {
    violations: Vec<String>,
    trace: Vec<String>,
}

fn run_schedule(seed: u64) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(schedule(seed))
    }));
    match outcome {
        Ok(report) => report,
        Err(panic) => Report {
            violations: vec![format!("panic: {}", panic_text(&*panic))],
            trace: Vec::new(),
        },
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

// ---------------------------------------------------------------------------------------------
// The world: the fake Snowflake, the daemon of the moment, and what the clients know.
// ---------------------------------------------------------------------------------------------

/// One daemon process: its runner, the requests it is serving, and its exit.
#[derive(Clone)]
struct Daemon {
    runner: Arc<Runner>,
    /// Requests in flight, so a stop can drain them like the real daemon does.
    in_flight: TaskTracker,
    /// Fires when the process exits with requests still running (their clients see a reset).
    exited: CancellationToken,
    generation: u32,
}

struct World {
    fake: FakeBackend,
    registry: Arc<Registry>,
    settings: PoolSettings,
    daemon: Mutex<Option<Daemon>>,
    /// Woken when a new daemon is up (clients queue on the socket meanwhile).
    daemon_up: Notify,
    generations: AtomicU64,
    /// Orders client-visible events (paused time gives many the same instant).
    clock: AtomicU64,
    started: tokio::time::Instant,
    model: Mutex<Model>,
    trace: Mutex<Vec<String>>,
    violations: Mutex<Vec<String>>,
}

/// What a client got back.
enum Answer {
    Ok(QueryOutcome),
    Err(RunError),
    /// The client gave up (or the daemon died) before the answer came.
    HungUp,
}

impl Answer {
    fn effect(&self) -> Effect {
        match self {
            Answer::Ok(_) => Effect::Done,
            Answer::HungUp => Effect::Unknown,
            Answer::Err(RunError::TransactionLost) => Effect::Lost,
            // The statement may have run in Snowflake with its answer lost or cut short.
            Answer::Err(
                RunError::Unreachable(_) | RunError::Timeout(_) | RunError::Cancelled { .. },
            ) => Effect::Unknown,
            // Refused before running, failed in Snowflake, or rolled back with its batch.
            Answer::Err(_) => Effect::NotRun,
        }
    }

    fn short(&self) -> String {
        match self {
            Answer::Ok(outcome) => format!("ok (in_transaction={})", outcome.in_transaction),
            Answer::HungUp => "client hung up".into(),
            Answer::Err(e) => format!("error: {}", first_words(&e.to_string())),
        }
    }
}

fn first_words(text: &str) -> String {
    text.chars().take(90).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Done,
    NotRun,
    Unknown,
    Lost,
}

impl World {
    fn new(fake: FakeBackend, settings: PoolSettings, tokens: usize) -> Self {
        Self {
            fake,
            registry: Arc::new(Registry::in_memory(Duration::ZERO)),
            settings,
            daemon: Mutex::new(None),
            daemon_up: Notify::new(),
            generations: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            started: tokio::time::Instant::now(),
            model: Mutex::new(Model::new(tokens)),
            trace: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, AtomicOrdering::Relaxed) + 1
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, event: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{at:8.3}s {event}"));
    }

    fn violation(&self, what: String) {
        self.note(format!("VIOLATION {what}"));
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }

    /// Starts a daemon over the same registry (a new process: new pool, new sessions).
    fn start_daemon(&self) {
        let generation = self.generations.fetch_add(1, AtomicOrdering::Relaxed) as u32 + 1;
        let pool = Pool::new(Arc::new(self.fake.clone()), self.settings.clone());
        let runner = Arc::new(Runner::new(
            pool,
            self.registry.clone(),
            Arc::new(Metrics::default()),
            QuerySettings::default(),
        ));
        *self.daemon.lock().unwrap_or_else(|e| e.into_inner()) = Some(Daemon {
            runner,
            in_flight: TaskTracker::new(),
            exited: CancellationToken::new(),
            generation,
        });
        self.note(format!("daemon {generation} started"));
        self.daemon_up.notify_waiters();
    }

    fn daemon_now(&self) -> Option<Daemon> {
        self.daemon
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The running daemon, waiting while it restarts.
    async fn daemon(&self) -> Daemon {
        loop {
            let up = self.daemon_up.notified();
            tokio::pin!(up);
            up.as_mut().enable();
            if let Some(daemon) = self.daemon_now() {
                return daemon;
            }
            up.await;
        }
    }

    /// Stops the daemon as `daemon.rs` does: stop accepting, drain requests for up to
    /// `drain`, then exit (requests still running are cut off), rolling back open
    /// transactions and closing the pool on the way out.
    async fn stop_daemon(&self, drain: Duration) {
        let Some(daemon) = self.daemon.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        self.note(format!(
            "daemon {} stopping (drain {drain:?})",
            daemon.generation
        ));
        daemon.in_flight.close();
        if tokio::time::timeout(drain, daemon.in_flight.wait())
            .await
            .is_err()
        {
            daemon.exited.cancel();
            daemon.in_flight.wait().await;
        }
        shut_down(&daemon.runner).await;
        self.note(format!("daemon {} stopped", daemon.generation));
    }

    /// One client request: connects (waiting for a restarting daemon), sends, and waits for
    /// the answer unless it hangs up after `hang_up`.
    async fn request(&self, token: &str, input: QueryInput, hang_up: Option<Duration>) -> Answer {
        let exchange = async {
            let daemon = self.daemon().await;
            let Some(_in_flight) =
                (!daemon.in_flight.is_closed()).then(|| daemon.in_flight.token())
            else {
                return Answer::HungUp;
            };
            tokio::select! {
                biased;
                () = daemon.exited.cancelled() => Answer::HungUp,
                result = daemon.runner.query(token, input) => match result {
                    Ok(outcome) => Answer::Ok(outcome),
                    Err(e) => Answer::Err(e),
                },
            }
        };
        match hang_up {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or(Answer::HungUp),
            None => exchange.await,
        }
    }
}

/// What the daemon does at exit once requests are drained: roll back the transactions tokens
/// left open, then close the pool.
async fn shut_down(runner: &Runner) {
    runner.shutdown().await;
}

/// `snowflaked cancel` for a request of `token`.
fn cancel_request(runner: &Runner, token: &str, id: &str) -> bool {
    runner.cancel(token, id)
}

// ---------------------------------------------------------------------------------------------
// The model: what each token's client knows, and what that implies for every write.
// ---------------------------------------------------------------------------------------------

/// What must become of a written row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Present,
    Absent,
    /// The client cannot know (its answer was lost, or the transaction's fate is unknown).
    Either,
}

/// A row inserted since the token's transaction (possibly) began, not yet decided.
#[derive(Debug, Clone)]
struct PendingWrite {
    key: String,
    /// The INSERT answered success (otherwise its fate is unknown in any case).
    answered_ok: bool,
    /// BEGIN had answered success, so the INSERT ran inside the transaction.
    surely_in_transaction: bool,
}

/// Whether the client knows its token has an open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Txn {
    None,
    /// `sure == false`: a BEGIN, COMMIT or ROLLBACK ended without a clear answer, so one may
    /// be open or not.
    Open {
        sure: bool,
    },
}

/// One token as its client sees it.
///
/// Rules (the rewrite's, see the module doc of the pool): while a token has an open
/// transaction its statements run on the pinned session one at a time; statements sent
/// before BEGIN answered run on their own sessions. Whenever the pinned session is lost the
/// token's next statement is told `transaction_lost`. From that:
/// - COMMIT answered success: every INSERT since BEGIN that answered success is committed.
/// - ROLLBACK answered success, or `transaction_lost` answered to the main client: every
///   INSERT that answered success inside a surely open transaction is gone.
/// - If another client of the same token (a parallel call) was told `transaction_lost`
///   after the transaction began, the main client never learns which of its writes went
///   with it: they may go either way.
#[derive(Debug)]
struct TokenModel {
    name: String,
    txn: Txn,
    pending: Vec<PendingWrite>,
    /// Clock when the current (possible) transaction's BEGIN was sent.
    txn_since: u64,
    /// Clock of the last `transaction_lost` told to a parallel (read-only) client.
    side_told_lost_at: Option<u64>,
    /// BEGIN or a batch was ever sent (else `transaction_lost` is never right).
    ever_began: bool,
    /// BEGINs and batches sent so far, and whether one is awaiting its answer.
    begins_sent: u64,
    begin_in_flight: bool,
    /// Every database / warehouse this token ever asked for.
    asked_databases: BTreeSet<String>,
    asked_warehouses: BTreeSet<String>,
    /// What the token's saved database / warehouse may be now.
    databases_now: BTreeSet<Option<String>>,
    warehouses_now: BTreeSet<Option<String>>,
    next_key: u32,
    next_request: u32,
}

enum Ending {
    Committed,
    RolledBack,
    Unknown,
}

struct Model {
    tokens: Vec<TokenModel>,
    fates: BTreeMap<String, Fate>,
    /// Databases dropped at some point (a token using one may fall back to the defaults).
    dropped: BTreeSet<String>,
}

impl Model {
    fn new(tokens: usize) -> Self {
        Self {
            tokens: (0..tokens)
                .map(|t| TokenModel {
                    name: format!("t{t}"),
                    txn: Txn::None,
                    pending: Vec::new(),
                    txn_since: 0,
                    side_told_lost_at: None,
                    ever_began: false,
                    begins_sent: 0,
                    begin_in_flight: false,
                    asked_databases: BTreeSet::new(),
                    asked_warehouses: BTreeSet::new(),
                    databases_now: [None].into(),
                    warehouses_now: [None].into(),
                    next_key: 0,
                    next_request: 0,
                })
                .collect(),
            fates: BTreeMap::new(),
            dropped: BTreeSet::new(),
        }
    }

    /// Ends the token's (possible) transaction and decides the fate of its writes.
    fn end_transaction(&mut self, t: usize, ending: Ending) {
        let token = &mut self.tokens[t];
        let unsure = token
            .side_told_lost_at
            .is_some_and(|at| at >= token.txn_since);
        for write in token.pending.drain(..) {
            let fate = match ending {
                _ if unsure || !write.answered_ok => Fate::Either,
                Ending::Committed => Fate::Present,
                Ending::RolledBack if write.surely_in_transaction => Fate::Absent,
                Ending::RolledBack | Ending::Unknown => Fate::Either,
            };
            self.fates.insert(write.key, fate);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One schedule.
// ---------------------------------------------------------------------------------------------

fn database_of(t: usize) -> String {
    format!("DB{t}")
}

const SHARED_DATABASE: &str = "SHARED";

async fn schedule(seed: u64) -> Report {
    let mut rng = Rng::with_seed(seed);
    let tokens = rng.usize(2..=4);
    let mut databases: Vec<String> = (0..tokens).map(database_of).collect();
    databases.push(SHARED_DATABASE.into());
    let names: Vec<&str> = databases.iter().map(String::as_str).collect();
    let fake = FakeBackend::with_databases(&names);
    let settings = PoolSettings {
        max_size: rng.usize(1..=4),
        min_idle: 0,
        checkout_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(300),
        max_lifetime: Duration::from_secs(3000),
        login_timeout: Duration::from_secs(10),
    };
    let world = Arc::new(World::new(fake.clone(), settings.clone(), tokens));
    world.note(format!(
        "seed {seed}: {tokens} tokens, pool.max_size {}",
        settings.max_size
    ));
    world.start_daemon();

    let mut clients = Vec::new();
    for t in 0..tokens {
        clients.push(tokio::spawn(main_client(world.clone(), t, rng.u64(..))));
        for lane in 0..rng.usize(0..=2) {
            clients.push(tokio::spawn(parallel_client(
                world.clone(),
                t,
                lane,
                rng.u64(..),
            )));
        }
    }
    let chaos = tokio::spawn(chaos(world.clone(), databases.clone(), rng.u64(..)));
    for client in clients {
        if let Err(e) = client.await {
            world.violation(format!("panic: a client task failed: {e}"));
        }
    }
    if let Err(e) = chaos.await {
        world.violation(format!("panic: the chaos task failed: {e}"));
    }
    // Quiesce: let logins the pool may still run, time limits and cancels play out.
    sleep(Duration::from_secs(120)).await;
    check_at_rest(&world);
    world.stop_daemon(Duration::from_secs(30)).await;
    sleep(Duration::from_secs(1)).await;
    let live = fake.live_sessions();
    if live != 0 {
        world.violation(format!(
            "session leak: {live} sessions alive in Snowflake after the daemon stopped"
        ));
    }
    {
        let mut model = world.model();
        for t in 0..tokens {
            // The daemon's exit rolled back whatever was still open.
            model.end_transaction(t, Ending::RolledBack);
        }
    }
    check_writes(&world);
    check_contexts(&world);
    check_statement_contexts(&world);
    let violations = std::mem::take(&mut *world.violations.lock().unwrap());
    let trace = std::mem::take(&mut *world.trace.lock().unwrap());
    Report { violations, trace }
}

/// Between two requests of one client.
fn think(rng: &mut Rng) -> Duration {
    match rng.u32(0..10) {
        0..=3 => Duration::ZERO,
        4..=7 => Duration::from_millis(rng.u64(1..1000)),
        _ => Duration::from_millis(rng.u64(1000..6000)),
    }
}

/// Sometimes the client gives up after a random time: before, during or after a login or a
/// statement (logins take up to 3 s, slow statements up to 3 s).
fn hang_up(rng: &mut Rng) -> Option<Duration> {
    match rng.u32(0..10) {
        0 => Some(Duration::ZERO),
        1 => Some(Duration::from_millis(rng.u64(1..4000))),
        _ => None,
    }
}

fn tagged(sql: &str, token: &str) -> String {
    format!("{sql} /* {token} */")
}

/// A read: fast, or slow (`SYSTEM$WAIT`), maybe with a time limit or a cancel on the way.
fn read_input(world: &Arc<World>, t: usize, rng: &mut Rng) -> QueryInput {
    let name = world.model().tokens[t].name.clone();
    let slow = rng.bool();
    let sql = if slow {
        format!("SELECT SYSTEM$WAIT({})", rng.u32(1..=3))
    } else {
        "SELECT 1".to_string()
    };
    let mut input = QueryInput {
        sql: tagged(&sql, &name),
        ..QueryInput::default()
    };
    if slow && rng.u32(0..4) == 0 {
        input.timeout = Some(Duration::from_millis(rng.u64(1..3000)));
    }
    if slow && rng.u32(0..4) == 0 {
        let id = {
            let mut model = world.model();
            let token = &mut model.tokens[t];
            token.next_request += 1;
            format!("{}-q{}", token.name, token.next_request)
        };
        input.request_id = Some(id.clone());
        let after = Duration::from_millis(rng.u64(0..3000));
        let world = world.clone();
        tokio::spawn(async move {
            sleep(after).await;
            if let Some(daemon) = world.daemon_now() {
                let found = cancel_request(&daemon.runner, &name, &id);
                world.note(format!("{name} cancel {id}: found={found}"));
            }
        });
    }
    input
}

/// A client of token `t` running in parallel with the token's main client (an agent's parallel
/// tool calls): reads, and now and then an INSERT in autocommit.
///
/// Its INSERT's fate is known only when no transaction of the token was open or beginning
/// from the moment it was sent to its answer; otherwise it may have joined that transaction.
async fn parallel_client(world: Arc<World>, t: usize, lane: usize, seed: u64) {
    let mut rng = Rng::with_seed(seed);
    let name = world.model().tokens[t].name.clone();
    for _ in 0..rng.usize(2..=10) {
        sleep(think(&mut rng)).await;
        let write = (rng.u32(0..5) == 0).then(|| new_key(&world, t));
        let input = match &write {
            Some(key) => plain(tagged(&format!("INSERT INTO T VALUES ('{key}')"), &name)),
            None => read_input(&world, t, &mut rng),
        };
        let quiet_since = {
            let model = world.model();
            let token = &model.tokens[t];
            (token.txn == Txn::None && !token.begin_in_flight).then_some(token.begins_sent)
        };
        let sql = input.sql.clone();
        let answer = world.request(&name, input, hang_up(&mut rng)).await;
        world.note(format!("{name}/{lane} {sql} -> {}", answer.short()));
        let effect = answer.effect();
        let now = world.tick();
        let mut model = world.model();
        let token = &mut model.tokens[t];
        let quiet =
            quiet_since.is_some_and(|sent| sent == token.begins_sent && token.txn == Txn::None);
        if effect == Effect::Lost {
            if !token.ever_began {
                drop(model);
                world.violation(format!(
                    "transaction_lost without a transaction: {name} never began one"
                ));
                continue;
            }
            token.side_told_lost_at = Some(now);
        }
        if let Some(key) = write {
            let fate = match effect {
                Effect::NotRun | Effect::Lost => Fate::Absent,
                Effect::Done if quiet => Fate::Present,
                _ => Fate::Either,
            };
            model.fates.insert(key, fate);
        }
    }
}

#[derive(Debug)]
enum Step {
    Read,
    UseDatabase(String),
    UseWarehouse(String),
    Begin,
    Insert,
    Commit,
    Rollback,
    Batch { rows: usize, failing: bool },
}

fn choose_step(rng: &mut Rng, t: usize, txn: Txn) -> Step {
    let database = match rng.u32(0..10) {
        0..=5 => database_of(t),
        6..=8 => SHARED_DATABASE.to_string(),
        _ => "NOWHERE".to_string(),
    };
    let roll = rng.u32(0..100);
    match txn {
        Txn::None => match roll {
            0..=24 => Step::Read,
            25..=39 => Step::UseDatabase(database.clone()),
            40..=44 => Step::UseWarehouse(format!("WH{t}")),
            45..=64 => Step::Begin,
            65..=79 => Step::Insert,
            80..=94 => Step::Batch {
                rows: rng.usize(1..=3),
                failing: rng.u32(0..4) == 0,
            },
            _ => Step::Rollback,
        },
        Txn::Open { sure } => match roll {
            0..=19 => Step::Read,
            20..=27 => Step::UseDatabase(database.clone()),
            28..=54 => Step::Insert,
            55..=74 => Step::Commit,
            75..=94 => Step::Rollback,
            _ if sure => Step::Insert,
            _ => Step::Begin,
        },
    }
}

/// The token's main client: everything that changes state, one request at a time.
async fn main_client(world: Arc<World>, t: usize, seed: u64) {
    let mut rng = Rng::with_seed(seed);
    let name = world.model().tokens[t].name.clone();
    for _ in 0..rng.usize(6..=24) {
        sleep(think(&mut rng)).await;
        let txn = world.model().tokens[t].txn;
        let step = choose_step(&mut rng, t, txn);
        let hang = hang_up(&mut rng);
        let mut keys = Vec::new();
        let input = match &step {
            Step::Read => read_input(&world, t, &mut rng),
            Step::UseDatabase(db) => {
                world.model().tokens[t].asked_databases.insert(db.clone());
                plain(tagged(&format!("USE DATABASE {db}"), &name))
            }
            Step::UseWarehouse(wh) => {
                world.model().tokens[t].asked_warehouses.insert(wh.clone());
                plain(tagged(&format!("USE WAREHOUSE {wh}"), &name))
            }
            Step::Begin => {
                let now = world.tick();
                let mut model = world.model();
                let token = &mut model.tokens[t];
                token.ever_began = true;
                token.begins_sent += 1;
                token.begin_in_flight = true;
                if token.txn == Txn::None {
                    token.txn_since = now;
                }
                plain(tagged("BEGIN", &name))
            }
            Step::Commit => plain(tagged("COMMIT", &name)),
            Step::Rollback => plain(tagged("ROLLBACK", &name)),
            Step::Insert => {
                let key = new_key(&world, t);
                let sql = tagged(&format!("INSERT INTO T VALUES ('{key}')"), &name);
                keys.push(key);
                plain(sql)
            }
            Step::Batch { rows, failing } => {
                {
                    let mut model = world.model();
                    let token = &mut model.tokens[t];
                    token.ever_began = true;
                    token.begins_sent += 1;
                    token.begin_in_flight = true;
                }
                let mut statements = Vec::new();
                for i in 0..*rows {
                    let key = new_key(&world, t);
                    statements.push(tagged(&format!("INSERT INTO T VALUES ('{key}')"), &name));
                    keys.push(key);
                    if *failing && i == 0 {
                        statements.push(tagged("FAIL", &name));
                    }
                }
                QueryInput {
                    sql: statements.join(";\n"),
                    transaction: true,
                    ..QueryInput::default()
                }
            }
        };
        let sql = input.sql.replace('\n', " ");
        let answer = world.request(&name, input, hang).await;
        world.note(format!("{name} {sql} -> {}", answer.short()));
        record(&world, t, &step, &keys, &answer);
    }
}

fn plain(sql: String) -> QueryInput {
    QueryInput {
        sql,
        ..QueryInput::default()
    }
}

fn new_key(world: &World, t: usize) -> String {
    let mut model = world.model();
    let token = &mut model.tokens[t];
    token.next_key += 1;
    format!("{}-{}", token.name, token.next_key)
}

/// Updates the model with what the main client learnt from one answer.
fn record(world: &World, t: usize, step: &Step, keys: &[String], answer: &Answer) {
    let effect = answer.effect();
    let mut model = world.model();
    let name = model.tokens[t].name.clone();
    model.tokens[t].begin_in_flight = false;
    if effect == Effect::Lost {
        if !model.tokens[t].ever_began {
            drop(model);
            world.violation(format!(
                "transaction_lost without a transaction: {name} never began one"
            ));
            return;
        }
        // Whatever this request was, it did not run; the transaction is gone.
        for key in keys {
            model.fates.insert(key.clone(), Fate::Absent);
        }
        model.end_transaction(t, Ending::RolledBack);
        model.tokens[t].txn = Txn::None;
        return;
    }
    match step {
        Step::Read => {}
        Step::UseDatabase(db) => {
            let token = &mut model.tokens[t];
            match effect {
                Effect::Done => token.databases_now = [Some(db.clone())].into(),
                Effect::Unknown => {
                    token.databases_now.insert(Some(db.clone()));
                }
                Effect::NotRun | Effect::Lost => {}
            }
        }
        Step::UseWarehouse(wh) => {
            let token = &mut model.tokens[t];
            match effect {
                Effect::Done => token.warehouses_now = [Some(wh.clone())].into(),
                Effect::Unknown => {
                    token.warehouses_now.insert(Some(wh.clone()));
                }
                Effect::NotRun | Effect::Lost => {}
            }
        }
        Step::Begin => {
            let token = &mut model.tokens[t];
            match effect {
                Effect::Done => token.txn = Txn::Open { sure: true },
                Effect::Unknown if token.txn == Txn::None => token.txn = Txn::Open { sure: false },
                _ => {}
            }
        }
        Step::Commit | Step::Rollback => match effect {
            Effect::Done => {
                let ending = if matches!(step, Step::Commit) {
                    Ending::Committed
                } else {
                    Ending::RolledBack
                };
                model.end_transaction(t, ending);
                model.tokens[t].txn = Txn::None;
            }
            Effect::Unknown => {
                let since = world.tick();
                model.end_transaction(t, Ending::Unknown);
                let token = &mut model.tokens[t];
                if token.txn != Txn::None {
                    token.txn = Txn::Open { sure: false };
                    token.txn_since = token.txn_since.min(since);
                }
            }
            Effect::NotRun | Effect::Lost => {}
        },
        Step::Insert => {
            let key = keys[0].clone();
            match (model.tokens[t].txn, effect) {
                (_, Effect::NotRun) => {
                    model.fates.insert(key, Fate::Absent);
                }
                (Txn::None, Effect::Done) => {
                    model.fates.insert(key, Fate::Present);
                }
                (Txn::None, _) => {
                    model.fates.insert(key, Fate::Either);
                }
                (Txn::Open { sure }, _) => model.tokens[t].pending.push(PendingWrite {
                    key,
                    answered_ok: effect == Effect::Done,
                    surely_in_transaction: sure,
                }),
            }
        }
        Step::Batch { failing, .. } => {
            if let Answer::Err(RunError::BadRequest(message)) = answer
                && model.tokens[t].txn == Txn::None
            {
                drop(model);
                world.violation(format!(
                    "batch refused: {name} has no open transaction, yet its --transaction batch was refused: {message}"
                ));
                return;
            }
            let fate = match effect {
                Effect::Done if *failing => {
                    drop(model);
                    world.violation(format!(
                        "batch with a failing statement answered success for {name}"
                    ));
                    return;
                }
                Effect::Done => Fate::Present,
                Effect::NotRun => Fate::Absent,
                _ => Fate::Either,
            };
            for key in keys {
                model.fates.insert(key.clone(), fate);
            }
        }
    }
}

/// Snowflake and the daemon misbehaving at random moments; everything is restored at the end.
async fn chaos(world: Arc<World>, databases: Vec<String>, seed: u64) {
    let mut rng = Rng::with_seed(seed);
    let fake = world.fake.clone();
    for _ in 0..rng.usize(0..=8) {
        sleep(Duration::from_millis(rng.u64(0..8000))).await;
        let spell = Duration::from_millis(rng.u64(100..4000));
        match rng.u32(0..100) {
            0..=14 => {
                world.note("snowflake: sessions expire".into());
                fake.expire_all_sessions();
            }
            15..=29 => {
                world.note(format!("snowflake: down for {spell:?}"));
                fake.set_down(true);
                sleep(spell).await;
                fake.set_down(false);
                world.note("snowflake: up".into());
            }
            30..=37 => {
                world.note(format!("snowflake: logins refused for {spell:?}"));
                fake.set_login_fails(true);
                sleep(spell).await;
                fake.set_login_fails(false);
                world.note("snowflake: logins accepted".into());
            }
            38..=51 => {
                let delay = Duration::from_millis([0, 300, 1000, 3000][rng.usize(0..4)]);
                world.note(format!("snowflake: logins take {delay:?}"));
                fake.set_login_delay(delay);
            }
            52..=61 => {
                let delay = Duration::from_millis([0, 10, 100, 500][rng.usize(0..4)]);
                world.note(format!("snowflake: statements take {delay:?}"));
                fake.set_statement_delay(delay);
            }
            62..=71 => {
                world.note("snowflake: restart".into());
                fake.restart();
            }
            72..=75 => {
                world.note(format!(
                    "snowflake: restart without databases for {spell:?}"
                ));
                world.model().dropped.extend(databases.iter().cloned());
                fake.restart_empty();
                sleep(spell).await;
                for db in &databases {
                    fake.create_database(db);
                }
                world.note("snowflake: databases back".into());
            }
            76..=85 => {
                let db = databases[rng.usize(0..databases.len())].clone();
                world.note(format!("snowflake: database {db} dropped for {spell:?}"));
                world.model().dropped.insert(db.clone());
                fake.drop_database(&db);
                sleep(spell).await;
                fake.create_database(&db);
                world.note(format!("snowflake: database {db} back"));
            }
            _ => {
                let drain = Duration::from_millis([0, 500, 30_000][rng.usize(0..3)]);
                world.stop_daemon(drain).await;
                sleep(Duration::from_millis(rng.u64(0..2000))).await;
                world.start_daemon();
            }
        }
    }
    fake.set_down(false);
    fake.set_login_fails(false);
    fake.set_login_delay(Duration::ZERO);
    fake.set_statement_delay(Duration::ZERO);
    for db in &databases {
        fake.create_database(db);
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

/// Nothing in use or logging in, within the bound, and Snowflake has exactly the sessions the
/// pool holds.
fn check_at_rest(world: &World) {
    let Some(daemon) = world.daemon_now() else {
        world.violation("setup: no daemon running at the end".into());
        return;
    };
    let stats = daemon.runner.pool().stats();
    world.note(format!("at rest: {stats:?}"));
    if stats.in_use != 0 {
        world.violation(format!(
            "pool not at rest: {} sessions in use with no request running ({stats:?})",
            stats.in_use
        ));
    }
    if stats.logging_in != 0 {
        world.violation(format!(
            "pool not at rest: {} logins counted with none running ({stats:?})",
            stats.logging_in
        ));
    }
    if stats.idle + stats.pinned > stats.max {
        world.violation(format!(
            "pool over its bound: idle {} + pinned {} > max {}",
            stats.idle, stats.pinned, stats.max
        ));
    }
    let live = world.fake.live_sessions();
    if live != stats.idle + stats.pinned {
        world.violation(format!(
            "session leak: Snowflake has {live} sessions, the pool holds {} idle + {} pinned",
            stats.idle, stats.pinned
        ));
    }
}

/// Every write where the client's knowledge says it must be.
fn check_writes(world: &World) {
    let committed = world.fake.committed_rows();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for key in &committed {
        *counts.entry(key.as_str()).or_default() += 1;
    }
    let model = world.model();
    let mut found = Vec::new();
    for (key, count) in &counts {
        if *count > 1 {
            found.push(format!(
                "write applied twice: {key} committed {count} times"
            ));
        }
        if !model.fates.contains_key(*key) {
            found.push(format!("unknown write: {key} committed but never decided"));
        }
    }
    for (key, fate) in &model.fates {
        let present = counts.contains_key(key.as_str());
        match fate {
            Fate::Present if !present => found.push(format!(
                "committed write missing: {key} was acknowledged as committed but is not there"
            )),
            Fate::Absent if present => found.push(format!(
                "rolled-back write present: {key} was rolled back (or never ran) but is committed"
            )),
            _ => {}
        }
    }
    drop(model);
    for what in found {
        world.violation(what);
    }
}

/// Each token's saved context is one its own statements could have set.
fn check_contexts(world: &World) {
    let model = world.model();
    let mut found = Vec::new();
    for token in &model.tokens {
        let saved = world.registry.context(&token.name);
        let database = saved.as_ref().and_then(|c| c.database.clone());
        let warehouse = saved.as_ref().and_then(|c| c.warehouse.clone());
        let mut databases = token.databases_now.clone();
        if databases
            .iter()
            .flatten()
            .any(|db| model.dropped.contains(db))
        {
            // Its database vanished at some point: the login defaults are the fallback.
            databases.insert(None);
        }
        if !databases.contains(&database) {
            found.push(format!(
                "wrong context: {} has database {database:?}, its own statements allow only {databases:?}",
                token.name
            ));
        }
        if !token.warehouses_now.contains(&warehouse) {
            found.push(format!(
                "wrong context: {} has warehouse {warehouse:?}, its own statements allow only {:?}",
                token.name, token.warehouses_now
            ));
        }
    }
    drop(model);
    for what in found {
        world.violation(what);
    }
}

/// No tagged statement ran in a database or warehouse its token never asked for.
fn check_statement_contexts(world: &World) {
    let model = world.model();
    let mut found = Vec::new();
    for statement in world.fake.statement_log() {
        let Some(name) = tag_of(&statement.sql) else {
            continue;
        };
        let Some(token) = model.tokens.iter().find(|t| t.name == name) else {
            continue;
        };
        let context = &statement.context;
        let foreign_database = context
            .database
            .as_ref()
            .filter(|db| !token.asked_databases.contains(*db));
        let foreign_warehouse = context
            .warehouse
            .as_ref()
            .filter(|wh| !token.asked_warehouses.contains(*wh));
        if foreign_database.is_some() || foreign_warehouse.is_some() {
            found.push(format!(
                "another token's context: `{}` ran on session {} in database {:?} / warehouse {:?}, which {name} never chose",
                statement.sql, statement.session, context.database, context.warehouse
            ));
        }
    }
    drop(model);
    // One line per kind of mistake is enough to see it.
    for what in found.into_iter().take(3) {
        world.violation(what);
    }
}

/// The token named in a statement's `/* tN */` tag.
fn tag_of(sql: &str) -> Option<&str> {
    let start = sql.rfind("/* ")? + 3;
    let end = sql[start..].find(" */")? + start;
    Some(&sql[start..end])
}
