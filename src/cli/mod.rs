//! The command line: `serve`, `check-config`, `validate`, `mint` and `bench`.
//!
//! Exit codes: 0 success (or a valid token), 1 an invalid token (`validate`) or a runtime
//! failure, 2 a usage or configuration error.
//!
//! One file per command that does more than print: `serve.rs`, `check.rs`, `validate.rs`; the
//! load generator behind `bench` is `crate::bench`. May import everything below it.

mod ask;
mod check;
mod serve;
mod status;
mod validate;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

use crate::clock;
use crate::config::{Config, ConfigErrors};
use crate::demo;
use check::check_config;
use serve::serve;
use validate::validate;

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// tokengate: validates JWT access tokens for API gateways, per tenant, over gRPC.
#[derive(Parser, Debug)]
#[command(name = "tokengate", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the gRPC service (on the embedded demo configuration when --config is left out).
    Serve {
        /// The YAML configuration file.
        #[arg(short, long, env = "TOKENGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Override `listen` (gRPC address), e.g. 0.0.0.0:50051.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `metrics_listen` (HTTP address for /metrics), e.g. 0.0.0.0:9090.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "TOKENGATE_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Check a configuration file, print a summary, and exit non-zero listing every error.
    CheckConfig {
        /// The YAML configuration file.
        file: PathBuf,
    },
    /// Validate tokens offline (or ask a running server with --addr) and print one JSON verdict
    /// per token (exit 1 if any is invalid).
    Validate {
        /// The YAML configuration file (default: the embedded demo configuration).
        #[arg(short, long, env = "TOKENGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Ask the running server at this gRPC URL (e.g. http://127.0.0.1:50051) instead of
        /// judging offline.
        #[arg(long, conflicts_with_all = ["config", "now"])]
        addr: Option<String>,
        /// The tenant id (default: chosen by the token's issuer).
        #[arg(long, default_value = "")]
        tenant: String,
        /// Judge as if the time were this many seconds since 1970 (for replaying a 401).
        #[arg(long)]
        now: Option<i64>,
        /// The token, or `-` to read one token per line from standard input.
        #[arg(default_value = "-")]
        token: String,
    },
    /// Print the embedded demo configuration (what `serve` runs without --config), to start from.
    DemoConfig,
    /// Print a token signed by the embedded demo key (accepted by `tokengate serve` without --config).
    Mint {
        /// The `sub` claim.
        #[arg(long, default_value = "demo-user")]
        sub: String,
        /// The `aud` claim.
        #[arg(long, default_value = demo::DEMO_AUDIENCE)]
        aud: String,
        /// The `scp` claim (space-separated scopes).
        #[arg(long, default_value = "read")]
        scope: String,
        /// Lifetime, e.g. 30s, 15m, 1h.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: std::time::Duration,
        /// Make a token that expired an hour ago.
        #[arg(long)]
        expired: bool,
        /// An extra claim NAME=VALUE (VALUE is JSON if it parses as JSON, else a string); repeatable.
        #[arg(long = "claim", value_parser = parse_claim)]
        claims: Vec<(String, Value)>,
    },
    /// Load a running tokengate through a real transport, check every answer, and print
    /// validations/s, latency and CPU beside a no-op ceiling on the same server (exit 1 if any
    /// answer is wrong).
    Bench(crate::bench::BenchOptions),
    /// Print the admin view of a running server (its /debug/tenants) as a table: keys, source,
    /// staleness, counts and the last error per tenant (exit 1 if a tenant has no keys).
    Status {
        /// The server's metrics_listen address (e.g. 127.0.0.1:9090) or its URL.
        #[arg(long)]
        admin: String,
    },
}

/// Log output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 30s or 1h: {error}"))
}

fn parse_claim(text: &str) -> Result<(String, Value), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err("the claim name is empty".into());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            metrics_listen,
            log_format,
        } => serve(config.as_deref(), listen, metrics_listen, log_format),
        Command::CheckConfig { file } => check_config(&file),
        Command::DemoConfig => {
            print_stdout(&demo::config_yaml());
            ExitCode::SUCCESS
        }
        Command::Validate {
            config,
            addr,
            tenant,
            now,
            token,
        } => match addr {
            Some(addr) => match validate::tokens(&token) {
                Ok(tokens) => ask::ask(&addr, &tenant, tokens),
                Err(code) => code,
            },
            None => validate(config.as_deref(), &tenant, now, &token),
        },
        Command::Mint {
            sub,
            aud,
            scope,
            ttl,
            expired,
            claims,
        } => {
            let lifetime = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
            let options = demo::MintOptions {
                subject: sub,
                audience: aud,
                scope,
                lifetime: if expired { -3600 } else { lifetime },
                extra: claims.into_iter().collect::<Map<String, Value>>(),
            };
            print_stdout(&format!("{}\n", demo::mint(&options, clock::now())));
            ExitCode::SUCCESS
        }
        Command::Bench(options) => bench(&options),
        Command::Status { admin } => status::status(&admin),
    }
}

fn bench(options: &crate::bench::BenchOptions) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::bench::run(options)) {
        Ok(report) => {
            let text = if options.json {
                format!(
                    "{}\n",
                    serde_json::to_string(&report).unwrap_or_else(|_| "{}".to_owned())
                )
            } else {
                report.table()
            };
            print_stdout(&text);
            if report.all_right() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            }
        }
        Err(error @ crate::bench::BenchError::Usage(_)) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a closed pipe (`tokengate … | head`) is not an error worth a panic.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn load_config(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    match path {
        Some(path) => Config::load(path),
        None => demo::config(),
    }
}

fn report(errors: &ConfigErrors) -> ExitCode {
    for error in &errors.0 {
        eprintln!("error: {error}");
    }
    eprintln!(
        "{} error{} in the configuration",
        errors.0.len(),
        if errors.0.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(EXIT_USAGE)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
