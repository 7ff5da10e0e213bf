//! The `cache:` block: the verified-token cache shared by every transport.
//!
//! ```yaml
//! cache:
//!   enabled: true        # on by default
//!   max_entries: 100000  # most cached tokens
//!   max_bytes: 64MiB     # most memory the entries may use (a number of bytes, or KiB/MiB/GiB)
//!   max_ttl: 5m          # an entry lives until the token's exp, but never longer than this
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// How valid verdicts are cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Whether the cache is used at all.
    pub enabled: bool,
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes of entries (an estimate of what each entry holds, keys and claims included).
    pub max_bytes: u64,
    /// Longest an entry is kept, whatever the token's `exp`.
    pub max_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 100_000,
            max_bytes: 64 << 20,
            max_ttl: Duration::from_secs(300),
        }
    }
}

/// A `cache:` block as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) enabled: Option<Spanned<bool>>,
    pub(super) max_entries: Option<Spanned<u64>>,
    pub(super) max_bytes: Option<Spanned<String>>,
    pub(super) max_ttl: Option<Spanned<String>>,
}

/// Most entries the cache may be configured with.
pub(super) const MAX_ENTRIES_LIMIT: u64 = 10_000_000;

/// Parses a size such as `65536`, `512KiB`, `64MiB` or `1GiB`.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units_only() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size(" 1GiB "), Some(1 << 30));
        assert_eq!(
            parse_size("64MB"),
            None,
            "MB is ambiguous; only MiB is taken"
        );
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }
}
