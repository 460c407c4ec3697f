//! The client as people meet it: self-start where no init system manages the socket (ten
//! clients racing start one daemon, which idles out like an activated one), the message when
//! the daemon cannot be reached, exit codes, and tokens over TCP.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{Home, binary, emulator, http, json, stderr, stdout};

const WAIT: Duration = Duration::from_secs(60);

/// Blocks until process `pid` (not our child) exits, via a pidfd; false on timeout.
fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        // Already gone.
        return true;
    }
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; the fd is closed right after.
    let ready = unsafe { libc::poll(&mut pollfd, 1, timeout.as_millis() as i32) };
    unsafe { libc::close(fd) };
    ready == 1
}

#[test]
fn ten_racing_clients_start_exactly_one_daemon_which_idles_out() {
    let emulator = emulator::shared();
    let home = Home::new();
    let children: Vec<_> = (0..10)
        .map(|i| {
            let mut command = home.command(
                emulator.port,
                &["query", &format!("SELECT {i} AS n"), "--format", "json"],
            );
            command
                .env("SNOWFLAKED_IDLE_TIMEOUT", "1s")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let result = json(&child.wait_with_output().unwrap());
        assert_eq!(result["rows"][0][0], i as u64);
    }
    let status = json(&home.run(emulator.port, &["status", "--json"]));
    assert_eq!(status["activation"], "self");
    let pid = status["pid"].as_u64().unwrap() as u32;
    let log = std::fs::read_to_string(home.path().join("state/snowflaked/daemon.log")).unwrap();
    assert_eq!(
        log.matches("snowflaked ready").count(),
        1,
        "one daemon was started:\n{log}"
    );
    assert!(
        wait_for_exit(pid, WAIT),
        "the self-started daemon exits when idle"
    );
    assert!(!home.socket().exists(), "it removed the socket it bound");
}

#[test]
fn when_a_unit_owns_the_socket_the_client_says_how_to_start_it_and_does_not_self_start() {
    let home = Home::new();
    let unit = home
        .path()
        .join("config/systemd/user/sockets.target.wants/snowflaked.socket");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Socket]\n").unwrap();
    let mut command = home.command(1, &["query", "SELECT 1"]);
    // The default socket path, which the unit owns.
    command.env_remove("SNOWFLAKED_SOCKET");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("systemctl --user start snowflaked.socket"),
        "{}",
        stderr(&out)
    );
    assert!(
        !home.path().join("run/snowflaked/api.sock").exists(),
        "no daemon was started"
    );
}

#[test]
fn stop_without_a_daemon_explains_and_exits_3() {
    let home = Home::new();
    let out = home.run(1, &["stop"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot reach snowflaked")
            && stderr(&out).contains("snowflaked serve"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exit_codes_follow_the_contract() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    assert_eq!(
        home.run(emulator.port, &["query", "SELECT 1"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        home.run(emulator.port, &["query", "SELEC 1"]).status.code(),
        Some(1),
        "statement failed"
    );
    let refused = home.run(
        emulator.port,
        &["query", "--read-only", "SELECT 1; DROP TABLE x"],
    );
    assert_eq!(
        refused.status.code(),
        Some(2),
        "usage: refused by read-only mode"
    );
    assert!(
        stderr(&refused).contains("statement 2") && stderr(&refused).contains("DROP TABLE"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        home.run(emulator.port, &["query", "--no-such-flag"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        home.run(emulator.port, &["use", "database", "not a name"])
            .status
            .code(),
        Some(2)
    );
    let missing = home.run(
        emulator.port,
        &["use", "database", "does_not_exist_anywhere"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("hint:"), "{}", stderr(&missing));
}

/// The daemon's TCP port, from `status --json`.
fn tcp_port(home: &Home, emulator_port: u16) -> u16 {
    let status = json(&home.run(emulator_port, &["status", "--json"]));
    let tcp = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l.as_str()?.strip_prefix("tcp:").map(str::to_string))
        .expect("a TCP listener");
    tcp.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn over_tcp_nothing_answers_without_a_token_minted_over_the_unix_socket() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(
        emulator.port,
        &["--idle-timeout", "30m", "--tcp", "127.0.0.1:0"],
    );
    let port = tcp_port(&home, emulator.port);
    let host = format!("127.0.0.1:{port}");
    let query = r#"{"sql": "SELECT 1"}"#;
    let routes = [
        ("POST", "/v1/sessions", ""),
        ("GET", "/health", ""),
        ("GET", "/v1/status", ""),
        ("GET", "/metrics", ""),
        ("POST", "/v1/query", query),
        ("GET", "/v1/context", ""),
        ("GET", "/no/such/route", ""),
    ];
    for (method, path, body) in routes {
        for token in [None, Some("default"), Some("sfd_not_minted")] {
            let answer = http::tcp_api(port, method, path, Some(&host), token, body);
            assert_eq!(
                answer.status, 401,
                "{method} {path} {token:?}: {}",
                answer.body
            );
            assert_eq!(answer.json()["error"]["kind"], "unknown_token");
        }
    }
    let minted = stdout(&home.run(emulator.port, &["session", "new"]))
        .trim()
        .to_string();
    assert!(minted.len() >= 36, "{minted}");
    for (method, path, body) in &routes[1..] {
        let answer = http::tcp_api(port, method, path, Some(&host), Some(&minted), body);
        let expected = if path.starts_with("/no/") { 404 } else { 200 };
        assert_eq!(answer.status, expected, "{method} {path}: {}", answer.body);
    }
    let ran = http::tcp_api(
        port,
        "POST",
        "/v1/query",
        Some("localhost"),
        Some(&minted),
        query,
    );
    assert_eq!(ran.json()["rows"][0][0], 1);
    // Every minted token comes from the Unix socket, and other tokens are not listed over TCP.
    for (method, path) in [("POST", "/v1/sessions"), ("GET", "/v1/sessions")] {
        let answer = http::tcp_api(port, method, path, Some(&host), Some(&minted), "");
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["kind"], "forbidden");
    }
    // Loopback names and addresses with and without a port are this daemon.
    for name in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        "127.0.0.1".into(),
        "[::1]".into(),
        format!("[::1]:{port}"),
    ] {
        let answer = http::tcp_api(port, "GET", "/health", Some(&name), Some(&minted), "");
        assert_eq!(answer.status, 200, "Host {name}: {}", answer.body);
    }
    // DNS rebinding: the browser sends the attacker's name; a missing Host is refused too.
    for foreign in [
        Some("attacker.example"),
        Some(&*format!("attacker.example:{port}")),
        Some("localhost.attacker.example"),
        Some("10.1.2.3"),
        None,
    ] {
        for (method, path, body) in routes {
            let answer = http::tcp_api(port, method, path, foreign, Some(&minted), body);
            assert_eq!(
                answer.status, 421,
                "Host {foreign:?} {path}: {}",
                answer.body
            );
            assert_eq!(answer.json()["error"]["kind"], "foreign_host");
        }
    }
    let absolute = http::tcp_raw(
        port,
        format!("GET http://attacker.example/health HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {minted}\r\n\r\n").as_bytes(),
    );
    assert_eq!(absolute.status, 421, "{}", absolute.body);

    let listed = json(&home.run(emulator.port, &["session", "list", "--json"]));
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["token"] == minted.as_str() && s["minted"] == true)
    );
    home.ok(emulator.port, &["session", "end", &minted]);
    let ended = http::tcp_api(port, "GET", "/v1/context", Some(&host), Some(&minted), "");
    assert_eq!(ended.status, 401, "an ended token is refused");
    // The Unix socket's rules are unchanged: no token means `default`.
    let health = http::request(&home.socket(), "GET", "/health", None, "");
    assert_eq!(health.status, 200);
}

/// Runs `program args` as uid/gid 65534 with no supplementary groups, or `None` with the reason
/// when this machine does not allow it (not root, no setpriv).
fn as_nobody(program: &str, args: &[&str]) -> Result<std::process::Output, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root, so setpriv cannot switch users".into());
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    Ok(out)
}

#[test]
fn another_user_can_mint_nothing_over_tcp_and_is_refused_on_the_unix_socket() {
    let probe = match as_nobody("/usr/bin/id", &["-u"]) {
        Ok(out) if stdout(&out).trim() == "65534" => out,
        Ok(out) => panic!("setpriv ran but not as 65534: {}", stderr(&out)),
        Err(why) => {
            // Machines without root or setpriv cannot run a second user; say so loudly.
            eprintln!("SKIPPED another-user test: {why}");
            return;
        }
    };
    drop(probe);
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(
        emulator.port,
        &["--idle-timeout", "30m", "--tcp", "127.0.0.1:0"],
    );
    let port = tcp_port(&home, emulator.port);
    // Over TCP, as another user: minting without a token is refused.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'POST /v1/sessions HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: 0\\r\\n\\r\\n' >&3 && cat <&3"
    );
    let out = as_nobody("/bin/bash", &["-c", &script]).unwrap();
    let answer = stdout(&out);
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "{answer}{}",
        stderr(&out)
    );
    assert!(answer.contains("\"unknown_token\""), "{answer}");

    // The real client as another user cannot reach the socket in its 0700 directory...
    let socket = home.socket().display().to_string();
    let binary = binary().display().to_string();
    let out = as_nobody(&binary, &["--socket", &socket, "session", "new"]).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach snowflaked"),
        "{}",
        stderr(&out)
    );

    // ...and were the directory and socket opened up, the peer uid check refuses it.
    use std::os::unix::fs::PermissionsExt;
    let perm = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    perm(home.path(), 0o711);
    perm(&home.path().join("run"), 0o711);
    perm(&home.socket(), 0o666);
    let out = as_nobody(&binary, &["--socket", &socket, "session", "new"]).unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).trim().is_empty(),
        "no token was minted: {}",
        stdout(&out)
    );
    let log = home.read_daemon_log();
    assert!(
        log.contains("refused a connection from another user") && log.contains("65534"),
        "{log}"
    );
    let listed = json(&home.run(emulator.port, &["session", "list", "--json"]));
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["minted"] == false),
        "{listed}"
    );
}

#[test]
fn ctrl_c_in_the_client_cancels_the_statement_in_snowflake() {
    // Its own emulator, so its counters are this test's alone.
    let emulator = emulator::start(&[]);
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    home.ok(emulator.port, &["query", "SELECT 1"]);
    let client = home
        .command(emulator.port, &["query", "SELECT SYSTEM$WAIT(30)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    emulator.wait_until("the statement runs", |e| e.counter("running") > 0);
    // SAFETY: SIGINT to the client process this test started, as Ctrl-C would send.
    unsafe { libc::kill(client.id() as i32, libc::SIGINT) };
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("cancelling"), "{}", stderr(&out));
    emulator.wait_until("the statement is cancelled in Snowflake", |e| {
        e.counter("cancelled") > 0
    });
}

#[test]
fn config_shows_sources_with_secrets_redacted_and_check_logs_in() {
    let emulator = emulator::shared();
    let home = Home::new();
    let out = home.ok(emulator.port, &["config"]);
    let text = stdout(&out);
    assert!(
        text.contains("SNOWFLAKE_* environment variables") && text.contains("password <redacted>"),
        "{text}"
    );
    assert!(!text.contains("not-a-real-password"));
    let check = home.ok(emulator.port, &["config", "--check"]);
    assert!(stdout(&check).contains("logged in"), "{}", stdout(&check));
}

#[test]
fn without_credentials_the_daemon_stays_up_and_says_what_to_configure() {
    let home = Home::new();
    let mut env: Vec<(String, String)> = home
        .env(1)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("SNOWFLAKE_") || k == "SNOWFLAKE_HOME")
        .collect();
    env.push((
        "SNOWFLAKED_SOCKET".into(),
        home.socket().display().to_string(),
    ));
    let _activator = home.activate_with(env.clone(), &["--idle-timeout", "30m"]);
    let mut command = std::process::Command::new(binary());
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["query", "SELECT 1"]);
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a configuration error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("SNOWFLAKE_ACCOUNT") && stderr(&out).contains("config --check"),
        "{}",
        stderr(&out)
    );
    let health = http::request(&home.socket(), "GET", "/health", None, "");
    assert_eq!(health.status, 200, "the daemon is still up");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = home.ok(1, &["completions", shell]);
        assert!(
            stdout(&out).contains("snowflaked") && stdout(&out).contains("query"),
            "{shell}"
        );
    }
}

/// The pid of the daemon answering on `home`'s socket, asked without self-starting one.
fn answering_pid(home: &Home) -> u32 {
    let health = http::request(&home.socket(), "GET", "/health", None, "").json();
    health["pid"].as_u64().expect("a pid") as u32
}

#[test]
fn a_draining_daemon_leaves_the_socket_of_the_daemon_that_replaced_it() {
    let emulator = emulator::shared();
    let home = Home::new();
    // A self-started daemon (the first)…
    json(&home.run(
        emulator.port,
        &["query", "SELECT 1 AS n", "--format", "json"],
    ));
    let first = answering_pid(&home);
    // …running a long statement when it is told to stop, so it drains for a while.
    let mut long = home
        .command(emulator.port, &["query", "SELECT SYSTEM$WAIT(60)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while http::request(&home.socket(), "GET", "/v1/status", None, "").json()["queries"]["running"]
        != 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never started"
        );
    }
    // SAFETY: SIGTERM to the daemon this test's client started.
    unsafe { libc::kill(first as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + WAIT;
    while std::os::unix::net::UnixStream::connect(home.socket()).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never stopped accepting"
        );
    }
    // Meanwhile a client finds nobody answering and starts a second daemon.
    let during = json(&home.run(
        emulator.port,
        &["query", "SELECT 2 AS n", "--format", "json"],
    ));
    assert_eq!(during["rows"][0][0], 2);
    let second = answering_pid(&home);
    // Should the test fail, the second daemon (unreachable then) is not left running.
    let _stop_second = StopOnDrop(second);
    assert_ne!(first, second, "a new daemon answers");
    // The first ends its drain (its client goes, the statement is cancelled) and exits.
    long.kill().unwrap();
    long.wait().unwrap();
    assert!(wait_for_exit(first, WAIT), "the first daemon exits");
    assert!(
        home.socket().exists(),
        "the first daemon must not remove its successor's socket"
    );
    assert_eq!(answering_pid(&home), second, "the successor still answers");
    drop(_stop_second);
    assert!(wait_for_exit(second, WAIT));
    assert!(!home.socket().exists(), "it removed the socket it bound");
}

/// Sends SIGTERM to a daemon a test started when dropped.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to a daemon this test's client started.
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}

#[test]
fn the_self_started_daemons_log_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = emulator::shared();
    let home = Home::new();
    // A log an older version left readable by others.
    let log_dir = home.path().join("state/snowflaked");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = log_dir.join("daemon.log");
    std::fs::write(&log, "earlier run\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut command = home.command(emulator.port, &["query", "SELECT 1", "--format", "json"]);
    command.env("SNOWFLAKED_IDLE_TIMEOUT", "1s");
    json(&command.output().unwrap());
    let pid = answering_pid(&home);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the daemon's log is private");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("snowflaked ready")
    );
    assert!(wait_for_exit(pid, WAIT));
    // A fresh log is created private as well.
    std::fs::remove_file(&log).unwrap();
    let mut command = home.command(emulator.port, &["query", "SELECT 1", "--format", "json"]);
    command.env("SNOWFLAKED_IDLE_TIMEOUT", "1s");
    json(&command.output().unwrap());
    let pid = answering_pid(&home);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new log is private");
    assert!(wait_for_exit(pid, WAIT));
}

#[test]
fn output_commands_exit_quietly_when_the_reader_goes_away() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    json(&home.run(emulator.port, &["query", "SELECT 1", "--format", "json"]));
    for args in [
        &["session", "list"][..],
        &["session", "list", "--json"],
        &["status"],
        &["context"],
        &["metrics"],
        &["completions", "bash"],
        &["query", "SELECT 1"],
    ] {
        // `| head` that has already gone: the pipe's reading end is closed before we start.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = home
            .command(emulator.port, args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?} exits 0 on a closed pipe, got {:?}: {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?} says nothing");
    }
}

#[test]
fn durations_are_shown_with_units_and_truthfully() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    json(&home.run(emulator.port, &["query", "SELECT 1", "--format", "json"]));
    let list = stdout(&home.run(emulator.port, &["session", "list"]));
    assert!(list.contains("default"), "{list}");
    assert!(!list.contains(" 0 ago"), "a unit even for zero: {list}");
    assert!(list.contains("s ago"), "{list}");
    let answer = http::request(
        &home.socket(),
        "POST",
        "/v1/query",
        None,
        r#"{"sql": "SELECT SYSTEM$WAIT(30)", "timeout_ms": 1}"#,
    );
    assert_eq!(answer.status, 504, "{}", answer.body);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("within 1ms"), "{message}");
}
