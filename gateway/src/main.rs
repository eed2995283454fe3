//! `director-gateway`: the gateway in front of Director's services, serving Director's own
//! contracts (the library itself is generic over any descriptor pool).

use anyhow::Context;
use clap::Parser;
use director_gateway::{Gateway, GatewayConfig};
use director_platform::catalog;
use director_platform::config::{Env, load_env_files};
use director_platform::{metrics, server, telemetry};
use prost_reflect::DescriptorPool;
use tokio_util::sync::CancellationToken;

/// Director's gateway: REST/JSON, gRPC-Web and gRPC on one port, in front of the services.
///
/// Settings come from the environment (and `.env`, `.env.<ENVIRONMENT>`): GATEWAY_ADDR
/// (0.0.0.0:8080), ADMIN_ADDR (0.0.0.0:9090, Prometheus `/metrics`), UPSTREAM_URL_TEMPLATE (http://127.0.0.1:{port}) and <SERVICE>_URL for
/// each service of the catalog (COMPANIES_URL, DISPATCH_URL, ...), SUPABASE_URL,
/// SUPABASE_JWKS_URL, SUPABASE_JWT_SECRET, JWT_AUDIENCE, JWT_ISSUER, TENANT_CLAIM, ROLE_CLAIM,
/// REQUIRE_CLAIMS,
/// CORS_ORIGINS, ALLOWED_ORIGIN_REGEX, MAX_BODY_BYTES, RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST,
/// ADDRESS_RATE_LIMIT_PER_SECOND, ADDRESS_RATE_LIMIT_BURST, TRUSTED_PROXIES,
/// HEADER_READ_TIMEOUT_MS, BODY_READ_TIMEOUT_MS, MAX_CONNECTIONS, UPSTREAM_TIMEOUT_MS,
/// MAX_CONCURRENT_REQUESTS, INTERNAL_TOKEN_SECRET,
/// INTERNAL_TOKEN_TTL_MS, ENVIRONMENT, DEBUG, RUST_LOG, LOG_FORMAT, OTEL_EXPORTER_OTLP_ENDPOINT.
/// See the README's configuration table.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
    load_env_files();
    let env = Env::from_process();
    let config = GatewayConfig::from_env(&env)?;
    let admin_addr = metrics::admin_addr(&env, metrics::DEFAULT_ADMIN_ADDR)?;
    let _telemetry = telemetry::init(&config.common.telemetry)?;

    let descriptors = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
        .context("the compiled descriptor set does not decode")?;
    // Every public package of the catalog, at `<SERVICE>_URL` or `UPSTREAM_URL_TEMPLATE`.
    let upstreams = catalog::public_upstreams(&env)?;

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("could not listen on {}", config.addr))?;
    tracing::info!(addr = %config.addr, "gateway listening");
    let shutdown = CancellationToken::new();
    server::shutdown_on_signals(shutdown.clone());
    metrics::spawn_admin(admin_addr, shutdown.clone()).await?;
    Gateway::build(config, descriptors, upstreams)?
        .serve(listener, shutdown)
        .await
}
