//! Standard gRPC server metrics, named as go-grpc-prometheus names them (so existing dashboards
//! and alerts work): `grpc_server_started_total`, `grpc_server_handled_total` (by `grpc_code`),
//! `grpc_server_handling_seconds`, and `grpc_server_in_flight`.
//!
//! A tower layer in front of every gRPC service. The status of a call is read from the
//! `grpc-status` trailer (or header, for trailers-only answers) as the response body ends;
//! labels come only from the fixed list of served methods.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use metrics::{Counter, Gauge, Histogram};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Every method served: (path, grpc_type).
const METHODS: [(&str, &str); 7] = [
    ("/tokengate.v1.TokenValidator/ValidateToken", "unary"),
    ("/tokengate.v1.TokenValidator/ValidateBatch", "unary"),
    ("/tokengate.v1.TokenValidator/ValidateStream", "bidi_stream"),
    ("/grpc.health.v1.Health/Check", "unary"),
    ("/grpc.health.v1.Health/Watch", "server_stream"),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "bidi_stream",
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "bidi_stream",
    ),
];

/// gRPC status names by code, as go-grpc-prometheus labels them.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// Pre-resolved handles for one method.
struct MethodMetrics {
    started: Counter,
    handled: Vec<Counter>,
    seconds: Histogram,
    in_flight: Gauge,
}

impl MethodMetrics {
    fn new(path: &str, kind: &'static str) -> Self {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let labels = [
            ("grpc_type", kind.to_owned()),
            ("grpc_service", service.to_owned()),
            ("grpc_method", method.to_owned()),
        ];
        Self {
            started: metrics::counter!("grpc_server_started_total", &labels),
            handled: CODES
                .iter()
                .map(|code| {
                    let mut with_code = labels.to_vec();
                    with_code.push(("grpc_code", (*code).to_owned()));
                    metrics::counter!("grpc_server_handled_total", &with_code)
                })
                .collect(),
            seconds: metrics::histogram!("grpc_server_handling_seconds", &labels),
            in_flight: metrics::gauge!("grpc_server_in_flight", &labels),
        }
    }
}

/// All handles, built on first use (after the recorder is installed).
fn table() -> &'static HashMap<&'static str, Arc<MethodMetrics>> {
    static TABLE: OnceLock<HashMap<&'static str, Arc<MethodMetrics>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        metrics::describe_counter!("grpc_server_started_total", "RPCs started on the server.");
        metrics::describe_counter!(
            "grpc_server_handled_total",
            "RPCs completed on the server, by gRPC status code."
        );
        metrics::describe_histogram!(
            "grpc_server_handling_seconds",
            metrics::Unit::Seconds,
            "Time from the start of an RPC to the end of its response."
        );
        metrics::describe_gauge!("grpc_server_in_flight", "RPCs being handled now.");
        METHODS
            .iter()
            .map(|(path, kind)| (*path, Arc::new(MethodMetrics::new(path, kind))))
            .collect()
    })
}

/// The layer to put in front of the gRPC services.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// Records the standard metrics for each call to `S`.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for GrpcMetrics<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResponseBody: Body,
{
    type Response = http::Response<MeteredBody<ResponseBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let method = table().get(request.uri().path()).cloned();
        let call = method.map(Call::start);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            Ok(match response {
                Ok(response) => {
                    let status_in_headers = grpc_status(response.headers());
                    let mut call = call;
                    // A trailers-only answer may never have its (empty) body polled.
                    if let Some(code) = status_in_headers
                        && response.body().is_end_stream()
                        && let Some(call) = call.take()
                    {
                        call.finish(code);
                    }
                    response.map(|body| MeteredBody {
                        inner: body,
                        call,
                        status_in_headers,
                    })
                }
                Err(error) => {
                    if let Some(call) = call {
                        call.finish(2); // Unknown: the service itself failed.
                    }
                    return Err(error);
                }
            })
        })
    }
}

/// One call in progress; finishing it records the code and the time.
struct Call {
    metrics: Arc<MethodMetrics>,
    started: Instant,
    finished: bool,
}

impl Call {
    fn start(metrics: Arc<MethodMetrics>) -> Self {
        metrics.started.increment(1);
        metrics.in_flight.increment(1.0);
        Self {
            metrics,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(mut self, code: usize) {
        self.record(code);
    }

    fn record(&mut self, code: usize) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.metrics.in_flight.decrement(1.0);
        self.metrics
            .seconds
            .record(self.started.elapsed().as_secs_f64());
        if let Some(counter) = self.metrics.handled.get(code) {
            counter.increment(1);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The client went away before the response ended.
        self.record(1);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

pin_project! {
    /// A response body that records the call when its trailers (or its end) arrive.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
        status_in_headers: Option<usize>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    call.finish(grpc_status(trailers).unwrap_or(2));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(2);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(this.status_in_headers.unwrap_or(2));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
