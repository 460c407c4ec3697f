//! The Claude Code plugin against a real daemon on the emulator: the session hooks give two
//! simulated agent sessions separate contexts (tests/plugin/hooks_test.sh), and each command's
//! shell line, run as the agent would run it, prints what the command promises.

use std::path::PathBuf;

use crate::support::activator::Activator;
use crate::support::{Home, assert_success, binary, emulator, stderr, stdout, unique_db};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn daemon(home: &Home, port: u16) -> Activator {
    home.activate(port, &["--idle-timeout", "30m"])
}

/// A PATH on which `snowflaked` is the binary under test.
fn path_with_binary(home: &Home) -> String {
    let dir = home.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("snowflaked");
    if !link.exists() {
        std::os::unix::fs::symlink(binary(), &link).unwrap();
    }
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The first ```bash block of a command file, without the list indentation around it.
fn shell_line(command: &str) -> String {
    let text = std::fs::read_to_string(repo().join("plugin/commands").join(command)).unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != "```bash").skip(1);
    let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
    assert!(!block.is_empty(), "{command} has a bash block");
    block
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n")
}

fn allowed_tools(command: &str) -> String {
    let text = std::fs::read_to_string(repo().join("plugin/commands").join(command)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("allowed-tools:"))
        .unwrap()
        .trim()
        .to_string()
}

fn run_shell(home: &Home, port: u16, script: &str) -> std::process::Output {
    home.program("bash", port)
        .arg("-c")
        .arg(script)
        .env("PATH", path_with_binary(home))
        .output()
        .unwrap()
}

#[test]
fn every_command_runs_only_the_snowflaked_call_it_is_allowed() {
    for command in [
        "query.md",
        "use.md",
        "context.md",
        "status.md",
        "write.md",
        "describe.md",
        "tables.md",
        "result.md",
    ] {
        let line = shell_line(command);
        let words: Vec<&str> = line.split_whitespace().take(2).collect();
        assert_eq!(words[0], "snowflaked", "{command}");
        assert_eq!(
            allowed_tools(command),
            format!("Bash(snowflaked {}:*)", words[1]),
            "{command}"
        );
    }
}

#[test]
fn each_commands_shell_line_prints_what_it_promises() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let db = unique_db("plugin");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
        format!("CREATE TABLE {db}.PUBLIC.T (n INT)"),
    ] {
        home.ok(emulator.port, &["query", &sql]);
    }

    let query = shell_line("query.md").replace(
        "<the SQL, exactly as given>",
        "SELECT 'it''s `uname`' AS quoted, 2 AS n",
    );
    let out = run_shell(&home, emulator.port, &query);
    assert_success(&out, "the shell line");
    assert!(
        stdout(&out).starts_with("| QUOTED | N |\n|---|---|\n| it's `uname` | 2 |"),
        "a markdown table, SQL passed unchanged: {}",
        stdout(&out)
    );

    let refused = run_shell(
        &home,
        emulator.port,
        &shell_line("query.md").replace(
            "<the SQL, exactly as given>",
            &format!("DELETE FROM {db}.PUBLIC.T"),
        ),
    );
    assert_eq!(
        refused.status.code(),
        Some(2),
        "/snowflake:query is read-only"
    );

    let use_line = shell_line("use.md").replace("<kind> <NAME>", &format!("database {db}"));
    let out = run_shell(&home, emulator.port, &use_line);
    assert_success(&out, "the shell line");
    assert!(
        stdout(&out).contains(&format!("database   {db}")),
        "{}",
        stdout(&out)
    );

    let out = run_shell(&home, emulator.port, &shell_line("context.md"));
    assert!(
        stdout(&out).contains(&format!("database   {db}")),
        "{}",
        stdout(&out)
    );

    let out = run_shell(&home, emulator.port, &shell_line("status.md"));
    assert!(
        stdout(&out).contains("sessions") && stdout(&out).contains("queries"),
        "{}",
        stdout(&out)
    );

    let write = shell_line("write.md").replace(
        "<the confirmed statements>",
        &format!("INSERT INTO {db}.PUBLIC.T VALUES (1);\nINSERT INTO {db}.PUBLIC.T VALUES (2);"),
    );
    let out = run_shell(&home, emulator.port, &write);
    assert_success(&out, "the shell line");
    let count = home.run(
        emulator.port,
        &[
            "query",
            &format!("SELECT COUNT(*) AS c FROM {db}.PUBLIC.T"),
            "--format",
            "csv",
        ],
    );
    assert_eq!(stdout(&count), "C\n2\n");

    // Unreachable (and impossible to start: the socket's directory cannot be created): the
    // one line the commands promise is keyed to exit status 3.
    std::fs::write(home.path().join("not-a-dir"), "").unwrap();
    let mut gone = home.program("bash", emulator.port);
    gone.arg("-c")
        .arg(shell_line("status.md"))
        .env("PATH", path_with_binary(&home))
        .env("SNOWFLAKED_SOCKET", home.path().join("not-a-dir/api.sock"));
    let out = gone.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn session_hooks_give_two_agent_sessions_separate_contexts() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let script = repo().join("tests/plugin/hooks_test.sh");
    let out = home
        .program("bash", emulator.port)
        .arg(&script)
        .arg(binary())
        .env("TMPDIR", home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hooks_test.sh failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains("FAIL"), "{}", stdout(&out));
    assert!(
        stdout(&out).matches("PASS").count() >= 10,
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_catalog_commands_shell_lines_print_markdown() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let db = unique_db("plugincat");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
        format!("CREATE TABLE {db}.PUBLIC.ORDERS (id INT, who VARCHAR)"),
        format!("INSERT INTO {db}.PUBLIC.ORDERS VALUES (1, 'O''Hara')"),
    ] {
        home.ok(emulator.port, &["query", &sql]);
    }
    home.ok(emulator.port, &["use", "schema", &format!("{db}.PUBLIC")]);

    let describe = shell_line("describe.md").replace("<NAME>", "orders");
    let out = run_shell(&home, emulator.port, &describe);
    assert_success(&out, "the shell line");
    let text = stdout(&out);
    assert!(
        text.starts_with("| name | type | nullable | default | comment |"),
        "{text}"
    );
    assert!(text.contains("O'Hara"), "the sample rows: {text}");

    let tables = shell_line("tables.md")
        .replace("<PATTERN>", "ord")
        .replace("<DB.SCHEMA>", &format!("{db}.PUBLIC"));
    let out = run_shell(&home, emulator.port, &tables);
    assert_success(&out, "the shell line");
    assert!(
        stdout(&out).contains("| PUBLIC | ORDERS | TABLE |"),
        "{}",
        stdout(&out)
    );
}
