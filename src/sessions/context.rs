//! A context (database, schema, warehouse, role, query tag) and the pure logic around it:
//! which statements move a session from one context to another, in which order, and how to
//! read the context back from Snowflake.

/// What Snowflake reports as current for a session, plus the query tag the token chose.
/// `None` means Snowflake reports NULL (or, for the tag, that none is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
    pub query_tag: Option<String>,
}

/// Reads the current context; the columns are parsed by [`parse_readback`].
pub const READBACK_SQL: &str =
    "SELECT CURRENT_DATABASE(), CURRENT_SCHEMA(), CURRENT_WAREHOUSE(), CURRENT_ROLE()";

/// Builds a context from the single row [`READBACK_SQL`] returns, keeping `query_tag` (which
/// CURRENT_*() does not report).
pub fn parse_readback(
    row: &serde_json::value::RawValue,
    query_tag: Option<String>,
) -> Option<Context> {
    let row = crate::row::values(row);
    let text = |i: usize| match row.get(i)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    if row.len() < 4 {
        return None;
    }
    Some(Context {
        database: text(0),
        schema: text(1),
        warehouse: text(2),
        role: text(3),
        query_tag,
    })
}

/// What it takes to move a session to a wanted context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Statements to run, in order.
    pub statements: Vec<String>,
    /// Fields the session has but the token does not, which no statement can clear
    /// (Snowflake has no `USE DATABASE NULL`): only a fresh session can serve the token.
    pub cannot_clear: Vec<&'static str>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.cannot_clear.is_empty()
    }
}

/// The statements that move a session from `current` to `wanted`, applying only what differs.
///
/// Order matters: the role comes first because a role change can make the warehouse,
/// database or schema unavailable (Snowflake then reports NULL), so after a role change every
/// other wanted setting is re-applied. The database comes before the schema because
/// `USE DATABASE` resets the schema.
pub fn plan(current: &Context, wanted: &Context) -> Plan {
    let mut plan = Plan::default();
    let role_changes = wanted.role.is_some() && wanted.role != current.role;
    if let Some(role) = wanted.role.as_deref().filter(|_| role_changes) {
        plan.statements
            .push(format!("USE ROLE {}", quote_ident(role)));
    }
    let differs = |want: &Option<String>, have: &Option<String>| role_changes || want != have;

    match &wanted.warehouse {
        Some(w) if differs(&wanted.warehouse, &current.warehouse) => plan
            .statements
            .push(format!("USE WAREHOUSE {}", quote_ident(w))),
        None if current.warehouse.is_some() => plan.cannot_clear.push("warehouse"),
        _ => {}
    }
    let database_changes = match &wanted.database {
        Some(d) if differs(&wanted.database, &current.database) => {
            plan.statements
                .push(format!("USE DATABASE {}", quote_ident(d)));
            true
        }
        None if current.database.is_some() => {
            plan.cannot_clear.push("database");
            false
        }
        _ => false,
    };
    match (&wanted.schema, &wanted.database) {
        (Some(s), database) if database_changes || differs(&wanted.schema, &current.schema) => {
            let qualified = match database {
                Some(d) => format!("{}.{}", quote_ident(d), quote_ident(s)),
                None => quote_ident(s),
            };
            plan.statements.push(format!("USE SCHEMA {qualified}"));
        }
        (None, _) if current.schema.is_some() && !database_changes => {
            plan.cannot_clear.push("schema")
        }
        _ => {}
    }
    if wanted.query_tag != current.query_tag {
        plan.statements.push(match &wanted.query_tag {
            Some(tag) => format!("ALTER SESSION SET QUERY_TAG = {}", quote_string(tag)),
            None => "ALTER SESSION UNSET QUERY_TAG".to_string(),
        });
    }
    plan
}

/// An identifier exactly as Snowflake reported it, quoted so case and punctuation survive.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal.
pub fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Accepts a name as a user types it after `snowflaked use`: an unquoted identifier
/// (Snowflake upper-cases it), a double-quoted identifier, or for schemas `db.schema`.
/// Returns it ready to paste after `USE …`, or `None` if it is not an identifier.
pub fn user_identifier(name: &str, allow_qualified: bool) -> Option<String> {
    let parts = split_qualified(name)?;
    if parts.is_empty() || parts.len() > if allow_qualified { 2 } else { 1 } {
        return None;
    }
    Some(parts.join("."))
}

/// Splits `a."B c".d` into its parts, each as written (quoted parts keep their quotes);
/// `None` if it is not a dotted list of identifiers.
pub fn split_qualified(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = name.trim();
    loop {
        if let Some(inner) = rest.strip_prefix('"') {
            // A quoted part ends at a `"` not followed by another `"`.
            let mut end = None;
            let bytes = inner.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    end = Some(i);
                    break;
                }
                i += 1;
            }
            let end = end?;
            if end == 0 {
                return None;
            }
            parts.push(format!("\"{}\"", &inner[..end]));
            rest = &inner[end + 1..];
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let part = &rest[..end];
            let mut chars = part.chars();
            let first = chars.next()?;
            if !(first.is_ascii_alphabetic() || first == '_')
                || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            {
                return None;
            }
            parts.push(part.to_string());
            rest = &rest[end..];
        }
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Some(parts),
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(
        database: Option<&str>,
        schema: Option<&str>,
        warehouse: Option<&str>,
        role: Option<&str>,
    ) -> Context {
        Context {
            database: database.map(str::to_string),
            schema: schema.map(str::to_string),
            warehouse: warehouse.map(str::to_string),
            role: role.map(str::to_string),
            query_tag: None,
        }
    }

    #[test]
    fn same_context_needs_nothing() {
        let c = ctx(Some("DB"), Some("PUBLIC"), Some("WH"), Some("R"));
        assert!(plan(&c, &c).is_empty());
    }

    #[test]
    fn only_the_difference_is_applied() {
        let have = ctx(Some("DB"), Some("PUBLIC"), Some("WH"), Some("R"));
        let want = ctx(Some("DB"), Some("RAW"), Some("WH"), Some("R"));
        assert_eq!(
            plan(&have, &want).statements,
            vec!["USE SCHEMA \"DB\".\"RAW\""]
        );
    }

    #[test]
    fn a_role_change_comes_first_and_reapplies_the_rest() {
        let have = ctx(Some("DB"), Some("S"), Some("WH"), Some("A"));
        let want = ctx(Some("DB"), Some("S"), Some("WH"), Some("B"));
        assert_eq!(
            plan(&have, &want).statements,
            vec![
                "USE ROLE \"B\"",
                "USE WAREHOUSE \"WH\"",
                "USE DATABASE \"DB\"",
                "USE SCHEMA \"DB\".\"S\""
            ]
        );
    }

    #[test]
    fn a_database_change_reapplies_the_schema() {
        let have = ctx(Some("A"), Some("S"), None, Some("R"));
        let want = ctx(Some("B"), Some("S"), None, Some("R"));
        assert_eq!(
            plan(&have, &want).statements,
            vec!["USE DATABASE \"B\"", "USE SCHEMA \"B\".\"S\""]
        );
    }

    #[test]
    fn clearing_a_database_needs_a_fresh_session() {
        let have = ctx(Some("A"), Some("PUBLIC"), None, Some("R"));
        let want = ctx(None, None, None, Some("R"));
        assert_eq!(plan(&have, &want).cannot_clear, vec!["database", "schema"]);
    }

    #[test]
    fn quoting_survives_odd_names_and_tags() {
        assert_eq!(quote_ident("my\"db"), "\"my\"\"db\"");
        let have = Context::default();
        let want = Context {
            query_tag: Some("it's".into()),
            ..Context::default()
        };
        assert_eq!(
            plan(&have, &want).statements,
            vec!["ALTER SESSION SET QUERY_TAG = 'it''s'"]
        );
    }

    #[test]
    fn user_identifiers() {
        assert_eq!(
            user_identifier("analytics", false).as_deref(),
            Some("analytics")
        );
        assert_eq!(
            user_identifier("\"Mixed Case\"", false).as_deref(),
            Some("\"Mixed Case\"")
        );
        assert_eq!(user_identifier("db.raw", true).as_deref(), Some("db.raw"));
        assert_eq!(user_identifier("db.raw", false), None);
        assert_eq!(user_identifier("x; DROP TABLE t", false), None);
        assert_eq!(user_identifier("", false), None);
        assert_eq!(user_identifier("1abc", false), None);
    }

    #[test]
    fn readback_row_becomes_a_context() {
        let row = vec![
            serde_json::json!("DB"),
            serde_json::json!("S"),
            serde_json::Value::Null,
            serde_json::json!("R"),
        ];
        assert_eq!(
            parse_readback(&crate::row::from_values(&row), None),
            Some(ctx(Some("DB"), Some("S"), None, Some("R")))
        );
    }
}
