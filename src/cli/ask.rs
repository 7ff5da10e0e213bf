//! `tokengate validate --addr URL`: asks a running server (`TokenValidator/ValidateToken`)
//! instead of judging offline, and prints the same JSON line per token. For trying the service
//! without grpcurl, and for asking a deployed server what it thinks of a token.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Map, Value};

use super::{EXIT_INVALID, runtime};
use crate::pb::ValidateTokenRequest;
use crate::pb::ValidateTokenResponse;
use crate::pb::token_validator_client::TokenValidatorClient;

/// Asks the server at `addr` about each of `tokens`; exit 1 if any is invalid.
pub(super) fn ask(addr: &str, tenant: &str, tokens: Vec<String>) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let answers = runtime.block_on(async {
        let mut client = TokenValidatorClient::connect(addr.to_owned())
            .await
            .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
        let mut answers = Vec::with_capacity(tokens.len());
        for token in tokens {
            let request = ValidateTokenRequest {
                token,
                tenant: tenant.to_owned(),
                correlation_id: String::new(),
            };
            let answer = client
                .validate_token(request)
                .await
                .map_err(|status| format!("ValidateToken failed: {status}"))?;
            answers.push(answer.into_inner());
        }
        Ok::<_, String>(answers)
    });
    let answers = match answers {
        Ok(answers) => answers,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    for answer in &answers {
        let _ = writeln!(out, "{}", json_line(answer));
    }
    if answers.iter().all(|answer| answer.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// An answer as the offline `validate` prints a verdict: the same names, empty values left out.
fn json_line(answer: &ValidateTokenResponse) -> String {
    let mut line = Map::new();
    line.insert("valid".into(), Value::Bool(answer.valid));
    let texts = [
        ("reason", &answer.reason_code),
        ("detail", &answer.detail),
        ("issuer", &answer.issuer),
        ("subject", &answer.subject),
        ("key_id", &answer.key_id),
        ("algorithm", &answer.algorithm),
        ("hint_code", &answer.hint_code),
    ];
    for (name, text) in texts {
        if !text.is_empty() {
            line.insert(name.into(), Value::String(text.clone()));
        }
    }
    line.insert("tenant".into(), Value::String(answer.tenant.clone()));
    line.insert("expires_at".into(), Value::from(answer.expires_at));
    if answer.valid
        && let Ok(claims) = serde_json::from_slice::<Value>(&answer.claims_json)
    {
        line.insert("claims".into(), claims);
    }
    Value::Object(line).to_string()
}
