//! Bounds on what callers may hold: the `limits:` block. Read when the server starts (the
//! listeners are built with them); a reload that changes them says so and waits for a restart.
//!
//! ```yaml
//! limits:
//!   max_in_flight: 4096              # requests being handled at once (gRPC and forward-auth)
//!   max_connections: 4096            # open connections per listener; more are closed at once
//!   max_streams_per_connection: 1024 # HTTP/2 concurrent streams of one gRPC connection
//!   request_timeout: 10s             # when the caller sends no shorter grpc-timeout
//!   idle_timeout: 60s                # a connection that sends nothing this long is closed
//!   header_read_timeout: 10s         # an HTTP request's headers must arrive within this
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::check::Checker;

/// The bounds of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LimitSettings {
    /// Requests being handled at once, over gRPC (health checks excepted) and forward-auth;
    /// more are answered at once with `RESOURCE_EXHAUSTED` or 503.
    pub max_in_flight: usize,
    /// Open connections per listener; a connection over the bound is closed when accepted.
    pub max_connections: usize,
    /// HTTP/2 `max_concurrent_streams` of a gRPC connection (its requests in progress).
    pub max_streams_per_connection: u32,
    /// The longest a gRPC request runs when the caller sets no shorter `grpc-timeout`.
    pub request_timeout: Duration,
    /// A connection that sends nothing for this long is closed (HTTP/2 keepalive PINGs count
    /// as traffic, so a live gateway is never cut off).
    pub idle_timeout: Duration,
    /// The headers of an HTTP request (forward-auth, metrics) must arrive within this.
    pub header_read_timeout: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 4096,
            max_connections: 4096,
            max_streams_per_connection: 1024,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// A `limits:` block as written.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    max_in_flight: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_streams_per_connection: Option<Spanned<u64>>,
    request_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    header_read_timeout: Option<Spanned<String>>,
}

impl Checker {
    /// Checks the `limits:` block.
    pub(super) fn limits(&mut self, raw: &RawLimits) -> LimitSettings {
        let mut limits = LimitSettings::default();
        let count = |checker: &mut Self, value: &Option<Spanned<u64>>, name: &str, max: u64| {
            let value = value.as_ref()?;
            if (1..=max).contains(&value.value) {
                return Some(value.value);
            }
            let message = format!("must be between 1 and {max}");
            checker.error(value.referenced.line(), format!("limits.{name}"), message);
            None
        };
        if let Some(value) = count(self, &raw.max_in_flight, "max_in_flight", 1 << 20) {
            limits.max_in_flight = value as usize;
        }
        if let Some(value) = count(self, &raw.max_connections, "max_connections", 1 << 20) {
            limits.max_connections = value as usize;
        }
        let streams = &raw.max_streams_per_connection;
        if let Some(value) = count(self, streams, "max_streams_per_connection", 1 << 16) {
            limits.max_streams_per_connection = value as u32;
        }
        let timeouts = [
            (
                &raw.request_timeout,
                "request_timeout",
                &mut limits.request_timeout,
            ),
            (&raw.idle_timeout, "idle_timeout", &mut limits.idle_timeout),
            (
                &raw.header_read_timeout,
                "header_read_timeout",
                &mut limits.header_read_timeout,
            ),
        ];
        for (value, name, slot) in timeouts {
            let Some(value) = value else { continue };
            let path = format!("limits.{name}");
            match self.duration(value, &path) {
                Some(duration) if duration.is_zero() || duration > Duration::from_secs(3600) => {
                    self.error(
                        value.referenced.line(),
                        path,
                        "must be longer than 0s and at most 1h",
                    );
                }
                Some(duration) => *slot = duration,
                None => {}
            }
        }
        if limits.idle_timeout <= limits.request_timeout {
            let line = raw
                .idle_timeout
                .as_ref()
                .map_or(0, |value| value.referenced.line());
            self.error(
                line,
                "limits.idle_timeout",
                "must be longer than request_timeout, or a connection could be closed under a request in progress",
            );
        }
        limits
    }
}
