//! The one place that reads the wall clock, so that everything else takes `now` as a parameter.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
#[allow(
    clippy::disallowed_methods,
    reason = "this is the one module that reads the wall clock"
)]
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Milliseconds since the Unix epoch, now (for reports that other programs line up in time).
#[allow(
    clippy::disallowed_methods,
    reason = "this is the one module that reads the wall clock"
)]
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A time in seconds since the epoch as RFC 3339, to the second (before the epoch: the epoch).
pub(crate) fn rfc3339(seconds: i64) -> String {
    let seconds = u64::try_from(seconds).unwrap_or(0);
    let time = UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}
