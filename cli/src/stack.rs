//! The whole Director stack in one process, for development (`director up`) and the
//! end-to-end tests: every service of the catalog and the gateway, each on its own TCP
//! listener and talking real gRPC over loopback — the same code paths as a deployment,
//! without one.

use std::net::SocketAddr;

use anyhow::Context;
use director_gateway::{Gateway, GatewayConfig};
use director_platform::catalog::{self, ServiceSpec};
use director_platform::config::Env;
use director_store::runner::{self, Service};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where `director up` serves `/metrics` unless `ADMIN_ADDR` says otherwise: loopback, on
/// the port OpenTelemetry's Prometheus exporter uses by default.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9464";

/// The services this binary links, one per catalog entry (checked by [`service_for`]).
pub const LINKED: &[&Service] = &[
    &director_companies::SERVICE,
    &director_dispatch::SERVICE,
    &director_integrations::SERVICE,
];

/// The linked service of a catalog entry.
pub fn service_for(spec: &ServiceSpec) -> anyhow::Result<&'static Service> {
    LINKED
        .iter()
        .copied()
        .find(|service| service.spec == spec)
        .with_context(|| format!("no service of this build implements {:?}", spec.name))
}

/// One started service.
#[derive(Debug)]
pub struct RunningService {
    /// Its catalog name.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

/// A running stack. Dropping it does not stop it; call [`RunningStack::stop`].
#[derive(Debug)]
pub struct RunningStack {
    /// Where the gateway listens (REST, gRPC-Web, gRPC).
    pub gateway_addr: SocketAddr,
    /// Where the one admin listener of the process serves Prometheus `/metrics` (every
    /// service and the gateway; series of a service are labelled `service_name`).
    pub admin_addr: SocketAddr,
    /// Every started service, in start-up order.
    pub services: Vec<RunningService>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl RunningStack {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// The Prometheus scrape URL, e.g. `http://127.0.0.1:9464/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.admin_addr)
    }

    /// Where the named service listens, if it was started.
    pub fn service_addr(&self, service: &str) -> Option<SocketAddr> {
        self.services
            .iter()
            .find(|running| running.name == service)
            .map(|running| running.addr)
    }

    /// Stops one service (it drains and its listener closes) while the rest keep running:
    /// how tests see the system with a service down.
    pub fn stop_service(&self, service: &str) -> anyhow::Result<()> {
        let running = self
            .services
            .iter()
            .find(|running| running.name == service)
            .with_context(|| format!("no running service {service:?}"))?;
        running.shutdown.cancel();
        Ok(())
    }

    /// Resolves when any part fails, or when every part has stopped.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        while let Some(outcome) = self.tasks.join_next().await {
            outcome.context("a stack task panicked")??;
            if self.shutdown.is_cancelled() {
                break;
            }
        }
        Ok(())
    }

    /// Asks every part to drain and waits until all have stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while let Some(outcome) = self.tasks.join_next().await {
            outcome.context("a stack task panicked")??;
        }
        Ok(())
    }
}

/// Starts every service of the catalog and the gateway with the settings in `env`
/// (databases must already be migrated). Listen addresses may use port 0: each service's
/// `<NAME>_URL` is set to where it actually listens, for the gateway and for the services
/// that call it.
pub async fn start(env: &Env, shutdown: CancellationToken) -> anyhow::Result<RunningStack> {
    let mut tasks = JoinSet::new();
    let mut services = Vec::new();
    let mut env = env.clone();

    // Each part's spans are exported under its own service.name.
    director_platform::telemetry::host_several_services();
    // One process, one recorder, one admin listener for all of it.
    director_platform::metrics::install();
    let admin_addr = director_platform::metrics::admin_addr(&env, DEFAULT_ADMIN_ADDR)?;
    let admin_listener = bind(admin_addr, "admin (metrics)").await?;
    let admin_addr = loopback(admin_listener.local_addr()?);
    tasks.spawn(director_platform::metrics::serve_admin(
        admin_listener,
        shutdown.child_token(),
    ));

    // Bind every listener first, so each service starts knowing where the others are.
    let mut listeners = Vec::new();
    for spec in catalog::SERVICES {
        let service = service_for(spec)?;
        let listener = bind(spec.listen_addr(&env)?, spec.name).await?;
        let addr = loopback(listener.local_addr()?);
        env = env.with_overrides([(spec.url_var(), format!("http://{addr}"))]);
        listeners.push((service, listener, addr));
    }
    for (service, listener, addr) in listeners {
        let service_shutdown = shutdown.child_token();
        services.push(RunningService {
            name: service.spec.name,
            addr,
            shutdown: service_shutdown.clone(),
        });
        let env = env.clone();
        tasks.spawn(async move { runner::serve(service, &env, listener, service_shutdown).await });
    }

    let gateway_config = GatewayConfig::from_env(&env)?;
    let gateway_listener = bind(gateway_config.addr, "gateway").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let descriptors = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
        .context("the compiled descriptor set does not decode")?;
    let upstreams = catalog::public_upstreams(&env)?;
    let gateway = Gateway::build(gateway_config, descriptors, upstreams)?;
    tasks.spawn(gateway.serve(gateway_listener, shutdown.child_token()));

    Ok(RunningStack {
        gateway_addr,
        admin_addr,
        services,
        shutdown,
        tasks,
    })
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{what}: could not listen on {addr}"))
}

/// `addr` as others on this machine reach it: an unspecified listen address becomes loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_entry_is_linked_exactly_once() {
        for spec in catalog::SERVICES {
            let linked = LINKED.iter().filter(|service| service.spec == spec).count();
            assert_eq!(linked, 1, "{} is linked {linked} times", spec.name);
        }
        assert_eq!(LINKED.len(), catalog::SERVICES.len());
    }
}
