//! `query -p` and the API's `params`: values of every type reach Snowflake as bindings, never
//! as SQL text, so quotes, `?`, `$$` and `:name` inside them are just data.

use super::super::support::{Home, emulator, http, json, stderr, unique_db};

/// Strings that would break (or inject into) SQL if they were ever spliced into it.
const HOSTILE: [&str; 6] = [
    "O'Hara",
    "'; DROP TABLE T; --",
    "what? ?",
    "$$ dollar $$ quoted",
    ":name and :1 inside",
    "back\\slash \" double \n newline ünïcödé",
];

fn daemon(home: &Home, port: u16) -> super::super::support::activator::Activator {
    home.activate(port, &["--idle-timeout", "30m"])
}

fn query(home: &Home, port: u16, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["query", "--format", "json"];
    all.extend_from_slice(args);
    json(&home.run(port, &all))
}

#[test]
fn every_type_and_hostile_strings_round_trip_as_bindings() {
    let emulator = emulator::shared();
    let port = emulator.port;
    let home = Home::new();
    let _daemon = daemon(&home, port);
    let db = unique_db("binds");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE SCHEMA {db}.PUBLIC"),
        format!(
            // NUMBER(38,0) is BIGINT in the emulator (fakesnow); 37 digits keep it a DECIMAL.
            "CREATE TABLE {db}.PUBLIC.T (s VARCHAR, i NUMBER(37,0), n NUMBER(10,2), f FLOAT, b BOOLEAN, d DATE, t TIME, ts TIMESTAMP_NTZ, bin BINARY)"
        ),
    ] {
        query(&home, port, &[&sql]);
    }
    let insert = format!("INSERT INTO {db}.PUBLIC.T VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (k, text) in HOSTILE.iter().enumerate() {
        let i = format!(
            "int:{}",
            12345678901234567890123456789_i128 * (k as i128 + 1)
        );
        query(
            &home,
            port,
            &[
                &insert,
                "-p",
                &format!("text:{text}"),
                "-p",
                &i,
                "-p",
                "number:-12.50",
                "-p",
                "float:0.1",
                "-p",
                "bool:false",
                "-p",
                "date:0001-01-01",
                "-p",
                "time:23:59:59.123456",
                "-p",
                "timestamp:2024-02-29 12:34:56.654321",
                "-p",
                "binary:00FFab",
            ],
        );
    }
    // NULLs of every type.
    let mut nulls = vec![insert.as_str()];
    for ty in [
        "null:",
        "null:int",
        "null:number",
        "null:float",
        "null:bool",
        "null:date",
        "null:time",
        "null:timestamp",
        "null:binary",
    ] {
        nulls.extend(["-p", ty]);
    }
    query(&home, port, &nulls);

    // Each hostile string finds exactly its own row, through a positional and a named bind.
    for (k, text) in HOSTILE.iter().enumerate() {
        let select = format!(
            "SELECT s, i, n, f, b, d, t, ts, bin, '?' AS q, ':s' AS c FROM {db}.PUBLIC.T WHERE s = ?"
        );
        let result = query(&home, port, &[&select, "-p", &format!("text:{text}")]);
        assert_eq!(result["row_count"], 1, "{text:?}: {result}");
        let row = &result["rows"][0];
        assert_eq!(row[0], *text);
        assert_eq!(
            row[1].to_string(),
            (12345678901234567890123456789_i128 * (k as i128 + 1)).to_string()
        );
        assert_eq!(row[2].to_string(), "-12.50");
        assert_eq!(row[3], 0.1);
        assert_eq!(row[4], false);
        assert_eq!(row[5], "0001-01-01");
        assert_eq!(row[6], "23:59:59.123456");
        assert_eq!(row[7], "2024-02-29T12:34:56.654321");
        assert_eq!(
            row[8].as_str().map(str::to_ascii_lowercase).as_deref(),
            Some("00ffab")
        );
        assert_eq!(row[9], "?");
        assert_eq!(row[10], ":s");

        let named = format!("SELECT COUNT(*) FROM {db}.PUBLIC.T WHERE s = :s AND i = :i");
        let i = format!(
            "i=int:{}",
            12345678901234567890123456789_i128 * (k as i128 + 1)
        );
        let count = query(
            &home,
            port,
            &[&named, "-p", &format!("s=text:{text}"), "-p", &i],
        );
        assert_eq!(count["rows"][0][0], 1, "{text:?}");
    }
    let all_null = query(
        &home,
        port,
        &[&format!(
            "SELECT COUNT(*) FROM {db}.PUBLIC.T WHERE s IS NULL AND i IS NULL AND n IS NULL AND f IS NULL AND b IS NULL AND d IS NULL AND t IS NULL AND ts IS NULL AND bin IS NULL"
        )],
    );
    assert_eq!(all_null["rows"][0][0], 1);
    // Nothing was spliced: the table is intact with every row.
    let count = query(
        &home,
        port,
        &[&format!("SELECT COUNT(*) FROM {db}.PUBLIC.T")],
    );
    assert_eq!(count["rows"][0][0], HOSTILE.len() + 1);
}

#[test]
fn zoned_timestamps_keep_their_instant() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let result = query(
        &home,
        emulator.port,
        &[
            "SELECT ? AS tz, ? AS ltz",
            "-p",
            "timestamp_tz:2024-01-02T03:04:05.5+05:30",
            "-p",
            "timestamp_ltz:2024-01-02 03:04:05Z",
        ],
    );
    // The emulator (DuckDB) keeps the instant but not the offset.
    let tz = result["rows"][0][0].as_str().unwrap();
    assert!(tz.starts_with("2024-01-01T21:34:05.5"), "{result}");
    let ltz = result["rows"][0][1].as_str().unwrap();
    assert!(ltz.starts_with("2024-01-02T03:04:05"), "{result}");
}

#[test]
fn api_params_map_plain_json_values_and_the_typed_form() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let body = serde_json::json!({
        "sql": "SELECT ? AS i, ? AS f, ? AS s, ? AS b, ? AS n, ? AS d",
        "params": [123456789012345678901234567890_u128, 1.5, "it's ? $$", true, null,
                   {"type": "date", "value": "2024-01-01"}],
    });
    let answer = http::request(&home.socket(), "POST", "/v1/query", None, &body.to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let result = answer.json();
    assert_eq!(
        result["rows"][0][0].to_string(),
        "123456789012345678901234567890"
    );
    assert_eq!(result["rows"][0][1], 1.5);
    assert_eq!(result["rows"][0][2], "it's ? $$");
    assert_eq!(result["rows"][0][3], true);
    assert!(result["rows"][0][4].is_null());
    assert_eq!(result["rows"][0][5], "2024-01-01");

    let named = serde_json::json!({"sql": "SELECT :who AS who", "params": {"who": "O'Hara"}});
    let answer = http::request(
        &home.socket(),
        "POST",
        "/v1/query",
        None,
        &named.to_string(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["rows"][0][0], "O'Hara");

    for (params, says) in [
        (serde_json::json!({"a": [1]}), "typed form"),
        (
            serde_json::json!([{"type": "date", "value": "soon"}]),
            "YYYY-MM-DD",
        ),
        (
            serde_json::json!([{"type": "decimal128", "value": "1"}]),
            "unknown bind type",
        ),
        (serde_json::json!(7), "array"),
    ] {
        let body = serde_json::json!({"sql": "SELECT ?", "params": params});
        let answer = http::request(&home.socket(), "POST", "/v1/query", None, &body.to_string());
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains(says), "{says}: {}", answer.body);
    }
}

#[test]
fn binds_are_refused_with_several_statements_and_read_only_still_applies() {
    let emulator = emulator::shared();
    let home = Home::new();
    let _daemon = daemon(&home, emulator.port);
    let out = home.run(
        emulator.port,
        &["query", "SELECT ?; SELECT ?", "-p", "1", "-p", "2"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exactly one statement"),
        "{}",
        stderr(&out)
    );

    let out = home.run(
        emulator.port,
        &[
            "query",
            "--read-only",
            "DELETE FROM X WHERE s = ?",
            "-p",
            "SELECT 1",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("read-only"),
        "{}",
        stderr(&out)
    );

    let out = home.run(
        emulator.port,
        &["query", "SELECT ?", "-p", "a=1", "-p", "2"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot be mixed"), "{}", stderr(&out));
    let out = home.run(emulator.port, &["query", "SELECT ?", "-p", "int:4x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a valid int"), "{}", stderr(&out));
}
