//! The raw-crypto baseline of the service benchmarks: how many RS256 signatures raw `ring`
//! verifies per second on N threads, for the same tokens and key the server is loaded with
//! (no JSON, no policy, no transport). `scripts/bench.sh` prints server figures as ratios of it.
//!
//! ```sh
//! cargo run --release --example ring_rate -- JWKS_FILE TOKENS_FILE THREADS SECONDS
//! ```
// A stand-alone timing tool: it measures in real time by design.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

fn decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap_or_default()
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jwks, tokens, threads, seconds] = args.as_slice() else {
        eprintln!("usage: ring_rate JWKS_FILE TOKENS_FILE THREADS SECONDS");
        return std::process::ExitCode::from(2);
    };
    let jwks: serde_json::Value = match std::fs::read_to_string(jwks)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
    {
        Some(value) => value,
        None => {
            eprintln!("cannot read the JWKS");
            return std::process::ExitCode::from(2);
        }
    };
    let key = &jwks["keys"][0];
    let n = decode(key["n"].as_str().unwrap_or_default());
    let e = decode(key["e"].as_str().unwrap_or_default());
    let samples: Vec<(Vec<u8>, Vec<u8>)> = std::fs::read_to_string(tokens)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter_map(|token| {
            let (input, signature) = token.rsplit_once('.')?;
            Some((input.as_bytes().to_vec(), decode(signature)))
        })
        .collect();
    let threads: usize = threads.parse().unwrap_or(1);
    let duration = Duration::from_secs(seconds.parse().unwrap_or(5));
    if samples.is_empty() {
        eprintln!("no tokens");
        return std::process::ExitCode::from(2);
    }
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let (n, e, samples) = (&n, &e, &samples);
                scope.spawn(move || {
                    let key = RsaPublicKeyComponents { n, e };
                    let mut done = 0u64;
                    let mut index = thread;
                    while started.elapsed() < duration {
                        let (input, signature) = &samples[index % samples.len()];
                        if key
                            .verify(&RSA_PKCS1_2048_8192_SHA256, input, signature)
                            .is_err()
                        {
                            eprintln!("a signature did not verify");
                            return 0;
                        }
                        done += 1;
                        index += threads;
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or(0))
            .collect()
    });
    let rate = counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.0}");
    std::process::ExitCode::SUCCESS
}
