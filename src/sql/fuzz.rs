//! Property tests of the read-only guarantee: texts generated from a small grammar of reads and
//! writes, glued with every comment style, quotes, `$$` blocks and every line ending (`\n`,
//! `\r\n`, `\r`), are refused whenever any statement in them writes, and accepted (with the
//! right statement count) when all of them read.
//!
//! The generator knows what Snowflake makes of each text: it only writes text whose reading is
//! certain (comments without nested `/*`, strings escaped as Snowflake escapes them). A failure
//! prints the minimal text; proptest keeps its seed under `proptest-regressions/` so the next
//! run replays it first.

use proptest::prelude::*;

use super::split;

/// A statement from the grammar, as fragments between which filler (space, comments, line
/// endings) may go, and whether it writes.
#[derive(Debug, Clone)]
struct Piece {
    fragments: Vec<&'static str>,
    writes: bool,
}

fn piece(text: &'static [&'static str], writes: bool) -> Piece {
    Piece {
        fragments: text.to_vec(),
        writes,
    }
}

fn reads() -> Vec<Piece> {
    vec![
        piece(&["SELECT", "1"], false),
        piece(&["select", "'a;b'", "AS", "x"], false),
        piece(&["SELECT", "'it''s; DELETE FROM t'"], false),
        piece(&["SELECT", "'back\\'slash; DROP TABLE t'"], false),
        piece(&["SELECT", "\"we;ird\"\"name\"", "FROM", "t"], false),
        piece(&["SELECT", "$$ ; DELETE FROM t; -- $$"], false),
        piece(&["SHOW", "TABLES"], false),
        piece(&["DESCRIBE", "TABLE", "t"], false),
        piece(&["desc", "table", "t"], false),
        piece(
            &[
                "WITH", "a", "AS", "(", "SELECT", "1", ")", "SELECT", "*", "FROM", "a",
            ],
            false,
        ),
        piece(
            &["(", "SELECT", "1", ")", "UNION", "(", "SELECT", "2", ")"],
            false,
        ),
        piece(&["SELECT", "SYSTEM$TYPEOF(", "1", ")"], false),
        piece(&["SELECT", "system$wait(", "0", ")"], false),
        piece(&["EXPLAIN", "SELECT", "1"], false),
        piece(&["VALUES", "(", "1", ")"], false),
        piece(&["USE", "DATABASE", "d"], false),
        piece(&["LIST", "@stage"], false),
    ]
}

fn writes() -> Vec<Piece> {
    vec![
        piece(&["INSERT", "INTO", "t", "VALUES", "(", "1", ")"], true),
        piece(&["DELETE", "FROM", "t"], true),
        piece(&["delete", "from", "T"], true),
        piece(&["UPDATE", "t", "SET", "a", "=", "'x;y'"], true),
        piece(&["CREATE", "TABLE", "x", "(", "a", "INT", ")"], true),
        piece(&["DROP", "TABLE", "t"], true),
        piece(&["TRUNCATE", "TABLE", "t"], true),
        piece(&["ALTER", "TABLE", "t", "ADD", "COLUMN", "b", "INT"], true),
        piece(
            &[
                "MERGE", "INTO", "t", "USING", "s", "ON", "t.a", "=", "s.a", "WHEN", "MATCHED",
                "THEN", "DELETE",
            ],
            true,
        ),
        piece(&["COPY", "INTO", "t", "FROM", "@s"], true),
        piece(&["CALL", "p(", ")"], true),
        piece(&["GRANT", "SELECT", "ON", "t", "TO", "ROLE", "r"], true),
        piece(&["SELECT", "SYSTEM$CANCEL_ALL_QUERIES(", "1", ")"], true),
        piece(&["select", "system$abort_session(", "1", ")"], true),
        piece(&["SELECT", "SYSTEM$SET_RETURN_VALUE(", "'x'", ")"], true),
        piece(&["SELECT", "\"SYSTEM$ABORT_TRANSACTION\"(", "1", ")"], true),
        piece(&["SELECT", "s.NEXTVAL"], true),
        piece(
            &[
                "WITH", "a", "AS", "(", "SELECT", "1", ")", "DELETE", "FROM", "t",
            ],
            true,
        ),
        piece(&["EXECUTE", "IMMEDIATE", "$$ DELETE FROM t $$"], true),
        piece(&["BEGIN", "DELETE", "FROM", "t"], true),
    ]
}

/// The bodies comments get: separators, keywords and quote characters that must stay inert.
const COMMENT_BODIES: &[&str] = &[
    "",
    "note",
    "; DELETE FROM t",
    "DROP TABLE t;",
    "'",
    "\"",
    "$$",
    "*",
    "/",
    "-- nested",
    "SYSTEM$ABORT_SESSION(1)",
];

const LINE_ENDINGS: &[&str] = &["\n", "\r\n", "\r"];

/// Space, a comment or a line ending: what may go between two tokens.
fn filler() -> impl Strategy<Value = String> {
    let body = prop::sample::select(COMMENT_BODIES);
    let eol = prop::sample::select(LINE_ENDINGS);
    prop_oneof![
        3 => Just(" ".to_string()),
        1 => Just("\t".to_string()),
        2 => eol.clone().prop_map(str::to_string),
        2 => (body.clone(), eol.clone()).prop_map(|(b, e)| format!(" --{b}{e}")),
        2 => (body.clone(), eol).prop_map(|(b, e)| format!(" //{b}{e}")),
        2 => body.prop_map(|b| format!(" /* {b} */ ")),
    ]
}

/// One statement's text with filler between its fragments.
fn statement_text(piece: Piece) -> impl Strategy<Value = (String, bool)> {
    let gaps = piece.fragments.len();
    prop::collection::vec(filler(), gaps).prop_map(move |fill| {
        let mut text = String::new();
        for (fragment, gap) in piece.fragments.iter().zip(&fill) {
            text.push_str(fragment);
            text.push_str(gap);
        }
        (text, piece.writes)
    })
}

/// 0–3 statements drawn from `pieces`, each with its filler.
fn statements(pieces: Vec<Piece>) -> impl Strategy<Value = Vec<(String, bool)>> {
    prop::collection::vec(
        prop::sample::select(pieces).prop_flat_map(statement_text),
        0..4,
    )
}

/// Statements of the whole grammar with at least one write among them, in any order.
fn with_a_write() -> impl Strategy<Value = Vec<(String, bool)>> {
    let write = prop::sample::select(writes()).prop_flat_map(statement_text);
    (
        statements(reads().into_iter().chain(writes()).collect()),
        write,
    )
        .prop_map(|(mut others, write)| {
            others.push(write);
            others
        })
        .prop_shuffle()
}

/// Only reads, at least one.
fn only_reads() -> impl Strategy<Value = Vec<(String, bool)>> {
    let read = prop::sample::select(reads()).prop_flat_map(statement_text);
    (statements(reads()), read).prop_map(|(mut others, read)| {
        others.push(read);
        others
    })
}

/// The statements as one text, separated by `;` with filler around the separators; returns
/// the text, how many statements it holds and how many of them write.
fn script(
    statements: impl Strategy<Value = Vec<(String, bool)>>,
) -> impl Strategy<Value = (String, usize, usize)> {
    statements
        .prop_flat_map(|statements| {
            let n = statements.len();
            (
                Just(statements),
                prop::collection::vec(filler(), n),
                filler(),
                any::<bool>(),
            )
        })
        .prop_map(|(statements, after, before, trailing_semicolon)| {
            let mut text = before;
            let count = statements.len();
            let writes = statements.iter().filter(|(_, w)| *w).count();
            for (i, ((statement, _), gap)) in statements.iter().zip(&after).enumerate() {
                text.push_str(statement);
                text.push_str(gap);
                if i + 1 < count || trailing_semicolon {
                    text.push(';');
                }
            }
            (text, count, writes)
        })
}

/// Bounded so the whole suite stays fast in a debug build; a failure shrinks for at most 20 s.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_time: 20_000,
        ..ProptestConfig::default()
    }
}

/// Cases per property: CI runs them all on every test run.
const CASES: u32 = 2000;

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn read_only_never_accepts_a_text_with_a_write(
        (text, _count, writes) in script(with_a_write())
    ) {
        prop_assert!(writes > 0);
        let accepted = split(&text).is_ok_and(|s| s.iter().all(|s| s.is_read_only()));
        prop_assert!(!accepted, "read-only accepted a write in {:?}", text);
    }

    #[test]
    fn read_only_accepts_reads_and_splits_them_where_snowflake_does(
        (text, count, _) in script(only_reads())
    ) {
        let statements = split(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
        prop_assert_eq!(statements.len(), count, "statements of {:?}: {:#?}", text, statements);
        for statement in &statements {
            prop_assert!(statement.is_read_only(), "refused {:?}: {}", statement.text, statement.refusal());
        }
    }
}
