//! Text helpers for rejection details: how an untrusted value is shown to an operator.

/// Quotes an untrusted value for a detail message: JSON-escaped and cut to a readable length.
pub fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut shown: String = value.chars().take(MAX_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    serde_json::to_string(&shown).unwrap_or_else(|_| String::from("\"?\""))
}

/// An untrusted value cut to a readable length (on a character boundary), unquoted: for names
/// such as a key's `kid` that are shown as they are.
pub fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut shown: String = value.chars().take(MAX_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    shown
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
        assert_eq!(shorten("kid"), "kid");
        assert_eq!(shorten(&long).chars().count(), 81);
    }
}
