//! The `tokengate.v1.TokenValidator` gRPC service: protobuf in, [`Registry`] verdicts out.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::clock;
use crate::pb;
use crate::pb::token_validator_server::TokenValidator;
use crate::tenant::{Registry, Verdict};

/// Batches up to this size are validated on the async worker; larger ones on the blocking pool.
const INLINE_BATCH_LIMIT: usize = 16;

/// Serves `TokenValidator` over a shared registry.
#[derive(Clone)]
pub struct ValidatorService {
    registry: Arc<Registry>,
    max_batch_size: usize,
    batch_sizes: metrics::Histogram,
}

impl ValidatorService {
    /// A service over `registry` that refuses batches larger than `max_batch_size`.
    pub fn new(registry: Arc<Registry>, max_batch_size: usize) -> Self {
        Self {
            registry,
            max_batch_size,
            batch_sizes: metrics::histogram!("tokengate_batch_size"),
        }
    }

    fn answer(&self, request: pb::ValidateTokenRequest, now: i64) -> pb::ValidateTokenResponse {
        let verdict = self.registry.validate(&request.token, &request.tenant, now);
        into_response(verdict, request.correlation_id)
    }
}

/// Converts a verdict to its wire form.
pub fn into_response(verdict: Verdict, correlation_id: String) -> pb::ValidateTokenResponse {
    pb::ValidateTokenResponse {
        valid: verdict.valid,
        reason: verdict.reason.map_or(0, |reason| reason.wire_value()),
        reason_code: verdict
            .reason
            .map(|reason| reason.code().to_owned())
            .unwrap_or_default(),
        detail: verdict.detail,
        tenant: verdict.tenant,
        claims_json: verdict.claims_json,
        subject: verdict.subject,
        issuer: verdict.issuer,
        expires_at: verdict.expires_at,
        key_id: verdict.key_id,
        algorithm: verdict.algorithm,
        correlation_id,
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::ValidateTokenResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TokenValidator for ValidatorService {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        Ok(Response::new(
            self.answer(request.into_inner(), clock::now()),
        ))
    }

    async fn validate_batch(
        &self,
        request: Request<pb::ValidateBatchRequest>,
    ) -> Result<Response<pb::ValidateBatchResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > self.max_batch_size {
            return Err(Status::invalid_argument(format!(
                "the batch holds {} tokens; the limit is {} (max_batch_size): split it",
                requests.len(),
                self.max_batch_size
            )));
        }
        self.batch_sizes.record(requests.len() as f64);
        let now = clock::now();
        if requests.len() <= INLINE_BATCH_LIMIT {
            let responses = requests
                .into_iter()
                .map(|request| self.answer(request, now))
                .collect();
            return Ok(Response::new(pb::ValidateBatchResponse { responses }));
        }
        // A large batch is milliseconds of CPU: run it off the async workers so that it does not
        // delay other requests' I/O.
        let service = self.clone();
        let responses = tokio::task::spawn_blocking(move || {
            requests
                .into_iter()
                .map(|request| service.answer(request, now))
                .collect()
        })
        .await
        .map_err(|error| Status::internal(format!("the batch could not be validated: {error}")))?;
        Ok(Response::new(pb::ValidateBatchResponse { responses }))
    }

    type ValidateStreamStream = ResponseStream;

    async fn validate_stream(
        &self,
        request: Request<Streaming<pb::ValidateTokenRequest>>,
    ) -> Result<Response<Self::ValidateStreamStream>, Status> {
        let service = self.clone();
        let responses = request
            .into_inner()
            .map(move |item| item.map(|request| service.answer(request, clock::now())));
        Ok(Response::new(Box::pin(responses)))
    }
}
