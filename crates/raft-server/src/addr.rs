//! Node addresses as people write them: `host:port`, where the host is a name (`node1`, a
//! container's service name) or an IP address (`10.0.0.1`, `[::1]`).
//!
//! A [`HostPort`] is only checked for shape when parsed; the name is looked up when it is
//! used ([`HostPort::resolve`]): when the node binds its own address, each time a peer link
//! connects, and when the leader adds a member. So a cluster can be described before every
//! machine or container is up, and a name that moves (a restarted container with a new IP)
//! is followed on the next connect.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Longest a name lookup may take before it counts as failed. The system resolver can
/// wait much longer on a DNS server that does not answer; a peer link retries anyway.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// What is wrong with the text of an address.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AddrError {
    /// No `:port` at the end.
    #[error("{0:?} has no port: give host:port, e.g. node1:6001 or 10.0.0.1:6001")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// The host is neither an IP address nor a plausible host name.
    #[error(
        "{0:?} is not a host name or IP address (names use letters, digits, '-', '.' and '_'; \
         IPv6 addresses go in brackets, e.g. [::1]:6001)"
    )]
    BadHost(String),
}

/// A name that could not be turned into addresses.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("cannot resolve {host}: {detail}")]
pub struct ResolveError {
    /// The name.
    pub host: String,
    /// What the resolver said, e.g. "Name or service not known".
    pub detail: String,
}

/// A host (name or IP address) and a port, in a canonical form: IP addresses as
/// [`IpAddr`]'s `Display` writes them, names in lower case (DNS ignores case). For an IP
/// address, `to_string()` is exactly what [`SocketAddr`]'s `Display` writes, which keeps
/// [`crate::config::PeerMap::cluster_id`] what it was when `--peers` took IP addresses only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host: a name, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same host at another port.
    pub fn with_port(&self, port: u16) -> Self {
        Self {
            host: self.host.clone(),
            port,
        }
    }

    /// The IP address, when the host is one (no lookup needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// True for a host that is a name, not an IP address.
    pub fn is_name(&self) -> bool {
        self.ip().is_none()
    }

    /// Looks the host up now: every address it stands for (at least one), without
    /// duplicates, in the resolver's order. An IP address is returned as is.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, ResolveError> {
        if let Some(ip) = self.ip() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let fail = |detail: String| ResolveError {
            host: self.host.clone(),
            detail,
        };
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| {
                fail(format!(
                    "no answer from the resolver within {RESOLVE_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| {
                // std words every failure "failed to lookup address information: <what
                // getaddrinfo said>"; the host is named by ResolveError itself.
                let text = e.to_string();
                let detail = text
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&text);
                fail(detail.to_string())
            })?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for a in found {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        if addrs.is_empty() {
            return Err(fail("the name has no address".to_string()));
        }
        Ok(addrs)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl FromStr for HostPort {
    type Err = AddrError;

    /// Parses `host:port`, `ip:port` or `[ipv6]:port`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| AddrError::NoPort(s.to_string()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| AddrError::BadPort(port.to_string()))?;
        let bad_host = || AddrError::BadHost(host.to_string());
        let host = if let Some(inner) = host.strip_prefix('[') {
            let ip: Ipv6Addr = inner
                .strip_suffix(']')
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(bad_host)?;
            ip.to_string()
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            ip.to_string()
        } else if is_host_name(host) {
            host.to_ascii_lowercase()
        } else {
            return Err(bad_host());
        };
        Ok(Self { host, port })
    }
}

/// A plausible DNS or /etc/hosts name: letters, digits, '-', '.', '_' (container names
/// have underscores), not empty, at most 253 characters, and not something that only
/// looks like an IPv4 address (`10.0.0.300`: a typo, not a name).
fn is_host_name(host: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    !host.is_empty()
        && host.len() <= 253
        && host.chars().all(allowed)
        && !host.starts_with(['-', '.'])
        && !host.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HostPort, AddrError> {
        s.parse()
    }

    #[test]
    fn parses_names_and_addresses() {
        let a = parse("node1:6001").expect("a name");
        assert_eq!((a.host(), a.port()), ("node1", 6001));
        assert!(a.is_name());
        assert_eq!(a.to_string(), "node1:6001");
        assert_eq!(parse("NODE1:6001"), Ok(a), "names ignore case");
        assert_eq!(
            parse("raft_node-2.example.org:6002")
                .expect("dots, dashes, underscores")
                .to_string(),
            "raft_node-2.example.org:6002"
        );
        let ip = parse("127.0.0.1:6001").expect("an IPv4 address");
        assert!(!ip.is_name());
        assert_eq!(ip.to_string(), "127.0.0.1:6001");
        let v6 = parse("[0:0::1]:6001").expect("an IPv6 address");
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.to_string(), "[::1]:6001");
        assert_eq!(v6.with_port(7001).to_string(), "[::1]:7001");
    }

    #[test]
    fn ip_addresses_print_as_socket_addrs_do() {
        for text in [
            "127.0.0.1:6001",
            "10.1.2.3:65535",
            "[::1]:6001",
            "[fe80::1]:9",
        ] {
            let sock: SocketAddr = text.parse().expect("a socket address");
            let ours = parse(text).expect("parses");
            assert_eq!(ours.to_string(), sock.to_string());
            assert_eq!(HostPort::from(sock), ours);
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        assert_eq!(parse("node1"), Err(AddrError::NoPort("node1".into())));
        assert_eq!(parse("node1:"), Err(AddrError::BadPort(String::new())));
        assert_eq!(parse("node1:0"), Err(AddrError::BadPort("0".into())));
        assert_eq!(
            parse("node1:70000"),
            Err(AddrError::BadPort("70000".into()))
        );
        assert_eq!(parse(":6001"), Err(AddrError::BadHost(String::new())));
        assert_eq!(parse("::1:6001"), Err(AddrError::BadHost("::1".into())));
        assert_eq!(parse("[::1:6001"), Err(AddrError::BadHost("[::1".into())));
        assert_eq!(
            parse("[node1]:6001"),
            Err(AddrError::BadHost("[node1]".into()))
        );
        assert_eq!(
            parse("10.0.0.300:6001"),
            Err(AddrError::BadHost("10.0.0.300".into()))
        );
        assert_eq!(
            parse("http://node1:6001"),
            Err(AddrError::BadHost("http://node1".into()))
        );
        assert_eq!(
            parse("user@node1:6001"),
            Err(AddrError::BadHost("user@node1".into()))
        );
        assert_eq!(
            parse("node 1:6001"),
            Err(AddrError::BadHost("node 1".into()))
        );
    }

    #[tokio::test]
    async fn resolves_names_and_says_which_one_failed() {
        let ip = parse("127.0.0.1:6001").expect("parses");
        assert_eq!(
            ip.resolve().await,
            Ok(vec!["127.0.0.1:6001".parse().expect("addr")])
        );
        let local = parse("localhost:6001").expect("parses");
        let addrs = local.resolve().await.expect("localhost resolves");
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 6001)
        );
        // `.invalid` never resolves (RFC 6761).
        let bad = parse("no-such-node.invalid:6001").expect("parses");
        let err = bad.resolve().await.expect_err("does not resolve");
        assert_eq!(err.host, "no-such-node.invalid");
        assert!(
            err.to_string()
                .starts_with("cannot resolve no-such-node.invalid: "),
            "{err}"
        );
    }
}
