//! `tokengate serve`: logging, the runtime, the demo banner, and the server until a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use super::{LogFormat, load_config, report, runtime};
use crate::app;
use crate::clock;
use crate::demo;
use crate::runtime::Overrides;

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

/// `tokengate serve`: runs the service until SIGTERM or Ctrl-C.
pub(super) fn serve(
    config_path: Option<&Path>,
    listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    log_format: LogFormat,
) -> ExitCode {
    let mut config = match load_config(config_path) {
        Ok(config) => config,
        Err(errors) => return report(&errors),
    };
    let overrides = Overrides {
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
        let listener = app::bind(&config).await?;
        let address = listener
            .local_addr()
            .map_or(config.listen, |address| address);
        tracing::info!(%address, tenants = config.tenants.len(), "tokengate listening");
        if config_path.is_none() {
            print_demo_banner(address);
        }
        app::serve(
            config,
            config_path.map(Path::to_owned),
            overrides,
            listener,
            app::shutdown_signal(),
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
    // The commands name this very binary, so that they work as printed (no PATH needed).
    let exe = std::env::current_exe().map_or_else(
        |_| "tokengate".to_owned(),
        |path| path.display().to_string(),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\ntokengate is serving the embedded DEMO configuration on {address} (its key is public: demo use only).\n\
         \nA valid token:\n  {valid}\n\nAn expired token:\n  {expired}\n\
         \nTry them, through the server and offline:\n  \
         {exe} validate --addr http://{address} '{valid}'\n  \
         {exe} validate '{expired}'\n\
         \nWith grpcurl installed (it uses server reflection):\n  \
         grpcurl -plaintext -d '{{\"token\":\"{valid}\"}}' {address} tokengate.v1.TokenValidator/ValidateToken\n\
         \nMore tokens: {exe} mint --help\n"
    );
    let _ = out.flush();
}
