//! The caller's deadline, from the `grpc-timeout` request header (gRPC over HTTP/2: digits and
//! a unit, `H` `M` `S` `m` `u` `n`). Envoy sets it from its ext_authz `timeout`; a gRPC client
//! sets it from its call deadline. A wait on the request path (the unknown-`kid` refetch) ends
//! before it, so the caller gets the answer rather than a time-out.

use std::time::Duration;

/// The time the caller waits, if it said.
pub(crate) fn of(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// The time a request may take: the caller's deadline, and at most `request_timeout` (the
/// server ends the request then, so waits on its path must end before).
pub(crate) fn within(
    metadata: &tonic::metadata::MetadataMap,
    request_timeout: Duration,
) -> Duration {
    of(metadata).map_or(request_timeout, |deadline| deadline.min(request_timeout))
}

/// Parses a `grpc-timeout` value; at most 8 digits, as the protocol allows.
fn parse(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nonsense_does_not() {
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("5000u"), Some(Duration::from_millis(5)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "10", "10x", "-1m", "123456789m", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
