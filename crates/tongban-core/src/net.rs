//! Address ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address), for settings such as the
//! trusted front load balancers, which sit in a subnet rather than at fixed addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address range; a bare address is the range of that address alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    base: IpAddr,
    prefix: u8,
}

/// Why a range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or a range such as 10.0.0.0/8")]
pub struct IpNetError(String);

impl IpNet {
    /// Whether `ip` is in the range. An IPv4 address written as IPv6 (`::ffff:10.0.0.2`, as
    /// dual-stack sockets report IPv4 peers) is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl From<IpAddr> for IpNet {
    fn from(base: IpAddr) -> Self {
        let prefix = if base.is_ipv4() { 32 } else { 128 };
        Self { base, prefix }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpNetError(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let base: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Self { base, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A connection's peer with its address as text, made once per connection (the server puts it
/// on every request as `ConnectInfo<Peer>`): each request logs and forwards the address, and
/// formatting it again for each use was three times per request.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s IP address as text.
    pub text: IpText,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            text: IpText::new(addr.ip()),
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

/// An address as text, formatted on the stack: IPv4 (the common case) digit by digit instead of
/// through `fmt`, which costs several times more on every request that logs or forwards it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IpText {
    buf: [u8; 45],
    len: u8,
}

impl IpText {
    pub fn new(ip: IpAddr) -> Self {
        let mut t = IpText {
            buf: [0; 45],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.push(b'.');
                    }
                    if octet >= 100 {
                        t.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        t.push(b'0' + octet / 10 % 10);
                    }
                    t.push(b'0' + octet % 10);
                }
            }
            IpAddr::V6(v6) => {
                use std::io::Write as _;
                let mut cursor = std::io::Cursor::new(&mut t.buf[..]);
                // The longest IPv6 text (45 bytes, IPv4-mapped) fits the buffer.
                let _ = write!(cursor, "{v6}");
                t.len = u8::try_from(cursor.position()).unwrap_or(0);
            }
        }
        t
    }

    fn push(&mut self, b: u8) {
        self.buf[usize::from(self.len)] = b;
        self.len += 1;
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons and hex letters are ever written.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::ops::Deref for IpText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for IpText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IpText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("range")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let lan = net("10.0.0.0/8");
        assert!(lan.contains(ip("10.0.0.2")));
        assert!(lan.contains(ip("10.255.255.255")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(
            lan.contains(ip("::ffff:10.1.2.3")),
            "IPv4 seen through IPv6"
        );
        let one = net("192.168.1.7");
        assert!(one.contains(ip("192.168.1.7")));
        assert!(!one.contains(ip("192.168.1.8")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert_eq!(IpNet::from(ip("10.0.0.2")), net("10.0.0.2/32"));
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/-1",
            "host",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ip_text_matches_std_formatting() {
        let mut cases: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.9.99",
            "100.20.3.0",
            "::",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.168.100.200",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().expect("address"))
        .collect();
        // Every octet value in every position.
        cases.extend((0..=255u8).map(|b| IpAddr::from([b, 255 - b, b / 3, b.wrapping_mul(7)])));
        for ip in cases {
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
    }
}
