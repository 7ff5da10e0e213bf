//! `tokengate check-config`: checks a configuration file and summarises it, tenant by tenant.

use std::path::Path;
use std::process::ExitCode;

use super::{print_stdout, report};
use crate::config::{Config, KeySource};

/// Appends one formatted line to a `String`.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// `tokengate check-config`: the configuration's errors, or a summary of what it sets.
pub(super) fn check_config(file: &Path) -> ExitCode {
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(errors) => return report(&errors),
    };
    let mut out = String::new();
    line!(out, "{}: OK", file.display());
    line!(out, "  listen: {}", config.listen);
    match config.metrics_listen {
        Some(address) => line!(out, "  metrics_listen: {address}"),
        None => line!(out, "  metrics_listen: (off)"),
    }
    line!(
        out,
        "  max_token_size: {} bytes, max_batch_size: {}",
        config.max_token_size,
        config.max_batch_size
    );
    line!(out, "  tenants: {}", config.tenants.len());
    for tenant in &config.tenants {
        let source = match &tenant.key_source {
            KeySource::Discovery(url) => format!("discovery {url}"),
            KeySource::JwksUri(url) => format!("jwks_uri {url}"),
            KeySource::Static(keys) => format!("{} static key(s)", keys.len()),
        };
        let issuers = if tenant.issuers.is_empty() {
            "(from discovery)".to_owned()
        } else {
            tenant.issuers.join(", ")
        };
        let algorithms = match (&tenant.algorithms, &tenant.key_source) {
            (Some(set), _) => set.to_string(),
            (None, KeySource::Static(keys)) => format!("{} (from the keys)", keys.algorithms()),
            (None, _) => "(the algorithms of the fetched keys)".to_owned(),
        };
        line!(out, "  - {}: {source}", tenant.id);
        line!(out, "      issuers: {issuers}");
        line!(
            out,
            "      audiences: {}",
            if tenant.any_audience {
                "any (on purpose)".to_owned()
            } else if tenant.policy.audiences.is_empty() {
                "(any)".to_owned()
            } else {
                tenant.policy.audiences.join(", ")
            }
        );
        line!(out, "      algorithms: {algorithms}");
        line!(
            out,
            "      clock_skew: {}s, require_expiration: {}, max_lifetime: {}",
            tenant.policy.clock_skew,
            tenant.policy.require_expiration,
            tenant
                .policy
                .max_lifetime
                .map_or_else(|| "(none)".to_owned(), |seconds| format!("{seconds}s"))
        );
        if !tenant.policy.required_claims.is_empty() {
            let claims: Vec<&str> = tenant
                .policy
                .required_claims
                .iter()
                .map(|c| c.claim.as_str())
                .collect();
            line!(out, "      required_claims: {}", claims.join(", "));
        }
        if tenant.policy.audiences.is_empty() && !tenant.any_audience {
            line!(
                out,
                "      warning: no audiences: a token of these issuers is accepted for any application; list audiences (or backend_application_ids), or write `audiences: any`"
            );
        }
        if let Some(owner) = &tenant.issuer_taken_by {
            line!(
                out,
                "      warning: the issuer this tenant would discover is tenant {owner}'s: it will load no keys (write share_issuer: true on both to share it)"
            );
        }
        if let KeySource::Static(keys) = &tenant.key_source {
            for skipped in keys.skipped() {
                line!(
                    out,
                    "      warning: key {} skipped: {}",
                    skipped.kid.as_deref().unwrap_or("(no kid)"),
                    skipped.reason
                );
            }
        }
    }
    print_stdout(&out);
    ExitCode::SUCCESS
}
