//! The `tokengate.v1.TokenValidator` gRPC service: protobuf in, [`Registry`] verdicts out.
//!
//! A token whose `kid` the tenant does not know triggers one refetch of the tenant's keys
//! (rate-limited, shared by concurrent misses) and waits briefly for it, so a key the provider
//! has just started to use is accepted on first sight.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::clock;
use crate::live::Live;
use crate::pb;
use crate::pb::token_validator_server::TokenValidator;
use crate::tenant::{Registry, Tenant, Verdict};

/// Batches up to this size are validated on the async worker; larger ones are spread over the
/// blocking pool, one slice per core, so that a batch uses every core and never holds an async
/// worker for long.
const INLINE_BATCH_LIMIT: usize = 16;
/// Tokens of one stream judged at once. Answers still go out in request order; a token that
/// waits (an unknown `kid` refetch) no longer holds up the CPU work of the tokens behind it.
const STREAM_WINDOW: usize = 64;

/// Serves `TokenValidator` over the live configuration.
#[derive(Clone)]
pub struct ValidatorService {
    live: Arc<Live>,
    batch_sizes: metrics::Histogram,
}

impl ValidatorService {
    /// A service over the live configuration.
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            batch_sizes: metrics::histogram!("tokengate_batch_size"),
        }
    }

    async fn answer(&self, request: pb::ValidateTokenRequest) -> pb::ValidateTokenResponse {
        let verdict = judge(&self.live, &request.token, &request.tenant).await;
        into_response(verdict, request.correlation_id)
    }
}

/// Judges one token on the current configuration: a `kid` the tenant does not know triggers
/// one (rate-limited, shared) refetch and a brief wait, then a second look. Records metrics once.
pub async fn judge(live: &Live, token: &str, tenant: &str) -> Verdict {
    let started = Instant::now();
    let registry = live.registry();
    let (mut verdict, mut judged_by) = registry.evaluate(token, tenant, clock::now());
    if verdict.wants_key_refetch()
        && let Some(tenant_state) = judged_by.clone()
        && tenant_state.refetch_for_unknown_kid().await
    {
        (verdict, judged_by) = registry.evaluate(token, tenant, clock::now());
    }
    registry.record(judged_by.as_ref(), &verdict, started.elapsed());
    verdict
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
        hint_code: verdict.hint_code.to_owned(),
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

/// One judged batch entry: the verdict and the tenant that judged it.
type Judged = (Verdict, Option<Arc<Tenant>>);

fn evaluate_all(registry: &Registry, requests: &[pb::ValidateTokenRequest]) -> Vec<Judged> {
    let now = clock::now();
    requests
        .iter()
        .map(|request| registry.evaluate(&request.token, &request.tenant, now))
        .collect()
}

/// Judges a large batch on the blocking pool, one contiguous slice per core, in order.
async fn evaluate_spread(
    registry: &Arc<Registry>,
    requests: Vec<pb::ValidateTokenRequest>,
) -> Result<(Vec<pb::ValidateTokenRequest>, Vec<Judged>), Status> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let requests = Arc::new(requests);
    let slice = requests.len().div_ceil(cores).max(INLINE_BATCH_LIMIT);
    let mut slices = Vec::new();
    for start in (0..requests.len()).step_by(slice) {
        let end = (start + slice).min(requests.len());
        let (registry, requests) = (registry.clone(), requests.clone());
        slices.push(tokio::task::spawn_blocking(move || {
            evaluate_all(&registry, &requests[start..end])
        }));
    }
    let mut judged = Vec::with_capacity(requests.len());
    for slice in slices {
        judged.extend(slice.await.map_err(|error| {
            Status::internal(format!("the batch could not be validated: {error}"))
        })?);
    }
    let requests = Arc::try_unwrap(requests).unwrap_or_else(|shared| (*shared).clone());
    Ok((requests, judged))
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::ValidateTokenResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TokenValidator for ValidatorService {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        Ok(Response::new(self.answer(request.into_inner()).await))
    }

    async fn validate_batch(
        &self,
        request: Request<pb::ValidateBatchRequest>,
    ) -> Result<Response<pb::ValidateBatchResponse>, Status> {
        let started = Instant::now();
        let requests = request.into_inner().requests;
        let registry = self.live.registry();
        if requests.len() > registry.max_batch_size() {
            return Err(Status::invalid_argument(format!(
                "the batch holds {} tokens; the limit is {} (max_batch_size): split it",
                requests.len(),
                registry.max_batch_size()
            )));
        }
        self.batch_sizes.record(requests.len() as f64);
        // A large batch is milliseconds of CPU: run it off the async workers so that it does
        // not delay other requests' I/O.
        let (requests, mut judged) = if requests.len() <= INLINE_BATCH_LIMIT {
            let judged = evaluate_all(&registry, &requests);
            (requests, judged)
        } else {
            evaluate_spread(&registry, requests).await?
        };
        // Unknown kids: one refetch per tenant (concurrently), then judge those tokens again.
        let mut refetches = tokio::task::JoinSet::new();
        let mut asked: Vec<&str> = Vec::new();
        for (verdict, judged_by) in &judged {
            if let Some(tenant) = judged_by
                && verdict.wants_key_refetch()
                && !asked.contains(&tenant.id())
            {
                asked.push(tenant.id());
                let tenant = tenant.clone();
                refetches.spawn(async move { (tenant.refetch_for_unknown_kid().await, tenant) });
            }
        }
        let mut refreshed: Vec<String> = Vec::new();
        while let Some(outcome) = refetches.join_next().await {
            if let Ok((true, tenant)) = outcome {
                refreshed.push(tenant.id().to_owned());
            }
        }
        for (index, request) in requests.iter().enumerate() {
            let retry = judged[index].0.wants_key_refetch()
                && judged[index]
                    .1
                    .as_ref()
                    .is_some_and(|tenant| refreshed.iter().any(|id| id == tenant.id()));
            if retry {
                judged[index] = registry.evaluate(&request.token, &request.tenant, clock::now());
            }
        }
        let elapsed = started.elapsed() / u32::try_from(judged.len().max(1)).unwrap_or(1);
        let responses = judged
            .into_iter()
            .zip(requests)
            .map(|((verdict, judged_by), request)| {
                registry.record(judged_by.as_ref(), &verdict, elapsed);
                into_response(verdict, request.correlation_id)
            })
            .collect();
        Ok(Response::new(pb::ValidateBatchResponse { responses }))
    }

    type ValidateStreamStream = ResponseStream;

    async fn validate_stream(
        &self,
        request: Request<Streaming<pb::ValidateTokenRequest>>,
    ) -> Result<Response<Self::ValidateStreamStream>, Status> {
        let service = self.clone();
        // Each token is judged in a task of its own (on any core), at most STREAM_WINDOW at
        // once; `buffered` hands the answers back in request order.
        let answers = request
            .into_inner()
            .map(move |item| {
                let service = service.clone();
                async move {
                    let request = item?;
                    tokio::spawn(async move { service.answer(request).await })
                        .await
                        .map_err(|error| {
                            Status::internal(format!("the token could not be validated: {error}"))
                        })
                }
            })
            .buffered(STREAM_WINDOW);
        Ok(Response::new(Box::pin(answers)))
    }
}
