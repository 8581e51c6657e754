//! Points in time as the API takes them: RFC 3339
//! (`2026-11-21T14:03:00Z`, any offset) or Unix seconds (`1795356180`,
//! fractions allowed).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix nanoseconds as RFC 3339 (UTC).
pub(crate) fn format_instant(unix_nanos: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nanos))
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix_nanos} ns"))
}

/// `text` as Unix nanoseconds, or what is wrong with it.
pub(crate) fn parse_instant(name: &str, text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos())
            .map_err(|_| format!("{name}={text} is out of range"));
    }
    unix_seconds(text).ok_or_else(|| {
        format!(
            "{name}={text:?} is neither an RFC 3339 time (2026-11-21T14:03:00Z) nor Unix seconds"
        )
    })
}

/// `S` or `S.F` (up to nanoseconds, read exactly: no float rounding).
fn unix_seconds(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let mut nanos: String = fraction.chars().take(9).collect();
    while nanos.len() < 9 {
        nanos.push('0');
    }
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_unix_seconds_are_read_and_the_rest_is_refused() {
        assert_eq!(
            parse_instant("at", "1970-01-01T00:00:01.5Z"),
            Ok(1_500_000_000)
        );
        assert_eq!(parse_instant("at", "1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(
            parse_instant("at", "1795356180"),
            Ok(1_795_356_180_000_000_000)
        );
        assert_eq!(parse_instant("at", " 2.25 "), Ok(2_250_000_000));
        assert_eq!(format_instant(1_500_000_000), "1970-01-01T00:00:01.5Z");
        for bad in ["", "yesterday", "-5", "NaN", "1e30", "2026-13-01T00:00:00Z"] {
            let error = parse_instant("from", bad).unwrap_err();
            assert!(error.starts_with("from="), "{error}");
        }
    }
}
