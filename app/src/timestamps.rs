//! Timestamps as files of other tools write them: RFC 3339
//! (`2026-11-21T14:03:00Z`, any offset), or a Unix time whose unit is told
//! by its size: seconds below 10¹¹ (until the year 5138), then
//! milliseconds below 10¹⁴, microseconds below 10¹⁷, else nanoseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `text` as whole Unix seconds (rounded down), or what is wrong with it.
pub(crate) fn unix_seconds(text: &str) -> Result<i64, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at.unix_timestamp());
    }
    let number: f64 = text.parse().map_err(|_| {
        format!("timestamp {text:?} is neither RFC 3339 (2026-11-21T14:03:00Z) nor a Unix time")
    })?;
    if !number.is_finite() {
        return Err(format!("timestamp {text:?} is not a finite number"));
    }
    let seconds = match number.abs() {
        n if n < 1e11 => number,
        n if n < 1e14 => number / 1e3,
        n if n < 1e17 => number / 1e6,
        _ => number / 1e9,
    };
    if seconds.abs() > 1e13 {
        return Err(format!("timestamp {text:?} is out of range"));
    }
    Ok(seconds.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unix_unit_and_rfc3339_give_the_same_second() {
        let second = 1_795_269_780;
        for text in [
            "1795269780",
            "1795269780.75",
            "1795269780000",
            "1795269780000000",
            "1795269780000000000",
            "2026-11-21T14:03:00Z",
            "2026-11-21T15:03:00.9+01:00",
        ] {
            assert_eq!(unix_seconds(text), Ok(second), "{text}");
        }
    }

    #[test]
    fn words_and_non_finite_numbers_are_refused_with_the_text() {
        for text in ["yesterday", "NaN", "inf", "", "2026-13-01T00:00:00Z"] {
            let error = unix_seconds(text).expect_err(text);
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }
}
