//! One cell as text, shared by every format: reading a row's cells without parsing nested
//! JSON (so a deeply nested VARIANT never hits a parser's depth limit), the NULL marker and
//! the quoting that keeps a string equal to it distinguishable, visible escapes for terminal
//! control characters, markdown escapes, cutting over-wide cells, and unique object keys for
//! duplicate column names.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::api::Column;

/// One cell of a row, read without building a JSON tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    /// A JSON string: text, dates, times, binary as hex.
    Text(String),
    /// Anything else (number, boolean, VARIANT/OBJECT/ARRAY) as its compact JSON text.
    Json(&'a str),
}

impl Cell<'_> {
    /// The cell's text as csv and the terminal show it; `None` for NULL.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Cell::Null => None,
            Cell::Text(s) => Some(Cow::Borrowed(s)),
            Cell::Json(raw) => Some(Cow::Borrowed(raw)),
        }
    }
}

/// The cells of a row (a JSON array). Nested values stay raw text, so nesting depth is no
/// limit here (serde_json skips raw values without recursion).
pub fn raw_cells(row: &RawValue) -> Vec<&RawValue> {
    serde_json::from_str(row.get()).unwrap_or_default()
}

/// Classifies one raw cell.
pub fn cell(raw: &RawValue) -> Cell<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') if text == "null" => Cell::Null,
        Some(b'"') => Cell::Text(serde_json::from_str(text).unwrap_or_default()),
        _ => Cell::Json(text),
    }
}

/// A cell as text: NULL for null, JSON for VARIANT/OBJECT/ARRAY, the plain value otherwise.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A cell for table and markdown: NULL as `null_marker`; a string that equals the marker, or
/// equals it wrapped in double quotes any number of times, gets one more pair of quotes, so
/// the string `'NULL'` shows as `"NULL"` and never looks like a NULL.
pub fn display(cell: &Cell<'_>, null_marker: &str) -> String {
    match cell {
        Cell::Null => null_marker.to_string(),
        Cell::Text(s) if looks_like_marker(s, null_marker) => format!("\"{s}\""),
        Cell::Text(s) => s.clone(),
        Cell::Json(raw) => raw.to_string(),
    }
}

/// Whether `text` is the marker, or the marker wrapped in pairs of double quotes.
pub fn looks_like_marker(text: &str, marker: &str) -> bool {
    let mut inner = text;
    loop {
        if inner == marker {
            return true;
        }
        match inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(rest) => inner = rest,
            None => return false,
        }
    }
}

/// Whether a character would act on a terminal or reorder text instead of showing: C0 and C1
/// controls, DEL, and the Unicode bidirectional and line/paragraph separators.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// How a hidden character is shown: `\t`, `\r`, `\n`, `\0`, `\x1b`, `\u{202e}`.
fn visible(c: char, out: &mut String) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\0' => out.push_str("\\0"),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// Escapes terminal control characters visibly for `table`. Newlines stay: the table shows
/// them as lines inside the cell's borders.
pub fn terminal_cell(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_hidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c != '\n' && is_hidden(c) {
            visible(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escapes a cell so the markdown table never breaks and shows the data, not markup: `\` and
/// `|` backslash-escaped, `<`, `>`, `&` as entities, newlines as `<br>`, control characters
/// as visible escapes.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>"),
            c if is_hidden(c) => visible(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

/// Cuts a text longer than `max` characters to its first `max`, followed by `…[N chars]` with
/// its full length. Returns whether it cut.
pub fn cut(text: &str, max: Option<usize>) -> (Cow<'_, str>, bool) {
    let Some(max) = max else {
        return (Cow::Borrowed(text), false);
    };
    match text.char_indices().nth(max) {
        None => (Cow::Borrowed(text), false),
        Some((end, _)) => {
            let total = text.chars().count();
            (
                Cow::Owned(format!("{}…[{total} chars]", &text[..end])),
                true,
            )
        }
    }
}

/// Object keys for the columns, in order: a name seen before gets `_2`, `_3`, … (the first
/// suffix no column already uses), so `SELECT 1 AS a, 2 AS a` gives `{"A":1,"A_2":2}`.
pub fn unique_names(columns: &[Column]) -> Vec<String> {
    let taken: HashSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut owned: Vec<String> = Vec::with_capacity(columns.len());
    let mut extra: HashSet<String> = HashSet::new();
    for column in columns {
        let name = column.name.as_str();
        if seen.insert(name) {
            owned.push(name.to_string());
            continue;
        }
        let mut n = 2;
        let key = loop {
            let candidate = format!("{name}_{n}");
            if !taken.contains(candidate.as_str()) && !extra.contains(&candidate) {
                break candidate;
            }
            n += 1;
        };
        extra.insert(key.clone());
        owned.push(key);
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> Column {
        Column {
            name: name.into(),
            ty: "TEXT".into(),
            nullable: true,
            scale: None,
        }
    }

    #[test]
    fn duplicate_names_get_the_first_free_suffix() {
        let columns = [column("A"), column("A"), column("A_2"), column("A")];
        assert_eq!(unique_names(&columns), ["A", "A_3", "A_2", "A_4"]);
    }

    #[test]
    fn strings_that_look_like_the_null_marker_are_quoted() {
        assert_eq!(display(&Cell::Null, "NULL"), "NULL");
        assert_eq!(display(&Cell::Text("NULL".into()), "NULL"), "\"NULL\"");
        assert_eq!(
            display(&Cell::Text("\"NULL\"".into()), "NULL"),
            "\"\"NULL\"\""
        );
        assert_eq!(display(&Cell::Text("null".into()), "NULL"), "null");
        assert_eq!(display(&Cell::Text("\"".into()), "NULL"), "\"");
    }

    #[test]
    fn cuts_count_characters_and_say_the_full_length() {
        assert_eq!(cut("日本語テキスト", Some(3)).0, "日本語…[7 chars]");
        assert_eq!(cut("abc", Some(3)).0, "abc");
        assert!(!cut("abc", Some(3)).1);
    }

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(
            terminal_cell("esc\x1b[31mred\r\0\t"),
            "esc\\x1b[31mred\\r\\0\\t"
        );
        assert_eq!(terminal_cell("two\nlines"), "two\nlines");
        assert_eq!(terminal_cell("\u{202e}abc\u{9b}"), "\\u{202e}abc\\u{9b}");
        assert_eq!(markdown_cell("<b>&\r\n|\\"), "&lt;b&gt;&amp;\\r<br>\\|\\\\");
    }
}
