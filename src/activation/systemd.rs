//! Sockets passed by systemd (or anything speaking its protocol, such as
//! `systemd-socket-activate`): `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`.
//!
//! listenfd validates `LISTEN_PID` and the socket types; it does not read the names, so they
//! are read here first. A fd named `api` is the Unix API socket and `api-tcp` the TCP one;
//! unnamed fds (`unknown`, or no names at all) are taken by their socket type.

use super::{API_FD_NAME, API_TCP_FD_NAME, Activation, Listeners};

/// Takes the sockets, or `None` when systemd passed none to this process.
pub fn take() -> std::io::Result<Option<Listeners>> {
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    // SAFETY: called from `main` before the runtime (or any other thread) starts.
    unsafe { std::env::remove_var("LISTEN_FDNAMES") };
    if fds.len() == 0 {
        return Ok(None);
    }
    let mut listeners = Listeners {
        unix: None,
        tcp: None,
        activation: Activation::Systemd,
        bound_paths: Vec::new(),
    };
    for index in 0..fds.len() {
        let name = names.get(index).map(String::as_str).unwrap_or("unknown");
        if let Ok(Some(unix)) = fds.take_unix_listener(index) {
            if name != API_FD_NAME && name != "unknown" {
                tracing::warn!(
                    fd = index + 3,
                    name,
                    "unexpected fd name for a Unix socket; serving the API on it"
                );
            }
            if listeners.unix.is_none() {
                let path = unix
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_else(|| format!("fd {}", index + 3));
                listeners.unix = Some((unix, path));
            }
        } else if let Ok(Some(tcp)) = fds.take_tcp_listener(index) {
            if name != API_TCP_FD_NAME && name != "unknown" {
                tracing::warn!(
                    fd = index + 3,
                    name,
                    "unexpected fd name for a TCP socket; serving the API on it"
                );
            }
            if let Ok(addr) = tcp.local_addr()
                && !addr.ip().is_loopback()
            {
                return Err(std::io::Error::other(format!(
                    "the inherited TCP socket listens on {addr}; snowflaked serves TCP on loopback addresses only"
                )));
            }
            listeners.tcp.get_or_insert(tcp);
        } else {
            tracing::warn!(
                fd = index + 3,
                name,
                "ignoring an inherited fd that is neither a Unix nor a TCP stream listener"
            );
        }
    }
    if listeners.unix.is_none() && listeners.tcp.is_none() {
        return Ok(None);
    }
    Ok(Some(listeners))
}
