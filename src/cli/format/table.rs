//! `table`: aligned box drawing for people, wrapped to the terminal's width when there is one.
//! Cells arrive already escaped and cut (see `cell`).

use comfy_table::{ContentArrangement, Table, presets};

/// Draws the header and rows, ending with a newline.
pub fn draw(header: &[String], rows: &[Vec<String>], width: Option<u16>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    match width {
        Some(w) => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
            table.set_width(w);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    table.set_header(header);
    for row in rows {
        table.add_row(row);
    }
    let mut out = table.to_string();
    out.push('\n');
    out
}
