//! Client-side balancing across every replica of a service: which replicas exist.
//!
//! In Kubernetes each Director service has a headless Service: its DNS name resolves to the
//! address of every ready pod. One HTTP/2 connection to "the service" would pin all of a
//! caller's traffic on whichever pod it reached first, so [`balanced_channel`] resolves the
//! name itself, keeps one lazily connected replica per address and resolves again every
//! refresh interval, adding pods that appeared and dropping pods that left. Locally and in
//! compose the name resolves to one address and this is one connection, as before.
//!
//! DNS says which replicas exist; whether a replica takes calls right now is the balancer's
//! business ([`crate::balance`]): one whose connection is refused, closed or sent GOAWAY
//! leaves the rotation at once and returns when it accepts connections again, so a crashed
//! or draining pod costs a moment, not the seconds until its endpoint leaves DNS.
//!
//! When the name does not resolve (yet), the name itself is the only target, so calls fail
//! fast with the connection error instead of waiting for an address. A name with IPv4
//! addresses is balanced over those only (see [`reachable_family`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::transport::Endpoint;

use crate::balance::{Address, Balanced, Replica, ReplicaSet, SideEffectFree};

/// How often names are resolved again (pods come and go; DNS of a headless Service follows
/// readiness within seconds).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How a balanced channel finds and treats its replicas.
#[derive(Debug, Clone)]
pub struct BalanceOptions {
    /// How often the name is resolved again.
    pub refresh: Duration,
    /// How long opening a connection to one replica may take before it counts as refused.
    pub connect_timeout: Duration,
    /// Methods sent again after a lost connection (every method is sent again when it
    /// never arrived).
    pub side_effect_free: SideEffectFree,
}

impl BalanceOptions {
    /// Resolving every [`REFRESH_INTERVAL`], connections given up after `connect_timeout`,
    /// only calls that never arrived sent again.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            refresh: REFRESH_INTERVAL,
            connect_timeout,
            side_effect_free: SideEffectFree::default(),
        }
    }
}

/// A channel balancing over every address `uri`'s host resolves to; `configure` applies the
/// caller's settings (windows, keep-alive) to the endpoint of each replica. Call it within a
/// Tokio runtime: the resolver runs as a task, which ends when the channel is dropped.
pub fn balanced_channel(
    uri: http::Uri,
    options: BalanceOptions,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
) -> Balanced {
    balanced_channel_with(uri, options, configure, Arc::new(system_resolver))
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
        #[cfg(feature = "testing")]
        if let Some(addresses) = testing_hosts::resolve(&host, port) {
            return Ok(addresses);
        }
        Ok(tokio::net::lookup_host((host.as_str(), port))
            .await?
            .collect())
    })
}

/// [`balanced_channel`] with another resolver (tests give one whose answer they change).
pub fn balanced_channel_with(
    uri: http::Uri,
    options: BalanceOptions,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
    resolve: Resolver,
) -> Balanced {
    let replicas = Arc::new(ReplicaSet::default());
    let channel = Balanced::new(Arc::clone(&replicas), options.side_effect_free.clone());
    tokio::spawn(follow(
        uri,
        options,
        configure,
        resolve,
        Arc::downgrade(&replicas),
    ));
    channel
}

/// Keeps the replica set equal to what the name resolves to, until the set is dropped.
async fn follow(
    uri: http::Uri,
    options: BalanceOptions,
    configure: impl Fn(Endpoint) -> Endpoint,
    resolve: Resolver,
    replicas: Weak<ReplicaSet>,
) {
    let host = uri.host().unwrap_or_default().to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let mut current: HashMap<Address, Arc<Replica>> = HashMap::new();
    loop {
        let resolved: Vec<Address> = match resolve(host.clone(), port).await {
            Ok(addresses) => reachable_family(addresses)
                .into_iter()
                .map(Address::Socket)
                .collect(),
            Err(error) => {
                tracing::debug!(%error, host, "could not resolve an upstream");
                Vec::new()
            }
        };
        // Nothing resolved: the name stays reachable so calls fail fast with its error.
        let wanted = if resolved.is_empty() {
            vec![Address::Name(host.clone(), port)]
        } else {
            resolved
        };
        let Some(set) = replicas.upgrade() else {
            return;
        };
        let mut next = HashMap::new();
        for address in wanted {
            let replica = match current.remove(&address) {
                Some(replica) => replica,
                None => {
                    let target_uri = match &address {
                        Address::Socket(socket) => with_address(&uri, *socket),
                        Address::Name(..) => Some(uri.clone()),
                    };
                    let Some(target_uri) = target_uri else {
                        continue;
                    };
                    let endpoint = configure(Endpoint::from(target_uri));
                    Replica::new(address.clone(), endpoint, options.connect_timeout)
                }
            };
            next.insert(address, replica);
        }
        let changed = !current.is_empty() || next.len() != set.replicas().len();
        for gone in current.values() {
            gone.remove();
        }
        if changed {
            tracing::debug!(host, replicas = next.len(), "upstream replicas changed");
        }
        set.set(next.values().cloned().collect());
        current = next;
        drop(set);
        tokio::time::sleep(options.refresh).await;
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

/// Names the tests of a whole stack make resolve to several loopback addresses, as a
/// headless Service's name resolves to its pods (no `/etc/hosts` edit, no root).
#[cfg(feature = "testing")]
pub mod testing_hosts {
    use std::collections::HashMap;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::{Mutex, OnceLock};

    fn hosts() -> &'static Mutex<HashMap<String, Vec<IpAddr>>> {
        static HOSTS: OnceLock<Mutex<HashMap<String, Vec<IpAddr>>>> = OnceLock::new();
        HOSTS.get_or_init(Mutex::default)
    }

    /// From now on, in this process, `host` resolves to `addresses` for every balanced
    /// channel.
    pub fn set(host: &str, addresses: Vec<IpAddr>) {
        if let Ok(mut hosts) = hosts().lock() {
            hosts.insert(host.to_owned(), addresses);
        }
    }

    pub(super) fn resolve(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let hosts = hosts().lock().ok()?;
        let addresses = hosts.get(host)?;
        Some(
            addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
        )
    }
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
