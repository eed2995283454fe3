//! Client-side balancing across every replica of a service.
//!
//! In Kubernetes each Director service has a headless Service: its DNS name resolves to the
//! address of every ready pod. One HTTP/2 connection to "the service" would pin all of a
//! caller's traffic on whichever pod it reached first, so [`balanced_channel`] resolves the
//! name itself, keeps one lazily connected channel per address (tonic's power-of-two-choices
//! balancer picks between them per call) and resolves again every refresh interval, adding
//! pods that appeared and dropping pods that left. Locally and in compose the name resolves to
//! one address and this is one connection, as before.
//!
//! When the name does not resolve (yet), the name itself is the only target, so calls fail
//! fast with the connection error instead of waiting for an address. A name with IPv4
//! addresses is balanced over those only (see [`reachable_family`]). An address that stops
//! answering stays a target until the name stops resolving to it: with headless Services
//! DNS lists ready pods only, and a terminating pod leaves it before it stops serving.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

/// How often names are resolved again (pods come and go; DNS of a headless Service follows
/// readiness within seconds).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Where a call may go: one resolved address, or the unresolved name itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Address(SocketAddr),
    Name,
}

/// A channel balancing over every address `uri`'s host resolves to, re-resolved every
/// `refresh`; `configure` applies the caller's settings (timeouts, windows, keep-alive) to
/// the endpoint of each target. Call it within a Tokio runtime: the resolver runs as a task,
/// which ends when the channel is dropped.
pub fn balanced_channel(
    uri: http::Uri,
    refresh: Duration,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
) -> Channel {
    balanced_channel_with(uri, refresh, configure, Arc::new(system_resolver))
}

/// Resolves a host and port to addresses.
pub type Resolver =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system's resolver (DNS, `/etc/hosts`).
fn system_resolver(
    host: String,
    port: u16,
) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
    Box::pin(async move {
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect())
    })
}

/// [`balanced_channel`] with another resolver (tests give one whose answer they change).
pub fn balanced_channel_with(
    uri: http::Uri,
    refresh: Duration,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
    resolve: Resolver,
) -> Channel {
    let (channel, changes) = Channel::balance_channel::<Target>(64);
    tokio::spawn(follow(uri, refresh, configure, resolve, changes));
    channel
}

/// Keeps the balancer's targets equal to what the name resolves to.
async fn follow(
    uri: http::Uri,
    refresh: Duration,
    configure: impl Fn(Endpoint) -> Endpoint,
    resolve: Resolver,
    changes: Sender<Change<Target, Endpoint>>,
) {
    let host = uri.host().unwrap_or_default().to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let mut current: HashSet<Target> = HashSet::new();
    loop {
        let wanted: HashSet<Target> = match resolve(host.clone(), port).await {
            Ok(addresses) => reachable_family(addresses)
                .into_iter()
                .map(Target::Address)
                .collect(),
            Err(error) => {
                tracing::debug!(%error, host, "could not resolve an upstream");
                HashSet::new()
            }
        };
        // Nothing resolved: the name stays reachable so calls fail fast with its error.
        let wanted = if wanted.is_empty() {
            HashSet::from([Target::Name])
        } else {
            wanted
        };
        for gone in current.difference(&wanted) {
            if changes.send(Change::Remove(*gone)).await.is_err() {
                return;
            }
        }
        for new in wanted.difference(&current) {
            let target_uri = match new {
                Target::Address(address) => with_address(&uri, *address),
                Target::Name => Some(uri.clone()),
            };
            let Some(target_uri) = target_uri else {
                continue;
            };
            let endpoint = configure(Endpoint::from(target_uri));
            if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                return;
            }
        }
        if wanted != current {
            tracing::debug!(host, targets = wanted.len(), "upstream targets changed");
        }
        current = wanted;
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(refresh) => {}
        }
    }
}

/// The IPv4 addresses when there are any, else all of them. Director's processes listen on
/// `0.0.0.0` (IPv4) by default, and a name such as `localhost` also resolves to `::1`: a
/// target nobody listens on would fail every call the balancer sends it.
fn reachable_family(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    if addresses.iter().any(SocketAddr::is_ipv4) {
        addresses.into_iter().filter(SocketAddr::is_ipv4).collect()
    } else {
        addresses
    }
}

/// `uri` with its authority replaced by `address`.
fn with_address(uri: &http::Uri, address: SocketAddr) -> Option<http::Uri> {
    let mut parts = uri.clone().into_parts();
    parts.authority = address.to_string().parse().ok();
    http::Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_are_preferred_when_a_name_has_both() {
        let v4: SocketAddr = "127.0.0.1:50051".parse().expect("an address");
        let v6: SocketAddr = "[::1]:50051".parse().expect("an address");
        assert_eq!(reachable_family(vec![v6, v4]), vec![v4]);
        assert_eq!(reachable_family(vec![v6]), vec![v6]);
    }

    #[test]
    fn an_address_replaces_the_authority_only() {
        let uri: http::Uri = "http://companies:50051".parse().expect("a uri");
        let replaced = with_address(&uri, "10.1.2.3:50051".parse().expect("an address"));
        assert_eq!(
            replaced.map(|uri| uri.to_string()),
            Some("http://10.1.2.3:50051/".to_owned())
        );
        let replaced = with_address(&uri, "[fd00::7]:50051".parse().expect("an address"));
        assert_eq!(
            replaced.map(|uri| uri.to_string()),
            Some("http://[fd00::7]:50051/".to_owned())
        );
    }
}
