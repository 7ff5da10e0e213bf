//! The load generator's own wire types, so that it costs the machine as little as it can and
//! the figures are the server's: requests are encoded once per token and sent as bytes, and
//! answers are decoded into just the fields the verdict checks read (prost skips the rest
//! without allocating).

use bytes::{BufMut, Bytes};
use http::uri::PathAndQuery;
use prost::encoding::{DecodeContext, WireType};
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

/// `/tokengate.v1.TokenValidator/ValidateToken`.
pub(super) const VALIDATE_TOKEN: &str = "/tokengate.v1.TokenValidator/ValidateToken";
/// `/tokengate.v1.TokenValidator/ValidateBatch`.
pub(super) const VALIDATE_BATCH: &str = "/tokengate.v1.TokenValidator/ValidateBatch";
/// `/tokengate.v1.TokenValidator/ValidateStream`.
pub(super) const VALIDATE_STREAM: &str = "/tokengate.v1.TokenValidator/ValidateStream";
/// `/envoy.service.auth.v3.Authorization/Check`.
pub(super) const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";
/// `/grpc.health.v1.Health/Check`.
pub(super) const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// A message encoded in advance: sent as it is.
#[derive(Clone, Debug, Default)]
pub(super) struct Encoded(pub(super) Bytes);

impl Encoded {
    /// Encodes `message` once.
    pub(super) fn of(message: &impl prost::Message) -> Self {
        Self(message.encode_to_vec().into())
    }
}

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl bytes::Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Never decoded into; skip whatever arrives.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// The fields of `ValidateTokenResponse` a verdict check reads.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Answer {
    /// Whether the token is valid.
    #[prost(bool, tag = "1")]
    pub(super) valid: bool,
    /// The detail of a rejection.
    #[prost(string, tag = "3")]
    pub(super) detail: String,
    /// The request's correlation id, echoed.
    #[prost(string, tag = "11")]
    pub(super) correlation_id: String,
    /// The reason code of a rejection.
    #[prost(string, tag = "12")]
    pub(super) reason_code: String,
}

/// `ValidateBatchResponse`, with light answers.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Answers {
    /// One answer per token, in order.
    #[prost(message, repeated, tag = "1")]
    pub(super) responses: Vec<Answer>,
}

/// The fields of an Envoy `CheckResponse` a decision check reads.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Decision {
    /// `google.rpc.Status`.
    #[prost(message, optional, tag = "1")]
    pub(super) status: Option<RpcStatus>,
    /// The denied response.
    #[prost(message, optional, tag = "2")]
    pub(super) denied_response: Option<Denied>,
}

/// `google.rpc.Status`: the code alone.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RpcStatus {
    /// 0 allows.
    #[prost(int32, tag = "1")]
    pub(super) code: i32,
}

/// `DeniedHttpResponse`: the body alone (JSON with the reason code).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Denied {
    /// The body.
    #[prost(string, tag = "3")]
    pub(super) body: String,
}

/// `HealthCheckResponse`: the status.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Health {
    /// 1 is SERVING.
    #[prost(int32, tag = "1")]
    pub(super) status: i32,
}

/// One unary call: the pre-encoded request, the answer decoded as `T`.
pub(super) async fn unary<T: prost::Message + Default + Send + 'static>(
    channel: Channel,
    path: &'static str,
    request: Encoded,
) -> Result<T, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let codec: ProstCodec<Encoded, T> = ProstCodec::default();
    grpc.unary(
        tonic::Request::new(request),
        PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A bidirectional stream of pre-encoded requests and light answers.
pub(super) async fn stream(
    channel: Channel,
    requests: impl tokio_stream::Stream<Item = Encoded> + Send + 'static,
) -> Result<tonic::Streaming<Answer>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let codec: ProstCodec<Encoded, Answer> = ProstCodec::default();
    grpc.streaming(
        tonic::Request::new(requests),
        PathAndQuery::from_static(VALIDATE_STREAM),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;
    use prost::Message as _;

    #[test]
    fn light_answers_read_the_fields_of_the_full_message() {
        let full = pb::ValidateTokenResponse {
            valid: false,
            reason: 9,
            detail: "expired".into(),
            tenant: "t".into(),
            claims_json: Bytes::from_static(b"{}"),
            correlation_id: "7".into(),
            reason_code: "expired".into(),
            ..pb::ValidateTokenResponse::default()
        };
        let light = Answer::decode(full.encode_to_vec().as_slice()).expect("decodes");
        assert!(!light.valid);
        assert_eq!(light.detail, "expired");
        assert_eq!(light.correlation_id, "7");
        assert_eq!(light.reason_code, "expired");
        let request = pb::ValidateTokenRequest {
            token: "a.b.c".into(),
            ..pb::ValidateTokenRequest::default()
        };
        assert_eq!(Encoded::of(&request).0.as_ref(), request.encode_to_vec());
    }
}
