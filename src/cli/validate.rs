//! `tokengate validate`: judges tokens offline, with the same validator as the service (keys
//! are loaded once; an unknown `kid` is not refetched), and prints one JSON line per token.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_INVALID, EXIT_USAGE, load_config, report, runtime};
use crate::clock;
use crate::config::Config;
use crate::keys::fetch::Fetcher;
use crate::keys::refresh;
use crate::validator::Validator;
use crate::validator::verdict::Verdict;

/// `tokengate validate`: the verdict on `token` (or on each line of stdin for `-`).
pub(super) fn validate(
    config_path: Option<&Path>,
    tenant: &str,
    now: Option<i64>,
    token: &str,
) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(errors) => return report(&errors),
    };
    let validator = match load_validator(&config) {
        Ok(validator) => validator,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let now = now.unwrap_or_else(clock::now);
    let mut all_valid = true;
    let mut out = std::io::stdout().lock();
    let mut judge = |token: &str| {
        let verdict = Verdict::from(validator.judge_at(token, tenant, now));
        all_valid &= verdict.valid;
        let _ = writeln!(out, "{}", verdict.to_json());
    };
    // Line by line, so that a stream of tokens is judged as it arrives.
    if token == "-" {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => judge(&line),
                Err(error) => {
                    eprintln!("error: cannot read standard input: {error}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    } else {
        judge(token);
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// The tokens to ask about: `token` itself, or for `-` each non-empty line of standard input.
pub(super) fn tokens(token: &str) -> Result<Vec<String>, ExitCode> {
    if token != "-" {
        return Ok(vec![token.to_owned()]);
    }
    let mut tokens = Vec::new();
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => tokens.push(line),
            Err(error) => {
                eprintln!("error: cannot read standard input: {error}");
                return Err(ExitCode::from(EXIT_USAGE));
            }
        }
    }
    Ok(tokens)
}

/// The validator for `config`, with every remote tenant's keys loaded once.
fn load_validator(config: &Config) -> Result<Validator, String> {
    let validator = Validator::for_config(config, clock::now());
    let registry = validator.registry();
    let remote: Vec<_> = registry
        .tenants()
        .iter()
        .filter(|tenant| tenant.is_remote())
        .collect();
    if remote.is_empty() {
        return Ok(validator);
    }
    let runtime = runtime().map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async {
        let fetcher = Fetcher::new().map_err(|error| error.to_string())?;
        for tenant in remote {
            refresh::load_once(tenant.keys(), &fetcher).await;
            // The verdicts say only that the keys are unavailable; the operator sees why here.
            if let Some(failure) = tenant.keys().failure() {
                eprintln!(
                    "warning: tenant {}: keys could not be loaded: {}",
                    tenant.id(),
                    failure.error
                );
            }
        }
        Ok::<(), String>(())
    })?;
    registry.reindex_issuers();
    Ok(validator)
}
