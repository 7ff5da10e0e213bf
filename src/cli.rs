//! The command line: `serve`, `check-config`, `validate`, `mint` and `bench`.
//!
//! Exit codes: 0 success (or a valid token), 1 an invalid token (`validate`) or a runtime
//! failure, 2 a usage or configuration error.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use crate::clock;
use crate::config::{Config, ConfigErrors, KeySource};
use crate::demo;
use crate::fetch::Fetcher;
use crate::server;
use crate::tenant::{Registry, Verdict};

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// tokengate: validates JWT access tokens for API gateways, per tenant, over gRPC.
#[derive(Parser, Debug)]
#[command(name = "tokengate", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// Validate tokens offline and print one JSON verdict per token (exit 1 if any is invalid).
    Validate {
        /// The YAML configuration file (default: the embedded demo configuration).
        #[arg(short, long, env = "TOKENGATE_CONFIG")]
        config: Option<PathBuf>,
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
}

/// Log output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
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
            tenant,
            now,
            token,
        } => validate(config.as_deref(), &tenant, now, &token),
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

/// Appends one formatted line to a `String`.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn serve(
    config_path: Option<&Path>,
    listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    log_format: LogFormat,
) -> ExitCode {
    let mut config = match load_config(config_path) {
        Ok(config) => config,
        Err(errors) => return report(&errors),
    };
    let overrides = crate::live::Overrides {
        listen,
        metrics_listen,
    };
    overrides.apply(&mut config);
    init_logging(log_format);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = server::bind(&config).await?;
        let address = listener
            .local_addr()
            .map_or(config.listen, |address| address);
        tracing::info!(%address, tenants = config.tenants.len(), "tokengate listening");
        if config_path.is_none() {
            print_demo_banner(address);
        }
        server::serve(
            config,
            config_path.map(Path::to_owned),
            overrides,
            listener,
            server::shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_demo_banner(address: SocketAddr) {
    let now = clock::now();
    let valid = demo::mint(&demo::MintOptions::default(), now);
    let expired = demo::mint(
        &demo::MintOptions {
            lifetime: -3600,
            ..demo::MintOptions::default()
        },
        now,
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\ntokengate is serving the embedded DEMO configuration on {address} (its key is public: demo use only).\n\
         \nA valid token:\n  {valid}\n\nAn expired token:\n  {expired}\n\
         \nTry them (grpcurl uses server reflection):\n  \
         grpcurl -plaintext -d '{{\"token\":\"{valid}\"}}' {address} tokengate.v1.TokenValidator/ValidateToken\n  \
         tokengate validate '{expired}'\n\
         \nMore tokens: tokengate mint --help\n"
    );
    let _ = out.flush();
}

fn check_config(file: &Path) -> ExitCode {
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
            if tenant.policy.audiences.is_empty() {
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

fn validate(config_path: Option<&Path>, tenant: &str, now: Option<i64>, token: &str) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(errors) => return report(&errors),
    };
    let registry = match load_registry(&config) {
        Ok(registry) => registry,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let now = now.unwrap_or_else(clock::now);
    let mut all_valid = true;
    let mut out = std::io::stdout().lock();
    let mut judge = |token: &str| {
        let verdict = registry.validate(token, tenant, now);
        all_valid &= verdict.valid;
        let _ = writeln!(out, "{}", verdict_json(&verdict));
    };
    if token == "-" {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
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

/// Builds the registry and loads remote keys once (for offline validation).
fn load_registry(config: &Config) -> Result<Arc<Registry>, String> {
    let registry = Arc::new(Registry::new(config, clock::now()));
    let remote: Vec<_> = registry
        .tenants()
        .iter()
        .filter(|tenant| !matches!(tenant.spec().key_source, KeySource::Static(_)))
        .cloned()
        .collect();
    if remote.is_empty() {
        return Ok(registry);
    }
    let runtime = runtime().map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async {
        let fetcher = Fetcher::new().map_err(|error| error.to_string())?;
        for tenant in remote {
            match fetcher.load(tenant.spec(), None).await {
                Ok(loaded) => tenant.install(
                    Arc::new(loaded.keys),
                    loaded.discovered_issuer,
                    clock::now(),
                ),
                Err(error) => tenant.record_error(error.to_string()),
            }
        }
        registry.reindex_issuers();
        Ok::<(), String>(())
    })?;
    Ok(registry)
}

/// One verdict as a JSON line (claims included when valid).
pub fn verdict_json(verdict: &Verdict) -> String {
    let mut value =
        serde_json::to_value(verdict).unwrap_or_else(|_| json!({"valid": verdict.valid}));
    if let (Some(object), Some(claims)) = (value.as_object_mut(), verdict.claims()) {
        let claims: Value = serde_json::from_str(claims.get()).unwrap_or(Value::Null);
        object.insert("claims".into(), claims);
    }
    value.to_string()
}
