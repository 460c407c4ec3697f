//! `markdown`: a GitHub-flavoured table for agents. Cells arrive already escaped (pipes,
//! newlines, HTML, control characters) and cut (see `cell`), so a row is always one line.

use std::fmt::Write;

/// Draws the header and rows, followed by a blank line.
pub fn draw(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; header.len().max(1)].join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
    out
}
