//! The client's address, for per-IP limits, hashing and `X-Forwarded-For`: the TCP peer's, or,
//! behind a trusted front load balancer, the nearest untrusted hop the balancer reported.

use std::net::IpAddr;

use tongban_core::net::{IpNet, IpText, Peer};

/// The client's address: the peer's, or, when the peer is a trusted proxy (the front load
/// balancer), the nearest untrusted address of `X-Forwarded-For`. Set by the router (in
/// [`Routed`](crate::route::layer::Routed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp {
    pub ip: IpAddr,
    /// `ip` as text (the connection's own when `ip` is the peer's).
    pub text: IpText,
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the TCP peer is a trusted proxy (its `X-Forwarded-For` is kept and extended).
    pub via_trusted_proxy: bool,
}

/// Works out the client's address; a forged `X-Forwarded-For` from an untrusted peer is
/// ignored, so clients cannot pick their own rate-limit key. `forwarded_for` is called only
/// for a trusted peer: looking the header up on every request was a hash and a probe for a
/// value that is then ignored.
pub fn client_ip<'a>(
    conn: &Peer,
    forwarded_for: impl FnOnce() -> Option<&'a str>,
    trusted: &[IpNet],
) -> ClientIp {
    let peer = conn.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return ClientIp {
            ip: peer,
            text: conn.text,
            peer,
            via_trusted_proxy: false,
        };
    }
    let hops: Vec<IpAddr> = forwarded_for()
        .unwrap_or("")
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    let ip = hops
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer);
    ClientIp {
        ip,
        text: IpText::new(ip),
        peer,
        via_trusted_proxy: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: IpAddr) -> Peer {
        Peer::new((ip, 40_000).into())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let lb: IpAddr = "10.0.0.2".parse().expect("ip");
        let client: IpAddr = "203.0.113.7".parse().expect("ip");
        let spoof = Some("1.2.3.4, 203.0.113.7");
        assert_eq!(
            client_ip(&at(client), || spoof, &[lb.into()]).ip,
            client,
            "untrusted peer: its own address"
        );
        assert_eq!(
            client_ip(&at(lb), || spoof, &[lb.into()]).ip,
            client,
            "nearest untrusted hop"
        );
        assert_eq!(
            client_ip(&at(lb), || Some("203.0.113.7, 10.0.0.2"), &[lb.into()]).ip,
            client
        );
        assert_eq!(
            client_ip(&at(lb), || None, &[lb.into()]).ip,
            lb,
            "no header: the proxy itself"
        );
        assert_eq!(client_ip(&at(lb), || Some("garbage"), &[lb.into()]).ip, lb);
    }

    #[test]
    fn a_range_of_balancers_is_trusted_and_skipped() {
        let lbs: IpNet = "10.8.0.0/16".parse().expect("range");
        let client: IpAddr = "203.0.113.7".parse().expect("ip");
        let a: IpAddr = "10.8.0.2".parse().expect("ip");
        // Two balancers of the range in a row: the client is the hop before them.
        let r = client_ip(&at(a), || Some("1.2.3.4, 203.0.113.7, 10.8.0.9"), &[lbs]);
        assert_eq!((r.ip, r.via_trusted_proxy), (client, true));
        assert_eq!(
            (&*r.text, r.peer),
            ("203.0.113.7", a),
            "the client's text, not the peer's"
        );
        let outside: IpAddr = "10.9.0.2".parse().expect("ip");
        let r = client_ip(&at(outside), || Some("1.2.3.4"), &[lbs]);
        assert_eq!((r.ip, r.via_trusted_proxy), (outside, false));
        assert_eq!(&*r.text, "10.9.0.2");
    }
}
