//! The calls `tokengate bench` makes, one kind per mode, and the checks of their answers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;

use super::answers::{
    Prepared, batch_request, check_decision, check_validation, error_code, judge_gateway,
};
use super::wire::{self, Encoded};

/// The longest one call (or, after the run's end, a stream's remaining answers) may take; a
/// server that stops answering fails the call rather than hanging the run.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One kind of call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    /// `TokenValidator/ValidateToken`.
    Unary,
    /// `TokenValidator/ValidateBatch` with this many tokens.
    Batch(usize),
    /// `TokenValidator/ValidateStream`, one stream per connection.
    Stream,
    /// `envoy.service.auth.v3.Authorization/Check`.
    Check,
    /// `GET /auth` with the token.
    ForwardAuth,
    /// `grpc.health.v1.Health/Check`: the no-op ceiling of the gRPC modes.
    Health,
    /// `GET /auth` without a token: the cheapest answer of the forward-auth listener.
    NoToken,
}

/// Where the calls go.
#[derive(Clone)]
pub(super) enum Connections {
    /// One HTTP/2 connection each.
    Grpc(Vec<Channel>),
    /// HTTP/1.1 with keep-alive: each request in flight holds a connection of its own.
    Http {
        /// The client (its pool holds the connections).
        client: reqwest::Client,
        /// The `/auth` URL, with the tenant query when one was given.
        url: String,
    },
}

impl Connections {
    fn count(&self) -> usize {
        match self {
            Self::Grpc(channels) => channels.len(),
            Self::Http { .. } => 1,
        }
    }
}

/// What a phase of calls measured.
pub(super) struct Tally {
    /// Latency per call, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Calls answered.
    pub calls: u64,
    /// Tokens judged (a batch call judges several).
    pub validations: u64,
    /// Answers whose verdict differed from the expected one.
    pub wrong: u64,
    /// Calls that failed (an RPC error, a broken stream, a token a stream never answered).
    pub failed: u64,
    /// Calls refused at once because the server was over a limit (`RESOURCE_EXHAUSTED`, 503).
    pub shed: u64,
    /// Latency of the shed answers, in nanoseconds.
    pub shed_latency: Histogram<u64>,
    /// When the first call failed or was shed, in milliseconds since the Unix epoch.
    pub first_failure_ms: Option<i64>,
    /// The first wrong or failed answer, to print.
    pub first_problem: Option<String>,
}

/// Why a call got no verdict.
pub(super) enum Unanswered {
    /// Refused at once: the server was over a limit (`RESOURCE_EXHAUSTED`, or HTTP 503).
    Shed,
    /// Anything else: an RPC error, a broken connection or stream.
    Failed(String),
}

impl Unanswered {
    /// The failure of a gRPC call named `what`.
    fn rpc(what: &str, status: &tonic::Status) -> Self {
        if status.code() == tonic::Code::ResourceExhausted {
            Self::Shed
        } else {
            Self::Failed(format!("{what} failed: {status}"))
        }
    }
}

impl From<String> for Unanswered {
    fn from(text: String) -> Self {
        Self::Failed(text)
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant, valid histogram bounds")
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: histogram(),
            calls: 0,
            validations: 0,
            wrong: 0,
            failed: 0,
            shed: 0,
            shed_latency: histogram(),
            first_failure_ms: None,
            first_problem: None,
        }
    }

    fn problem(&mut self, text: String) {
        self.first_problem.get_or_insert(text);
    }

    fn failure_now(&mut self) {
        self.first_failure_ms
            .get_or_insert_with(crate::clock::now_millis);
    }

    fn record(&mut self, elapsed: Duration, outcome: Result<Judged, Unanswered>) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        match outcome {
            Ok(judged) => {
                self.calls += 1;
                self.validations += judged.validations;
                self.wrong += judged.wrong.len() as u64;
                if let Some(first) = judged.wrong.into_iter().next() {
                    self.problem(first);
                }
                let _ = self.latency.record(nanos);
            }
            Err(Unanswered::Shed) => {
                self.failure_now();
                self.shed += 1;
                let _ = self.shed_latency.record(nanos);
            }
            Err(Unanswered::Failed(error)) => {
                self.failure_now();
                self.failed += 1;
                self.problem(error);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        let _ = self.latency.add(&other.latency);
        self.calls += other.calls;
        self.validations += other.validations;
        self.wrong += other.wrong;
        self.failed += other.failed;
        self.shed += other.shed;
        let _ = self.shed_latency.add(&other.shed_latency);
        self.first_failure_ms = match (self.first_failure_ms, other.first_failure_ms) {
            (Some(mine), Some(theirs)) => Some(mine.min(theirs)),
            (mine, theirs) => mine.or(theirs),
        };
        if let Some(problem) = other.first_problem {
            self.problem(problem);
        }
    }
}

/// The checked answer of one call.
struct Judged {
    validations: u64,
    wrong: Vec<String>,
}

impl Judged {
    fn one(problem: Option<String>) -> Self {
        Self {
            validations: 1,
            wrong: problem.into_iter().collect(),
        }
    }
}

/// Everything a phase needs.
#[derive(Clone)]
pub(super) struct Phase {
    /// The call.
    pub call: Call,
    /// Where to.
    pub connections: Connections,
    /// Tokens, used in turn.
    pub samples: Arc<[Prepared]>,
    /// Calls in flight per connection.
    pub in_flight: usize,
    /// How long a stream waits before reading each answer (a slow reader); zero: none.
    pub read_delay: Duration,
}

/// Makes calls for `duration` and tallies them.
pub(super) async fn run(phase: &Phase, duration: Duration) -> Tally {
    let deadline = Instant::now() + duration;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for connection in 0..phase.connections.count() {
        if phase.call == Call::Stream {
            let phase = phase.clone();
            let next = next.clone();
            workers.spawn(async move { stream(&phase, connection, &next, deadline).await });
            continue;
        }
        for _ in 0..phase.in_flight {
            let phase = phase.clone();
            let next = next.clone();
            workers.spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let outcome = once(&phase, connection, &next).await;
                    tally.record(started.elapsed(), outcome);
                }
                tally
            });
        }
    }
    let mut total = Tally::new();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(tally) => total.merge(tally),
            Err(error) => total.problem(format!("a worker failed: {error}")),
        }
    }
    total
}

fn take<'s>(samples: &'s [Prepared], next: &AtomicUsize) -> (usize, &'s Prepared) {
    let index = next.fetch_add(1, Ordering::Relaxed) % samples.len();
    (index, &samples[index])
}

fn channel(phase: &Phase, connection: usize) -> Channel {
    match &phase.connections {
        Connections::Grpc(channels) => channels[connection % channels.len()].clone(),
        // Only gRPC calls ask for a channel; `run` never pairs them with HTTP.
        Connections::Http { .. } => unreachable!("gRPC call on an HTTP target"),
    }
}

async fn once(phase: &Phase, connection: usize, next: &AtomicUsize) -> Result<Judged, Unanswered> {
    match phase.call {
        Call::Unary => {
            let (_, prepared) = take(&phase.samples, next);
            let answer: wire::Answer = wire::unary(
                channel(phase, connection),
                wire::VALIDATE_TOKEN,
                prepared.validate.clone(),
            )
            .await
            .map_err(|status| Unanswered::rpc("ValidateToken", &status))?;
            Ok(Judged::one(check_validation(&prepared.sample, &answer)))
        }
        Call::Batch(size) => {
            let picked: Vec<&Prepared> = (0..size).map(|_| take(&phase.samples, next).1).collect();
            let answers: wire::Answers = wire::unary(
                channel(phase, connection),
                wire::VALIDATE_BATCH,
                batch_request(&picked),
            )
            .await
            .map_err(|status| Unanswered::rpc("ValidateBatch", &status))?;
            if answers.responses.len() != picked.len() {
                return Err(Unanswered::Failed(format!(
                    "ValidateBatch answered {} of {} tokens",
                    answers.responses.len(),
                    picked.len()
                )));
            }
            let wrong = picked
                .iter()
                .zip(&answers.responses)
                .filter_map(|(prepared, answer)| check_validation(&prepared.sample, answer))
                .collect();
            Ok(Judged {
                validations: size as u64,
                wrong,
            })
        }
        Call::Check => {
            let (_, prepared) = take(&phase.samples, next);
            let decision: wire::Decision = wire::unary(
                channel(phase, connection),
                wire::CHECK,
                prepared.check.clone(),
            )
            .await
            .map_err(|status| Unanswered::rpc("Check", &status))?;
            Ok(Judged::one(check_decision(&prepared.sample, &decision)))
        }
        Call::Health => {
            let health: wire::Health =
                wire::unary(channel(phase, connection), wire::HEALTH, Encoded::default())
                    .await
                    .map_err(|status| Unanswered::rpc("Health/Check", &status))?;
            let serving = health.status == 1;
            Ok(Judged::one((!serving).then(|| {
                format!("health is {} (not SERVING)", health.status)
            })))
        }
        Call::ForwardAuth | Call::NoToken => forward_auth(phase, next).await,
        Call::Stream => Err(Unanswered::Failed("streams are driven by `stream`".into())),
    }
}

async fn forward_auth(phase: &Phase, next: &AtomicUsize) -> Result<Judged, Unanswered> {
    let Connections::Http { client, url } = &phase.connections else {
        return Err(Unanswered::Failed(
            "forward-auth needs an http:// address".into(),
        ));
    };
    let mut request = client.get(url);
    let sample = (phase.call == Call::ForwardAuth).then(|| &take(&phase.samples, next).1.sample);
    if let Some(sample) = sample {
        request = request.header("authorization", format!("Bearer {}", sample.token));
    }
    let response = request
        .send()
        .await
        .map_err(|error| format!("GET /auth failed: {error}"))?;
    // Shed: 503 with Retry-After (a 503 without it is "keys unavailable", a verdict). The
    // body is read so that the connection stays usable.
    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
        && response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER)
    {
        let _ = response.bytes().await;
        return Err(Unanswered::Shed);
    }
    let allowed = response.status() == reqwest::StatusCode::OK;
    let body = response
        .text()
        .await
        .map_err(|error| format!("GET /auth body: {error}"))?;
    let problem = match sample {
        Some(sample) => judge_gateway(sample.expect, allowed, error_code(&body)),
        None => allowed.then(|| "a request without a token was allowed".to_owned()),
    };
    Ok(Judged::one(problem))
}

/// One stream on one connection with `in_flight` tokens outstanding; answers come back in
/// request order, so each is matched to the oldest outstanding token.
async fn stream(phase: &Phase, connection: usize, next: &AtomicUsize, deadline: Instant) -> Tally {
    let mut tally = Tally::new();
    let (sender, receiver) = tokio::sync::mpsc::channel(phase.in_flight);
    let outstanding = Arc::new(std::sync::Mutex::new(VecDeque::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(phase.in_flight));
    let feeder = {
        let (phase, outstanding, permits) = (phase.clone(), outstanding.clone(), permits.clone());
        let start = next.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut turn = start;
            while Instant::now() < deadline {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                permit.forget();
                let index = turn % phase.samples.len();
                turn += 1;
                if let Ok(mut queue) = outstanding.lock() {
                    queue.push_back((index, Instant::now()));
                }
                let request = phase.samples[index].validate.clone();
                if sender.send(request).await.is_err() {
                    return;
                }
            }
        }
    };
    let feeder = tokio::spawn(feeder);
    let inbound = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let mut answers = match wire::stream(channel(phase, connection), inbound).await {
        Ok(answers) => answers,
        Err(status) => {
            tally.record(
                Duration::ZERO,
                Err(Unanswered::rpc("ValidateStream", &status)),
            );
            feeder.abort();
            return tally;
        }
    };
    loop {
        if !phase.read_delay.is_zero() {
            tokio::time::sleep(phase.read_delay).await;
        }
        // The remaining answers get CALL_TIMEOUT past the run's end to arrive; what has not
        // arrived by then is counted missing below.
        let limit = deadline + CALL_TIMEOUT;
        let Ok(Some(answer)) = tokio::time::timeout_at(limit, answers.next()).await else {
            break;
        };
        let sent = outstanding
            .lock()
            .ok()
            .and_then(|mut queue| queue.pop_front());
        permits.add_permits(1);
        let Some((index, sent_at)) = sent else {
            tally.record(
                Duration::ZERO,
                Err(Unanswered::Failed("an answer nobody asked for".into())),
            );
            break;
        };
        let outcome = match answer {
            Ok(answer) if answer.correlation_id != index.to_string() => {
                Err(Unanswered::Failed(format!(
                    "answers out of order: expected correlation id {index}, got {}",
                    answer.correlation_id
                )))
            }
            Ok(answer) => Ok(Judged::one(check_validation(
                &phase.samples[index].sample,
                &answer,
            ))),
            Err(status) => Err(Unanswered::rpc("ValidateStream answer", &status)),
        };
        let failed = outcome.is_err();
        tally.record(sent_at.elapsed(), outcome);
        if failed {
            break;
        }
    }
    feeder.abort();
    let _ = feeder.await;
    // Tokens sent that the stream never answered (it broke, or the server ended it) are
    // failed calls too: nothing sent goes uncounted.
    let missing = outstanding.lock().map_or(0, |queue| queue.len() as u64);
    if missing > 0 {
        tally.failed += missing;
        tally.problem(format!("{missing} tokens sent on a stream got no answer"));
    }
    tally
}
