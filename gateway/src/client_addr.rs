//! Who is at the other end: the connection's peer ([`ClientAddr`], stamped on each request by
//! the server) and the client address the per-address rate limit is keyed on.
//!
//! Behind an ingress or load balancer the TCP peer is the proxy, and the client is named in
//! `X-Forwarded-For`, which each proxy appends to. Only proxies in `TRUSTED_PROXIES` are
//! believed: starting from the TCP peer, the list is walked from the right while the hop is a
//! trusted proxy, and the first untrusted hop is the client. Entries left of it were written by
//! the client itself and are ignored, so a client cannot choose its own address.
//!
//! IPv6 clients are keyed by their /64: one host usually holds a whole /64 and could otherwise
//! rotate through addresses to escape the limit.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::{HeaderMap, Request};
use ipnet::IpNet;

/// The peer address of the connection a request arrived on (request extension, set by the
/// server for every request): the TCP peer, which [`TrustedProxies`] may look behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// An entry of `TRUSTED_PROXIES` that is neither a network nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP network or address: {0:?}")]
pub struct NotANetwork(String);

/// The networks whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of networks (`10.0.0.0/8, 192.168.1.7`); a bare address
    /// is a network of one.
    pub fn parse(raw: &str) -> Result<Self, NotANetwork> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|network| network.trunc())
                    .map_err(|_| NotANetwork(entry.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `address` is one of the trusted proxies.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client of a request that arrived from `peer`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        // Later headers were appended by nearer proxies: walk them last to first too.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|value| value.to_str().unwrap_or_default().rsplit(','));
        for hop in hops {
            // An entry that is not an address ends the walk: the trusted hop that forwarded it
            // is the nearest client we can name.
            let Ok(address) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical(address);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }

    /// The client of `request` (its connection's peer, see [`ClientAddr`]), if known.
    pub fn client_of_request<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let ClientAddr(peer) = request.extensions().get::<ClientAddr>()?;
        Some(self.client_of(peer.ip(), request.headers()))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, from dual-stack listeners) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The rate-limit key of a client: IPv4 addresses as they are, IPv6 addresses by /64.
pub fn rate_limit_key(client: IpAddr) -> IpAddr {
    match canonical(client) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                "x-forwarded-for",
                value.parse().unwrap_or_else(|_| panic!()),
            );
        }
        headers
    }

    fn trusted(raw: &str) -> TrustedProxies {
        TrustedProxies::parse(raw).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let proxies = TrustedProxies::default();
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = trusted("10.0.0.0/8");
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            proxies.client_of(ip("198.51.100.7"), &headers),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_from_the_right() {
        let proxies = trusted("10.0.0.0/8, 192.168.0.0/16");
        // The client claims 1.2.3.4; the ingress (10.0.0.5) saw 203.0.113.9 and a second
        // proxy (192.168.1.1) forwarded that ingress' request.
        let headers = forwarded(&["1.2.3.4, 203.0.113.9, 10.0.0.5"]);
        assert_eq!(
            proxies.client_of(ip("192.168.1.1"), &headers),
            ip("203.0.113.9")
        );
        // Split over several header lines, the order is the same.
        let headers = forwarded(&["1.2.3.4", "203.0.113.9", "10.0.0.5"]);
        assert_eq!(
            proxies.client_of(ip("192.168.1.1"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn garbage_ends_the_walk_at_the_last_trusted_hop() {
        let proxies = trusted("10.0.0.0/8");
        let headers = forwarded(&["203.0.113.9, unknown"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
        let headers = forwarded(&["203.0.113.9, 10.0.0.2, not-an-ip"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn a_chain_of_trusted_hops_only_names_the_leftmost() {
        let proxies = trusted("10.0.0.0/8");
        let headers = forwarded(&["10.0.0.7, 10.0.0.8"]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &headers), ip("10.0.0.7"));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_networks() {
        let proxies = trusted("10.0.0.0/8");
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &headers),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            rate_limit_key(ip("2001:db8:1:2::1")),
            rate_limit_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            rate_limit_key(ip("2001:db8:1:2::1")),
            rate_limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(rate_limit_key(ip("203.0.113.9")), ip("203.0.113.9"));
    }

    #[test]
    fn the_list_accepts_networks_and_single_addresses() {
        let proxies = trusted("10.0.0.0/8, 192.168.1.7 ,fd00::/8,");
        assert!(proxies.trusts(ip("10.200.0.1")));
        assert!(proxies.trusts(ip("192.168.1.7")));
        assert!(!proxies.trusts(ip("192.168.1.8")));
        assert!(proxies.trusts(ip("fd12::1")));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert_eq!(
            TrustedProxies::parse("everyone"),
            Err(NotANetwork("everyone".to_owned()))
        );
        assert_eq!(TrustedProxies::parse("").map(|p| p.0.len()), Ok(0));
    }
}
