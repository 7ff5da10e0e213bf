//! A rejected token: a stable [`Reason`] plus a human-readable detail with a hint.

use std::borrow::Cow;
use std::fmt;

use crate::hints::Hint;
use crate::reason::Reason;

/// Why one token was rejected. The detail never contains the token itself; it may quote
/// short claim or header values (truncated) so that an operator sees the cause at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The machine-readable reason.
    pub reason: Reason,
    /// What was wrong and, where it helps, what to change.
    pub detail: Cow<'static, str>,
    /// A known cause, with a stable code, when one was recognised.
    pub hint: Option<Hint>,
}

impl Rejection {
    /// A rejection with a fixed detail (no allocation).
    pub const fn fixed(reason: Reason, detail: &'static str) -> Self {
        Self {
            reason,
            detail: Cow::Borrowed(detail),
            hint: None,
        }
    }

    /// A rejection with a formatted detail.
    pub fn new(reason: Reason, detail: String) -> Self {
        Self {
            reason,
            detail: Cow::Owned(detail),
            hint: None,
        }
    }

    /// Adds a recognised cause: its code, and its sentence at the end of the detail.
    pub fn with_hint(mut self, hint: Option<(Hint, String)>) -> Self {
        if let Some((hint, text)) = hint {
            self.detail = Cow::Owned(format!("{}; {text}", self.detail));
            self.hint = Some(hint);
        }
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

impl std::error::Error for Rejection {}

/// Quotes an untrusted value for a detail message: JSON-escaped and cut to a readable length.
pub fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut shown: String = value.chars().take(MAX_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    serde_json::to_string(&shown).unwrap_or_else(|_| String::from("\"?\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("a\"b"), r#""a\"b""#);
        let long = "x".repeat(500);
        let quoted = quote(&long);
        assert!(quoted.chars().count() < 90, "{quoted}");
        assert!(quoted.ends_with("…\""));
    }
}
