//! Durations as people write them (`30s`, `5m`, `1h`, `0` for never), for config and flags.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses `30s`, `5m`, `1h30m`, or `0` (never / no limit, returned as `Duration::ZERO`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// Prints a duration the way [`parse`] reads it.
pub fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0".to_string();
    }
    humantime::format_duration(Duration::from_secs(duration.as_secs().max(1))).to_string()
}

/// Serde adapter: a duration field written as a human string, or a number of seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Seconds(secs) => Ok(Duration::from_secs(secs)),
        Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("soon").is_err());
        assert_eq!(format(Duration::from_secs(90)), "1m 30s");
        assert_eq!(format(Duration::ZERO), "0");
    }
}
