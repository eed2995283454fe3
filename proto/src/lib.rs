//! Director's contracts as Rust: one module per protobuf package, plus the encoded
//! descriptor set (with source info and every option, `google.api.http` included) that
//! reflection and the gateway are built from.

/// The encoded `google.protobuf.FileDescriptorSet` of every Director contract and its
/// imports, with comments (source info) and extension options intact.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/director_descriptor.bin"));

/// Generated code is exempt from house lints.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    missing_docs
)]
pub mod director {
    pub mod companies {
        pub mod v1 {
            tonic::include_proto!("director.companies.v1");
        }
        pub mod internal {
            pub mod v1 {
                tonic::include_proto!("director.companies.internal.v1");
            }
        }
    }
    pub mod dispatch {
        pub mod v1 {
            tonic::include_proto!("director.dispatch.v1");
        }
        pub mod internal {
            pub mod v1 {
                tonic::include_proto!("director.dispatch.internal.v1");
            }
        }
    }
    pub mod integrations {
        pub mod v1 {
            tonic::include_proto!("director.integrations.v1");
        }
        pub mod internal {
            pub mod v1 {
                tonic::include_proto!("director.integrations.internal.v1");
            }
        }
    }
}

/// The `google.api` annotation types (`HttpRule`), generated from `proto/google/api`.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    missing_docs
)]
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

pub use director::companies::v1 as companies;
pub use director::dispatch::v1 as dispatch;
pub use director::integrations::v1 as integrations;

/// Service-to-service contracts: served by the services, never routed by the gateway.
pub mod internal {
    pub use crate::director::companies::internal::v1 as companies;
    pub use crate::director::dispatch::internal::v1 as dispatch;
    pub use crate::director::integrations::internal::v1 as integrations;
}
