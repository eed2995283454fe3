//! The REST test contract (`tests/rest_things.proto`), shared by the REST request and
//! response tests.
#![allow(clippy::unwrap_used)]

use prost_reflect::DescriptorPool;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

const THINGS_PROTO: &str = include_str!("../rest_things.proto");
const THINGS_FILE: &str = "test/things/v1/things.proto";

/// The test contract compiled the way `director-proto` compiles the real ones.
pub fn things_pool() -> DescriptorPool {
    struct Memory;
    impl FileResolver for Memory {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            if name == THINGS_FILE {
                File::from_source(name, THINGS_PROTO)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(Memory);
    resolver.add(IncludeFileResolver::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../proto").into(),
    ));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file(THINGS_FILE).unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}
