//! `snowflaked serve`: wires config, backend, pool, registry, runner and server together,
//! waits for the first stop cause (idle, signal, shutdown request), drains, and exits.
//!
//! One shutdown tree: the accept loop stops first (queued connections stay in the socket for
//! the next instance), in-flight connections get `drain_timeout` to finish, background tasks
//! are cancelled through one `CancellationToken`, the pool is closed. Socket files this
//! process bound are removed as soon as the accept loop stops, and only while still its own.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::{Activation, Listeners};
use crate::config::{DaemonSettings, paths, sources};
use crate::lifecycle::{Activity, Notifier, status_line};
use crate::metrics::Metrics;
use crate::pool::{Pool, monitor};
use crate::runner::Runner;
use crate::server::{self, AppState, StopCause};
use crate::sessions::Registry;
use crate::sessions::store::Store;
use crate::snowflake::connector::ConnectorBackend;
use crate::snowflake::{Backend, BackendError, BoxFuture, Session};
use crate::statements::Statements;
use crate::statements::ids::IdsFile;
use crate::statements::store::ResultStore;

/// Why the daemon could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
}

/// Everything `run` needs; tests fill it in directly.
pub struct ServeOptions {
    pub settings: DaemonSettings,
    pub listeners: Listeners,
    /// `None`: log in with the configured Snowflake connection.
    pub backend: Option<Arc<dyn Backend>>,
}

/// Runs the daemon until it stops; returns why.
pub async fn run(options: ServeOptions) -> Result<StopCause, DaemonError> {
    let ServeOptions {
        settings,
        listeners,
        backend,
    } = options;
    let notifier = Notifier::from_env();
    let backend = backend.unwrap_or_else(|| configured_backend(&settings));
    let state_dir = settings
        .state_dir
        .clone()
        .unwrap_or_else(|| paths::state_dir(&paths::ProcessEnv));
    let registry = match Registry::open(Store::new(&state_dir), settings.tokens.ttl) {
        Ok(registry) => registry,
        Err(e) => {
            tracing::error!(path = %state_dir.display(), error = %e, "cannot read saved token contexts; keeping them in memory only");
            Registry::in_memory(settings.tokens.ttl)
        }
    };
    let registry = Arc::new(registry.with_max_tokens(settings.tokens.max));
    let pool = Pool::new(backend, settings.pool.clone());
    // The connection's login defaults from an earlier run spare the first login a round trip;
    // the background warm-up login checks them again.
    if let Some(context) = registry.login_context(&pool.fingerprint()) {
        pool.preset_login_context(context);
    }
    let metrics = Arc::new(Metrics::default());
    let runner = Arc::new(Runner::new(
        pool.clone(),
        registry.clone(),
        metrics.clone(),
        settings.query.clone(),
    ));

    // One directory per daemon: several daemons of one user (other sockets) never touch each
    // other's spill files; those of a daemon that crashed are removed here.
    let results_parent = settings
        .results
        .dir
        .clone()
        .unwrap_or_else(|| paths::results_dir(&paths::ProcessEnv));
    crate::statements::store::remove_leftovers(&results_parent);
    let results_dir = results_parent.join(std::process::id().to_string());
    let statements = Arc::new(Statements::new(
        runner.clone(),
        ResultStore::new(results_dir, settings.results.memory, settings.results.keep),
        Some(IdsFile::new(&state_dir)),
        settings.query.max_rows,
        settings.results.max_rows,
    ));

    let listener_names = listeners.describe();
    let Listeners {
        unix,
        tcp,
        activation,
        bound_paths,
    } = listeners;
    // A second handle on our own socket keeps it listening until its file is removed (see
    // `remove_socket_files`), after the accept loop has let go of the first.
    let unix_held_open = unix
        .as_ref()
        .filter(|_| !bound_paths.is_empty())
        .map(|(l, _)| l.try_clone())
        .transpose()
        .map_err(DaemonError::Listen)?;
    let unix = unix
        .map(|(l, _)| {
            l.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(l)
        })
        .transpose()
        .map_err(DaemonError::Listen)?;
    let tcp = tcp
        .map(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        })
        .transpose()
        .map_err(DaemonError::Listen)?;

    let shutdown_requested = CancellationToken::new();
    let state = Arc::new(AppState {
        runner: runner.clone(),
        statements: statements.clone(),
        metrics: metrics.clone(),
        activity: Arc::new(Activity::default()),
        activation,
        idle_timeout: settings.idle_timeout,
        max_body_bytes: settings.max_body_bytes,
        request_read_timeout: settings.request_read_timeout,
        write_stall_timeout: settings.write_stall_timeout,
        started: tokio::time::Instant::now(),
        listeners: listener_names.clone(),
        shutdown_requested: shutdown_requested.clone(),
        memory_to_return: std::sync::atomic::AtomicBool::new(false),
    });

    let background = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::spawn(monitor::run(
        pool.clone(),
        settings.tokens.transaction_idle_timeout,
        background.child_token(),
    ));
    tokio::spawn(status_loop(
        state.clone(),
        notifier,
        background.child_token(),
    ));
    // Log in ahead of the first statement; a failure here is only logged.
    pool.warm();

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        activation = %activation,
        listeners = ?listener_names,
        idle_timeout = %crate::config::duration::format(settings.idle_timeout),
        connection = %pool.describe(),
        "snowflaked ready"
    );
    notifier.ready(&status_line(
        state.activity.idle_left(settings.idle_timeout),
        settings.idle_timeout,
        0,
        0,
        0,
        settings.pool.max_size,
    ));

    let cause = tokio::select! {
        cause = server::accept_loop(state.clone(), unix, tcp, tracker.clone(), shutdown_requested.clone()) => cause,
        name = termination_signal() => StopCause::Signal(name),
    };
    // The accept loop has returned (or been dropped): nothing new is accepted from here on.
    // Our socket file goes now, not after the drain: a client that finds no socket starts a
    // successor, which must not lose its socket to our cleanup later.
    remove_socket_files(&bound_paths);
    drop(unix_held_open);
    tracing::info!(cause = %cause, in_flight = state.activity.open(), "stopping");
    notifier.stopping(&format!("stopping: {cause}"));
    // Detached statements are cancelled in Snowflake (an idle exit never finds one running).
    statements.shutdown().await;
    tracker.close();
    if tokio::time::timeout(settings.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            abandoned = state.activity.open(),
            drain_timeout = %crate::config::duration::format(settings.drain_timeout),
            "requests still running after the drain timeout; exiting anyway"
        );
    }
    background.cancel();
    remember_login_context(&state);
    // Rolls back what tokens left open and closes the pool; the rollbacks mark the tokens'
    // transactions lost in the registry, so the flush comes after.
    state.runner.shutdown().await;
    if let Err(e) = registry.flush().await {
        tracing::error!(error = %e, "token contexts not saved on exit");
    }
    tracing::info!(cause = %cause, served = metrics.queries_served.load(std::sync::atomic::Ordering::Relaxed), "snowflaked stopped");
    Ok(cause)
}

/// Removes the socket files this process bound, each only while it is still ours.
fn remove_socket_files(bound: &[crate::activation::bind::BoundSocket]) {
    for socket in bound {
        match socket.remove_if_ours() {
            Ok(true) => tracing::debug!(path = %socket.path.display(), "socket file removed"),
            Ok(false) => {
                tracing::info!(path = %socket.path.display(), "socket file already replaced; left to its owner")
            }
            Err(e) => {
                tracing::warn!(path = %socket.path.display(), error = %e, "cannot remove socket file")
            }
        }
    }
}

/// The configured connection, or a backend that reports the configuration problem on every
/// login so the daemon stays up and clients see a clear error.
fn configured_backend(settings: &DaemonSettings) -> Arc<dyn Backend> {
    let built = sources::load_connection(&paths::ProcessEnv)
        .map_err(|e| e.to_string())
        .and_then(|connection| {
            ConnectorBackend::new(&connection, settings.pool.login_timeout)
                .map_err(|e| e.to_string())
        });
    match built {
        Ok(backend) => Arc::new(backend),
        Err(message) => {
            tracing::error!(error = %message, "Snowflake connection is not usable; statements will fail until it is fixed");
            Arc::new(Misconfigured(message))
        }
    }
}

struct Misconfigured(String);

impl Backend for Misconfigured {
    fn login(&self) -> BoxFuture<'_, Result<Box<dyn Session>, BackendError>> {
        let error = BackendError::Login {
            connection: "the configured connection".into(),
            message: self.0.clone(),
        };
        Box::pin(async move { Err(error) })
    }

    fn describe(&self) -> String {
        "not configured".into()
    }
}

async fn termination_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Keeps `systemctl status` current and feeds the watchdog.
async fn status_loop(state: Arc<AppState>, notifier: Notifier, stop: CancellationToken) {
    let watchdog = notifier.watchdog_interval();
    let every = watchdog.map_or(Duration::from_secs(5), |w| {
        (w / 2).min(Duration::from_secs(5))
    });
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        let pool = state.runner.pool().stats();
        let served = state
            .metrics
            .queries_served
            .load(std::sync::atomic::Ordering::Relaxed);
        notifier.status(&status_line(
            state.activity.idle_left(state.idle_timeout),
            state.idle_timeout,
            served,
            pool.in_use,
            pool.total(),
            pool.max,
        ));
        if watchdog.is_some() {
            notifier.watchdog();
        }
        if state.activity.open() == 0
            && state
                .memory_to_return
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            crate::lifecycle::return_free_memory();
        }
        remember_login_context(&state);
        state.statements.expire();
        state.statements.flush();
        let expired = state.runner.registry().expire_unused();
        if !expired.is_empty() {
            tracing::info!(
                count = expired.len(),
                "forgot tokens unused past tokens.ttl"
            );
        }
    }
}

/// Persists the login defaults the pool has learnt, for the next activation.
fn remember_login_context(state: &AppState) {
    let pool = state.runner.pool();
    if let Some(context) = pool.login_context() {
        state
            .runner
            .registry()
            .set_login_context(&pool.fingerprint(), &context);
    }
}

/// The listeners for `serve` when none were inherited: the configured (or default) Unix
/// socket, and TCP if configured.
pub fn bind_own(settings: &DaemonSettings, activation: Activation) -> std::io::Result<Listeners> {
    let path = settings
        .socket
        .clone()
        .unwrap_or_else(|| paths::default_socket(&paths::ProcessEnv));
    let (unix, bound) = crate::activation::bind::bind_unix(&path)?;
    let tcp = settings
        .tcp
        .map(crate::activation::bind::bind_tcp)
        .transpose()?;
    Ok(Listeners {
        unix: Some((unix, path.display().to_string())),
        tcp,
        activation,
        bound_paths: vec![bound],
    })
}
