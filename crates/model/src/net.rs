//! IP networks (`10.0.0.0/8`, `fd00::/8`), for filters and detection rules over `sourceIPs`.

use std::fmt;
use std::net::IpAddr;

/// An IP network: an address and a prefix length. A bare address is a /32 (or /128).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d[/n]` or `v6[/n]`; `None` when it is not a network.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = a.trim().parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { net, prefix })
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (ip, self.net) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// Whether the text `ip` is an address inside the network (false when it is no address).
    pub fn contains_str(&self, ip: &str) -> bool {
        ip.trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.contains(ip))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::Cidr;

    #[test]
    fn networks() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains_str("10.200.1.1"));
        assert!(n.contains_str("::ffff:10.1.2.3"));
        assert!(!n.contains_str("11.0.0.1"));
        assert!(!n.contains_str("not an ip"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains_str("8.8.8.8"));
        assert!(Cidr::parse("fd00::/8").unwrap().contains_str("fd12::1"));
        assert!(Cidr::parse("1.2.3.4").unwrap().contains_str("1.2.3.4"));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("x/8").is_none());
    }
}
