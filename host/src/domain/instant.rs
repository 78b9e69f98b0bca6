//! Points in time as people write them: an RFC 3339 time, a `YYYY-MM-DD`
//! date (its midnight, UTC) or epoch milliseconds. The CLI's options and
//! the API's time parameters read them the same way, and every answer
//! writes them as RFC 3339 UTC. A date that ends a range (a CLI option or
//! an API parameter) takes in that whole day ([`parse_until`] for a range
//! that leaves its end out, [`parse_through`] for one that takes it in).

const DAY_MS: i64 = 86_400_000;

/// A time as written: an exact instant, or a date (its midnight, UTC).
enum Written {
    Instant(i64),
    Day(i64),
}

fn parse_written(text: &str) -> Result<Written, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Written::Instant(ms));
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Written::Instant(time.timestamp_millis()));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Written::Day(
            date.and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
                .timestamp_millis(),
        ));
    }
    Err(format!(
        "`{text}` is not an RFC 3339 time, a YYYY-MM-DD date or epoch milliseconds"
    ))
}

/// `text` as epoch milliseconds (a date: its midnight).
pub fn parse_instant(text: &str) -> Result<i64, String> {
    parse_written(text).map(|written| match written {
        Written::Instant(ms) | Written::Day(ms) => ms,
    })
}

/// The end of a range that leaves its end out: an instant as it is; a date
/// takes in that whole day, so the next midnight is the first left out.
pub fn parse_until(text: &str) -> Result<i64, String> {
    parse_written(text).map(|written| match written {
        Written::Instant(ms) => ms,
        Written::Day(midnight) => midnight + DAY_MS,
    })
}

/// The last instant of a range that takes its end in: an instant as it is;
/// a date takes in that whole day, to its last millisecond.
pub fn parse_through(text: &str) -> Result<i64, String> {
    parse_written(text).map(|written| match written {
        Written::Instant(ms) => ms,
        Written::Day(midnight) => midnight + DAY_MS - 1,
    })
}

/// Epoch milliseconds as RFC 3339 UTC, to the millisecond.
pub fn format_instant(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A length of time in the unit that reads best: minutes, hours or days.
pub fn format_duration(ms: i64) -> String {
    const MINUTE: f64 = 60_000.0;
    let ms = ms as f64;
    if ms < 60.0 * MINUTE {
        format!("{:.0} min", ms / MINUTE)
    } else if ms < 24.0 * 60.0 * MINUTE {
        format!("{:.1} hours", ms / (60.0 * MINUTE))
    } else {
        format!("{:.1} days", ms / (24.0 * 60.0 * MINUTE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_dates_and_epoch_milliseconds_name_the_same_instant() {
        let midnight = 1_704_067_200_000;
        assert_eq!(parse_instant("2024-01-01T00:00:00Z"), Ok(midnight));
        assert_eq!(parse_instant("2024-01-01T01:00:00+01:00"), Ok(midnight));
        assert_eq!(parse_instant("2024-01-01"), Ok(midnight));
        assert_eq!(parse_instant("1704067200000"), Ok(midnight));
        assert_eq!(format_instant(midnight), "2024-01-01T00:00:00.000Z");
        assert_eq!(
            parse_instant(&format_instant(midnight + 1)),
            Ok(midnight + 1)
        );
        for bad in ["yesterday", "", "2024-13-01", "2024-01-01T00:00"] {
            let refused = parse_instant(bad).unwrap_err();
            assert!(
                refused.contains("is not an RFC 3339 time"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn a_date_that_ends_a_range_takes_in_its_whole_day() {
        let midnight = 1_704_067_200_000;
        let next = midnight + DAY_MS;
        assert_eq!(parse_until("2024-01-01"), Ok(next));
        assert_eq!(parse_through("2024-01-01"), Ok(next - 1));
        // An instant is the bound it names, whichever way the range ends.
        for exact in ["2024-01-01T00:00:00Z", "1704067200000"] {
            assert_eq!(parse_until(exact), Ok(midnight), "{exact}");
            assert_eq!(parse_through(exact), Ok(midnight), "{exact}");
        }
        assert!(parse_until("tomorrow").is_err());
        assert!(parse_through("tomorrow").is_err());
    }

    #[test]
    fn durations_read_in_minutes_hours_or_days() {
        assert_eq!(format_duration(5 * 60_000), "5 min");
        assert_eq!(format_duration(90 * 60_000), "1.5 hours");
        assert_eq!(format_duration(36 * 3_600_000), "1.5 days");
    }
}
