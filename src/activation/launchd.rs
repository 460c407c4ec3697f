//! Sockets passed by launchd through `launch_activate_socket` (macOS only). The plist's
//! `Sockets` dictionary uses the keys `api` and `api-tcp`, the same names as the systemd fds.

use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::raw::{c_char, c_int};

use super::{API_FD_NAME, API_TCP_FD_NAME, Activation, Listeners};

unsafe extern "C" {
    fn launch_activate_socket(
        name: *const c_char,
        fds: *mut *mut c_int,
        count: *mut usize,
    ) -> c_int;
}

/// The first fd launchd holds under `name`, or `None` when not launched by launchd with it.
fn activate(name: &str) -> std::io::Result<Option<c_int>> {
    let name = CString::new(name).expect("socket names have no NUL");
    let mut fds: *mut c_int = std::ptr::null_mut();
    let mut count: usize = 0;
    // SAFETY: launchd fills `fds` with a malloc'ed array of `count` fds, which we free.
    let status = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut count) };
    match status {
        0 => {}
        // ENOENT: no such socket in the plist; ESRCH: not managed by launchd.
        libc::ENOENT | libc::ESRCH => return Ok(None),
        errno => return Err(std::io::Error::from_raw_os_error(errno)),
    }
    let first = (count > 0).then(|| unsafe { *fds });
    // SAFETY: allocated by launchd with malloc.
    unsafe { libc::free(fds.cast()) };
    Ok(first)
}

/// Takes the sockets, or `None` when launchd did not start this process with them.
pub fn take() -> std::io::Result<Option<Listeners>> {
    let unix = activate(API_FD_NAME)?;
    let tcp = activate(API_TCP_FD_NAME)?;
    if unix.is_none() && tcp.is_none() {
        return Ok(None);
    }
    // SAFETY: launchd hands us ownership of these listening sockets.
    let unix = unix.map(|fd| unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) });
    let tcp = tcp.map(|fd| unsafe { std::net::TcpListener::from_raw_fd(fd) });
    Ok(Some(Listeners {
        unix: unix.map(|l| {
            let path = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "launchd".to_string());
            (l, path)
        }),
        tcp,
        activation: Activation::Launchd,
        bound_paths: Vec::new(),
    }))
}
