//! A socket activator that behaves like systemd's socket units, for tests: it owns the
//! listening Unix socket, starts `snowflaked serve` when a connection is pending, passes the
//! socket as fd 3 with `LISTEN_FDS=1`, `LISTEN_PID` (the daemon's own pid) and
//! `LISTEN_FDNAMES=api`, collects sd_notify datagrams on a `NOTIFY_SOCKET` it owns, and starts
//! the daemon again on the next pending connection after it exits.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Something the activator observed, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A daemon was started on a pending connection.
    Started,
    /// An sd_notify datagram (`READY=1`, `STATUS=…`, `STOPPING=1`).
    Notify(String),
    /// The daemon exited with this status.
    Exited(ExitStatus),
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

impl Shared {
    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_all();
    }
}

pub struct Activator {
    notify_path: PathBuf,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    wake: UnixDatagram,
    wake_path: PathBuf,
    running_pid: Arc<AtomicU32>,
    threads: Vec<JoinHandle<()>>,
}

impl Activator {
    /// Listens at `socket` and starts `binary serve <args>` with `env` on demand.
    pub fn start(
        socket: &Path,
        binary: &Path,
        args: &[&str],
        env: Vec<(String, String)>,
        log: &Path,
    ) -> Self {
        let dir = socket.parent().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let listener = UnixListener::bind(socket).expect("bind the activation socket");
        let notify_path = dir.join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
        let wake_path = dir.join("activator-wake.sock");
        let wake_listener = UnixDatagram::bind(&wake_path).unwrap();
        let wake = UnixDatagram::unbound().unwrap();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let running_pid = Arc::new(AtomicU32::new(0));

        let notify_thread = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 8192];
                while let Ok(n) = notify.recv(&mut buffer) {
                    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    if text == "ACTIVATOR-STOP" {
                        return;
                    }
                    shared.push(Event::Notify(text));
                }
            })
        };

        let activation_thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            let running_pid = running_pid.clone();
            let binary = binary.to_path_buf();
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let notify_path = notify_path.clone();
            let log = log.to_path_buf();
            std::thread::spawn(move || {
                let fd = listener.as_raw_fd();
                loop {
                    // Wait until a connection is pending (or we are told to stop).
                    if !wait_readable(fd, wake_listener.as_raw_fd()) || stop.load(Ordering::SeqCst)
                    {
                        return;
                    }
                    let log_file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap();
                    let mut command = Command::new("/bin/sh");
                    // The shell's pid becomes the daemon's pid through exec, which is how
                    // LISTEN_PID can name the daemon itself.
                    command
                        .arg("-c")
                        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
                        .arg(&binary)
                        .arg("serve")
                        .args(&args)
                        .env_clear()
                        .env("PATH", std::env::var("PATH").unwrap_or_default())
                        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .env("LISTEN_FDS", "1")
                        .env("LISTEN_FDNAMES", "api")
                        .env("NOTIFY_SOCKET", &notify_path)
                        .stdin(Stdio::null())
                        .stdout(log_file.try_clone().unwrap())
                        .stderr(log_file);
                    unsafe {
                        command.pre_exec(move || pass_as_fd3(fd));
                    }
                    let mut child = command.spawn().expect("start the daemon");
                    running_pid.store(child.id(), Ordering::SeqCst);
                    shared.push(Event::Started);
                    let status = child.wait().expect("wait for the daemon");
                    running_pid.store(0, Ordering::SeqCst);
                    shared.push(Event::Exited(status));
                }
            })
        };

        Self {
            notify_path,
            shared,
            stop,
            wake,
            wake_path,
            running_pid,
            threads: vec![notify_thread, activation_thread],
        }
    }

    /// Everything observed so far.
    pub fn events(&self) -> Vec<Event> {
        self.shared.events.lock().unwrap().clone()
    }

    /// Waits until `done(events)` holds; panics after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut events = self.shared.events.lock().unwrap();
        loop {
            if done(&events) {
                return events.clone();
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}; events: {:?}", *events));
            events = self.shared.changed.wait_timeout(events, left).unwrap().0;
        }
    }

    /// Number of daemon starts and exits so far.
    pub fn starts(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Started))
            .count()
    }

    pub fn exits(&self) -> Vec<ExitStatus> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::Exited(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// The pid of the daemon running now, if any.
    pub fn running_pid(&self) -> Option<u32> {
        Some(self.running_pid.load(Ordering::SeqCst)).filter(|&p| p != 0)
    }

    /// Notify messages received so far.
    pub fn notifications(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Notify(text) => Some(text),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Activator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(pid) = self.running_pid() {
            // SAFETY: a plain kill(2) of the daemon this activator started.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let _ = self.wake.send_to(b"stop", &self.wake_path);
        let _ = self.wake.send_to(b"ACTIVATOR-STOP", &self.notify_path);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Blocks until `listener` has a pending connection (true) or `wake` receives anything (false).
fn wait_readable(listener: RawFd, wake: RawFd) -> bool {
    let mut fds = [
        libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: fds is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if fds[1].revents != 0 {
            return false;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            return true;
        }
    }
}

/// In the child before exec: the listening socket becomes fd 3, inheritable.
fn pass_as_fd3(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2/fcntl on fds this process owns, between fork and exec.
    unsafe {
        if fd == 3 {
            let flags = libc::fcntl(3, libc::F_GETFD);
            if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(fd, 3) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
