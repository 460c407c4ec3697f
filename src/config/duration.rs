//! Durations as people write them (`30s`, `5m`, `1h`, `0` for never), for config and flags.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration {text:?}: {source}")]
pub struct DurationError {
    text: String,
    source: humantime::DurationError,
}

/// Parses `30s`, `5m`, `1h30m`, or `0` (never / no limit, returned as `Duration::ZERO`).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|source| DurationError {
        text: text.to_string(),
        source,
    })
}

/// Prints a duration the way [`parse`] reads it, to the millisecond (`1ms`, `1s 500ms`); `0`
/// is "never / no limit".
pub fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0".to_string();
    }
    humantime::format_duration(Duration::from_millis(
        u64::try_from(duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    ))
    .to_string()
}

/// Time gone by, in whole seconds and with a unit even when zero (`0s`, `1m 5s`), for
/// "last used … ago".
pub fn format_elapsed(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

/// Time left, rounded up to whole seconds so that "exits in 2s" is never an overstatement of
/// how soon; `0s` when none is left.
pub fn format_remaining(duration: Duration) -> String {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
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
        assert_eq!(
            parse(" soon").unwrap_err().to_string(),
            "invalid duration \"soon\": expected number at 0"
        );
        assert_eq!(format(Duration::from_secs(90)), "1m 30s");
        assert_eq!(format(Duration::ZERO), "0");
    }

    #[test]
    fn sub_second_durations_are_not_shown_as_a_second() {
        assert_eq!(format(Duration::from_millis(1)), "1ms");
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(
            parse(&format(Duration::from_millis(1500))).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn elapsed_and_remaining_time_carry_a_unit_and_round_truthfully() {
        assert_eq!(format_elapsed(Duration::ZERO), "0s");
        assert_eq!(format_elapsed(Duration::from_millis(65_900)), "1m 5s");
        assert_eq!(format_remaining(Duration::from_millis(1_999)), "2s");
        assert_eq!(format_remaining(Duration::from_secs(2)), "2s");
        assert_eq!(format_remaining(Duration::from_millis(1)), "1s");
        assert_eq!(format_remaining(Duration::ZERO), "0s");
    }
}
