//! `ndjson`: one JSON object per row, keys in column order. Every column is kept: a name seen
//! before gets `_2`, `_3`, … (see `cell::unique_names`). Values are copied as the daemon sent
//! them, never re-parsed, so numbers keep every digit and nesting has no depth limit.

use super::View;
use super::cell::{raw_cells, unique_names};

pub fn render(view: &View<'_>) -> String {
    let keys: Vec<String> = unique_names(view.columns)
        .iter()
        .map(|k| serde_json::to_string(k).unwrap_or_default())
        .collect();
    let mut out = String::new();
    for row in view.rows {
        out.push('{');
        for (i, (key, value)) in keys.iter().zip(raw_cells(row)).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push(':');
            out.push_str(value.get());
        }
        out.push_str("}\n");
    }
    out
}
