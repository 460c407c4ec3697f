//! Golden-output tests for every result format, with nasty values: pipes, newlines, quotes,
//! unicode, NULLs, huge numbers, exact decimals and nested VARIANT.

use serde_json::Value;
use serde_json::json;
use snowflaked::api::{Column, Context, QueryResponse, StatementResult, StatementSummary};
use snowflaked::cli::format::{Format, Options, Rendered, render, render_output};
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
        results: vec![],
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
        assert!(
            out.chars().count() <= 2_000 + 200,
            "{format:?}: {} chars",
            out.chars().count()
        );
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

/// A result with the given columns and rows.
fn result(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> QueryResponse {
    let mut response = nasty();
    response.columns = columns.iter().map(|(n, t)| column(n, t)).collect();
    response.row_count = rows.len() as u64;
    response.rows = rows.iter().map(|r| from_values(r)).collect();
    response
}

fn output(response: &QueryResponse, format: Format, null: Option<&str>) -> Rendered {
    let options = Options {
        null: null.map(str::to_string),
        ..Options::new(format)
    };
    render_output(response, &options)
}

#[test]
fn every_format_makes_a_cut_visible() {
    let mut cut = result(&[("N", "NUMBER")], vec![vec![json!(1)], vec![json!(2)]]);
    cut.truncated = true;
    for format in [Format::Csv, Format::Ndjson] {
        let out = output(&cut, format, None);
        assert_eq!(
            out.notices,
            [
                "notice: showing the first 2 rows; more exist; pass --max-rows N (0 = all) or aggregate in SQL"
            ],
            "{format:?}"
        );
    }
    let json: Value = serde_json::from_str(&render(&cut, Format::Json, 0, None)).unwrap();
    assert_eq!(json["truncated"], true);
    for format in [Format::Table, Format::Markdown] {
        let out = output(&cut, format, None);
        assert!(out.notices.is_empty());
        assert!(
            out.stdout.lines().last().unwrap().contains("more exist"),
            "{}",
            out.stdout
        );
    }
    // A result that was not cut says nothing.
    cut.truncated = false;
    assert!(output(&cut, Format::Csv, None).notices.is_empty());
}

#[test]
fn ndjson_keeps_column_order_and_every_duplicate_name() {
    let dup = result(
        &[
            ("Z", "NUMBER"),
            ("A", "NUMBER"),
            ("A", "NUMBER"),
            ("A_2", "TEXT"),
        ],
        vec![vec![json!(1), json!(2), json!(3), json!("x")]],
    );
    assert_eq!(
        render(&dup, Format::Ndjson, 0, None),
        "{\"Z\":1,\"A\":2,\"A_3\":3,\"A_2\":\"x\"}\n"
    );
    // json keeps the columns as a list: nothing to rename there.
    let json: Value = serde_json::from_str(&render(&dup, Format::Json, 0, None)).unwrap();
    assert_eq!(json["columns"][2]["name"], "A");
    assert_eq!(json["rows"][0], json!([1, 2, 3, "x"]));
}

fn nulls_and_empties() -> QueryResponse {
    result(
        &[("E", "TEXT"), ("N", "TEXT"), ("S", "TEXT"), ("Q", "TEXT")],
        vec![vec![
            json!(""),
            Value::Null,
            json!("NULL"),
            json!("\"NULL\""),
        ]],
    )
}

#[test]
fn csv_tells_null_from_the_empty_string() {
    let rows = nulls_and_empties();
    assert_eq!(
        render(&rows, Format::Csv, 0, None),
        "E,N,S,Q\n\"\",,NULL,\"\"\"NULL\"\"\"\n"
    );
    // `--null TEXT` as psql's `\pset null`: the marker unquoted, a string equal to it quoted.
    assert_eq!(
        output(&rows, Format::Csv, Some("NULL")).stdout,
        "E,N,S,Q\n\"\",NULL,\"NULL\",\"\"\"NULL\"\"\"\n"
    );
}

#[test]
fn table_and_markdown_tell_null_from_the_string_null() {
    let rows = nulls_and_empties();
    assert_eq!(
        render(&rows, Format::Markdown, 0, None),
        "| E | N | S | Q |\n|---|---|---|---|\n|  | NULL | \"NULL\" | \"\"NULL\"\" |\n\n1 row · query id 01b2-q · 12 ms\n"
    );
    let table = render(&rows, Format::Table, 0, None);
    assert!(
        table.contains("│   ┆ NULL ┆ \"NULL\" ┆ \"\"NULL\"\" │"),
        "{table}"
    );
    assert_eq!(
        output(&rows, Format::Markdown, Some("∅"))
            .stdout
            .lines()
            .nth(2),
        Some("|  | ∅ | NULL | \"NULL\" |")
    );
}

fn hostile() -> QueryResponse {
    result(
        &[("T\u{1b}[2J", "TEXT")],
        vec![
            vec![json!("esc\u{1b}[31mred")],
            vec![json!("cr\rover")],
            vec![json!("nul\u{0}tab\tbell\u{7}")],
            vec![json!("<b>bold</b> & <script>")],
            vec![json!("\u{202e}reversed")],
        ],
    )
}

#[test]
fn markdown_escapes_control_characters_and_html() {
    assert_eq!(
        render(&hostile(), Format::Markdown, 0, None),
        "\
| T\\x1b[2J |
|---|
| esc\\x1b[31mred |
| cr\\rover |
| nul\\0tab\\tbell\\x07 |
| &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt; |
| \\u{202e}reversed |

5 rows · query id 01b2-q · 12 ms
"
    );
}

#[test]
fn table_escapes_control_characters() {
    let out = render(&hostile(), Format::Table, 0, None);
    assert!(
        !out.contains(['\u{1b}', '\r', '\0', '\t', '\u{7}', '\u{202e}']),
        "{out:?}"
    );
    for escaped in [
        "T\\x1b[2J",
        "esc\\x1b[31mred",
        "cr\\rover",
        "nul\\0tab\\tbell\\x07",
        "<b>bold</b> & <script>",
        "\\u{202e}reversed",
    ] {
        assert!(out.contains(escaped), "{escaped} in {out}");
    }
    // Every line of the table has the same width.
    let widths: Vec<usize> = out
        .lines()
        .take_while(|l| !l.ends_with("ms"))
        .map(|l| l.chars().count())
        .collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{out}");
}

/// 22 rows, one of them 100 000 characters wide.
fn one_wide_cell() -> QueryResponse {
    let rows = (0..22)
        .map(|i| {
            let text = if i == 5 {
                "w".repeat(100_000)
            } else {
                format!("row {i} 日本語")
            };
            vec![json!(i), json!(text)]
        })
        .collect();
    result(&[("I", "NUMBER"), ("TEXT", "TEXT")], rows)
}

#[test]
fn one_wide_value_is_cut_and_every_row_still_shows() {
    for format in [Format::Table, Format::Markdown] {
        let out = render(&one_wide_cell(), format, 20_000, None);
        assert!(
            out.chars().count() <= 20_000,
            "{format:?}: {} chars",
            out.chars().count()
        );
        for i in 0..22 {
            assert!(
                out.contains(&format!("row {i} 日本語")) || i == 5,
                "{format:?}: row {i}"
            );
        }
        assert!(out.contains("w…[100000 chars]"), "{format:?}");
        // The cut cell gets what the other rows leave of the budget, not a token share.
        if format == Format::Markdown {
            assert!(out.contains(&"w".repeat(15_000)), "{format:?}");
        }
        assert!(
            !out.contains("showing"),
            "{format:?}: no row was cut\n{out}"
        );
        assert!(
            out.contains("1 cell cut to ") && out.contains("--max-chars 0"),
            "{format:?}"
        );
    }
}

#[test]
fn the_budget_counts_characters_not_bytes() {
    // 50 rows of 20 CJK characters (60 bytes each): about 1 300 characters, 3 500 bytes.
    let rows = (0..50)
        .map(|i| vec![json!(format!("{i:02}{}", "語".repeat(18)))])
        .collect();
    let cjk = result(&[("T", "TEXT")], rows);
    let out = render(&cjk, Format::Markdown, 2_000, None);
    assert!(
        !out.contains("showing"),
        "all 50 rows fit in 2 000 characters:\n{out}"
    );
    let out = render(&cjk, Format::Markdown, 700, None);
    let shown = out.lines().filter(|l| l.contains('語')).count();
    assert!(
        (25..50).contains(&shown),
        "as many rows as fit ({shown})\n{out}"
    );
    assert!(out.chars().count() <= 700 + 200);
}

fn several_statements() -> QueryResponse {
    let insert = StatementResult {
        statement: "INSERT INTO t\n  VALUES (1), (2), (3)".into(),
        query_id: "q-1".into(),
        columns: vec![column("number of rows inserted", "NUMBER")],
        rows: vec![from_values(&[json!(3)])],
        row_count: 1,
        truncated: false,
        rows_affected: Some(3),
    };
    let select = StatementResult {
        statement: "SELECT n FROM t".into(),
        query_id: "q-2".into(),
        columns: vec![column("N", "NUMBER")],
        rows: vec![
            from_values(&[json!(1)]),
            from_values(&[json!(2)]),
            from_values(&[json!(3)]),
        ],
        row_count: 3,
        truncated: false,
        rows_affected: None,
    };
    let mut response = result(
        &[("N", "NUMBER")],
        vec![vec![json!(1)], vec![json!(2)], vec![json!(3)]],
    );
    response.query_id = "q-2".into();
    response.statements = vec![
        StatementSummary {
            query_id: "q-1".into(),
            row_count: 3,
        },
        StatementSummary {
            query_id: "q-2".into(),
            row_count: 3,
        },
    ];
    response.results = vec![insert, select];
    response
}

#[test]
fn markdown_shows_every_statement_introduced_by_its_sql() {
    assert_eq!(
        render(&several_statements(), Format::Markdown, 0, None),
        "\
statement 1 of 2: INSERT INTO t VALUES (1), (2), (3)

| number of rows inserted |
|---|
| 3 |

1 row · 3 rows affected · query id q-1

statement 2 of 2: SELECT n FROM t

| N |
|---|
| 1 |
| 2 |
| 3 |

3 rows · query id q-2

2 statements · 12 ms
"
    );
}

#[test]
fn table_shows_every_statement() {
    let out = render(&several_statements(), Format::Table, 0, None);
    assert!(
        out.starts_with("statement 1 of 2: INSERT INTO t VALUES (1), (2), (3)\n┌"),
        "{out}"
    );
    assert!(
        out.contains("1 row · 3 rows affected · query id q-1\n"),
        "{out}"
    );
    assert!(
        out.contains("\nstatement 2 of 2: SELECT n FROM t\n┌"),
        "{out}"
    );
    assert!(
        out.ends_with("3 rows · query id q-2\n\n2 statements · 12 ms\n"),
        "{out}"
    );
}

#[test]
fn csv_and_ndjson_print_the_last_statement_and_name_the_others() {
    for (format, body) in [
        (Format::Csv, "N\n1\n2\n3\n"),
        (Format::Ndjson, "{\"N\":1}\n{\"N\":2}\n{\"N\":3}\n"),
    ] {
        let out = output(&several_statements(), format, None);
        assert_eq!(out.stdout, body);
        assert_eq!(
            out.notices,
            [
                "notice: printed only the result of statement 2 of 2; not printed: statement 1 (INSERT INTO t VALUES (1), (2), (3): 3 rows affected); use --format json, table or markdown to see every result"
            ]
        );
    }
}

#[test]
fn json_carries_every_result_only_when_there_were_several() {
    let several: Value =
        serde_json::from_str(&render(&several_statements(), Format::Json, 0, None)).unwrap();
    assert_eq!(several["results"][0]["rows_affected"], 3);
    assert_eq!(
        several["results"][0]["statement"],
        "INSERT INTO t\n  VALUES (1), (2), (3)"
    );
    assert_eq!(several["results"][1]["rows"], json!([[1], [2], [3]]));
    assert_eq!(several["statements"][0]["row_count"], 3);
    assert_eq!(
        several["rows"],
        json!([[1], [2], [3]]),
        "the top level is the last result"
    );
    let single: Value = serde_json::from_str(&render(&nasty(), Format::Json, 0, None)).unwrap();
    assert!(single.get("results").is_none() && single.get("statements").is_none());
}

#[test]
fn a_deeply_nested_variant_is_printed_whole() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut response = result(&[("V", "VARIANT")], vec![]);
    response.rows = vec![serde_json::value::RawValue::from_string(format!("[{deep}]")).unwrap()];
    response.row_count = 1;
    assert_eq!(
        render(&response, Format::Ndjson, 0, None),
        format!("{{\"V\":{deep}}}\n")
    );
    assert_eq!(
        render(&response, Format::Csv, 0, None),
        format!("V\n{deep}\n")
    );
    assert!(render(&response, Format::Markdown, 0, None).contains(&deep));
}
