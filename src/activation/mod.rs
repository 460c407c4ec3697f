//! The listening sockets: inherited from the init system first (systemd's `LISTEN_FDS`,
//! launchd's `launch_activate_socket`), otherwise bound by the daemon itself.
//!
//! Inherited sockets must be taken before the async runtime starts, because taking them
//! clears the `LISTEN_*` variables (which is only sound while the process has one thread).
//! The daemon never unlinks a socket it did not bind: only [`Listeners::bound_paths`] are
//! removed, at the start of shutdown, and only while each is still the socket file it bound
//! (same device and inode).

pub mod bind;
#[cfg(target_os = "macos")]
pub mod launchd;
pub mod systemd;

use std::fmt;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;

/// The fd name of the API socket in `snowflaked.socket` (`FileDescriptorName=api`) and the
/// launchd `Sockets` key.
pub const API_FD_NAME: &str = "api";
/// The fd name of the optional loopback TCP socket unit.
pub const API_TCP_FD_NAME: &str = "api-tcp";

/// How the daemon came to be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Systemd,
    Launchd,
    /// Started by a client because nothing was listening.
    SelfStarted,
    /// Started by hand (`snowflaked serve` in a terminal).
    Foreground,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Systemd => "systemd",
            Activation::Launchd => "launchd",
            Activation::SelfStarted => "self",
            Activation::Foreground => "foreground",
        })
    }
}

/// The sockets to serve on.
#[derive(Debug)]
pub struct Listeners {
    pub unix: Option<(UnixListener, String)>,
    pub tcp: Option<TcpListener>,
    pub activation: Activation,
    /// Socket files this process created, and so removes when it stops.
    pub bound_paths: Vec<bind::BoundSocket>,
}

impl Listeners {
    /// Descriptions for status output, e.g. `unix:/run/user/1000/snowflaked/api.sock`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, name)) = &self.unix {
            out.push(format!("unix:{name}"));
        }
        if let Some(tcp) = &self.tcp {
            out.push(match tcp.local_addr() {
                Ok(addr) => format!("tcp:{addr}"),
                Err(_) => "tcp".to_string(),
            });
        }
        out
    }
}

/// Sockets handed over by the init system, if any. Call before starting the runtime.
pub fn take_inherited() -> std::io::Result<Option<Listeners>> {
    if let Some(listeners) = systemd::take()? {
        return Ok(Some(listeners));
    }
    #[cfg(target_os = "macos")]
    if let Some(listeners) = launchd::take()? {
        return Ok(Some(listeners));
    }
    Ok(None)
}
