//! Load shedding: at most `limits.max_in_flight` requests are handled at once, over gRPC and
//! forward-auth together. One more is answered at once (`RESOURCE_EXHAUSTED`, or 503 with
//! `Retry-After`), never queued, and counted in `tokengate_shed_total{reason="in_flight"}`;
//! `tokengate_requests_in_flight` shows the count. Health checks are never shed, so that an
//! overloaded server is seen as busy, not dead.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use metrics::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_layer::Layer;
use tower_service::Service;

use crate::ops::metrics::shed;

/// The gRPC path prefix of the health service, which is never shed.
const HEALTH: &str = "/grpc.health.v1.Health/";

/// The requests in progress, against their bound.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
    gauge: Gauge,
}

/// One request's place; given back when dropped.
#[derive(Debug)]
pub(crate) struct Entered {
    _permit: OwnedSemaphorePermit,
    in_flight: InFlight,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // The permit is given back after this body runs, so count it as gone already.
        let held = self.in_flight.max - self.in_flight.permits.available_permits();
        self.in_flight.gauge.set(held.saturating_sub(1) as f64);
    }
}

impl InFlight {
    /// At most `max` requests at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            gauge: metrics::gauge!("tokengate_requests_in_flight"),
        }
    }

    /// A place for one more request, or `None` (counted as shed) when all are taken.
    pub(crate) fn try_enter(&self) -> Option<Entered> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            shed("in_flight");
            return None;
        };
        let held = self.max - self.permits.available_permits();
        self.gauge.set(held as f64);
        Some(Entered {
            _permit: permit,
            in_flight: self.clone(),
        })
    }
}

/// Sheds gRPC requests over the bound (a tower layer for tonic's server).
#[derive(Clone, Debug)]
pub(crate) struct ShedLayer {
    in_flight: InFlight,
}

impl ShedLayer {
    /// A layer over the shared bound.
    pub(crate) fn new(in_flight: InFlight) -> Self {
        Self { in_flight }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            in_flight: self.in_flight.clone(),
        }
    }
}

/// A service whose calls wait for nothing: each gets a place, or `RESOURCE_EXHAUSTED` at once.
#[derive(Clone, Debug)]
pub(crate) struct Shed<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for Shed<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        if request.uri().path().starts_with(HEALTH) {
            return Box::pin(self.inner.call(request));
        }
        let Some(entered) = self.in_flight.try_enter() else {
            let status = tonic::Status::resource_exhausted(
                "tokengate is handling max_in_flight requests already; retry shortly",
            );
            let response = status.into_http::<ResponseBody>();
            return Box::pin(async move { Ok(response) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(entered);
            response
        })
    }
}
