//! Reading result rows from snowflake-connector-rs without its JSON depth limit.
//!
//! The crate decodes a VARIANT/OBJECT/ARRAY cell with serde_json's default parser, which
//! refuses documents nested more than 128 levels deep, and one such cell fails the whole
//! result. [`JsonRow`] decodes a row the crate's way ([`sf::DynamicRow`]) and, only when that
//! fails, again cell by cell with the crate's typed decoders, parsing the JSON cells here
//! with a deeper (but bounded, so a hostile value cannot overflow the stack) limit.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sf::{
    BinaryValue, CellPlan, CellValue, ColumnType, DecimalValue, DynamicRow, FromRow,
    RowPlanContext, RowRef,
};
use snowflake_connector_rs as sf;

use super::values::cell_to_json;

/// How deep a VARIANT may nest before it is refused: deep enough for any real document,
/// shallow enough that parsing it (recursively) stays far from the end of a thread's stack.
pub const MAX_JSON_DEPTH: usize = 1024;

/// A row's cells as the API's JSON values.
pub struct JsonRow(pub Vec<Value>);

/// Decoders for the row, planned once per result.
pub struct JsonRowPlan {
    dynamic: <DynamicRow as FromRow>::Plan,
    columns: Vec<Decoder>,
}

/// One column's decoder for the cell-by-cell path.
enum Decoder {
    Bool(CellPlan<Option<bool>>),
    Integer(CellPlan<Option<i128>>, CellPlan<Option<DecimalValue>>),
    Decimal(CellPlan<Option<DecimalValue>>),
    Float(CellPlan<Option<f64>>),
    Date(CellPlan<Option<NaiveDate>>),
    Time(CellPlan<Option<NaiveTime>>),
    Ntz(CellPlan<Option<NaiveDateTime>>),
    Ltz(CellPlan<Option<DateTime<Utc>>>),
    Tz(CellPlan<Option<DateTime<FixedOffset>>>),
    Binary(CellPlan<Option<BinaryValue>>),
    Json(CellPlan<Option<String>>),
    /// Text, and anything else as its text.
    Text(CellPlan<Option<String>>),
}

impl FromRow for JsonRow {
    type Plan = JsonRowPlan;

    fn build_plan(ctx: RowPlanContext<'_>) -> sf::decode::PlanBuildResult<Self::Plan> {
        let dynamic = DynamicRow::build_plan(ctx)?;
        let mut columns = Vec::with_capacity(ctx.schema().len());
        for (i, column) in ctx.schema().columns().iter().enumerate() {
            let decoder = match column.ty() {
                ColumnType::Boolean => Decoder::Bool(CellPlan::by_position(ctx, i)?),
                ColumnType::Fixed { scale, .. } if scale.unwrap_or(0) == 0 => Decoder::Integer(
                    CellPlan::by_position(ctx, i)?,
                    CellPlan::by_position(ctx, i)?,
                ),
                ColumnType::Fixed { .. } => Decoder::Decimal(CellPlan::by_position(ctx, i)?),
                ColumnType::Real => Decoder::Float(CellPlan::by_position(ctx, i)?),
                ColumnType::Date => Decoder::Date(CellPlan::by_position(ctx, i)?),
                ColumnType::Time { .. } => Decoder::Time(CellPlan::by_position(ctx, i)?),
                ColumnType::TimestampNtz { .. } => Decoder::Ntz(CellPlan::by_position(ctx, i)?),
                ColumnType::TimestampLtz { .. } => Decoder::Ltz(CellPlan::by_position(ctx, i)?),
                ColumnType::TimestampTz { .. } => Decoder::Tz(CellPlan::by_position(ctx, i)?),
                ColumnType::Binary { .. } => Decoder::Binary(CellPlan::by_position(ctx, i)?),
                ColumnType::Variant | ColumnType::Object | ColumnType::Array => {
                    Decoder::Json(CellPlan::by_position(ctx, i)?)
                }
                _ => Decoder::Text(CellPlan::by_position(ctx, i)?),
            };
            columns.push(decoder);
        }
        Ok(JsonRowPlan { dynamic, columns })
    }

    fn from_row_with_plan(row: RowRef<'_>, plan: &Self::Plan) -> sf::decode::RowDecodeResult<Self> {
        match DynamicRow::from_row_with_plan(row, &plan.dynamic) {
            Ok(decoded) => {
                let (_, cells) = decoded.into_parts();
                Ok(JsonRow(
                    cells.into_vec().into_iter().map(cell_to_json).collect(),
                ))
            }
            // Only a JSON cell can fail where the typed path succeeds: try it.
            Err(first) => cell_by_cell(row, plan).ok_or(first),
        }
    }
}

/// The row decoded cell by cell, JSON cells parsed here; None when a cell still fails.
fn cell_by_cell(row: RowRef<'_>, plan: &JsonRowPlan) -> Option<JsonRow> {
    let mut values = Vec::with_capacity(plan.columns.len());
    for decoder in &plan.columns {
        let cell = |v: Option<CellValue>| cell_to_json(v.unwrap_or(CellValue::Null));
        let value = match decoder {
            Decoder::Bool(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Boolean)),
            Decoder::Integer(int, dec) => match row.get_with_plan(int) {
                Ok(v) => cell(v.map(CellValue::Integer)),
                Err(_) => cell(row.get_with_plan(dec).ok()?.map(CellValue::Decimal)),
            },
            Decoder::Decimal(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Decimal)),
            Decoder::Float(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Float)),
            Decoder::Date(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Date)),
            Decoder::Time(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Time)),
            Decoder::Ntz(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::TimestampNtz)),
            Decoder::Ltz(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::TimestampLtz)),
            Decoder::Tz(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::TimestampTz)),
            Decoder::Binary(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::Binary)),
            Decoder::Text(p) => cell(row.get_with_plan(p).ok()?.map(CellValue::String)),
            // Snowflake's `undefined`, NaN or a value deeper than MAX_JSON_DEPTH stay refused.
            Decoder::Json(p) => match row.get_with_plan(p).ok()? {
                None => Value::Null,
                Some(text) => parse_deep(&text)?,
            },
        };
        values.push(value);
    }
    Some(JsonRow(values))
}

/// Parses JSON nested up to [`MAX_JSON_DEPTH`] levels (serde_json alone stops at 128).
pub fn parse_deep(text: &str) -> Option<Value> {
    if nesting_depth(text) > MAX_JSON_DEPTH {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.disable_recursion_limit();
    let value = Value::deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// The deepest nesting of `[` and `{` outside strings.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in text.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_deeper_than_serde_jsons_default_limit() {
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert_eq!(parse_deep(&deep).unwrap().to_string(), deep);
        let too_deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert!(parse_deep(&too_deep).is_none());
        assert_eq!(nesting_depth(r#"{"a":"[[[\"[","b":[{}]}"#), 3);
    }
}
