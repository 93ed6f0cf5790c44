//! Compiles the project's .proto files (the single source of truth in `protos/`) into Rust types, and keeps
//! their descriptor set so that the Python package can build its message classes from the same definitions.
use std::path::PathBuf;

use prost::Message;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let protos = manifest_dir.join("../../protos");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&protos)
        .expect("protos/ directory")
        .map(|entry| entry.expect("protos/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!("cargo:rerun-if-changed={}", protos.display());

    let descriptors = protox::compile(&files, [&protos]).expect("protos/ compile");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("descriptor_set.bin"), descriptors.encode_to_vec()).unwrap();
    prost_build::Config::new().compile_fds(descriptors).expect("generate Rust types for protos/");
}
