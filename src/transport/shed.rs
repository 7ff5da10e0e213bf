//! Load shedding: at most `limits.max_in_flight` requests are handled at once, over gRPC and
//! forward-auth together. One more is answered at once (`RESOURCE_EXHAUSTED`, or 503 with
//! `Retry-After`), never queued, and counted in `tokengate_shed_total{reason="in_flight"}`;
//! `tokengate_requests_in_flight` shows the count. A request holds its place until its response
//! body ends (a stream, until it closes). Health checks are never shed, so that an overloaded
//! server is seen as busy, not dead.

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

/// What a shed request is told, on every transport.
pub(crate) const SHED_MESSAGE: &str =
    "tokengate is handling max_in_flight requests already; retry shortly";

/// The requests in progress, against their bound.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    permits: Arc<Semaphore>,
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
        self.in_flight.gauge.decrement(1.0);
    }
}

impl InFlight {
    /// At most `max` requests at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            gauge: metrics::gauge!("tokengate_requests_in_flight"),
        }
    }

    /// A place for one more request, or `None` (counted as shed) when all are taken.
    pub(crate) fn try_enter(&self) -> Option<Entered> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            shed("in_flight");
            return None;
        };
        self.gauge.increment(1.0);
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
    type Response = http::Response<HeldBody<ResponseBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        if request.uri().path().starts_with(HEALTH) {
            let future = self.inner.call(request);
            return Box::pin(async move { Ok(future.await?.map(HeldBody::free)) });
        }
        let Some(entered) = self.in_flight.try_enter() else {
            let status = tonic::Status::resource_exhausted(SHED_MESSAGE);
            let response = status.into_http::<ResponseBody>().map(HeldBody::free);
            return Box::pin(async move { Ok(response) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| HeldBody {
                inner: body,
                entered: Some(entered),
            }))
        })
    }
}

/// A response body that holds its request's place until it ends (or is dropped).
#[derive(Debug)]
pub(crate) struct HeldBody<B> {
    inner: B,
    entered: Option<Entered>,
}

impl<B> HeldBody<B> {
    /// A body that holds no place (a shed answer, a health check).
    fn free(inner: B) -> Self {
        Self {
            inner,
            entered: None,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(context);
        if matches!(frame, Poll::Ready(None)) {
            this.entered = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
