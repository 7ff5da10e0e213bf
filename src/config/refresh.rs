//! Key refresh settings: the top-level `refresh:` block, which a tenant's own `refresh:` block
//! overrides field by field.
//!
//! ```yaml
//! refresh:
//!   interval: 10m            # when the provider sends no Cache-Control max-age
//!   min_interval: 1m         # max-age is clamped to [min_interval, max_interval]
//!   max_interval: 24h
//!   max_retry_interval: 5m   # failed fetches retry from 1s, doubling up to this
//!   max_stale: 24h           # last good keys keep serving this long while refreshes fail
//!   unknown_kid_cooldown: 30s
//!   unknown_kid_wait: 1s
//!   startup_grace: 30s       # top level only
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// How a tenant's remote keys are kept fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RefreshSettings {
    /// Refresh period when the JWKS response has no `Cache-Control: max-age`.
    pub interval: Duration,
    /// Lower clamp for `max-age`.
    pub min_interval: Duration,
    /// Upper clamp for `max-age`.
    pub max_interval: Duration,
    /// Longest delay between retries of a failing fetch (retries start at 1 s and double).
    pub max_retry_interval: Duration,
    /// How long the last good keys keep serving while every refresh fails.
    pub max_stale: Duration,
    /// Least time between two refetches triggered by tokens with an unknown `kid`.
    pub unknown_kid_cooldown: Duration,
    /// Longest a request with an unknown `kid` waits for the refetch it triggered.
    pub unknown_kid_wait: Duration,
    /// How long health may report NOT_SERVING at start-up while tenants still lack keys.
    pub startup_grace: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(600),
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(24 * 3600),
            max_retry_interval: Duration::from_secs(300),
            max_stale: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            unknown_kid_wait: Duration::from_secs(1),
            startup_grace: Duration::from_secs(30),
        }
    }
}

impl RefreshSettings {
    /// The refresh delay for a response's `max-age` (clamped), or `interval` without one.
    pub fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        match max_age {
            Some(max_age) => max_age.clamp(self.min_interval, self.max_interval),
            None => self.interval,
        }
    }
}

/// A `refresh:` block as written.
#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRefresh {
    interval: Option<Spanned<String>>,
    min_interval: Option<Spanned<String>>,
    max_interval: Option<Spanned<String>>,
    max_retry_interval: Option<Spanned<String>>,
    max_stale: Option<Spanned<String>>,
    unknown_kid_cooldown: Option<Spanned<String>>,
    unknown_kid_wait: Option<Spanned<String>>,
    pub(super) startup_grace: Option<Spanned<String>>,
}

impl RawRefresh {
    /// Applies the fields this block sets on top of `base`, reporting bad values through `error`.
    pub(super) fn apply(
        &self,
        base: RefreshSettings,
        path: &str,
        mut parse: impl FnMut(&Spanned<String>, &str) -> Option<Duration>,
    ) -> RefreshSettings {
        let mut settings = base;
        let fields: [(&Option<Spanned<String>>, &str, &mut Duration); 8] = [
            (&self.interval, "interval", &mut settings.interval),
            (
                &self.min_interval,
                "min_interval",
                &mut settings.min_interval,
            ),
            (
                &self.max_interval,
                "max_interval",
                &mut settings.max_interval,
            ),
            (
                &self.max_retry_interval,
                "max_retry_interval",
                &mut settings.max_retry_interval,
            ),
            (&self.max_stale, "max_stale", &mut settings.max_stale),
            (
                &self.unknown_kid_cooldown,
                "unknown_kid_cooldown",
                &mut settings.unknown_kid_cooldown,
            ),
            (
                &self.unknown_kid_wait,
                "unknown_kid_wait",
                &mut settings.unknown_kid_wait,
            ),
            (
                &self.startup_grace,
                "startup_grace",
                &mut settings.startup_grace,
            ),
        ];
        for (value, name, slot) in fields {
            if let Some(value) = value
                && let Some(duration) = parse(value, &format!("{path}.{name}"))
            {
                *slot = duration;
            }
        }
        settings
    }

    /// The line of the block's first field, for errors about the block as a whole.
    pub(super) fn line(&self) -> u64 {
        [
            &self.interval,
            &self.min_interval,
            &self.max_interval,
            &self.max_retry_interval,
            &self.max_stale,
            &self.unknown_kid_cooldown,
            &self.unknown_kid_wait,
            &self.startup_grace,
        ]
        .into_iter()
        .flatten()
        .map(|value| value.referenced.line())
        .min()
        .unwrap_or(0)
    }
}

/// Problems with a complete set of refresh settings, as (field, message).
pub(super) fn problems(settings: &RefreshSettings) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let second = Duration::from_secs(1);
    if settings.min_interval < second {
        found.push(("min_interval", "must be at least 1s".to_owned()));
    }
    if settings.min_interval > settings.max_interval {
        found.push((
            "min_interval",
            "must not be longer than max_interval".to_owned(),
        ));
    }
    if settings.interval < settings.min_interval || settings.interval > settings.max_interval {
        found.push((
            "interval",
            "must lie between min_interval and max_interval".to_owned(),
        ));
    }
    if settings.max_retry_interval < second {
        found.push(("max_retry_interval", "must be at least 1s".to_owned()));
    }
    if settings.max_stale < settings.min_interval {
        found.push((
            "max_stale",
            "must not be shorter than min_interval".to_owned(),
        ));
    }
    if settings.unknown_kid_cooldown < second {
        found.push(("unknown_kid_cooldown", "must be at least 1s".to_owned()));
    }
    if settings.unknown_kid_wait > Duration::from_secs(10) {
        found.push(("unknown_kid_wait", "must be at most 10s".to_owned()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_clamped_and_absent_max_age_uses_the_interval() {
        let settings = RefreshSettings::default();
        assert_eq!(settings.next_refresh(None), settings.interval);
        assert_eq!(
            settings.next_refresh(Some(Duration::from_secs(1))),
            settings.min_interval
        );
        assert_eq!(
            settings.next_refresh(Some(Duration::from_secs(999_999))),
            settings.max_interval
        );
        assert_eq!(
            settings.next_refresh(Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
        assert!(problems(&settings).is_empty());
    }
}
