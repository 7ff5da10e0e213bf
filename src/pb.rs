//! Generated protobuf and gRPC code for `tokengate.v1`.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("tokengate.v1");

/// The encoded descriptor set of `tokengate.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tokengate_descriptor");
