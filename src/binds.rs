//! Bind parameters: values for a statement's `?` (positional) or `:name` (named) placeholders,
//! sent to Snowflake beside the SQL text and never spliced into it.
//!
//! Values arrive in two shapes and are validated into one typed form ([`Params`]) before
//! anything runs: the command line's `-p [NAME=][TYPE:]VALUE` ([`parse_arg`], text unless a
//! known TYPE prefix says otherwise) and the API's `params` ([`Params::from_json`]: JSON
//! strings → text, integers → int, other numbers → float, booleans → bool, null → NULL, and
//! `{"type": T, "value": V}` for everything else). The client sends the typed JSON form
//! ([`Params::to_json`]), so both paths meet in the same parser.
//!
//! Type names (case-insensitive): `text` (default), `int`/`integer`, `number`/`decimal` (exact
//! decimal), `float`/`real`/`double`, `bool`/`boolean`, `date` (`YYYY-MM-DD`), `time`
//! (`HH:MM:SS[.fffffffff]`), `timestamp`/`timestamp_ntz` (`YYYY-MM-DD[ T]HH:MM:SS[.f]`),
//! `timestamp_ltz` and `timestamp_tz` (the same with `Z` or `±HH:MM`), `binary` (hex), and
//! `null` (`null:` is an untyped NULL, `null:TYPE` a NULL of that type).

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::Value as Json;

/// A parameter that cannot be used, said so the user can fix it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    #[error(
        "unknown bind type {0:?}: use text, int, number, float, bool, date, time, timestamp, timestamp_ltz, timestamp_tz, binary or null"
    )]
    UnknownType(String),
    #[error("{value:?} is not a valid {ty} value: {why}")]
    BadValue {
        ty: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "bind name {0:?} is not a name: use letters, digits and _ (not starting with a digit), or a number as in :1"
    )]
    BadName(String),
    #[error(
        "positional (?) and named (:name) parameters cannot be mixed in one statement; give every -p a NAME= or none"
    )]
    Mixed,
    #[error("parameter {0} appears twice")]
    Duplicate(String),
    #[error("params must be a JSON array (for ?) or an object (for :name)")]
    BadShape,
    #[error(
        "parameter {0}: objects and arrays need the typed form {{\"type\": \"text\", \"value\": …}}"
    )]
    Untyped(String),
    #[error("parameter {0}: the typed form has exactly the keys \"type\" and \"value\"")]
    BadTypedForm(String),
}

/// The binding types, as the user names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindType {
    Text,
    Int,
    Number,
    Float,
    Bool,
    Date,
    Time,
    TimestampNtz,
    TimestampLtz,
    TimestampTz,
    Binary,
}

impl BindType {
    /// The name used in the typed JSON form and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Int => "int",
            Self::Number => "number",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Time => "time",
            Self::TimestampNtz => "timestamp_ntz",
            Self::TimestampLtz => "timestamp_ltz",
            Self::TimestampTz => "timestamp_tz",
            Self::Binary => "binary",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "text" | "string" | "varchar" => Self::Text,
            "int" | "integer" => Self::Int,
            "number" | "decimal" | "numeric" => Self::Number,
            "float" | "real" | "double" => Self::Float,
            "bool" | "boolean" => Self::Bool,
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" | "timestamp_ntz" | "datetime" => Self::TimestampNtz,
            "timestamp_ltz" => Self::TimestampLtz,
            "timestamp_tz" => Self::TimestampTz,
            "binary" => Self::Binary,
            _ => return None,
        })
    }
}

/// One validated value. `Debug` never shows it: bound values may be secrets or personal data.
#[derive(Clone, PartialEq)]
pub enum BindValue {
    Text(String),
    Int(i128),
    /// An exact decimal, validated, in its canonical text (`-12.50`).
    Number(String),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Time(NaiveTime),
    TimestampNtz(NaiveDateTime),
    TimestampLtz(DateTime<Utc>),
    TimestampTz(DateTime<FixedOffset>),
    Binary(Vec<u8>),
    /// NULL of a type (`Text` for an untyped NULL, as Snowflake's connectors send it).
    Null(BindType),
}

impl fmt::Debug for BindValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} redacted>", self.ty().name())
    }
}

impl BindValue {
    pub fn ty(&self) -> BindType {
        match self {
            Self::Text(_) => BindType::Text,
            Self::Int(_) => BindType::Int,
            Self::Number(_) => BindType::Number,
            Self::Float(_) => BindType::Float,
            Self::Bool(_) => BindType::Bool,
            Self::Date(_) => BindType::Date,
            Self::Time(_) => BindType::Time,
            Self::TimestampNtz(_) => BindType::TimestampNtz,
            Self::TimestampLtz(_) => BindType::TimestampLtz,
            Self::TimestampTz(_) => BindType::TimestampTz,
            Self::Binary(_) => BindType::Binary,
            Self::Null(ty) => *ty,
        }
    }

    /// Parses `text` as a value of `ty`.
    pub fn parse(ty: BindType, text: &str) -> Result<Self, BindError> {
        let bad = |why: &'static str| BindError::BadValue {
            ty: ty.name(),
            value: shorten(text),
            why,
        };
        let trimmed = text.trim();
        Ok(match ty {
            BindType::Text => Self::Text(text.to_string()),
            BindType::Int => {
                let n: i128 = trimmed.parse().map_err(|_| bad("expected an integer"))?;
                if n.unsigned_abs() > MAX_NUMBER {
                    return Err(bad("beyond NUMBER(38,0)"));
                }
                Self::Int(n)
            }
            BindType::Number => Self::Number(canonical_decimal(trimmed).ok_or_else(|| {
                bad("expected a decimal number like -12.50 with at most 38 digits")
            })?),
            BindType::Float => {
                let f: f64 = match trimmed.to_ascii_lowercase().as_str() {
                    "nan" => f64::NAN,
                    "inf" | "+inf" | "infinity" => f64::INFINITY,
                    "-inf" | "-infinity" => f64::NEG_INFINITY,
                    _ => trimmed.parse().map_err(|_| bad("expected a number"))?,
                };
                Self::Float(f)
            }
            BindType::Bool => Self::Bool(match trimmed.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => true,
                "false" | "f" | "no" | "n" | "off" | "0" => false,
                _ => return Err(bad("expected true or false")),
            }),
            BindType::Date => Self::Date(
                NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                    .map_err(|_| bad("expected YYYY-MM-DD"))?,
            ),
            BindType::Time => Self::Time(
                NaiveTime::parse_from_str(trimmed, "%H:%M:%S%.f")
                    .or_else(|_| NaiveTime::parse_from_str(trimmed, "%H:%M"))
                    .map_err(|_| bad("expected HH:MM:SS[.fffffffff]"))?,
            ),
            BindType::TimestampNtz => Self::TimestampNtz(
                naive_timestamp(trimmed)
                    .ok_or_else(|| bad("expected YYYY-MM-DD HH:MM:SS[.f], without a time zone"))?,
            ),
            BindType::TimestampLtz => Self::TimestampLtz(
                zoned_timestamp(trimmed)
                    .ok_or_else(|| bad("expected YYYY-MM-DD HH:MM:SS[.f] with Z or ±HH:MM"))?
                    .with_timezone(&Utc),
            ),
            BindType::TimestampTz => Self::TimestampTz(
                zoned_timestamp(trimmed)
                    .ok_or_else(|| bad("expected YYYY-MM-DD HH:MM:SS[.f] with Z or ±HH:MM"))?,
            ),
            BindType::Binary => {
                let hex = trimmed
                    .strip_prefix("0x")
                    .or_else(|| trimmed.strip_prefix("0X"))
                    .unwrap_or(trimmed);
                Self::Binary(decode_hex(hex).ok_or_else(|| bad("expected hexadecimal digits"))?)
            }
        })
    }

    /// The value as the typed JSON form's `value` (null for NULL).
    fn to_json_value(&self) -> Json {
        match self {
            Self::Text(s) | Self::Number(s) => Json::String(s.clone()),
            Self::Int(n) => Json::String(n.to_string()),
            Self::Float(f) => Json::String(format_float(*f)),
            Self::Bool(b) => Json::Bool(*b),
            Self::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Self::Time(t) => Json::String(t.format("%H:%M:%S%.f").to_string()),
            Self::TimestampNtz(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
            Self::TimestampLtz(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()),
            Self::TimestampTz(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string()),
            Self::Binary(b) => Json::String(b.iter().map(|x| format!("{x:02X}")).collect()),
            Self::Null(_) => Json::Null,
        }
    }
}

/// The parameters of one statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Params {
    #[default]
    None,
    /// For `?` placeholders, in order.
    Positional(Vec<BindValue>),
    /// For `:name` placeholders; names without the colon, in the order given.
    Named(Vec<(String, BindValue)>),
}

impl Params {
    pub fn is_empty(&self) -> bool {
        match self {
            Self::None => true,
            Self::Positional(v) => v.is_empty(),
            Self::Named(v) => v.is_empty(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Positional(v) => v.len(),
            Self::Named(v) => v.len(),
        }
    }

    /// Collects command-line parameters: all positional or all named.
    pub fn from_args(args: &[Arg]) -> Result<Self, BindError> {
        if args.is_empty() {
            return Ok(Self::None);
        }
        if args.iter().all(|a| a.name.is_none()) {
            return Ok(Self::Positional(
                args.iter().map(|a| a.value.clone()).collect(),
            ));
        }
        if args.iter().any(|a| a.name.is_none()) {
            return Err(BindError::Mixed);
        }
        let mut named: Vec<(String, BindValue)> = Vec::with_capacity(args.len());
        for arg in args {
            let name = arg.name.clone().unwrap_or_default();
            if named.iter().any(|(n, _)| *n == name) {
                return Err(BindError::Duplicate(format!(":{name}")));
            }
            named.push((name, arg.value.clone()));
        }
        Ok(Self::Named(named))
    }

    /// The API's `params`: an array (positional) or an object (named) of plain JSON values or
    /// typed forms.
    pub fn from_json(json: &Json) -> Result<Self, BindError> {
        match json {
            Json::Null => Ok(Self::None),
            Json::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| from_json_value(&format!("{}", i + 1), v))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| {
                    if v.is_empty() {
                        Self::None
                    } else {
                        Self::Positional(v)
                    }
                }),
            Json::Object(map) => {
                let mut named = Vec::with_capacity(map.len());
                for (name, v) in map {
                    let name = name.strip_prefix(':').unwrap_or(name);
                    check_name(name)?;
                    named.push((name.to_string(), from_json_value(&format!(":{name}"), v)?));
                }
                Ok(if named.is_empty() {
                    Self::None
                } else {
                    Self::Named(named)
                })
            }
            _ => Err(BindError::BadShape),
        }
    }

    /// The exact typed JSON form, as the command line sends it; `None` when there are none.
    pub fn to_json(&self) -> Option<Json> {
        let typed =
            |v: &BindValue| serde_json::json!({"type": v.ty().name(), "value": v.to_json_value()});
        match self {
            Self::None => None,
            Self::Positional(v) => Some(Json::Array(v.iter().map(typed).collect())),
            Self::Named(v) => Some(Json::Object(
                v.iter().map(|(n, v)| (n.clone(), typed(v))).collect(),
            )),
        }
    }
}

/// One `-p` argument: `[NAME=][TYPE:]VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: BindValue,
}

/// Parses one `-p` argument. `NAME=` is recognised only when NAME is a bind name and `TYPE:`
/// only when TYPE is a known type, so `-p 'a b=c'` and `-p 'http://x'` stay text; a text value
/// that looks like either is written `-p text:a=b`.
pub fn parse_arg(raw: &str) -> Result<Arg, BindError> {
    let (name, rest) = match raw.split_once('=') {
        Some((name, rest)) if check_name(name).is_ok() => (Some(name.to_string()), rest),
        _ => (None, raw),
    };
    let value = match rest.split_once(':') {
        Some((ty, value)) if ty.eq_ignore_ascii_case("null") => {
            if value.is_empty() {
                BindValue::Null(BindType::Text)
            } else {
                BindValue::Null(
                    BindType::parse(value).ok_or_else(|| BindError::UnknownType(value.into()))?,
                )
            }
        }
        Some((ty, value)) => match BindType::parse(ty) {
            Some(ty) => BindValue::parse(ty, value)?,
            None => BindValue::Text(rest.to_string()),
        },
        None => BindValue::Text(rest.to_string()),
    };
    Ok(Arg { name, value })
}

fn from_json_value(label: &str, value: &Json) -> Result<BindValue, BindError> {
    Ok(match value {
        Json::Null => BindValue::Null(BindType::Text),
        Json::Bool(b) => BindValue::Bool(*b),
        Json::String(s) => BindValue::Text(s.clone()),
        Json::Number(n) => {
            let text = n.to_string();
            if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                BindValue::parse(BindType::Int, &text)?
            } else {
                BindValue::parse(BindType::Float, &text)?
            }
        }
        Json::Array(_) => return Err(BindError::Untyped(label.into())),
        Json::Object(map) => {
            let (Some(Json::String(ty)), 2) = (map.get("type"), map.len()) else {
                return Err(if map.contains_key("type") {
                    BindError::BadTypedForm(label.into())
                } else {
                    BindError::Untyped(label.into())
                });
            };
            let ty = if ty.eq_ignore_ascii_case("null") {
                BindType::Text
            } else {
                BindType::parse(ty).ok_or_else(|| BindError::UnknownType(ty.clone()))?
            };
            match map.get("value") {
                None => return Err(BindError::BadTypedForm(label.into())),
                Some(Json::Null) => BindValue::Null(ty),
                Some(Json::String(s)) => BindValue::parse(ty, s)?,
                Some(Json::Bool(b)) if ty == BindType::Bool => BindValue::Bool(*b),
                Some(Json::Number(n)) => BindValue::parse(ty, &n.to_string())?,
                Some(_) => return Err(BindError::BadTypedForm(label.into())),
            }
        }
    })
}

fn check_name(name: &str) -> Result<(), BindError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_digit() => name.chars().all(|c| c.is_ascii_digit()),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if ok && name.len() <= 255 {
        Ok(())
    } else {
        Err(BindError::BadName(shorten(name)))
    }
}

/// The largest magnitude NUMBER(38,0) holds.
const MAX_NUMBER: u128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// `-012.50` → `-12.50`; `None` unless it is a plain decimal of at most 38 digits.
fn canonical_decimal(text: &str) -> Option<String> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if int.len() + frac.len() > 38 {
        return None;
    }
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

fn naive_timestamp(text: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN))
    })
}

fn zoned_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .map(|t| format!("{t}+00:00"))
        .unwrap_or_else(|| text.to_string());
    [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f %:z",
        "%Y-%m-%d %H:%M:%S%.f %:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ]
    .iter()
    .find_map(|f| DateTime::parse_from_str(&text, f).ok())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// Text that parses back to exactly `f` (Rust's shortest round-trip form).
fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f:?}")
    }
}

/// A value for an error message: the start of it, so a huge argument does not flood the
/// terminal.
fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(raw: &str) -> Arg {
        parse_arg(raw).unwrap()
    }

    #[test]
    fn bare_values_are_text_even_when_they_look_typed() {
        for raw in [
            "42",
            "O'Hara",
            "null",
            "http://x:1/",
            "a b=c",
            "?",
            ":name",
            "$$",
        ] {
            assert_eq!(arg(raw).name, None, "{raw}");
            assert_eq!(arg(raw).value, BindValue::Text(raw.into()), "{raw}");
        }
        assert_eq!(arg("text:a=b").value, BindValue::Text("a=b".into()));
        assert_eq!(arg("text:int:4").value, BindValue::Text("int:4".into()));
    }

    #[test]
    fn names_and_types_are_recognised() {
        assert_eq!(arg("id=int:42").name.as_deref(), Some("id"));
        assert_eq!(arg("id=int:42").value, BindValue::Int(42));
        assert_eq!(arg("1=x").name.as_deref(), Some("1"));
        assert_eq!(arg("INT:-7").value, BindValue::Int(-7));
        assert_eq!(arg("null:").value, BindValue::Null(BindType::Text));
        assert_eq!(arg("null:date").value, BindValue::Null(BindType::Date));
        assert_eq!(
            arg("number:-012.50").value,
            BindValue::Number("-12.50".into())
        );
        assert_eq!(
            arg("binary:0xDEad").value,
            BindValue::Binary(vec![0xde, 0xad])
        );
        assert_eq!(arg("bool:yes").value, BindValue::Bool(true));
        assert!(matches!(
            arg("timestamp_tz:2024-01-02 03:04:05.5+05:30").value,
            BindValue::TimestampTz(_)
        ));
        assert!(matches!(
            arg("timestamp_ltz:2024-01-02T03:04:05Z").value,
            BindValue::TimestampLtz(_)
        ));
    }

    #[test]
    fn bad_values_are_refused_with_the_type() {
        let e = parse_arg("int:4x").unwrap_err();
        assert!(e.to_string().contains("integer"), "{e}");
        assert!(parse_arg("date:2024-13-01").is_err());
        assert!(parse_arg("int:100000000000000000000000000000000000000").is_err());
        assert!(parse_arg("binary:abc").is_err());
        assert!(parse_arg("timestamp_tz:2024-01-01 00:00:00").is_err());
        assert!(parse_arg("null:nope").is_err());
    }

    #[test]
    fn positional_and_named_do_not_mix() {
        let args = [arg("a=1"), arg("2")];
        assert_eq!(Params::from_args(&args), Err(BindError::Mixed));
        let args = [arg("a=1"), arg("a=2")];
        assert!(matches!(
            Params::from_args(&args),
            Err(BindError::Duplicate(_))
        ));
    }

    #[test]
    fn the_typed_json_form_round_trips_every_type() {
        let raws = [
            "text:it's ? :x $$",
            "int:-99999999999999999999999999999999999999",
            "number:3.14159265358979323846264338327950288",
            "float:0.1",
            "float:-inf",
            "bool:false",
            "date:0001-01-01",
            "time:23:59:59.123456789",
            "timestamp:2024-02-29 12:00:00.000000001",
            "timestamp_ltz:2024-02-29T12:00:00+01:00",
            "timestamp_tz:2024-02-29T12:00:00-07:30",
            "binary:00FF",
            "null:time",
        ];
        let params = Params::from_args(&raws.map(arg)).unwrap();
        let json = params.to_json().unwrap();
        assert_eq!(Params::from_json(&json).unwrap(), params);
    }

    #[test]
    fn plain_json_values_map_to_their_types() {
        let json: Json =
            serde_json::from_str(r#"[1, 123456789012345678901234567890, 1.5, "s", true, null]"#)
                .unwrap();
        let Params::Positional(v) = Params::from_json(&json).unwrap() else {
            panic!()
        };
        assert_eq!(v[0], BindValue::Int(1));
        assert_eq!(v[1], BindValue::Int(123456789012345678901234567890));
        assert_eq!(v[2], BindValue::Float(1.5));
        assert_eq!(v[3], BindValue::Text("s".into()));
        assert_eq!(v[4], BindValue::Bool(true));
        assert_eq!(v[5], BindValue::Null(BindType::Text));
        let bad: Json = serde_json::from_str(r#"{"a": [1]}"#).unwrap();
        assert!(matches!(
            Params::from_json(&bad),
            Err(BindError::Untyped(_))
        ));
        let bad: Json = serde_json::from_str(r#"{"a b": 1}"#).unwrap();
        assert!(matches!(
            Params::from_json(&bad),
            Err(BindError::BadName(_))
        ));
        assert_eq!(
            Params::from_json(&Json::Bool(true)),
            Err(BindError::BadShape)
        );
    }

    #[test]
    fn debug_output_never_shows_values() {
        let params = Params::from_args(&[arg("secret-value")]).unwrap();
        assert!(!format!("{params:?}").contains("secret"));
    }
}
