//! `describe`, `tables` and `columns` against a schema with 300 tables: every format stays
//! within the row and character budgets and says what it cut.

use super::super::support::{Home, emulator, json, stderr, stdout, unique_db};

const TABLES: usize = 300;
const FORMATS: [&str; 5] = ["table", "markdown", "json", "ndjson", "csv"];

/// A database whose PUBLIC schema holds T_000 … T_299 (id INT, note VARCHAR), and the token
/// `cat` working in it.
fn big_schema(home: &Home, port: u16) -> String {
    let db = unique_db("catalog");
    let mut sql = vec![
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
    ];
    for i in 0..TABLES {
        sql.push(format!(
            "CREATE TABLE {db}.PUBLIC.T_{i:03} (id INT, note VARCHAR)"
        ));
    }
    sql.push(format!(
        "INSERT INTO {db}.PUBLIC.T_007 VALUES (1, 'one'), (2, 'two'), (3, 'three')"
    ));
    home.ok(
        port,
        &[
            "--session",
            "cat",
            "query",
            &sql.join(";\n"),
            "--format",
            "json",
        ],
    );
    home.ok(
        port,
        &["--session", "cat", "use", "schema", &format!("{db}.PUBLIC")],
    );
    db
}

fn catalog(home: &Home, port: u16, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--session", "cat"];
    all.extend_from_slice(args);
    home.run(port, &all)
}

#[test]
fn catalog_commands_stay_inside_the_budgets_and_say_what_they_cut() {
    let emulator = emulator::shared();
    let port = emulator.port;
    let home = Home::new();
    let _daemon = home.activate(port, &["--idle-timeout", "30m"]);
    let db = big_schema(&home, port);

    for (command, args) in [
        ("tables", vec!["tables"]),
        ("columns", vec!["columns", "id"]),
    ] {
        for format in FORMATS {
            let mut args = args.clone();
            args.extend(["--format", format, "--max-chars", "4000"]);
            let out = catalog(&home, port, &args);
            assert!(out.status.success(), "{command} {format}: {}", stderr(&out));
            let text = stdout(&out);
            assert!(
                stderr(&out).contains(&format!("showing 100 of {TABLES} {command}")),
                "{command} {format}: {}",
                stderr(&out)
            );
            match format {
                "json" => {
                    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(result["truncated"], true);
                    assert_eq!(result["rows"].as_array().unwrap().len(), 100);
                }
                "ndjson" => assert_eq!(text.lines().count(), 100, "{text}"),
                "csv" => assert_eq!(text.lines().count(), 101, "{text}"),
                _ => {
                    // The budget bounds the rows; the one notice line after them says what
                    // the budget cut.
                    let body = text
                        .trim_end()
                        .rsplit_once('\n')
                        .map_or("", |(body, _)| body);
                    assert!(body.chars().count() <= 4000, "{command} {format}: {text}");
                    assert!(text.contains("showing"), "{command} {format}: {text}");
                }
            }
            if command == "tables" && format == "json" {
                let result: serde_json::Value = serde_json::from_str(&text).unwrap();
                let first = &result["rows"][0];
                assert_eq!(first[0], "PUBLIC");
                assert_eq!(first[1], "T_000");
                assert_eq!(first[2], "TABLE");
            }
        }
    }

    // A pattern narrows it: bound, so its quote and wildcard are data.
    let out = catalog(&home, port, &["tables", "T_00%", "--format", "json"]);
    let result = json(&out);
    assert_eq!(result["row_count"], 10);
    assert!(!stderr(&out).contains("showing"), "{}", stderr(&out));
    let out = catalog(&home, port, &["tables", "x' OR '1'='1", "--format", "json"]);
    assert_eq!(json(&out)["row_count"], 0);
    let out = catalog(
        &home,
        port,
        &[
            "tables",
            "--in",
            &format!("{db}.PUBLIC"),
            "T_299",
            "--format",
            "csv",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("PUBLIC,T_299,TABLE"),
        "{}",
        stdout(&out)
    );

    // describe: the columns and sample rows, in every format.
    for format in FORMATS {
        let out = catalog(
            &home,
            port,
            &["describe", "t_007", "--sample", "2", "--format", format],
        );
        assert!(out.status.success(), "describe {format}: {}", stderr(&out));
        let text = stdout(&out);
        match format {
            "json" => {
                let result: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(result["columns"]["rows"][0][0], "ID");
                assert_eq!(result["columns"]["columns"][1]["name"], "type");
                assert_eq!(result["sample"]["row_count"], 2);
                assert_eq!(result["sample"]["truncated"], true);
            }
            "csv" | "ndjson" => {
                assert!(text.contains("ID") && text.contains("NOTE"), "{text}");
                assert!(
                    stderr(&out).contains("column list only"),
                    "{}",
                    stderr(&out)
                );
            }
            _ => {
                assert!(
                    text.contains("NOTE") && text.contains("sample rows"),
                    "{text}"
                );
                assert!(text.contains("one"), "{text}");
            }
        }
    }
    let out = catalog(&home, port, &["describe", "t; DROP TABLE t_001"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = catalog(&home, port, &["tables", "--in", "a.b.c"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
