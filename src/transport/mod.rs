//! How callers reach the validator: the `tokengate.v1` gRPC API ([`grpc`]), Envoy ext_authz
//! ([`ext_authz`]) and HTTP forward-auth ([`forward_auth`]), the gateway decision both of those
//! share ([`gateway`], with its report-only mode, [`report`]), and the one mapping to wire
//! codes ([`status`]).
//!
//! May import: the validator, `runtime` (to load a snapshot), `config`, `pb`. No transport
//! imports another; what two of them share lives in `gateway` or `status`.

pub(crate) mod deadline;
pub(crate) mod ext_authz;
pub(crate) mod forward_auth;
pub(crate) mod gateway;
pub(crate) mod grpc;
pub(crate) mod report;
pub(crate) mod shed;
pub(crate) mod status;
