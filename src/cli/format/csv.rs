//! `csv`: RFC 4180 with NULL distinguishable from the empty string, as PostgreSQL's CSV COPY
//! does: NULL is the NULL marker unquoted (by default nothing: `a,,b`), a string is quoted when
//! it is empty (`""`), equals the marker, or holds a comma, quote, CR or LF.

use std::borrow::Cow;

use super::View;
use super::cell::{Cell, cell, raw_cells};

pub fn render(view: &View<'_>, null_marker: &str) -> String {
    let mut out = String::new();
    let header: Vec<Cow<'_, str>> = view
        .columns
        .iter()
        .map(|c| field(&c.name, null_marker))
        .collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in view.rows {
        let cells = raw_cells(row);
        for (i, raw) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match cell(raw) {
                Cell::Null => out.push_str(null_marker),
                other => out.push_str(&field(&other.text().unwrap_or_default(), null_marker)),
            }
        }
        out.push('\n');
    }
    out
}

/// A non-NULL field, quoted when a reader could otherwise take it for something else.
fn field<'t>(text: &'t str, null_marker: &str) -> Cow<'t, str> {
    if text.is_empty() || text == null_marker || text.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}
