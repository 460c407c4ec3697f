//! Converts Snowflake cells to the JSON values of the API: NULL → null, BOOLEAN → bool,
//! integers and decimals → exact JSON numbers (serde_json's arbitrary precision keeps every
//! digit), VARIANT/OBJECT/ARRAY → embedded JSON, dates and times → ISO-8601 strings, BINARY →
//! hex.

use serde_json::Value;
use snowflake_connector_rs::{CellValue, ColumnType, VectorValue};

/// A cell as the API shows it.
pub fn cell_to_json(cell: CellValue) -> Value {
    match cell {
        CellValue::Null => Value::Null,
        CellValue::Boolean(b) => Value::Bool(b),
        CellValue::Integer(i) => exact_number(&i.to_string()),
        CellValue::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        CellValue::Decimal(d) => exact_number(d.raw()),
        CellValue::String(s) => Value::String(s),
        CellValue::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        CellValue::Time(t) => Value::String(t.format("%H:%M:%S%.f").to_string()),
        CellValue::TimestampNtz(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        CellValue::TimestampLtz(t) => {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        CellValue::TimestampTz(t) => {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
        }
        CellValue::Json(v) => v,
        CellValue::Binary(b) => Value::String(
            b.as_bytes()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
        ),
        CellValue::Vector(v) => vector_to_json(v),
        // New variants of the client crate show as their debug form rather than failing.
        other => Value::String(format!("{other:?}")),
    }
}

/// Moves a TIMESTAMP_LTZ cell (as [`cell_to_json`] wrote it, in UTC) to `tz`, as Snowflake's
/// own clients show it: `2024-01-01T21:00:00+09:00`.
pub fn in_timezone(cell: &mut Value, tz: chrono_tz::Tz) {
    if let Value::String(text) = cell
        && let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text)
    {
        *text = instant
            .with_timezone(&tz)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    }
}

fn exact_number(text: &str) -> Value {
    text.parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

fn vector_to_json(vector: VectorValue) -> Value {
    match vector {
        VectorValue::Int(items) => {
            Value::Array(items.as_slice().iter().map(|&i| Value::from(i)).collect())
        }
        VectorValue::Float(items) => Value::Array(
            items
                .as_slice()
                .iter()
                .map(|&f| {
                    serde_json::Number::from_f64(f64::from(f))
                        .map_or_else(|| Value::String(f.to_string()), Value::Number)
                })
                .collect(),
        ),
    }
}

/// Snowflake's name for a column type, upper case.
pub fn type_name(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Fixed { .. } => "NUMBER".to_string(),
        ColumnType::Real => "FLOAT".to_string(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// The scale of a numeric or time column, when Snowflake reports it.
pub fn type_scale(ty: &ColumnType) -> Option<u8> {
    ty.scale()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_every_digit() {
        assert_eq!(
            cell_to_json(CellValue::Integer(170141183460469231731687303715884105727)).to_string(),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(cell_to_json(CellValue::Integer(-5)).to_string(), "-5");
        assert_eq!(cell_to_json(CellValue::Null), Value::Null);
        assert_eq!(cell_to_json(CellValue::Boolean(true)), Value::Bool(true));
    }

    #[test]
    fn ltz_is_shown_in_the_sessions_time_zone() {
        let instant = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:00:00.5Z")
            .unwrap()
            .to_utc();
        let mut cell = cell_to_json(CellValue::TimestampLtz(instant));
        assert_eq!(cell, Value::String("2024-01-01T12:00:00.500Z".into()));
        in_timezone(&mut cell, chrono_tz::Asia::Tokyo);
        assert_eq!(cell, Value::String("2024-01-01T21:00:00.500+09:00".into()));
        let mut summer = Value::String("2024-07-01T12:00:00Z".into());
        in_timezone(&mut summer, chrono_tz::America::Los_Angeles);
        assert_eq!(summer, Value::String("2024-07-01T05:00:00-07:00".into()));
    }

    #[test]
    fn dates_are_iso_8601() {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(
            cell_to_json(CellValue::Date(date)),
            Value::String("2024-02-29".into())
        );
        let ts = date.and_hms_milli_opt(13, 5, 9, 250).unwrap();
        assert_eq!(
            cell_to_json(CellValue::TimestampNtz(ts)),
            Value::String("2024-02-29T13:05:09.250".into())
        );
    }
}
