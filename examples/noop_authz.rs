//! A no-op Envoy external authorization service: it answers every `Check` with OK, without
//! looking at the request. `scripts/bench-envoy.sh` puts it behind Envoy's ext_authz filter as
//! the floor of what any gRPC authorizer costs, to compare tokengate against.
//!
//! ```sh
//! cargo build --release --example noop_authz
//! target/release/examples/noop_authz 127.0.0.1:50071
//! ```

use std::process::ExitCode;

use envoy_types::ext_authz::v3::CheckResponseExt;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use tonic::{Request, Response, Status};

/// HTTP/2 flow-control windows, the same as tokengate's server (`src/server.rs`), so that only
/// the work done per `Check` differs.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;

/// The same allocator as the tokengate binary, so that the floor is not inflated by malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allows everything.
struct Noop;

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(CheckResponse::with_status(Status::ok(""))))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50071".to_owned());
    let listener = match tokio::net::TcpListener::bind(&address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {address}: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("noop_authz: answering every Check with OK on {address}");
    let served = tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(Some(false))
        .add_service(AuthorizationServer::new(Noop))
        .serve_with_incoming(tokengate::incoming(listener))
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
