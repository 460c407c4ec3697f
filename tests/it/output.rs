//! End to end, the output a program or an agent reads: the real binary and daemon, the real
//! Snowflake client crate and the emulator. What crosses the daemon is checked here: every
//! statement's result and its rows affected, TIMESTAMP_LTZ in the session's TIMEZONE, a
//! deeply nested VARIANT, errors as JSON on stdout, and cuts announced on stderr.

use crate::support;

use crate::support::{Home, emulator, json, stderr, stdout, unique_db};
use serde_json::Value;

/// A daemon for a fresh home on the shared emulator.
fn daemon() -> (Home, u16, support::activator::Activator) {
    let emulator = emulator::shared();
    let home = Home::new();
    let activator = home.activate(emulator.port, &["--idle-timeout", "30m"]);
    (home, emulator.port, activator)
}

/// A new database with one empty table `T (n INT)`; returns its qualified name.
fn table(home: &Home, port: u16, label: &str) -> String {
    let db = unique_db(label);
    let table = format!("{db}.PUBLIC.T");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
        format!("CREATE TABLE {table} (n INT)"),
    ] {
        home.ok(port, &["query", &sql]);
    }
    table
}

#[test]
fn several_statements_show_every_result_with_rows_affected() {
    let (home, port, _daemon) = daemon();
    let t = table(&home, port, "several");
    let sql = format!("INSERT INTO {t} VALUES (1), (2), (3); SELECT n FROM {t} ORDER BY n");

    let answer = json(&home.run(port, &["query", &sql, "--format", "json"]));
    assert_eq!(answer["statements"][0]["row_count"], 3, "{answer}");
    assert_eq!(answer["statements"][1]["row_count"], 3);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["rows_affected"], 3);
    assert!(
        results[0]["statement"]
            .as_str()
            .unwrap()
            .starts_with("INSERT INTO")
    );
    assert_eq!(results[1]["rows"], serde_json::json!([[1], [2], [3]]));
    assert_eq!(
        answer["rows"], results[1]["rows"],
        "the top level is the last result"
    );

    let delete = format!("DELETE FROM {t} WHERE n > 1; SELECT COUNT(*) AS c FROM {t}");
    let markdown = home.run(port, &["query", &delete, "--format", "markdown"]);
    let text = stdout(&markdown);
    assert!(
        text.starts_with(&format!(
            "statement 1 of 2: DELETE FROM {t} WHERE n &gt; 1\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("1 row · 2 rows affected · query id "),
        "{text}"
    );
    assert!(text.contains(&format!(
        "statement 2 of 2: SELECT COUNT(*) AS c FROM {t}\n"
    )));
    assert!(text.contains("| C |\n|---|\n| 1 |\n"), "{text}");

    let csv = home.ok(port, &["query", &delete, "--format", "csv"]);
    assert_eq!(stdout(&csv), "C\n1\n");
    assert!(
        stderr(&csv).contains("not printed: statement 1 (DELETE FROM"),
        "{}",
        stderr(&csv)
    );

    // A single statement's answer has neither list.
    let single = json(&home.run(
        port,
        &["query", &format!("SELECT n FROM {t}"), "--format", "json"],
    ));
    assert!(single.get("results").is_none() && single.get("statements").is_none());
}

#[test]
fn timestamp_ltz_is_shown_in_the_sessions_time_zone() {
    let (home, port, _daemon) = daemon();
    let select = "SELECT '2024-01-01 12:00:00 +00:00'::TIMESTAMP_LTZ AS l";
    let utc = json(&home.run(port, &["query", select, "--format", "json"]));
    assert_eq!(utc["columns"][0]["type"], "TIMESTAMP_LTZ");
    assert_eq!(utc["rows"][0][0], "2024-01-01T12:00:00+00:00");
    // One request runs on one session: the ALTER SESSION applies to the SELECT after it.
    for (zone, shown) in [
        ("Asia/Tokyo", "2024-01-01T21:00:00+09:00"),
        ("America/Los_Angeles", "2024-01-01T04:00:00-08:00"),
    ] {
        let sql = format!("ALTER SESSION SET TIMEZONE = '{zone}'; {select}");
        let answer = json(&home.run(port, &["query", &sql, "--format", "json"]));
        assert_eq!(answer["rows"][0][0], shown, "{zone}: {answer}");
        let ndjson = home.run(port, &["query", &sql, "--format", "ndjson"]);
        assert_eq!(stdout(&ndjson), format!("{{\"L\":\"{shown}\"}}\n"));
    }
}

#[test]
fn a_variant_nested_deeper_than_128_levels_arrives() {
    let (home, port, _daemon) = daemon();
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let sql = format!("SELECT PARSE_JSON('{deep}') AS v, 7 AS n, 'x' AS s");
    let out = home.ok(port, &["query", &sql, "--format", "ndjson"]);
    assert_eq!(
        stdout(&out),
        format!("{{\"V\":{deep},\"N\":7,\"S\":\"x\"}}\n")
    );
    // (The answer is too deep for serde_json's default parser: compare its text.)
    let answer = stdout(&home.run(port, &["query", &sql, "--format", "json"]));
    assert!(
        answer.contains(&format!("\"rows\":[[{deep},7,\"x\"]]")),
        "{answer}"
    );

    // Deeper than the daemon parses: the error says what and how, not "network".
    let abyss = format!("{}1{}", "[".repeat(1100), "]".repeat(1100));
    let sql = format!("SELECT PARSE_JSON('{abyss}') AS v");
    let out = home.run(port, &["query", &sql, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let error: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(error["error"]["kind"], "result_unreadable", "{error}");
    let hint = error["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("TO_JSON") && !hint.contains("network"),
        "{hint}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit")
    );
    // The session was fine: the next statement runs.
    assert_eq!(
        json(&home.run(port, &["query", "SELECT 1", "--format", "json"]))["rows"][0][0],
        1
    );
}

#[test]
fn errors_under_json_formats_are_json_on_stdout_too() {
    let (home, port, _daemon) = daemon();
    for format in ["json", "ndjson"] {
        let out = home.run(port, &["query", "SELEC 1", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        let error: Value = serde_json::from_str(stdout(&out).trim())
            .unwrap_or_else(|e| panic!("{format}: {e}: {}", stdout(&out)));
        assert_eq!(error["error"]["kind"], "statement_failed", "{format}");
        assert!(error["error"]["query_id"].is_string());
        assert!(
            stderr(&out).starts_with("error: "),
            "stderr keeps the human lines"
        );

        let usage = home.run(port, &["query", "  ", "--format", format]);
        assert_eq!(usage.status.code(), Some(2));
        let error: Value = serde_json::from_str(stdout(&usage).trim()).unwrap();
        assert_eq!(error["error"]["kind"], "usage");
    }
    // Other formats keep stdout for results only.
    let table = home.run(port, &["query", "SELEC 1"]);
    assert_eq!(stdout(&table), "");
}

#[test]
fn csv_and_ndjson_announce_a_cut_on_stderr() {
    let (home, port, _daemon) = daemon();
    let sql = "SELECT * FROM (VALUES (1), (2), (3)) AS v(n)";
    for format in ["csv", "ndjson"] {
        let out = home.ok(port, &["query", sql, "--format", format, "--max-rows", "2"]);
        assert_eq!(
            stdout(&out).lines().count(),
            if format == "csv" { 3 } else { 2 }
        );
        assert!(
            stderr(&out).contains("showing the first 2 rows; more exist"),
            "{format}: {}",
            stderr(&out)
        );
        let all = home.run(port, &["query", sql, "--format", format]);
        assert_eq!(stderr(&all), "", "nothing cut, nothing said");
    }
}

#[test]
fn ndjson_keeps_column_order_and_duplicate_names() {
    let (home, port, _daemon) = daemon();
    let out = home.run(
        port,
        &[
            "query",
            "SELECT 1 AS b, 2 AS a, 3 AS a",
            "--format",
            "ndjson",
        ],
    );
    assert_eq!(stdout(&out), "{\"B\":1,\"A\":2,\"A_2\":3}\n");
}

#[test]
fn csv_and_the_table_tell_null_from_empty_and_escape_control_characters() {
    let (home, port, _daemon) = daemon();
    let sql = "SELECT '' AS e, NULL::VARCHAR AS n, 'NULL' AS s";
    assert_eq!(
        stdout(&home.run(port, &["query", sql, "--format", "csv"])),
        "E,N,S\n\"\",,NULL\n"
    );
    assert_eq!(
        stdout(&home.run(port, &["query", sql, "--format", "csv", "--null", "\\N"])),
        "E,N,S\n\"\",\\N,NULL\n"
    );
    let ambiguous = home.run(port, &["query", sql, "--format", "csv", "--null", "a,b"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(
        stderr(&ambiguous).contains("--null"),
        "{}",
        stderr(&ambiguous)
    );
    let markdown = stdout(&home.run(port, &["query", sql, "--format", "markdown"]));
    assert!(markdown.contains("|  | NULL | \"NULL\" |"), "{markdown}");

    let hostile = "SELECT 'esc' || CHR(27) || '[31mred' || CHR(13) AS t";
    let table = stdout(&home.run(port, &["query", hostile]));
    assert!(!table.contains(['\u{1b}', '\r']), "{table:?}");
    assert!(table.contains("esc\\x1b[31mred\\r"), "{table}");
}

#[test]
fn one_wide_value_does_not_hide_the_table() {
    let (home, port, _daemon) = daemon();
    let rows: Vec<String> = (0..22).map(|i| format!("({i})")).collect();
    let sql = format!(
        "SELECT CASE WHEN n = 5 THEN REPEAT('w', 100000) ELSE '<row ' || n || '>' END AS t FROM (VALUES {}) AS v(n) ORDER BY n",
        rows.join(", ")
    );
    for format in ["table", "markdown"] {
        let text = stdout(&home.run(port, &["query", &sql, "--format", format]));
        assert!(
            text.chars().count() <= 20_000,
            "{format}: within the default budget"
        );
        assert!(text.contains("w…[100000 chars]"), "{format}");
        assert!(
            !text.contains("showing"),
            "{format}: every row shown\n{text}"
        );
        let shown = if format == "markdown" {
            "&lt;row 21&gt;"
        } else {
            "<row 21>"
        };
        assert!(text.contains(shown), "{format}\n{text}");
    }
}

/// The values themselves, type by type, against Snowflake's own Python connector on the same
/// emulator as the oracle (tests/emulator/connector_oracle.py): NUMBER at the edges of i64 and
/// with ten decimals, FLOAT edges (NaN, ±inf, 1e308), unicode, empty and NULL strings,
/// BOOLEAN, DATE 0001 and 9999, TIME, TIMESTAMP_NTZ and _TZ, BINARY, VARIANT, and a
/// thousand generated rows.
#[test]
fn values_equal_the_python_connectors() {
    let (home, port, _daemon) = daemon();
    let db = unique_db("oracle");
    home.ok(port, &["query", &format!("CREATE DATABASE {db}")]);
    home.ok(port, &["use", "database", &db]);
    let statements = [
        "SELECT 9223372036854775807::NUMBER(38,0) AS big, -9223372036854775807::NUMBER(38,0) AS small, 1.2345678901::NUMBER(20,10) AS dec, -0.5::NUMBER(3,1) AS neg, 0::NUMBER(10,2) AS zero",
        "SELECT 1.5::FLOAT AS f, 'NaN'::FLOAT AS nan, 1e308::FLOAT AS huge, 'inf'::FLOAT AS inf, '-inf'::FLOAT AS ninf, -2.2250738585072014e-308::FLOAT AS tiny",
        "SELECT 'héllo ✓ 日本 \u{1F600}' AS u, '' AS e, NULL::VARCHAR AS n, 'NULL' AS word, TRUE AS t, FALSE AS f, NULL::BOOLEAN AS nb",
        "SELECT '0001-01-01'::DATE AS d1, '9999-12-31'::DATE AS d2, '12:34:56.789'::TIME AS t, '00:00:00'::TIME AS midnight",
        "SELECT '2024-01-02 03:04:05.123456'::TIMESTAMP_NTZ AS ntz, '1970-01-01 00:00:00'::TIMESTAMP_NTZ AS epoch, '2024-01-02 03:04:05.123456 +05:30'::TIMESTAMP_TZ AS tz",
        "SELECT TO_BINARY('deadbeef', 'HEX') AS b, PARSE_JSON('{\"a\":[1,2,{\"b\":null}],\"c\":\"x\"}') AS v, PARSE_JSON('[1.25, \"two\", true]') AS arr",
        "SELECT SEQ4() AS n, SEQ4() * 1.5 AS x, 'row ' || SEQ4() AS s, SEQ4() % 7 = 0 AS sevens FROM TABLE(GENERATOR(ROWCOUNT => 1000))",
    ];
    let cases: Vec<Value> = statements
        .iter()
        .map(|sql| {
            let answer =
                json(&home.ok(port, &["query", sql, "--format", "json", "--max-rows", "0"]));
            let columns: Vec<Value> = answer["columns"]
                .as_array()
                .unwrap_or_else(|| panic!("{sql}: {answer}"))
                .iter()
                .map(|c| c["name"].clone())
                .collect();
            serde_json::json!({"sql": sql, "columns": columns, "rows": answer["rows"]})
        })
        .collect();
    let file = home.path().join("oracle-cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let oracle = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/emulator/connector_oracle.py");
    let out = std::process::Command::new(emulator::python())
        .arg(&oracle)
        .args(["--port", &port.to_string(), "--database", &db])
        .arg(&file)
        .output()
        .expect("run the connector oracle");
    assert!(
        out.status.success(),
        "snowflaked's values differ from the Python connector's:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("0 mismatches") && !stdout(&out).contains("compared 0 values"),
        "{}",
        stdout(&out)
    );
}
