//! gRPC services the gateway answers itself: server reflection (v1 and v1alpha), so
//! `grpcurl -plaintext localhost:8080 list` shows every service the gateway routes (and only
//! those: service-to-service APIs are not listed), and `grpc.health.v1.Health` for the
//! gateway process. Both are public.

use prost_reflect::DescriptorPool;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Whether a gRPC path belongs to a locally served, public service.
pub fn is_local(path: &str) -> bool {
    path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        || path.starts_with("/grpc.health.v1.Health/")
}

/// Reflection listing `routed` services (full names) and health, as tonic routes, and the
/// health reporter (overall status `""` starts SERVING; set NOT_SERVING when shutting down).
pub fn local_services<'a>(
    pool: &DescriptorPool,
    routed: impl IntoIterator<Item = &'a str> + Clone,
) -> anyhow::Result<(Routes, HealthReporter)> {
    let encoded = pool.encode_to_vec();
    let builder = || {
        routed
            .clone()
            .into_iter()
            .chain(["grpc.health.v1.Health"])
            .fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(&encoded)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
                |builder, name| builder.with_service_name(name),
            )
    };
    let reflection_v1 = builder().build_v1()?;
    let reflection_v1alpha = builder().build_v1alpha()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    let routes = Routes::new(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(health)
        .prepare();
    Ok((routes, reporter))
}
