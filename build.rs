//! Compiles `proto/` with a pure-Rust protobuf compiler (no `protoc` needed) and keeps the
//! encoded descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["tokengate/v1/tokengate.proto"], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("tokengate_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Claims are shared (reference-counted) between the cache and responses, not copied.
        .bytes(".tokengate.v1.ValidateTokenResponse.claims_json")
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
