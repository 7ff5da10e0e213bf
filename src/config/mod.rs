//! The YAML configuration: strict parsing, then a check that reports every mistake with its
//! file, line and path, then typed specs that make invalid states unrepresentable.
//!
//! ```yaml
//! listen: "0.0.0.0:50051"
//! metrics_listen: "0.0.0.0:9090"
//! tenants:
//!   - id: contoso
//!     discovery_url: https://login.microsoftonline.com/<tid>/v2.0/.well-known/openid-configuration
//!     audiences: ["api://contoso-api"]
//! ```
//!
//! One file per concern: [`raw`] (the YAML as written), [`check`] (the shared checks),
//! `tenant.rs` (one tenant), `preset.rs` and [`entra`] (the Microsoft Entra preset), [`spec`] (the checked
//! result), [`error`], and the `cache` and `refresh` blocks.
//!
//! May import: the core only.

use std::path::Path;
use std::time::Duration;

mod cache;
mod check;
mod entra;
mod error;
pub(crate) mod fetch;
pub(crate) mod issuers;
pub(crate) mod limits;
pub(crate) mod pem;
mod preset;
mod raw;
mod refresh;
mod spec;
mod tenant;

pub(crate) use cache::CacheSettings;
pub(crate) use check::is_loopback;
pub use error::{ConfigError, ConfigErrors};
pub use spec::Config;
pub(crate) use spec::{ExtAuthzSettings, GatewayMode, KeySource, TenantSpec};

use check::Checker;
use raw::RawConfig;

/// Default gRPC listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default maximum number of tokens in one `ValidateBatch` call.
pub(crate) const DEFAULT_MAX_BATCH_SIZE: usize = 1000;
/// Largest clock skew a tenant may configure.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);

impl Config {
    /// Reads and checks a configuration file; relative `jwks_file` paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![ConfigError {
                file: Some(path.to_owned()),
                line: None,
                path: String::new(),
                message: format!("cannot read the file: {error}"),
            }])
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        Self::parse(&text, Some(path), &base)
    }

    /// Parses and checks configuration text. `file` is only used in error messages.
    pub fn parse(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Self, ConfigErrors> {
        // serde_path_to_error tracks where in the document a parse error happened.
        let mut error_path = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
            serde_path_to_error::deserialize::<_, RawConfig>(deserializer).map_err(|error| {
                // `Spanned` wrappers show up as `.value` segments; no configuration field has that name.
                error_path = error
                    .path()
                    .to_string()
                    .replace(".value", "")
                    .replace(".?", "");
                error.into_inner()
            })
        });
        let raw = parsed.map_err(|error| {
            let line = error
                .location()
                .map(|location| location.line())
                .filter(|line| *line > 0);
            ConfigErrors(vec![ConfigError {
                file: file.map(Path::to_owned),
                line,
                path: if error_path == "." {
                    String::new()
                } else {
                    error_path
                },
                message: parse_message(&error.to_string()),
            }])
        })?;
        let mut checker = Checker {
            file: file.map(Path::to_owned),
            errors: Vec::new(),
            files: Vec::new(),
        };
        let config = checker.config(raw, base_dir);
        if checker.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(checker.errors))
        }
    }
}

/// The first line of a YAML parser message, without its own "error: line N column M:" prefix
/// (the line is reported separately).
fn parse_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let without_error = first.strip_prefix("error: ").unwrap_or(first);
    match without_error
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) if position.contains("column") => rest.to_owned(),
        _ => without_error.to_owned(),
    }
}

#[cfg(test)]
mod tests;
