//! Time as Sealpost stores it: INTEGER milliseconds since the Unix epoch, UTC.
//!
//! Every timestamp column in the database uses this representation; convert to
//! [`time::OffsetDateTime`] only at the edges (display, export, cookies).

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMillis = i64;

/// The current time in Unix milliseconds.
pub fn now_ms() -> UnixMillis {
    to_ms(OffsetDateTime::now_utc())
}

/// Convert a date-time to Unix milliseconds (saturating far outside the representable range).
pub fn to_ms(t: OffsetDateTime) -> UnixMillis {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// Convert Unix milliseconds to a UTC date-time, or `None` when out of range.
pub fn from_ms(ms: UnixMillis) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Format Unix milliseconds as RFC 3339 (UTC); out-of-range values are shown as the raw number.
pub fn format_rfc3339(ms: UnixMillis) -> String {
    from_ms(ms)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Parse an RFC 3339 date-time into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<UnixMillis, time::error::Parse> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map(to_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() -> Result<(), time::error::Parse> {
        let ms = parse_rfc3339("2026-01-02T03:04:05.678Z")?;
        assert_eq!(ms, 1_767_323_045_678);
        assert_eq!(format_rfc3339(ms), "2026-01-02T03:04:05.678Z");
        Ok(())
    }
}
