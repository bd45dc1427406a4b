//! Compiles `proto/*.proto` with protox (pure Rust, so no `protoc` binary is needed) and
//! generates prost types whose `bytes` fields are `bytes::Bytes` (decoded without a copy).

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let files = [
        "proto/weir.proto",
        "proto/group_api.proto",
        "proto/metadata.proto",
        "proto/groups.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    // raft.proto carries metadata records: generated apart, pointing at the module that
    // already has them.
    println!("cargo:rerun-if-changed=proto/raft.proto");
    let raft = protox::compile(["proto/raft.proto"], ["proto"])?;
    prost_build::Config::new()
        .bytes(["."])
        .extern_path(".weir.metadata.v1", "crate::native::metadata")
        .compile_fds(raft)?;
    Ok(())
}
