//! The tokens file of `tokengate bench`: one token a line, optionally behind the verdict it must
//! get, so that every answer can be checked.
//!
//! ```text
//! # comments and blank lines are skipped
//! eyJhbGciOi...                 # no label: the token must be valid
//! valid eyJhbGciOi...
//! expired eyJhbGciOi...         # a reason code: it must be rejected for that reason
//! ```

use std::path::Path;
use std::sync::Arc;

use tokengate_core::reason::Reason;

/// The verdict a token must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Valid (allowed, through a gateway transport).
    Valid,
    /// Rejected for this reason (denied, through a gateway transport).
    Rejected(Reason),
}

/// One token and its expected verdict.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// The compact JWS.
    pub token: Arc<str>,
    /// What tokengate must answer.
    pub expect: Expect,
}

/// Reads a tokens file; an error names the line.
pub(crate) fn read(path: &Path) -> Result<Vec<Sample>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let samples = parse(&text).map_err(|error| format!("{}:{error}", path.display()))?;
    if samples.is_empty() {
        return Err(format!("{}: no tokens in the file", path.display()));
    }
    Ok(samples)
}

/// Parses the text of a tokens file; an error starts with the line number.
pub(crate) fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (label, token) = match line.split_once(char::is_whitespace) {
            Some((label, token)) => (Some(label), token.trim()),
            None => (None, line),
        };
        let expect = match label {
            None | Some("valid") => Expect::Valid,
            Some(code) => match Reason::ALL.iter().find(|reason| reason.code() == code) {
                Some(reason) => Expect::Rejected(*reason),
                None => {
                    return Err(format!(
                        "{}: {code:?} is neither \"valid\" nor a reason code (such as \"expired\")",
                        index + 1
                    ));
                }
            },
        };
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(format!(
                "{}: expected `[LABEL] TOKEN`, one token a line",
                index + 1
            ));
        }
        samples.push(Sample {
            token: token.into(),
            expect,
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_verdicts_and_unlabelled_tokens_must_be_valid() {
        let samples =
            parse("# header\n\naaa.bbb.ccc\nvalid a.b.c\nexpired x.y.z\n").expect("parses");
        let expects: Vec<Expect> = samples.iter().map(|sample| sample.expect).collect();
        assert_eq!(
            expects,
            [
                Expect::Valid,
                Expect::Valid,
                Expect::Rejected(Reason::Expired)
            ]
        );
        assert_eq!(&*samples[2].token, "x.y.z");
    }

    #[test]
    fn unknown_labels_and_extra_words_name_their_line() {
        let error = parse("a.b.c\nexpird x.y.z\n").expect_err("a typo");
        assert!(error.starts_with("2: "), "{error}");
        let error = parse("valid a.b.c d\n").expect_err("two tokens");
        assert!(error.starts_with("1: "), "{error}");
    }
}
