//! A small load generator: sends tokens to a running tokengate over gRPC and reports throughput
//! and verdicts.
//!
//! ```sh
//! cargo run --release --example load -- --addr http://127.0.0.1:50051 \
//!     --token "$(tokengate mint)" --token "$(tokengate mint --expired)" --count 10000 --concurrency 16
//! ```

use std::collections::BTreeMap;
use tokio::time::Instant;

use tokengate::pb;
use tokengate::pb::token_validator_client::TokenValidatorClient;

struct Options {
    addr: String,
    tokens: Vec<String>,
    count: usize,
    concurrency: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "http://127.0.0.1:50051".into(),
        tokens: Vec::new(),
        count: 1000,
        concurrency: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => options.addr = value,
            "--token" => options.tokens.push(value.trim().to_owned()),
            "--count" => options.count = value.parse().map_err(|_| "--count is a number")?,
            "--concurrency" => {
                options.concurrency = value.parse().map_err(|_| "--concurrency is a number")?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.tokens.is_empty() {
        return Err("give at least one --token".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    let per_worker = options.count.div_ceil(options.concurrency.max(1));
    for worker in 0..options.concurrency.max(1) {
        let addr = options.addr.clone();
        let tokens = options.tokens.clone();
        workers.spawn(async move {
            let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
            let mut client = TokenValidatorClient::connect(addr)
                .await
                .map_err(|error| error.to_string())?;
            for index in 0..per_worker {
                let token = &tokens[(worker + index) % tokens.len()];
                let request = pb::ValidateTokenRequest {
                    token: token.clone(),
                    tenant: String::new(),
                    correlation_id: String::new(),
                };
                let response = client
                    .validate_token(request)
                    .await
                    .map_err(|status| status.to_string())?
                    .into_inner();
                let key = if response.valid {
                    "valid".to_owned()
                } else {
                    response.reason_code
                };
                *verdicts.entry(key).or_default() += 1;
            }
            Ok::<_, String>(verdicts)
        });
    }
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(Ok(verdicts)) => {
                for (key, count) in verdicts {
                    *totals.entry(key).or_default() += count;
                }
            }
            Ok(Err(error)) => {
                eprintln!("error: {error}");
                return std::process::ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("error: a worker failed: {error}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed();
    let sent: usize = totals.values().sum();
    println!(
        "{sent} requests in {:.2}s: {:.0} per second",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    for (verdict, count) in totals {
        println!("  {verdict}: {count}");
    }
    std::process::ExitCode::SUCCESS
}
