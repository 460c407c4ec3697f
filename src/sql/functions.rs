//! Functions that change state although they are called from a read (`SELECT …`): Snowflake's
//! `SYSTEM$…` control functions (`SYSTEM$CANCEL_ALL_QUERIES`, `SYSTEM$ABORT_SESSION`,
//! `SYSTEM$SET_RETURN_VALUE`, …) and a sequence's `NEXTVAL`.
//!
//! `--read-only` lets a `SYSTEM$` function through only when it is on [`READ_ONLY_SYSTEM_FUNCTIONS`],
//! a list of information functions whose documentation says they only report; every other one
//! is refused, including ones Snowflake adds later. A name prefix is not enough:
//! `SYSTEM$GET_ICEBERG_TABLE_INFORMATION` writes new Iceberg metadata files although it is named
//! like a reader, so it is not on the list.

use super::Token;

/// `SYSTEM$` functions `--read-only` allows: each only reports, per Snowflake's documentation
/// ("System functions", category *System Information* or *Query Information*).
pub const READ_ONLY_SYSTEM_FUNCTIONS: &[&str] = &[
    // The data type of a value.
    "SYSTEM$TYPEOF",
    // Sleeps; changes nothing.
    "SYSTEM$WAIT",
    // How a table is clustered.
    "SYSTEM$CLUSTERING_INFORMATION",
    "SYSTEM$CLUSTERING_DEPTH",
    "SYSTEM$CLUSTERING_RATIO",
    // A query plan, computed without running the query.
    "SYSTEM$EXPLAIN_PLAN_JSON",
    "SYSTEM$EXPLAIN_JSON_TO_TEXT",
    // Tag values and allowed values.
    "SYSTEM$GET_TAG",
    "SYSTEM$GET_TAG_ALLOWED_VALUES",
    "SYSTEM$GET_TAG_ON_CURRENT_COLUMN",
    "SYSTEM$GET_TAG_ON_CURRENT_TABLE",
    // Whether a stream has change records, and its table's timestamp (the stream's offset
    // moves only when a DML statement consumes it).
    "SYSTEM$STREAM_HAS_DATA",
    "SYSTEM$STREAM_GET_TABLE_TIMESTAMP",
    "SYSTEM$LAST_CHANGE_COMMIT_TIME",
    // A pipe's state.
    "SYSTEM$PIPE_STATUS",
    // The hosts and ports the account's clients must reach.
    "SYSTEM$ALLOWLIST",
    "SYSTEM$ALLOWLIST_PRIVATELINK",
    // Inside a task: its own name.
    "SYSTEM$CURRENT_USER_TASK_NAME",
    // Which behaviour change bundles are enabled.
    "SYSTEM$BEHAVIOR_CHANGE_BUNDLE_STATUS",
];

/// Why `--read-only` must refuse a statement with these tokens because of a function it calls,
/// or `None`. Quoted identifiers count too: `"SYSTEM$ABORT_SESSION"(…)` names the same function.
pub fn side_effect(tokens: &[Token]) -> Option<String> {
    tokens.iter().find_map(|token| {
        let name = match token {
            Token::Word(w) | Token::Quoted(w) => w.as_str(),
            _ => return None,
        };
        // Anywhere in the word: a Unicode space glued to a name (`x SYSTEM$…`) is part of it.
        if let Some(at) = name.find("SYSTEM$") {
            let function: String = name[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$'))
                .collect();
            if !READ_ONLY_SYSTEM_FUNCTIONS.contains(&function.as_str()) {
                return Some(format!(
                    "{function} may change state (it is not on the list of SYSTEM$ functions known to only read)"
                ));
            }
        }
        (name == "NEXTVAL").then(|| "NEXTVAL advances a sequence".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::super::split;

    fn refused(sql: &str) -> Option<String> {
        split(sql)
            .unwrap()
            .into_iter()
            .find(|s| !s.is_read_only())
            .map(|s| s.refusal())
    }

    #[test]
    fn control_functions_are_refused_and_information_functions_allowed() {
        for sql in [
            "SELECT SYSTEM$CANCEL_ALL_QUERIES(123)",
            "select system$abort_session(1)",
            "SELECT SYSTEM$SET_RETURN_VALUE('x')",
            "SELECT 1, SYSTEM$CANCEL_QUERY('01a')",
            "SELECT SYSTEM$GET_ICEBERG_TABLE_INFORMATION('t')",
            "SELECT \"SYSTEM$ABORT_SESSION\"(1)",
            "SELECT x\u{a0}SYSTEM$ABORT_SESSION(1)",
            "SELECT db.sch.seq.NEXTVAL",
            "WITH a AS (SELECT SYSTEM$ABORT_TRANSACTION(1)) SELECT * FROM a",
        ] {
            assert!(refused(sql).is_some(), "{sql}");
        }
        assert!(
            refused("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)")
                .unwrap()
                .contains("SYSTEM$CANCEL_ALL_QUERIES may change state")
        );
        for sql in [
            "SELECT SYSTEM$TYPEOF(1)",
            "select system$wait(1)",
            "SELECT SYSTEM$CLUSTERING_INFORMATION('t')",
            "SELECT 'SYSTEM$ABORT_SESSION(1)' AS text",
            "SELECT $$ SYSTEM$ABORT_SESSION(1) $$",
            "SELECT 1 -- SYSTEM$ABORT_SESSION(1)",
        ] {
            assert_eq!(refused(sql), None, "{sql}");
        }
    }
}
