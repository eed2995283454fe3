//! Compiles the contracts under `proto/` with `protox` (pure Rust, no system `protoc`) and
//! hands the result to `tonic-prost-build`.
//!
//! The descriptor set exported for reflection and the gateway is encoded by the compiler
//! itself: re-encoding the `prost_types` copy would drop extension options such as
//! `google.api.http`, and with them every REST route.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let contracts = proto_files(&proto_root.join("director"))?;

    let mut compiler = protox::Compiler::new([proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(
        contracts
            .iter()
            .map(|path| path.strip_prefix(proto_root).unwrap_or(path)),
    )?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("director_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        // `prost::Name` on every message: the platform's rule book finds a request's
        // descriptor (and its `buf.validate` rules) by the message's full name.
        .compile_fds_with_config(compiler.file_descriptor_set(), type_names())?;

    println!("cargo:rerun-if-changed=director");
    println!("cargo:rerun-if-changed=google");
    println!("cargo:rerun-if-changed=buf");
    Ok(())
}

fn type_names() -> prost_build::Config {
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    config
}

/// Every `.proto` file below `dir`, sorted so the generated code is stable.
fn proto_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(proto_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
