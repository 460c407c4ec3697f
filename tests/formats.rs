//! Golden-output tests for every result format, with nasty values: pipes, newlines, quotes,
//! unicode, NULLs, huge numbers, exact decimals and nested VARIANT.

use serde_json::json;
use snowflaked::api::{Column, Context, QueryResponse};
use snowflaked::cli::format::{Format, render};
use snowflaked::row::from_values;

fn column(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        ty: ty.into(),
        nullable: true,
        scale: None,
    }
}

fn nasty() -> QueryResponse {
    let huge: serde_json::Value =
        serde_json::from_str("123456789012345678901234567890.125").unwrap();
    QueryResponse {
        query_id: "01b2-q".into(),
        columns: vec![
            column("NAME", "TEXT"),
            column("N", "NUMBER"),
            column("V", "VARIANT"),
            column("OK", "BOOLEAN"),
        ],
        rows: vec![
            from_values(&[
                json!("a|b"),
                huge,
                json!({"k": [1, {"x": null}]}),
                json!(true),
            ]),
            from_values(&[
                json!("line1\nline2"),
                json!(-7),
                serde_json::Value::Null,
                json!(false),
            ]),
            from_values(&[
                json!("Zürich \"quoted\", ünï"),
                serde_json::Value::Null,
                json!([1, 2]),
                serde_json::Value::Null,
            ]),
        ],
        row_count: 3,
        truncated: false,
        statements: vec![],
        context: Context::default(),
        elapsed_ms: 12,
        in_transaction: false,
        warnings: Vec::new(),
        id: None,
        page: None,
    }
}

#[test]
fn markdown_escapes_pipes_and_newlines_so_the_table_never_breaks() {
    let out = render(&nasty(), Format::Markdown, 0, None);
    let expected = "\
| NAME | N | V | OK |
|---|---|---|---|
| a\\|b | 123456789012345678901234567890.125 | {\"k\":[1,{\"x\":null}]} | true |
| line1<br>line2 | -7 | NULL | false |
| Zürich \"quoted\", ünï | NULL | [1,2] | NULL |

3 rows · query id 01b2-q · 12 ms
";
    assert_eq!(out, expected);
    // Every table line has the same number of unescaped pipes.
    let pipes = |line: &str| line.replace("\\|", "").matches('|').count();
    let lines: Vec<&str> = out.lines().take(5).collect();
    assert!(lines.iter().all(|l| pipes(l) == 5), "{out}");
}

#[test]
fn csv_follows_rfc_4180() {
    let out = render(&nasty(), Format::Csv, 0, None);
    let expected = "\
NAME,N,V,OK
a|b,123456789012345678901234567890.125,\"{\"\"k\"\":[1,{\"\"x\"\":null}]}\",true
\"line1
line2\",-7,,false
\"Zürich \"\"quoted\"\", ünï\",,\"[1,2]\",
";
    assert_eq!(out, expected);
}

#[test]
fn ndjson_is_one_typed_object_per_row() {
    let out = render(&nasty(), Format::Ndjson, 0, None);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["V"]["k"][1]["x"], serde_json::Value::Null);
    assert_eq!(
        lines[0]["N"].to_string(),
        "123456789012345678901234567890.125",
        "no float rounding"
    );
    assert_eq!(lines[1]["NAME"], "line1\nline2");
    assert!(lines[2]["N"].is_null());
    assert_eq!(lines[2]["OK"], serde_json::Value::Null);
}

#[test]
fn json_is_the_api_object() {
    let out = render(&nasty(), Format::Json, 0, None);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["row_count"], 3);
    assert_eq!(value["columns"][2]["type"], "VARIANT");
    assert!(out.contains("123456789012345678901234567890.125"));
}

#[test]
fn table_shows_nulls_and_unicode_aligned() {
    let out = render(&nasty(), Format::Table, 0, None);
    assert!(out.contains("NULL") && out.contains("Zürich"), "{out}");
    assert!(out.ends_with("3 rows · query id 01b2-q · 12 ms\n"), "{out}");
    // Each border line of the table has the same display width.
    let widths: Vec<usize> = out
        .lines()
        .filter(|l| l.starts_with('┌') || l.starts_with('└'))
        .map(|l| l.chars().count())
        .collect();
    assert_eq!(widths.len(), 2);
    assert_eq!(widths[0], widths[1]);
}

#[test]
fn a_character_budget_cuts_rows_and_says_how_to_get_more() {
    let mut many = nasty();
    many.rows = (0..500)
        .map(|i| {
            from_values(&[
                json!(format!("row {i}")),
                json!(i),
                serde_json::Value::Null,
                json!(true),
            ])
        })
        .collect();
    many.row_count = 500;
    for format in [Format::Markdown, Format::Table] {
        let out = render(&many, format, 2_000, None);
        assert!(out.len() <= 2_000 + 200, "{format:?}: {} chars", out.len());
        let notice = out.lines().last().unwrap();
        assert!(
            notice.starts_with("… showing ")
                && notice.contains("of 500 rows")
                && notice.contains("--max-chars 0"),
            "{notice}"
        );
    }
    // Machine formats are never cut by the budget.
    assert_eq!(
        render(&many, Format::Ndjson, 2_000, None).lines().count(),
        500
    );
}

#[test]
fn a_truncated_result_ends_with_a_notice() {
    let mut cut = nasty();
    cut.truncated = true;
    let out = render(&cut, Format::Markdown, 0, None);
    assert!(out.lines().last().unwrap().contains("more exist"), "{out}");
}
