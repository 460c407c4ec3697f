//! A result row kept as its JSON array text (`[1,"a",null]`), from the Snowflake layer to the
//! wire and into the client's formatter. A 100k-row result then costs one allocation per row
//! instead of several per cell, which keeps the daemon's memory small while it returns large
//! results; cells are parsed back into values only where they are looked at.

use serde_json::Value;
use serde_json::value::RawValue;

/// One row: a JSON array of its cells.
pub type Row = Box<RawValue>;

/// Builds a row from its cells.
pub fn from_values(values: &[Value]) -> Row {
    let text = serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string());
    RawValue::from_string(text).expect("serde_json wrote valid JSON")
}

/// The row's cells.
pub fn values(row: &RawValue) -> Vec<Value> {
    serde_json::from_str(row.get()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exact_numbers_and_nesting() {
        let cells: Vec<Value> =
            serde_json::from_str(r#"[12345678901234567890.125, null, {"a": [1]}, "x"]"#).unwrap();
        let row = from_values(&cells);
        assert_eq!(
            row.get(),
            r#"[12345678901234567890.125,null,{"a":[1]},"x"]"#
        );
        assert_eq!(values(&row), cells);
    }
}
