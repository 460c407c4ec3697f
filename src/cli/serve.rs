//! `snowflaked serve`: resolve settings, take inherited sockets before the runtime starts (or
//! bind our own), set up logging, and run the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Error;
use crate::activation::{self, Activation};
use crate::config::{duration, paths, sources};
use crate::daemon::{self, ServeOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Bind this Unix socket when none is inherited [default: $XDG_RUNTIME_DIR/snowflaked/api.sock]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Also listen on this loopback TCP address (only minted tokens are accepted there)
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,
    /// Exit after this long without connections (30s, 5m, 1h; 0 = never) [default: 30m]
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    pub idle_timeout: Option<Duration>,
    /// Set by a client that started this daemon because nothing was listening
    #[arg(long, hide = true)]
    pub self_started: bool,
}

/// Runs the daemon; exit 0 after a clean stop, or the error (2 for configuration errors, 3
/// when it cannot listen or run).
pub fn run(args: ServeArgs) -> Result<ExitCode, Error> {
    // Inherited sockets first, while the process still has a single thread.
    let inherited = activation::take_inherited();
    let mut settings = sources::load_settings(&paths::ProcessEnv)?;
    if let Some(socket) = args.socket {
        // An explicit --socket wins over the config for binding, and tells clients where
        // the self-started daemon listens.
        settings.socket = Some(socket);
    }
    if args.tcp.is_some() {
        settings.tcp = args.tcp;
    }
    if let Some(idle) = args.idle_timeout {
        settings.idle_timeout = idle;
    }
    crate::logging::init(&settings.log_level, crate::logging::under_systemd());

    let listeners = match inherited {
        Ok(Some(mut listeners)) => {
            // A TCP address configured for the daemon is bound even when the init system
            // handed over only the Unix socket.
            match settings
                .tcp
                .filter(|_| listeners.tcp.is_none())
                .map(activation::bind::bind_tcp)
            {
                Some(Err(e)) => Err(e),
                Some(Ok(tcp)) => {
                    listeners.tcp = Some(tcp);
                    Ok(listeners)
                }
                None => Ok(listeners),
            }
        }
        Ok(None) => {
            let activation = if args.self_started {
                Activation::SelfStarted
            } else {
                Activation::Foreground
            };
            daemon::bind_own(&settings, activation)
        }
        Err(e) => Err(e),
    };
    let listeners = listeners.map_err(|e| {
        tracing::error!(error = %e, "cannot listen");
        Error::Listen(e)
    })?;
    if listeners.activation == Activation::Launchd {
        settings.idle_timeout = launchd_idle_floor(settings.idle_timeout);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(daemon::run(ServeOptions {
        settings,
        listeners,
        backend: None,
    }));
    // Do not wait for blocking tasks (none should be left) beyond a moment.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// launchd refuses to relaunch a job within 10 s of its last start (its throttle), so an
/// agent that idled out sooner would leave the next connection waiting; never idle out before.
fn launchd_idle_floor(idle: Duration) -> Duration {
    const LAUNCHD_THROTTLE: Duration = Duration::from_secs(10);
    if !idle.is_zero() && idle < LAUNCHD_THROTTLE {
        tracing::warn!(configured = %duration::format(idle), "idle timeout raised to 10s, launchd's relaunch throttle");
        return LAUNCHD_THROTTLE;
    }
    idle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchd_never_idles_out_inside_its_throttle() {
        assert_eq!(
            launchd_idle_floor(Duration::from_secs(2)),
            Duration::from_secs(10)
        );
        assert_eq!(launchd_idle_floor(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            launchd_idle_floor(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
