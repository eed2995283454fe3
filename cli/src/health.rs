//! `director health`: probes a running Director process, for a container healthcheck —
//! a service's `grpc.health.v1.Health/Check` (overall status; SERVING exactly when its
//! database answers), or the gateway's readiness (`/api/health/ready`: 200 while at least one
//! upstream serves). Answers what it found; the command exits 0 when healthy, 1 otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use director_platform::catalog::{self, ServiceSpec};
use director_platform::config::Env;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The gateway's readiness route.
pub const READINESS_PATH: &str = "/api/health/ready";

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A service of the catalog, by name.
    Service(&'static ServiceSpec),
    /// The gateway.
    Gateway,
}

impl Target {
    /// `gateway` or a service of the catalog.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name == "gateway" {
            return Ok(Self::Gateway);
        }
        ServiceSpec::named(name).map(Self::Service).ok_or_else(|| {
            let mut known: Vec<&str> = catalog::SERVICES.iter().map(|spec| spec.name).collect();
            known.push("gateway");
            format!(
                "unknown process {name:?}; expected one of: {}",
                known.join(", ")
            )
        })
    }

    /// Where the process listens in this environment: its listen address variable
    /// (`<SERVICE>_ADDR`, `GATEWAY_ADDR`) or its default port, with an unspecified address
    /// (`0.0.0.0`) probed on loopback.
    pub fn local_addr(&self, env: &Env) -> anyhow::Result<SocketAddr> {
        let (variable, port) = match self {
            Self::Service(spec) => (spec.addr_var(), spec.default_port),
            Self::Gateway => ("GATEWAY_ADDR".to_owned(), 8080),
        };
        let mut addr = env
            .parse_or(&variable, SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(anyhow::Error::from)?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(addr)
    }
}

/// Probes `target` at `addr` within `timeout`: `Ok` with what it said when healthy, an error
/// saying what is wrong otherwise.
pub async fn probe(target: &Target, addr: SocketAddr, timeout: Duration) -> anyhow::Result<String> {
    let probe = async {
        match target {
            Target::Service(spec) => probe_service(spec.name, addr).await,
            Target::Gateway => probe_gateway(addr).await,
        }
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} within {}s", timeout.as_secs_f32()))?
}

async fn probe_service(name: &str, addr: SocketAddr) -> anyhow::Result<String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("{name} at {addr} does not accept connections"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "{name} at {addr} answered the health check with {:?}: {}",
                status.code(),
                status.message()
            )
        })?
        .into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    if status == ServingStatus::Serving {
        Ok(format!("{name} at {addr}: SERVING"))
    } else {
        anyhow::bail!(
            "{name} at {addr} is {} (its database does not answer, or it is stopping)",
            status.as_str_name()
        )
    }
}

/// `GET /api/health/ready` over plain HTTP/1.1: healthy on 200.
async fn probe_gateway(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("the gateway at {addr} does not accept connections"))?;
    let request = format!(
        "GET {READINESS_PATH} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: director-health\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .await
        .with_context(|| format!("the gateway at {addr} did not answer"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim())
        .unwrap_or_default();
    if code == "200" {
        Ok(format!("gateway at {addr}: ready"))
    } else if code.is_empty() {
        anyhow::bail!("the gateway at {addr} answered no HTTP status")
    } else {
        anyhow::bail!("the gateway at {addr} is not ready ({status_line}): {body}")
    }
}
