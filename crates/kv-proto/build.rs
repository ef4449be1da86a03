//! Compiles the `.proto` files with a vendored `protoc`, so a fresh machine needs no install.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // `set_var` is `unsafe` in edition 2024 because another thread could read the environment
    // at the same time; this build script has no other threads, and prost-build (which
    // tonic-prost-build drives) reads PROTOC.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc);
    }
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/kv.proto",
            "proto/peer.proto",
            "proto/admin.proto",
            "proto/watch.proto",
            // etcd's KV and Maintenance, for `raft-client bench --target etcd`: compiled
            // here with the vendored protoc, since the etcd-client crate's build script
            // would need a system one.
            "proto/etcd.proto",
        ],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
