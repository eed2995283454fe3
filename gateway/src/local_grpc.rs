//! gRPC services the gateway answers itself: server reflection (v1 and v1alpha) over the whole
//! descriptor pool, so `grpcurl -plaintext localhost:8080 list` shows every service behind
//! the gateway, and `grpc.health.v1.Health` for the gateway process. Both are public.

use prost_reflect::DescriptorPool;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Whether a gRPC path belongs to a locally served, public service.
pub fn is_local(path: &str) -> bool {
    path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        || path.starts_with("/grpc.health.v1.Health/")
}

/// Reflection and health as tonic routes, and the health reporter (overall status `""`
/// starts SERVING; set NOT_SERVING when shutting down).
pub fn local_services(pool: &DescriptorPool) -> anyhow::Result<(Routes, HealthReporter)> {
    let encoded = pool.encode_to_vec();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(&encoded)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(&encoded)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    let routes = Routes::new(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(health)
        .prepare();
    Ok((routes, reporter))
}
