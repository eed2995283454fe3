//! The egress guard: where Director may send a request on a tenant's behalf.
//!
//! A tenant's admin can point Director's Vessey, Slack (and, should it ever be settable, Twilio)
//! clients at URLs of their choosing. Unchecked, that turns Director into a proxy into its own
//! network: `http://169.254.169.254/` (cloud metadata, with the node's credentials),
//! `https://127.0.0.1:…/` (the services' admin listeners), the database, the Kubernetes API.
//! So a tenant-supplied URL must:
//!
//! - use `https` (plain `http` only when private networks are allowed, for local fakes);
//! - carry no user name or password;
//! - name a host that is a public IP literal or a name (not `localhost`, `*.localhost`,
//!   `*.local`, `*.internal`, `*.home.arpa`) — IP literals in every spelling the URL parser
//!   normalises (`2130706433`, `0x7f.1`, `0177.0.0.1` are all `127.0.0.1`) and IPv6 forms that
//!   embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
//!   `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that address;
//! - for a Slack webhook, name one of [`EgressPolicy::slack_webhook_hosts`] exactly (ignoring
//!   ASCII case and a trailing dot).
//!
//! Those rules are [`EgressPolicy::check_url`], which the integrations service runs when a
//! tenant saves its settings, together with [`EgressPolicy::check_resolves`], which resolves
//! the host then and refuses it when *any* address is in a forbidden range (so the answer to the
//! `PUT` is immediate). Neither is enough alone: a name can resolve to a public address when
//! checked and to `127.0.0.1` a second later (DNS rebinding). So the HTTP client used for
//! tenants' configurations ([`crate::HttpClients::tenant`]) checks again where it matters, on
//! the addresses it is about to connect to: its DNS resolver (`GuardedResolver`) fails the
//! resolution when any address is forbidden; a request to an IP literal (which reqwest connects
//! to without asking the resolver) is checked by the transport before it is sent, with the
//! scheme, credential and Slack host rules (the local-name rule is left to the resolver there:
//! names are judged by the addresses they resolve to); and the client ignores proxy settings
//! from the environment (a proxy would resolve the name itself, past the guard). A refusal at
//! send time is [`crate::ProviderError::Refused`], never retried. Redirects stay within the
//! original origin, as for every client.
//!
//! Forbidden ranges: unspecified, "this network" `0.0.0.0/8`, loopback, RFC 1918 private,
//! CGNAT `100.64.0.0/10`, link-local `169.254.0.0/16` and `fe80::/10` (cloud metadata lives
//! there), multicast, broadcast, unique-local `fc00::/7`, deprecated site-local `fec0::/10`,
//! documentation, benchmarking, IETF protocol assignments, the 6to4 relay anycast, `240.0.0.0/4`,
//! and every IPv6 address outside global unicast `2000::/3` not listed above.
//!
//! `EGRESS_ALLOW_PRIVATE_NETWORKS=true` (accepted only when `ENVIRONMENT` is `dev`) lifts the
//! address rules and allows `http`, so local development and tests can point tenants at fakes
//! on loopback; a Slack webhook may then also be on a loopback or private IP literal or a local
//! name (the fakes), besides the listed hosts. URLs from the environment are the operator's and
//! are not checked: their clients use [`crate::HttpClients::operator`].
//!
//! Messages name the field and the rule, never the URL (a Slack webhook URL is a secret) nor
//! the addresses a name resolved to (that would map the internal network for the tenant).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use director_platform::config::{ConfigError, Env, Environment};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `SLACK_WEBHOOK_HOSTS` when unset.
pub const DEFAULT_SLACK_WEBHOOK_HOSTS: &str = "hooks.slack.com";

/// How long [`EgressPolicy::check_resolves`] waits for the resolver.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a URL is for: Slack webhooks have their own host list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A Vessey API base URL.
    Vessey,
    /// A Twilio API URL.
    Twilio,
    /// A Slack incoming webhook URL.
    Slack,
}

/// Where tenant-supplied URLs may point. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Lift the address rules and allow `http` (dev only): for fakes on loopback.
    pub allow_private_networks: bool,
    /// The hosts a Slack webhook URL may name (matched exactly, ignoring ASCII case and a
    /// trailing dot; [`Self::from_env`] stores them lowercase, without the dot).
    pub slack_webhook_hosts: Vec<String>,
}

impl Default for EgressPolicy {
    /// Private networks refused; Slack webhooks on `hooks.slack.com` only.
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            slack_webhook_hosts: vec![DEFAULT_SLACK_WEBHOOK_HOSTS.to_owned()],
        }
    }
}

impl EgressPolicy {
    /// Reads `EGRESS_ALLOW_PRIVATE_NETWORKS` (a boolean, default `false`; `true` is refused
    /// unless `ENVIRONMENT` is `dev`) and `SLACK_WEBHOOK_HOSTS` (comma-separated host names,
    /// default `hooks.slack.com`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        const ALLOW: &str = "EGRESS_ALLOW_PRIVATE_NETWORKS";
        const HOSTS: &str = "SLACK_WEBHOOK_HOSTS";
        let environment = Environment::from_env(env)?;
        let allow_private_networks = env.bool_or(ALLOW, false)?;
        if allow_private_networks && !environment.is_dev() {
            return Err(ConfigError::new(
                ALLOW,
                format!("may be true only when ENVIRONMENT is dev, not {environment}"),
            ));
        }
        let raw = env
            .string(HOSTS)
            .unwrap_or_else(|| DEFAULT_SLACK_WEBHOOK_HOSTS.to_owned());
        let mut slack_webhook_hosts = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let host = host_name(entry)
                .ok_or_else(|| ConfigError::invalid(HOSTS, "comma-separated host names", entry))?;
            if !slack_webhook_hosts.contains(&host) {
                slack_webhook_hosts.push(host);
            }
        }
        if slack_webhook_hosts.is_empty() {
            return Err(ConfigError::invalid(
                HOSTS,
                "comma-separated host names",
                &raw,
            ));
        }
        Ok(Self {
            allow_private_networks,
            slack_webhook_hosts,
        })
    }

    /// `raw` parsed and checked as a URL for `purpose` (see the [module documentation](self));
    /// the error is `"{field}: {reason}"`, e.g. `"slack.webhook_url: must be an https:// URL"`,
    /// and never quotes the URL.
    ///
    /// This checks the URL only: call [`Self::check_resolves`] too for the addresses its host
    /// resolves to now.
    pub fn check_url(&self, field: &str, raw: &str, purpose: Purpose) -> Result<Url, UrlRefused> {
        let url = Url::parse(raw.trim()).map_err(|error| UrlRefused {
            field: field.to_owned(),
            rule: format!("is not a valid URL ({error})"),
        })?;
        self.check(&url, purpose)
            .map_err(|refused| UrlRefused::new(field, refused))?;
        Ok(url)
    }

    /// Resolves `url`'s host now and refuses it when it does not resolve or when any address
    /// is forbidden (nothing is forbidden when private networks are allowed). The error is
    /// `"{field}: {reason}"`, naming the kind of address, not the address.
    pub async fn check_resolves(&self, field: &str, url: &Url) -> Result<(), UrlRefused> {
        let refuse = |refused: EgressRefused| UrlRefused::new(field, refused);
        let host =
            UrlHost::of(url).ok_or_else(|| refuse(EgressRefused::new("must have a host")))?;
        let name = match host {
            UrlHost::Ip(ip) => return self.check_ip(ip, "is").map_err(refuse),
            UrlHost::Name(name) => name,
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((name.as_str(), port));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(_)) => Vec::new(),
            Err(_) => return Err(refuse(EgressRefused::new("resolving the host timed out"))),
        };
        if addrs.is_empty() {
            return Err(refuse(EgressRefused::new("the host name does not resolve")));
        }
        for addr in addrs {
            self.check_ip(addr.ip(), "resolves to").map_err(refuse)?;
        }
        Ok(())
    }

    /// The URL rules, without resolving: the reason when `url` is refused for `purpose`.
    pub(crate) fn check(&self, url: &Url, purpose: Purpose) -> Result<(), EgressRefused> {
        self.check_rules(url, purpose, Names::Checked)
    }

    /// The rules a guarded client applies before sending: all but the local-name rule, as
    /// names are judged by the addresses they resolve to, in the client's resolver.
    pub(crate) fn check_for_send(&self, url: &Url, purpose: Purpose) -> Result<(), EgressRefused> {
        self.check_rules(url, purpose, Names::LeftToTheResolver)
    }

    fn check_rules(&self, url: &Url, purpose: Purpose, names: Names) -> Result<(), EgressRefused> {
        match (url.scheme(), self.allow_private_networks) {
            ("https", _) | ("http", true) => {}
            (_, false) => return Err(EgressRefused::new("must be an https:// URL")),
            (_, true) => return Err(EgressRefused::new("must be an http:// or https:// URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressRefused::new(
                "must not contain a user name or password",
            ));
        }
        let host = UrlHost::of(url).ok_or_else(|| EgressRefused::new("must have a host"))?;
        let local = match &host {
            UrlHost::Ip(ip) => forbidden_range(*ip).is_some(),
            UrlHost::Name(name) => is_local_name(name),
        };
        if local && !self.allow_private_networks {
            match host {
                UrlHost::Ip(ip) => return self.check_ip(ip, "is"),
                UrlHost::Name(_) if names == Names::Checked => {
                    return Err(EgressRefused::new("the host is a local name"));
                }
                UrlHost::Name(_) => {}
            }
        }
        if purpose == Purpose::Slack {
            let host_text = match &host {
                UrlHost::Name(name) => name.clone(),
                UrlHost::Ip(ip) => ip.to_string(),
            };
            let listed = self.slack_webhook_hosts.iter().any(|listed| {
                listed
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(&host_text)
            });
            // With private networks allowed, a fake Slack on loopback is fine.
            let local_fake = local && self.allow_private_networks;
            if !(listed || local_fake) {
                return Err(EgressRefused::new(format!(
                    "the host must be {} (SLACK_WEBHOOK_HOSTS)",
                    one_of(&self.slack_webhook_hosts)
                )));
            }
        }
        Ok(())
    }

    /// Refuses `ip` when it is forbidden and private networks are not allowed; `verb` is how
    /// the host relates to it ("is", "resolves to").
    pub(crate) fn check_ip(&self, ip: IpAddr, verb: &str) -> Result<(), EgressRefused> {
        match forbidden_range(ip) {
            Some(range) if !self.allow_private_networks => Err(EgressRefused::new(format!(
                "the host {verb} {} {range} address, which Director does not contact",
                article(&range)
            ))),
            _ => Ok(()),
        }
    }
}

/// Why Director does not contact `ip` — the range it is in, e.g. `"loopback"`,
/// `"link-local (169.254.0.0/16, cloud metadata)"`, `"IPv4-mapped private (10.0.0.0/8)"` — or
/// `None` for a public address.
pub fn forbidden_range(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// IPv4 ranges refused, most specific first where they overlap.
const FORBIDDEN_V4: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 32), "unspecified"),
    (v4(0, 0, 0, 0, 8), "\"this network\" (0.0.0.0/8)"),
    (v4(10, 0, 0, 0, 8), "private (10.0.0.0/8)"),
    (v4(100, 64, 0, 0, 10), "shared CGNAT (100.64.0.0/10)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (
        v4(169, 254, 0, 0, 16),
        "link-local (169.254.0.0/16, cloud metadata)",
    ),
    (v4(172, 16, 0, 0, 12), "private (172.16.0.0/12)"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignment (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
    (
        v4(192, 88, 99, 0, 24),
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    (v4(192, 168, 0, 0, 16), "private (192.168.0.0/16)"),
    (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
    (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// IPv6 ranges refused outright (after the forms embedding IPv4 are judged by their IPv4).
const FORBIDDEN_V6: &[(Ipv6Net, &str)] = &[
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only (100::/64)",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation (2001:db8::/32)",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF special-purpose (2001::/23, Teredo included)",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation (3fff::/20)",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique-local (fc00::/7)",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local (fe80::/10)",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (fec0::/10)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Forms of IPv6 that carry an IPv4 address in their last 32 bits.
const EMBEDDING_V4: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), "IPv4-mapped"),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "IPv4-compatible"),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "NAT64"),
];

/// Global unicast: everything outside is reserved.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
/// 6to4: an IPv4 address in bits 16 to 47.
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    FORBIDDEN_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, range)| *range)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<String> {
    if ip.is_unspecified() {
        return Some("unspecified".to_owned());
    }
    if ip.is_loopback() {
        return Some("loopback".to_owned());
    }
    let [.., a, b, c, d] = ip.octets();
    for (net, form) in EMBEDDING_V4 {
        if net.contains(&ip) {
            let embedded = Ipv4Addr::new(a, b, c, d);
            return forbidden_v4(embedded).map(|range| format!("{form} {range}"));
        }
    }
    if SIX_TO_FOUR.contains(&ip) {
        let [_, _, a, b, c, d, ..] = ip.octets();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d)).map(|range| format!("6to4 {range}"));
    }
    if let Some((_, range)) = FORBIDDEN_V6.iter().find(|(net, _)| net.contains(&ip)) {
        return Some((*range).to_owned());
    }
    if !GLOBAL_UNICAST.contains(&ip) {
        return Some("reserved (outside 2000::/3)".to_owned());
    }
    None
}

/// Whether [`EgressPolicy::check_rules`] refuses local names itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Checked,
    LeftToTheResolver,
}

/// A URL's host as the guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlHost {
    /// An IP literal (every IPv4 spelling the parser accepts is normalised to this).
    Ip(IpAddr),
    /// A name, lowercase, without a trailing dot.
    Name(String),
}

impl UrlHost {
    pub(crate) fn of(url: &Url) -> Option<Self> {
        let host = url.host_str()?;
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return v6.parse().ok().map(|ip| Self::Ip(IpAddr::V6(ip)));
        }
        // For http and https the parser turns every numeric host (`2130706433`, `0x7f.1`)
        // into dotted IPv4, so a host that parses as one is one.
        if let Ok(v4) = host.parse::<Ipv4Addr>() {
            return Some(Self::Ip(IpAddr::V4(v4)));
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        (!name.is_empty()).then_some(Self::Name(name))
    }
}

/// Names that only ever mean this machine or its local network.
fn is_local_name(name: &str) -> bool {
    const LOCAL: &[&str] = &["localhost", "local", "internal", "home.arpa", "localdomain"];
    LOCAL.iter().any(|suffix| {
        name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// `entry` as a host name (lowercase, no trailing dot), or `None` when it is not one.
fn host_name(entry: &str) -> Option<String> {
    let url = Url::parse(&format!("https://{entry}/")).ok()?;
    let host = url.host_str()?;
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let same = name == entry.trim_end_matches('.').to_ascii_lowercase();
    (same && url.port().is_none() && !name.is_empty()).then_some(name)
}

/// `"hooks.slack.com"`, `"one of a, b"`.
fn one_of(hosts: &[String]) -> String {
    match hosts {
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    }
}

/// The indefinite article before a range's name.
fn article(range: &str) -> &'static str {
    let vowel = ["a", "e", "i", "o", "unspecified", "IETF", "IPv4"]
        .iter()
        .any(|start| range.starts_with(start));
    if vowel { "an" } else { "a" }
}

/// Why the guard refuses a destination: the rule it breaks, without the URL or the addresses.
/// At send time it travels in the source chain of the reqwest error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRefused {
    pub reason: String,
}

impl EgressRefused {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for EgressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for EgressRefused {}

/// A tenant's URL the guard refuses: the settings field and the rule it breaks. Shown as
/// `"{field}: {rule}"`, e.g. `"slack.webhook_url: must be an https:// URL"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct UrlRefused {
    pub field: String,
    pub rule: String,
}

impl UrlRefused {
    fn new(field: &str, refused: EgressRefused) -> Self {
        Self {
            field: field.to_owned(),
            rule: refused.reason,
        }
    }
}

/// The DNS resolver of guarded clients: resolves with the system resolver (through tokio) and
/// fails when any address is forbidden, so the connection is never attempted. With private
/// networks allowed it only resolves.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: EgressPolicy,
}

impl GuardedResolver {
    pub(crate) fn new(policy: EgressPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for addr in &addrs {
                // Boxed as itself (not as a `Box<EgressRefused>`), so the transport finds it
                // in the error's source chain.
                policy.check_ip(addr.ip(), "resolves to")?;
            }
            Ok::<Addrs, BoxError>(Box::new(addrs.into_iter()))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn public_addresses_are_allowed() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn every_forbidden_range_is_refused_and_named() {
        for (address, range) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "\"this network\" (0.0.0.0/8)"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.1.2.3", "private (10.0.0.0/8)"),
            ("172.16.0.1", "private (172.16.0.0/12)"),
            ("172.31.255.255", "private (172.16.0.0/12)"),
            ("192.168.1.1", "private (192.168.0.0/16)"),
            ("100.64.0.1", "shared CGNAT (100.64.0.0/10)"),
            ("100.127.255.255", "shared CGNAT (100.64.0.0/10)"),
            (
                "169.254.169.254",
                "link-local (169.254.0.0/16, cloud metadata)",
            ),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved (240.0.0.0/4)"),
            ("192.0.0.8", "IETF protocol assignment (192.0.0.0/24)"),
            ("192.0.2.1", "documentation (192.0.2.0/24)"),
            ("198.51.100.1", "documentation (198.51.100.0/24)"),
            ("203.0.113.1", "documentation (203.0.113.0/24)"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local (fe80::/10)"),
            ("fd00:ec2::254", "unique-local (fc00::/7)"),
            ("fc00::1", "unique-local (fc00::/7)"),
            ("fec0::1", "site-local (fec0::/10)"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation (2001:db8::/32)"),
            (
                "2001::1",
                "IETF special-purpose (2001::/23, Teredo included)",
            ),
            ("100::1", "discard-only (100::/64)"),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            (
                "::ffff:169.254.169.254",
                "IPv4-mapped link-local (169.254.0.0/16, cloud metadata)",
            ),
            ("::ffff:10.0.0.1", "IPv4-mapped private (10.0.0.0/8)"),
            ("::127.0.0.1", "IPv4-compatible loopback"),
            ("::10.0.0.1", "IPv4-compatible private (10.0.0.0/8)"),
            ("64:ff9b::7f00:1", "NAT64 loopback"),
            (
                "64:ff9b::a9fe:a9fe",
                "NAT64 link-local (169.254.0.0/16, cloud metadata)",
            ),
            ("64:ff9b:1::1", "local-use NAT64 (64:ff9b:1::/48)"),
            ("2002:7f00:1::1", "6to4 loopback"),
            ("2002:a00:1::", "6to4 private (10.0.0.0/8)"),
            ("4000::1", "reserved (outside 2000::/3)"),
            ("::ffff:0:7f00:1", "reserved (outside 2000::/3)"),
        ] {
            assert_eq!(
                forbidden_range(ip(address)).as_deref(),
                Some(range),
                "{address}"
            );
        }
    }

    fn policy() -> EgressPolicy {
        EgressPolicy::default()
    }

    fn private_allowed() -> EgressPolicy {
        EgressPolicy {
            allow_private_networks: true,
            ..EgressPolicy::default()
        }
    }

    #[test]
    fn a_public_https_url_is_accepted_as_parsed() {
        let url = policy()
            .check_url(
                "vessey.api_url",
                " https://api.vessey.example/v1/ ",
                Purpose::Vessey,
            )
            .unwrap();
        assert_eq!(url.as_str(), "https://api.vessey.example/v1/");
        let slack = policy()
            .check_url(
                "slack.webhook_url",
                "https://HOOKS.Slack.com./services/T/B/x",
                Purpose::Slack,
            )
            .unwrap();
        assert_eq!(slack.host_str(), Some("hooks.slack.com."));
    }

    #[test]
    fn each_refusal_names_the_field_and_the_rule_without_the_url() {
        let refused = |raw: &str, purpose: Purpose| {
            policy()
                .check_url("slack.webhook_url", raw, purpose)
                .unwrap_err()
                .to_string()
        };
        for (raw, purpose, expected) in [
            (
                "http://api.vessey.example/",
                Purpose::Vessey,
                "slack.webhook_url: must be an https:// URL",
            ),
            (
                "ftp://api.vessey.example/",
                Purpose::Vessey,
                "slack.webhook_url: must be an https:// URL",
            ),
            (
                "api.vessey.example/secret-path",
                Purpose::Vessey,
                "slack.webhook_url: is not a valid URL (relative URL without a base)",
            ),
            (
                "https://user:secret-pass@api.vessey.example/",
                Purpose::Vessey,
                "slack.webhook_url: must not contain a user name or password",
            ),
            (
                "https://user@api.vessey.example/",
                Purpose::Vessey,
                "slack.webhook_url: must not contain a user name or password",
            ),
            (
                "https://127.0.0.1/",
                Purpose::Vessey,
                "slack.webhook_url: the host is a loopback address, which Director does not \
                 contact",
            ),
            (
                "https://169.254.169.254/latest/meta-data/",
                Purpose::Vessey,
                "slack.webhook_url: the host is a link-local (169.254.0.0/16, cloud metadata) \
                 address, which Director does not contact",
            ),
            (
                "https://[::ffff:169.254.169.254]/",
                Purpose::Vessey,
                "slack.webhook_url: the host is an IPv4-mapped link-local (169.254.0.0/16, \
                 cloud metadata) address, which Director does not contact",
            ),
            (
                "https://localhost:8443/",
                Purpose::Vessey,
                "slack.webhook_url: the host is a local name",
            ),
            (
                "https://metadata.google.internal/",
                Purpose::Vessey,
                "slack.webhook_url: the host is a local name",
            ),
            (
                "https://hooks.slack.com.evil.example/services/T/B/secret-path",
                Purpose::Slack,
                "slack.webhook_url: the host must be hooks.slack.com (SLACK_WEBHOOK_HOSTS)",
            ),
            (
                "https://evil.example/hooks.slack.com/secret-path",
                Purpose::Slack,
                "slack.webhook_url: the host must be hooks.slack.com (SLACK_WEBHOOK_HOSTS)",
            ),
            (
                "https://10.0.0.1/secret-path",
                Purpose::Slack,
                "slack.webhook_url: the host is a private (10.0.0.0/8) address, which \
                 Director does not contact",
            ),
        ] {
            let error = refused(raw, purpose);
            assert_eq!(error, expected, "{raw}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn every_spelling_of_a_forbidden_ipv4_literal_is_caught() {
        for raw in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://017700000001/",
            "https://[::ffff:7f00:1]/",
            "https://[0:0:0:0:0:ffff:127.0.0.1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::127.0.0.1]/",
            "https://[::1]/",
            "https://0/",
            "https://0.0.0.0/",
            "https://%31%32%37.0.0.1/",
        ] {
            let error = policy()
                .check_url("vessey.api_url", raw, Purpose::Vessey)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("loopback") || error.contains("unspecified"),
                "{raw}: {error}"
            );
        }
        for raw in ["https://0xa9.0xfe.0xa9.0xfe/", "https://2852039166/"] {
            let error = policy()
                .check_url("vessey.api_url", raw, Purpose::Vessey)
                .unwrap_err()
                .to_string();
            assert!(error.contains("cloud metadata"), "{raw}: {error}");
        }
    }

    #[test]
    fn slack_hosts_match_exactly_ignoring_case_and_a_trailing_dot() {
        let policy = EgressPolicy {
            slack_webhook_hosts: vec!["hooks.slack.com".into(), "Hooks.Slack-Gov.com.".into()],
            ..EgressPolicy::default()
        };
        for ok in [
            "https://hooks.slack.com/services/T/B/x",
            "https://HOOKS.SLACK.COM/services/T/B/x",
            "https://hooks.slack.com./services/T/B/x",
            "https://hooks.slack-gov.com/services/T/B/x",
            "https://hooks.slack.com:443/services/T/B/x",
        ] {
            policy
                .check_url("slack.webhook_url", ok, Purpose::Slack)
                .unwrap();
        }
        for refused in [
            "https://slack.com/services/T/B/x",
            "https://evil-hooks.slack.com/services/T/B/x",
            "https://xhooks.slack.com/services/T/B/x",
            "https://hooks.slack.com.evil.example/services/T/B/x",
        ] {
            let error = policy
                .check_url("slack.webhook_url", refused, Purpose::Slack)
                .unwrap_err()
                .to_string();
            assert!(
                error.ends_with(
                    "the host must be one of hooks.slack.com, Hooks.Slack-Gov.com. \
                     (SLACK_WEBHOOK_HOSTS)"
                ),
                "{refused}: {error}"
            );
        }
        // Other purposes do not care about the Slack list.
        policy
            .check_url("vessey.api_url", "https://vessey.example/", Purpose::Vessey)
            .unwrap();
    }

    #[test]
    fn allowing_private_networks_admits_http_loopback_and_a_local_fake_slack() {
        let policy = private_allowed();
        for (raw, purpose) in [
            ("http://127.0.0.1:3000/", Purpose::Vessey),
            ("http://localhost:3000/", Purpose::Vessey),
            ("https://10.0.0.5/", Purpose::Twilio),
            ("http://127.0.0.1:3001/services/T/B/x", Purpose::Slack),
            ("http://localhost:3001/services/T/B/x", Purpose::Slack),
            ("http://[::1]:3001/services/T/B/x", Purpose::Slack),
            ("http://hooks.slack.com/services/T/B/x", Purpose::Slack),
        ] {
            policy.check_url("field", raw, purpose).unwrap();
        }
        // Still refused: other schemes, credentials, and public hosts not on the Slack list.
        assert_eq!(
            policy
                .check_url("field", "ftp://127.0.0.1/", Purpose::Vessey)
                .unwrap_err()
                .to_string(),
            "field: must be an http:// or https:// URL"
        );
        assert!(
            policy
                .check_url("field", "http://u:p@127.0.0.1/", Purpose::Vessey)
                .is_err()
        );
        assert!(
            policy
                .check_url("field", "https://evil.example/x", Purpose::Slack)
                .is_err()
        );
    }

    #[test]
    fn the_policy_is_read_from_the_environment() {
        assert_eq!(
            EgressPolicy::from_env(&Env::default()).unwrap(),
            EgressPolicy::default()
        );
        let env = Env::from_pairs([
            ("EGRESS_ALLOW_PRIVATE_NETWORKS", "true"),
            (
                "SLACK_WEBHOOK_HOSTS",
                " Hooks.Slack.com , hooks.example.org., hooks.slack.com",
            ),
        ]);
        assert_eq!(
            EgressPolicy::from_env(&env).unwrap(),
            EgressPolicy {
                allow_private_networks: true,
                slack_webhook_hosts: vec!["hooks.slack.com".into(), "hooks.example.org".into()],
            }
        );
    }

    #[test]
    fn private_networks_are_refused_outside_dev_and_nonsense_is_refused() {
        for environment in ["staging", "prod"] {
            let env = Env::from_pairs([
                ("ENVIRONMENT", environment),
                ("EGRESS_ALLOW_PRIVATE_NETWORKS", "true"),
            ]);
            let error = EgressPolicy::from_env(&env).unwrap_err();
            assert_eq!(error.variable, "EGRESS_ALLOW_PRIVATE_NETWORKS");
            assert!(error.reason.contains(environment), "{error}");
            let off = Env::from_pairs([
                ("ENVIRONMENT", environment),
                ("EGRESS_ALLOW_PRIVATE_NETWORKS", "false"),
            ]);
            assert!(!EgressPolicy::from_env(&off).unwrap().allow_private_networks);
        }
        let maybe = Env::from_pairs([("EGRESS_ALLOW_PRIVATE_NETWORKS", "maybe")]);
        assert!(EgressPolicy::from_env(&maybe).is_err());
        for bad in [
            "https://hooks.slack.com",
            "hooks.slack.com/x",
            "hooks.slack.com:443",
            "user@hooks.slack.com",
            " , ",
        ] {
            let env = Env::from_pairs([("SLACK_WEBHOOK_HOSTS", bad)]);
            let error = EgressPolicy::from_env(&env).unwrap_err();
            assert_eq!(error.variable, "SLACK_WEBHOOK_HOSTS", "{bad}");
        }
    }

    #[tokio::test]
    async fn resolving_refuses_a_name_with_a_forbidden_address_and_one_that_does_not_resolve() {
        let url = Url::parse("https://localhost/").unwrap();
        let error = policy()
            .check_resolves("vessey.api_url", &url)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("vessey.api_url: the host resolves to a loopback address"),
            "{error}"
        );
        private_allowed()
            .check_resolves("vessey.api_url", &url)
            .await
            .unwrap();

        let literal = Url::parse("https://[::ffff:10.1.2.3]/").unwrap();
        let error = policy()
            .check_resolves("f", &literal)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("f: the host is an IPv4-mapped private"),
            "{error}"
        );

        let nowhere = Url::parse("https://no-such-host.invalid/").unwrap();
        assert_eq!(
            policy()
                .check_resolves("f", &nowhere)
                .await
                .unwrap_err()
                .to_string(),
            "f: the host name does not resolve"
        );
        assert_eq!(
            private_allowed()
                .check_resolves("f", &nowhere)
                .await
                .unwrap_err()
                .to_string(),
            "f: the host name does not resolve"
        );
    }

    #[tokio::test]
    async fn the_resolver_fails_a_name_with_a_forbidden_address_unless_private_is_allowed() {
        let name = || "localhost".parse::<Name>().unwrap();
        let Err(error) = GuardedResolver::new(policy()).resolve(name()).await else {
            panic!("localhost resolved through the guard");
        };
        let refused = error.downcast_ref::<EgressRefused>().unwrap();
        assert_eq!(
            refused.reason,
            "the host resolves to a loopback address, which Director does not contact"
        );
        let Ok(addrs) = GuardedResolver::new(private_allowed())
            .resolve(name())
            .await
        else {
            panic!("localhost did not resolve");
        };
        let addrs: Vec<SocketAddr> = addrs.collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn sending_leaves_names_to_the_resolver_but_not_literals() {
        let local = Url::parse("https://localhost/").unwrap();
        assert!(policy().check(&local, Purpose::Vessey).is_err());
        assert!(policy().check_for_send(&local, Purpose::Vessey).is_ok());
        let literal = Url::parse("https://127.0.0.1/").unwrap();
        assert!(policy().check_for_send(&literal, Purpose::Vessey).is_err());
        let slack = Url::parse("https://localhost/services/T/B/x").unwrap();
        assert!(policy().check_for_send(&slack, Purpose::Slack).is_err());
    }
}
