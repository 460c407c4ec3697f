//! Statement classification with a real lexer: comments (`--`, `//`, `/* */`), single-quoted
//! strings with `''` and backslash escapes, double-quoted identifiers, `$$` dollar quotes, and
//! several statements separated by `;`.
//!
//! It decides three things and nothing else: where statements end ([`split`]), whether a
//! statement only reads ([`Kind::Read`], for `--read-only`), and whether it can change the
//! session's context or transaction state (so the runner reads `CURRENT_*()` back from
//! Snowflake, or pins the token to its session). It never extracts context values from SQL
//! text: those always come from Snowflake.
//!
//! `--read-only` errs on the side of refusing: `--`/`//` comments end at `\r` as well as `\n`
//! (Snowflake ends them at either), and where this lexer cannot be sure it reads the text as
//! Snowflake does (a control character or a Unicode line separator outside quotes, a `/*` inside
//! a block comment, a `$$` glued to a word) the statement carries a doubt and is refused. Reads
//! that call a `SYSTEM$` function with side effects are refused too (see [`functions`]).
//!
//! Why not the sqlparser crate: its parser rejects much valid Snowflake SQL it does not model
//! (scripting, stages, new syntax), and a statement must never fail here that Snowflake would
//! run; its tokenizer alone would still leave the classification below to write. What is
//! needed is small — statement boundaries and the leading keywords — and is pinned down by the
//! table of tricky cases in the tests.

mod functions;
#[cfg(test)]
mod fuzz;

/// What a statement does, as far as the daemon cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SELECT, SHOW, DESCRIBE, EXPLAIN, LIST, VALUES, and WITH … SELECT.
    Read,
    /// USE DATABASE/SCHEMA/WAREHOUSE/ROLE/SECONDARY ROLES.
    Use,
    /// BEGIN [TRANSACTION|WORK] / START TRANSACTION.
    Begin,
    /// COMMIT [WORK].
    Commit,
    /// ROLLBACK [WORK].
    Rollback,
    /// INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY: data changes that leave the context alone.
    Dml,
    /// Anything else (DDL, GRANT, CALL, EXECUTE IMMEDIATE, ALTER SESSION, scripting…).
    Other,
}

/// One statement of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text without the separating `;`.
    pub text: String,
    pub kind: Kind,
    /// The leading keywords, upper case, for messages (e.g. `CREATE TABLE`).
    pub verb: String,
    /// Why `--read-only` must refuse the statement whatever its kind: a function with side
    /// effects, or text this lexer cannot be sure it reads as Snowflake does.
    pub read_only_doubt: Option<String>,
}

impl Statement {
    /// Whether the statement may leave the session with another database, schema, warehouse
    /// or role, so the context must be read back from Snowflake afterwards.
    pub fn may_change_context(&self) -> bool {
        matches!(self.kind, Kind::Use | Kind::Other)
    }

    /// Allowed under `--read-only`: reads, and context switches that change no data, unless
    /// there is a doubt about them.
    pub fn is_read_only(&self) -> bool {
        matches!(self.kind, Kind::Read | Kind::Use) && self.read_only_doubt.is_none()
    }

    /// Why `--read-only` refuses this statement.
    pub fn refusal(&self) -> String {
        if let Some(doubt) = &self.read_only_doubt {
            return doubt.clone();
        }
        format!(
            "{} is not a read",
            if self.verb.is_empty() {
                "this statement"
            } else {
                &self.verb
            }
        )
    }
}

/// Why SQL could not be lexed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("unterminated {0} starting at byte {1}")]
    Unterminated(&'static str, usize),
    #[error("no SQL statement given")]
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An unquoted word, upper-cased.
    Word(String),
    /// Anything quoted or numeric: it never decides a statement's kind.
    Literal,
    /// A double-quoted identifier's content, upper-cased: it never decides a statement's kind
    /// either, but may name a function.
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Other,
}

/// The tokens of a text, each with the byte offset at which it starts, and the places where
/// the lexer cannot be sure it reads the text as Snowflake does.
struct Lexed {
    tokens: Vec<(usize, Token)>,
    doubts: Vec<(usize, &'static str)>,
}

fn lex(sql: &str) -> Result<Lexed, SqlError> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut doubts = Vec::new();
    // Byte ranges of quoted strings, identifiers and `$$` blocks: their content is data.
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = find(sql, i + 2, "*/").ok_or(SqlError::Unterminated("comment", start))?;
                // Were block comments nested, the comment would end later than here.
                if let Some(inner) = find(&sql[..end], i + 2, "/*") {
                    doubts.push((inner, "a `/*` inside a block comment"));
                }
                i = end + 2;
            }
            b'\'' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(SqlError::Unterminated("string", start)),
                        Some(b'\\') => i += 2,
                        Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                quoted.push((start, i));
                tokens.push((start, Token::Literal));
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(SqlError::Unterminated("quoted identifier", start)),
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                quoted.push((start, i));
                let name = sql[start + 1..i - 1].replace("\"\"", "\"");
                tokens.push((start, Token::Quoted(name.to_uppercase())));
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                // After a number or a `$` (`1$$`, `$1$$`) Snowflake may not start a block here.
                if start > 0 && is_word_byte(bytes[start - 1]) {
                    doubts.push((start, "a `$$` right after a word or number"));
                }
                i = find(sql, i + 2, "$$").ok_or(SqlError::Unterminated("$$ block", start))? + 2;
                quoted.push((start, i));
                tokens.push((start, Token::Literal));
            }
            b'(' => {
                i += 1;
                tokens.push((start, Token::Open));
            }
            b')' => {
                i += 1;
                tokens.push((start, Token::Close));
            }
            b';' => {
                i += 1;
                tokens.push((start, Token::Semicolon));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'$')
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                tokens.push((start, Token::Word(sql[start..i].to_ascii_uppercase())));
            }
            c if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                tokens.push((start, Token::Literal));
            }
            _ => {
                i += 1;
                tokens.push((start, Token::Other));
            }
        }
    }
    doubts.extend(doubtful_characters(sql, &quoted));
    doubts.sort_unstable();
    Ok(Lexed { tokens, doubts })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$') || b >= 0x80
}

/// Characters outside quotes whose meaning to Snowflake's lexer is not known for sure: control
/// characters other than tab, CR and LF (a vertical tab or form feed might end a `--` comment),
/// NUL anywhere (C code may end the text there), and Unicode line breaks and spaces.
fn doubtful_characters(
    sql: &str,
    quoted: &[(usize, usize)],
) -> impl Iterator<Item = (usize, &'static str)> {
    let mut ranges = quoted.iter().peekable();
    sql.char_indices().filter_map(move |(at, c)| {
        while ranges.next_if(|&&(_, end)| end <= at).is_some() {}
        let inside_quotes = ranges.peek().is_some_and(|&&(start, _)| start <= at);
        if c == '\0' {
            Some((at, "a NUL character"))
        } else if inside_quotes {
            None
        } else if c.is_control() && !matches!(c, '\t' | '\r' | '\n') {
            Some((at, "a control character outside quotes"))
        } else if !c.is_ascii() && c.is_whitespace() {
            Some((at, "a Unicode space or line break outside quotes"))
        } else {
            None
        }
    })
}

/// The end of a `--` or `//` comment: after the next CR or LF (Snowflake ends a comment at
/// either, so `-- note\r; DELETE …` is two statements), or the end of the text.
fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(bytes.len(), |p| from + p + 1)
}

fn find(sql: &str, from: usize, needle: &str) -> Option<usize> {
    sql.get(from..)?.find(needle).map(|p| from + p)
}

/// Splits SQL into statements at top-level `;`, dropping empty ones (and comment-only ones).
pub fn split(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let Lexed { tokens, doubts } = lex(sql)?;
    let mut statements = Vec::new();
    // Where each statement's stretch of text (from the previous `;`) ends.
    let mut stretch_ends = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut first_token_at: Option<usize> = None;
    for (offset, token) in tokens {
        if token == Token::Semicolon {
            if let Some(start) = first_token_at.take() {
                statements.push(build(&sql[start..offset], &current));
                stretch_ends.push(offset);
            }
            current.clear();
            continue;
        }
        first_token_at.get_or_insert(offset);
        current.push(token);
    }
    if let Some(start) = first_token_at {
        statements.push(build(sql[start..].trim_end(), &current));
        stretch_ends.push(sql.len());
    }
    if statements.is_empty() {
        return Err(SqlError::Empty);
    }
    // A doubt belongs to the statement whose stretch holds it; one in a trailing comment to
    // the last statement.
    for (at, doubt) in doubts {
        let index = stretch_ends
            .iter()
            .position(|&end| at < end)
            .unwrap_or(statements.len() - 1);
        statements[index]
            .read_only_doubt
            .get_or_insert_with(|| format!("{doubt} makes this text ambiguous"));
    }
    Ok(statements)
}

fn build(text: &str, tokens: &[Token]) -> Statement {
    let (kind, verb) = classify(tokens);
    Statement {
        text: text.trim().to_string(),
        kind,
        verb,
        read_only_doubt: functions::side_effect(tokens),
    }
}

fn word(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

fn classify(tokens: &[Token]) -> (Kind, String) {
    // `(SELECT …) UNION (SELECT …)` starts with parentheses.
    let mut i = tokens.iter().take_while(|t| **t == Token::Open).count();
    let Some(first) = word(tokens, i) else {
        return (Kind::Other, String::new());
    };
    if first == "WITH" {
        match main_verb_after_ctes(tokens, i + 1) {
            Some(next) => i = next,
            None => return (Kind::Other, "WITH".into()),
        }
    }
    let first = word(tokens, i).unwrap_or("");
    let second = word(tokens, i + 1);
    let verb = match second {
        Some(s)
            if matches!(
                first,
                "CREATE"
                    | "DROP"
                    | "ALTER"
                    | "UNDROP"
                    | "USE"
                    | "START"
                    | "SHOW"
                    | "DESCRIBE"
                    | "DESC"
            ) =>
        {
            format!("{first} {s}")
        }
        _ => first.to_string(),
    };
    let kind = match first {
        "SELECT" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "LIST" | "LS" | "VALUES" => {
            Kind::Read
        }
        "USE" => Kind::Use,
        "START" if second == Some("TRANSACTION") => Kind::Begin,
        // `BEGIN` alone or `BEGIN TRANSACTION|WORK [NAME x]`; anything else is a scripting block.
        "BEGIN"
            if tokens.len() == i + 1 || matches!(second, Some("TRANSACTION" | "WORK" | "NAME")) =>
        {
            Kind::Begin
        }
        "COMMIT" => Kind::Commit,
        "ROLLBACK" => Kind::Rollback,
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE" | "COPY" => Kind::Dml,
        _ => Kind::Other,
    };
    (kind, verb)
}

/// After `WITH`, skips `[RECURSIVE] name [(cols)] AS (…) [, …]` and returns the index of the
/// main statement's first token.
fn main_verb_after_ctes(tokens: &[Token], mut i: usize) -> Option<usize> {
    if word(tokens, i) == Some("RECURSIVE") {
        i += 1;
    }
    loop {
        // The CTE's name (a word or a quoted identifier) and an optional column list.
        i += 1;
        if tokens.get(i) == Some(&Token::Open) {
            i = skip_parens(tokens, i)?;
        }
        if word(tokens, i) != Some("AS") {
            return None;
        }
        i += 1;
        if tokens.get(i) != Some(&Token::Open) {
            return None;
        }
        i = skip_parens(tokens, i)?;
        if tokens.get(i) == Some(&Token::Other) {
            // A comma: another CTE follows.
            i += 1;
            continue;
        }
        return Some(i);
    }
}

/// From an `Open` token, returns the index after its matching `Close`.
fn skip_parens(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<Kind> {
        split(sql).unwrap().into_iter().map(|s| s.kind).collect()
    }

    #[test]
    fn classification_table() {
        let cases: &[(&str, &[Kind])] = &[
            ("SELECT 1", &[Kind::Read]),
            ("  select * from t;  ", &[Kind::Read]),
            ("(SELECT 1) UNION (SELECT 2)", &[Kind::Read]),
            ("show databases", &[Kind::Read]),
            ("DESC TABLE t", &[Kind::Read]),
            ("WITH a AS (SELECT 1) SELECT * FROM a", &[Kind::Read]),
            (
                "WITH a (x) AS (SELECT 1), b AS (SELECT (2)) SELECT * FROM a, b",
                &[Kind::Read],
            ),
            (
                "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
                &[Kind::Dml],
            ),
            ("with recursive r as (select 1) delete from t", &[Kind::Dml]),
            ("-- DELETE FROM t\nSELECT 1", &[Kind::Read]),
            ("/* DROP TABLE t; */ SELECT 1", &[Kind::Read]),
            ("// comment; DROP\nSELECT 1", &[Kind::Read]),
            ("SELECT 'a;DROP TABLE t' AS x", &[Kind::Read]),
            ("SELECT 'it''s; fine', 'back\\'slash;'", &[Kind::Read]),
            ("SELECT \"weird;name\" FROM t", &[Kind::Read]),
            ("SELECT $$ ; DROP TABLE t; $$", &[Kind::Read]),
            ("SELECT 1; DROP TABLE t", &[Kind::Read, Kind::Other]),
            ("USE DATABASE x; SELECT 1;", &[Kind::Use, Kind::Read]),
            ("BEGIN", &[Kind::Begin]),
            ("begin transaction", &[Kind::Begin]),
            ("START TRANSACTION", &[Kind::Begin]),
            ("BEGIN LET x := 1; END", &[Kind::Other, Kind::Other]),
            ("COMMIT", &[Kind::Commit]),
            ("ROLLBACK WORK", &[Kind::Rollback]),
            ("INSERT INTO t VALUES (1)", &[Kind::Dml]),
            ("CREATE DATABASE x", &[Kind::Other]),
            ("EXECUTE IMMEDIATE $$ SELECT 1 $$", &[Kind::Other]),
            ("CALL proc()", &[Kind::Other]),
            ("-- only a comment", &[]),
            // A carriage return ends a line comment, as a line feed does.
            (
                "SELECT 1 AS one -- note\r; DELETE FROM T",
                &[Kind::Read, Kind::Dml],
            ),
            (
                "SELECT 1 // note\r; DROP TABLE t",
                &[Kind::Read, Kind::Other],
            ),
            (
                "-- a\r\nSELECT 1 -- b\r\n; DELETE FROM t",
                &[Kind::Read, Kind::Dml],
            ),
        ];
        for (sql, expected) in cases {
            match split(sql) {
                Ok(statements) => {
                    let got: Vec<Kind> = statements.iter().map(|s| s.kind).collect();
                    assert_eq!(&got, expected, "{sql}");
                }
                Err(SqlError::Empty) => assert!(expected.is_empty(), "{sql}"),
                Err(e) => panic!("{sql}: {e}"),
            }
        }
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(matches!(
            split("SELECT 'abc"),
            Err(SqlError::Unterminated("string", 7))
        ));
        assert!(matches!(
            split("SELECT $$ abc"),
            Err(SqlError::Unterminated("$$ block", 7))
        ));
        assert!(matches!(
            split("SELECT /* x"),
            Err(SqlError::Unterminated("comment", 7))
        ));
    }

    #[test]
    fn read_only_refuses_what_it_cannot_be_sure_of() {
        let refusal = |sql: &str| {
            split(sql)
                .unwrap()
                .into_iter()
                .find(|s| !s.is_read_only())
                .map(|s| s.refusal())
        };
        for sql in [
            // Snowflake might end a line comment at a vertical tab, form feed or Unicode break.
            "SELECT 1 -- note\x0b; DELETE FROM t",
            "SELECT 1 -- note\x0c; DELETE FROM t",
            "SELECT 1 -- note\u{2028}; DELETE FROM t",
            "SELECT 1 -- note\u{85}; DELETE FROM t",
            "SELECT 1\0; DELETE FROM t",
            "SELECT 'a\0'",
            // Were block comments nested, the string would start inside the comment.
            "SELECT /* /* */ ' */ ; DELETE FROM t; --'",
            "SELECT 1$$; DELETE FROM t; $$",
        ] {
            let why = refusal(sql).unwrap_or_else(|| panic!("accepted {sql:?}"));
            assert!(why.contains("ambiguous"), "{sql:?}: {why}");
        }
        for sql in [
            "SELECT 'tab\there', 'form\x0cfeed in a string'",
            "SELECT \"col\u{2028}name\" FROM t",
            "SELECT 1 -- a comment\r\n",
        ] {
            assert_eq!(refusal(sql), None, "{sql:?}");
        }
        assert_eq!(
            refusal("SELECT 1 -- x\x0b").unwrap(),
            "a control character outside quotes makes this text ambiguous"
        );
    }

    #[test]
    fn statement_text_and_verb() {
        let statements = split("create table t (a int);\n insert into t values (1)").unwrap();
        assert_eq!(statements[0].text, "create table t (a int)");
        assert_eq!(statements[0].verb, "CREATE TABLE");
        assert_eq!(statements[1].text, "insert into t values (1)");
        assert!(!statements[1].is_read_only());
        assert_eq!(statements[1].refusal(), "INSERT is not a read");
        assert_eq!(kinds("use role r"), vec![Kind::Use]);
        assert!(split("USE ROLE r").unwrap()[0].may_change_context());
    }
}
