//! The whole Director stack in one process, for development (`director up`) and the
//! end-to-end tests: every service that exists and the gateway, each on its own TCP listener
//! and talking real gRPC over loopback — the same code paths as a deployment, without one.

use std::net::SocketAddr;

use anyhow::Context;
use director_companies::CompaniesConfig;
use director_gateway::{Gateway, GatewayConfig};
use director_platform::config::Env;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A running stack. Dropping it does not stop it; call [`RunningStack::stop`].
#[derive(Debug)]
pub struct RunningStack {
    /// Where the gateway listens (REST, gRPC-Web, gRPC).
    pub gateway_addr: SocketAddr,
    /// Where each started service listens, by service name.
    pub services: Vec<(&'static str, SocketAddr)>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl RunningStack {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// Where the named service listens, if it was started.
    pub fn service_addr(&self, service: &str) -> Option<SocketAddr> {
        self.services
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, addr)| *addr)
    }

    /// Resolves when any part stops on its own (an error, or the shutdown token).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            Some(outcome) => outcome.context("a stack task panicked")?,
            None => Ok(()),
        }
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

/// Starts every service and the gateway with the settings in `env` (databases must already
/// be migrated). Listen addresses may use port 0; the gateway is pointed at the ports the
/// services actually got.
pub async fn start(env: &Env, shutdown: CancellationToken) -> anyhow::Result<RunningStack> {
    let mut tasks = JoinSet::new();
    let mut services = Vec::new();

    let companies = CompaniesConfig::from_env(env)?;
    let listener = bind(companies.listen_addr, "companies").await?;
    let companies_addr = listener.local_addr()?;
    services.push(("companies", companies_addr));
    tasks.spawn(director_companies::serve(
        companies,
        listener,
        shutdown.child_token(),
    ));

    let gateway_config = GatewayConfig::from_env(env)?;
    let gateway_listener = bind(gateway_config.addr, "gateway").await?;
    let gateway_addr = gateway_listener.local_addr()?;
    let descriptors = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
        .context("the compiled descriptor set does not decode")?;
    let upstreams = services
        .iter()
        .map(|(service, addr)| upstream(service, *addr))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gateway = Gateway::build(gateway_config, descriptors, upstreams)?;
    tasks.spawn(gateway.serve(gateway_listener, shutdown.child_token()));

    Ok(RunningStack {
        gateway_addr,
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

/// The gateway's upstream entry for a service started on `addr`: its package and loopback URI.
fn upstream(service: &str, addr: SocketAddr) -> anyhow::Result<(String, http::Uri)> {
    let package = director_proto::SERVICE_PACKAGES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, package)| (*package).to_owned())
        .with_context(|| format!("no protobuf package is registered for {service}"))?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    Ok((package, format!("http://{host}").parse()?))
}
