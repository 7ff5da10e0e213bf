//! `tokengate bench`: a load generator for a running tokengate, through the real transports
//! (gRPC unary, batch and stream, Envoy `Check`, forward-auth `GET /auth`).
//!
//! Every answer is checked against the verdict the tokens file expects. In the same run it
//! measures a no-op ceiling on the same server with the same connections and calls in flight
//! (`grpc.health.v1.Health/Check`; for forward-auth, `GET /auth` without a token) and prints
//! each figure beside it, so a result reads as a ratio rather than an absolute number of a
//! noisy machine. With `--server-pid` it also reads the server's CPU time from `/proc`.

mod answers;
mod calls;
mod cpu;
mod report;
pub(crate) mod tokens;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use clap::{Args, ValueEnum};
use tonic::transport::{Channel, Endpoint};

use calls::{Call, Connections, Phase, Tally};
pub(crate) use report::Report;

/// What `tokengate bench` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `TokenValidator/ValidateToken`, one token a call.
    Unary,
    /// `TokenValidator/ValidateBatch`, `--batch` tokens a call.
    Batch,
    /// `TokenValidator/ValidateStream`, one stream a connection, `--in-flight` tokens outstanding.
    Stream,
    /// Envoy `envoy.service.auth.v3.Authorization/Check`.
    Check,
    /// Forward-auth `GET /auth` (HTTP/1.1; `--addr` is the forward-auth address).
    ForwardAuth,
    /// `grpc.health.v1.Health/Check` alone: a probe beside other load (no ceiling; the tokens
    /// file is read but not sent).
    Health,
}

/// The options of `tokengate bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchOptions {
    /// The server: `http://HOST:PORT` (the gRPC port; the forward-auth port for forward-auth).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Mode::Unary)]
    pub mode: Mode,
    /// The tokens file: one token a line, optionally after its expected verdict (`valid` or a
    /// reason code such as `expired`); unlabelled tokens must be valid.
    #[arg(long)]
    pub tokens: PathBuf,
    /// Connections to open.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// Calls in flight on each connection (for forward-auth: requests in flight, each on its
    /// own keep-alive connection).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub in_flight: u32,
    /// Tokens per `ValidateBatch` call.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub batch: u32,
    /// How long to measure, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long to send before measuring (connections, caches and CPU clocks warm up).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// The server's process id, to report its CPU time per validation (Linux `/proc`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The tenant to ask for (default: chosen by each token's issuer).
    #[arg(long, default_value = "")]
    pub tenant: String,
    /// Skip the no-op ceiling measurement.
    #[arg(long)]
    pub no_ceiling: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Count calls the server sheds (`RESOURCE_EXHAUSTED`, forward-auth 503) as expected
    /// answers rather than failures, for overload runs; they are reported apart either way.
    #[arg(long)]
    pub allow_shed: bool,
    /// Stream mode: wait this long before reading each answer (a slow reader), e.g. 100ms.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub read_delay: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 10s: {error}"))?;
    if duration > Duration::from_secs(3600) {
        return Err("at most 1h".into());
    }
    Ok(duration)
}

/// Why a bench could not run (as opposed to wrong answers, which are in the report).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A bad option or tokens file.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached.
    #[error("cannot connect to {address}: {cause}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        cause: String,
    },
}

/// Runs the bench: warm-up, measurement, then the ceiling with the same connections.
pub(crate) async fn run(options: &BenchOptions) -> Result<Report, BenchError> {
    let samples: Arc<[tokens::Sample]> = tokens::read(&options.tokens)
        .map_err(BenchError::Usage)?
        .into();
    let connections = connect(options).await?;
    let (call, ceiling_call) = match options.mode {
        Mode::Unary => (Call::Unary, Call::Health),
        Mode::Batch => (Call::Batch(options.batch as usize), Call::Health),
        Mode::Stream => (Call::Stream, Call::Health),
        Mode::Check => (Call::Check, Call::Health),
        Mode::ForwardAuth => (Call::ForwardAuth, Call::NoToken),
        Mode::Health => (Call::Health, Call::Health),
    };
    let phase = Phase {
        call,
        connections,
        samples: answers::prepare(&samples, &options.tenant),
        in_flight: options.in_flight as usize,
        read_delay: options.read_delay,
    };
    let measured = measure(&phase, options).await;
    let ceiling = if options.no_ceiling || options.mode == Mode::Health {
        None
    } else {
        let phase = Phase {
            call: ceiling_call,
            ..phase
        };
        Some(measure(&phase, options).await)
    };
    Ok(Report::new(options, samples.len(), measured, ceiling))
}

/// A measured phase: its tally, how long it took, and the CPU both sides used.
pub(crate) struct Measured {
    /// The calls.
    tally: Tally,
    /// Wall-clock seconds.
    seconds: f64,
    /// CPU seconds of this process.
    client_cpu: Option<f64>,
    /// CPU seconds of `--server-pid`.
    server_cpu: Option<f64>,
}

async fn measure(phase: &Phase, options: &BenchOptions) -> Measured {
    if !options.warmup.is_zero() {
        calls::run(phase, options.warmup).await;
    }
    let client_before = cpu::seconds(None);
    let server_before = options.server_pid.and_then(|pid| cpu::seconds(Some(pid)));
    let started = Instant::now();
    let tally = calls::run(phase, options.duration).await;
    let seconds = started.elapsed().as_secs_f64();
    let used = |before: Option<f64>, pid: Option<u32>| {
        Some(cpu::seconds(pid)? - before?).filter(|used| *used >= 0.0)
    };
    Measured {
        tally,
        seconds,
        client_cpu: used(client_before, None),
        server_cpu: options
            .server_pid
            .and_then(|pid| used(server_before, Some(pid))),
    }
}

async fn connect(options: &BenchOptions) -> Result<Connections, BenchError> {
    let failed = |cause: String| BenchError::Connect {
        address: options.addr.clone(),
        cause,
    };
    if options.mode == Mode::ForwardAuth {
        let mut url = reqwest::Url::parse(&options.addr)
            .map_err(|error| BenchError::Usage(format!("--addr: {error}")))?;
        url.set_path("/auth");
        if !options.tenant.is_empty() {
            url.query_pairs_mut().append_pair("tenant", &options.tenant);
        }
        // reqwest needs a TLS provider even for plain http; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host((options.connections * options.in_flight) as usize)
            .timeout(calls::CALL_TIMEOUT)
            .build()
            .map_err(|error| failed(error.to_string()))?;
        return Ok(Connections::Http {
            client,
            url: url.to_string(),
        });
    }
    let endpoint = Endpoint::from_shared(options.addr.clone())
        .map_err(|error| BenchError::Usage(format!("--addr: {error}")))?
        .tcp_nodelay(true)
        .timeout(calls::CALL_TIMEOUT)
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20);
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..options.connections {
        // Each connect() opens a connection of its own.
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| failed(error.to_string()))?;
        channels.push(channel);
    }
    Ok(Connections::Grpc(channels))
}
