//! Standard gRPC server metrics, named as go-grpc-prometheus names them (so existing dashboards
//! and alerts work): `grpc_server_started_total`, `grpc_server_handled_total` (by `grpc_code`),
//! `grpc_server_handling_seconds`, and `grpc_server_in_flight`.
//!
//! A tower layer in front of every gRPC service. The status of a call is read from the
//! `grpc-status` trailer (or header, for trailers-only answers) as the response body ends.
//! Labels come from the services registered on the port ([`ServedService`]: their own names,
//! and their methods from their descriptor sets); a call to any other path is labelled
//! `unknown`, so it is counted without letting clients create label values.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame};
use metrics::{Counter, Gauge, Histogram};
use pin_project_lite::pin_project;
use prost::Message as _;
use prost_types::FileDescriptorSet;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

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
    fn new(service: &str, method: &str, kind: &str) -> Self {
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

/// One gRPC service on the port, as the metrics label it: its name (from the service's own
/// `NamedService::NAME`) and its methods with their gRPC types.
#[derive(Clone, Debug)]
pub(crate) struct ServedService {
    name: &'static str,
    methods: Vec<(String, &'static str)>,
}

impl ServedService {
    /// A service whose methods are read from its encoded descriptor set (the one that server
    /// reflection serves). A set that cannot be read gives no methods: their calls are then
    /// labelled `unknown`, never dropped.
    pub(crate) fn described(name: &'static str, descriptor_set: &[u8]) -> Self {
        let methods = FileDescriptorSet::decode(descriptor_set)
            .map(|set| methods_of(&set, name))
            .unwrap_or_default();
        Self { name, methods }
    }

    /// A service whose crate ships no descriptor set: its methods as (name, grpc_type).
    pub(crate) fn with_methods(name: &'static str, methods: &[(&str, &'static str)]) -> Self {
        let methods = methods
            .iter()
            .map(|(method, kind)| ((*method).to_owned(), *kind))
            .collect();
        Self { name, methods }
    }
}

/// The methods of service `name` in a descriptor set, with go-grpc-prometheus's `grpc_type`.
fn methods_of(set: &FileDescriptorSet, name: &str) -> Vec<(String, &'static str)> {
    let services = set.file.iter().flat_map(|file| {
        file.service.iter().map(move |service| {
            let package = file.package();
            let full = if package.is_empty() {
                service.name().to_owned()
            } else {
                format!("{package}.{}", service.name())
            };
            (full, service)
        })
    });
    services
        .filter(|(full, _)| full == name)
        .flat_map(|(_, service)| service.method.iter())
        .map(|method| {
            let kind = match (method.client_streaming(), method.server_streaming()) {
                (false, false) => "unary",
                (true, false) => "client_stream",
                (false, true) => "server_stream",
                (true, true) => "bidi_stream",
            };
            (method.name().to_owned(), kind)
        })
        .collect()
}

/// Handles for every method of the served services, and for calls to anything else.
struct Table {
    methods: HashMap<String, Arc<MethodMetrics>>,
    unknown: Arc<MethodMetrics>,
}

impl Table {
    fn new(services: &[ServedService]) -> Self {
        describe();
        let methods = services
            .iter()
            .flat_map(|service| {
                service.methods.iter().map(|(method, kind)| {
                    let metrics = MethodMetrics::new(service.name, method, kind);
                    (format!("/{}/{method}", service.name), Arc::new(metrics))
                })
            })
            .collect();
        Self {
            methods,
            unknown: Arc::new(MethodMetrics::new(UNKNOWN, UNKNOWN, UNKNOWN)),
        }
    }

    /// The handles for a request path; a path no service serves is labelled `unknown` (with a
    /// bounded label set, whatever clients send).
    fn get(&self, path: &str) -> Arc<MethodMetrics> {
        self.methods.get(path).unwrap_or(&self.unknown).clone()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The label value of calls to a service or method that is not served.
const UNKNOWN: &str = "unknown";

fn describe() {
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
}

/// The layer to put in front of the gRPC services.
#[derive(Clone, Debug)]
pub(crate) struct GrpcMetricsLayer {
    table: Arc<Table>,
}

impl GrpcMetricsLayer {
    /// A layer for the services served on the port. Build it after the metrics recorder is
    /// installed: handles taken before are no-ops.
    pub(crate) fn new(services: &[ServedService]) -> Self {
        Self {
            table: Arc::new(Table::new(services)),
        }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            table: self.table.clone(),
        }
    }
}

/// Records the standard metrics for each call to `S`.
#[derive(Clone, Debug)]
pub(crate) struct GrpcMetrics<S> {
    inner: S,
    table: Arc<Table>,
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
        let call = Some(Call::start(self.table.get(request.uri().path())));
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

#[cfg(test)]
mod tests;
