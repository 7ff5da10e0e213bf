//! The `tokengate.v1.TokenValidator` gRPC service: protobuf in, [`Validator`] judgements out.
//!
//! This module only translates: requests to the validator's calls, judgements to
//! `ValidateTokenResponse`. The judging itself (including the unknown-`kid` refetch) is the
//! validator's.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::pb;
use crate::pb::token_validator_server::TokenValidator;
use crate::runtime::Runtime;
use crate::transport::deadline;
use crate::transport::status::wire_reason;
use crate::validator::judgement::Judgement;
use crate::validator::{TokenRequest, Validator};

/// Tokens of one stream judged at once. Answers still go out in request order; a token that
/// waits (an unknown `kid` refetch) no longer holds up the CPU work of the tokens behind it.
const STREAM_WINDOW: usize = 64;

/// Serves `TokenValidator` over the running configuration.
#[derive(Clone)]
pub(crate) struct ValidatorService {
    runtime: Arc<Runtime>,
    /// `limits.request_timeout`, fixed at start-up (reloads do not change limits).
    request_timeout: Duration,
    /// Becomes `true` when shutdown begins: open streams stop reading and end.
    stopping: watch::Receiver<bool>,
    batch_sizes: metrics::Histogram,
}

impl ValidatorService {
    /// A service over the running configuration; `stopping` turns `true` on shutdown.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        request_timeout: Duration,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            runtime,
            request_timeout,
            stopping,
            batch_sizes: metrics::histogram!("tokengate_batch_size"),
        }
    }

    fn validator(&self) -> Arc<Validator> {
        self.runtime.snapshot().validator.clone()
    }

    async fn answer(
        &self,
        request: pb::ValidateTokenRequest,
        budget: Option<Duration>,
    ) -> pb::ValidateTokenResponse {
        let judgement = self
            .validator()
            .judge_within(&request.token, &request.tenant, budget)
            .await;
        into_response(&judgement, request.correlation_id)
    }
}

impl TokenRequest for pb::ValidateTokenRequest {
    fn token(&self) -> &str {
        &self.token
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// A judgement in its wire form.
pub(crate) fn into_response(
    judgement: &Judgement,
    correlation_id: String,
) -> pb::ValidateTokenResponse {
    let text = |value: Option<&str>| value.map(str::to_owned).unwrap_or_default();
    match judgement {
        Judgement::Valid(accepted) => pb::ValidateTokenResponse {
            valid: true,
            tenant: accepted.tenant.id().to_owned(),
            claims_json: accepted.claims_json.clone(),
            subject: text(accepted.subject.as_deref()),
            issuer: text(accepted.issuer.as_deref()),
            expires_at: accepted.expires_at.unwrap_or(0),
            key_id: text(accepted.key_id.as_deref()),
            algorithm: accepted.algorithm.name().to_owned(),
            correlation_id,
            ..pb::ValidateTokenResponse::default()
        },
        Judgement::Rejected(refused) => {
            let reason = refused.rejection.reason;
            pb::ValidateTokenResponse {
                valid: false,
                reason: wire_reason(Some(reason)),
                reason_code: reason.code().to_owned(),
                hint_code: refused.hint_code().to_owned(),
                detail: refused.rejection.detail.to_string(),
                tenant: refused.tenant_id().to_owned(),
                issuer: text(refused.token.issuer.as_deref()),
                expires_at: refused.token.expires_at.unwrap_or(0),
                key_id: text(refused.token.key_id.as_deref()),
                algorithm: text(refused.token.algorithm.as_deref()),
                correlation_id,
                ..pb::ValidateTokenResponse::default()
            }
        }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::ValidateTokenResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TokenValidator for ValidatorService {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let budget = Some(deadline::within(request.metadata(), self.request_timeout));
        Ok(Response::new(
            self.answer(request.into_inner(), budget).await,
        ))
    }

    async fn validate_batch(
        &self,
        request: Request<pb::ValidateBatchRequest>,
    ) -> Result<Response<pb::ValidateBatchResponse>, Status> {
        let budget = Some(deadline::within(request.metadata(), self.request_timeout));
        let requests = request.into_inner().requests;
        let validator = self.validator();
        if requests.len() > validator.max_batch_size() {
            return Err(Status::invalid_argument(format!(
                "the batch holds {} tokens; the limit is {} (max_batch_size): split it",
                requests.len(),
                validator.max_batch_size()
            )));
        }
        self.batch_sizes.record(requests.len() as f64);
        let requests = Arc::new(requests);
        let judged = validator
            .judge_many(&requests, budget)
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        let requests = Arc::try_unwrap(requests).unwrap_or_else(|shared| (*shared).clone());
        let responses = judged
            .iter()
            .zip(requests)
            .map(|(judgement, request)| into_response(judgement, request.correlation_id))
            .collect();
        Ok(Response::new(pb::ValidateBatchResponse { responses }))
    }

    type ValidateStreamStream = ResponseStream;

    async fn validate_stream(
        &self,
        request: Request<Streaming<pb::ValidateTokenRequest>>,
    ) -> Result<Response<Self::ValidateStreamStream>, Status> {
        let service = self.clone();
        // On shutdown the stream stops reading: the tokens already read are answered, then
        // the stream ends with UNAVAILABLE so the caller sends the rest on a new connection
        // (the server's drain then does not wait for streams that never end by themselves).
        let mut stopping = self.stopping.clone();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut_here = cut.clone();
        // Polled only while the stream still reads: a stream the client ended first is not cut.
        let shutdown = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
            cut_here.store(true, std::sync::atomic::Ordering::SeqCst);
        };
        // Each token is judged in a task of its own (on any core), at most STREAM_WINDOW at
        // once; `buffered` hands the answers back in request order.
        let answers = request
            .into_inner()
            .take_until(shutdown)
            .map(move |item| {
                let service = service.clone();
                async move {
                    let request = item?;
                    tokio::spawn(async move { service.answer(request, None).await })
                        .await
                        .map_err(|error| {
                            Status::internal(format!("the token could not be validated: {error}"))
                        })
                }
            })
            .buffered(STREAM_WINDOW)
            .chain(futures_util::stream::once(async move {
                cut.load(std::sync::atomic::Ordering::SeqCst)
            }).filter_map(
                |stopping| async move {
                    stopping.then(|| {
                        Err(Status::unavailable(
                            "tokengate is shutting down: send the remaining tokens on a new connection",
                        ))
                    })
                },
            ));
        Ok(Response::new(Box::pin(answers)))
    }
}
