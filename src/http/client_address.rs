//! The address a request came from, as far as it can be believed.
//!
//! Without trusted proxies it is the peer address, and `X-Forwarded-For` is ignored: anyone
//! can write that header. With trusted proxies, and only when the peer is one of them, the
//! header is read from the right (the hop each proxy appended) past every trusted proxy; the
//! first address that is not one is the client. Entries to its left were written by the
//! client itself and are never believed.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;

use crate::config::TrustedProxies;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address (`""` when the peer is unknown, as in some test harnesses).
pub fn client_address(req: &HttpRequest, trusted: &TrustedProxies) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else {
        return String::new();
    };
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer.to_string();
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    resolve(peer, &forwarded, trusted).to_string()
}

/// Walks the forwarded chain from the right; `peer` is trusted.
fn resolve(peer: IpAddr, forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // A hop that is no address: the last trusted one is all that can be said.
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443`,
/// `192.0.2.1:8080`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (ip, _port) = hop.rsplit_once(':')?;
    ip.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.1");
        let chain = ["6.6.6.6", "203.0.113.9", "10.0.0.2"];
        assert_eq!(resolve(peer, &chain, &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(peer, &[], &trusted), peer);
        assert_eq!(resolve(peer, &["10.1.1.1"], &trusted), ip("10.1.1.1"));
        assert_eq!(
            resolve(peer, &["junk", "10.1.1.1"], &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(
            resolve(peer, &["[2001:db8::7]:443"], &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            resolve(peer, &[" 198.51.100.4:8080"], &trusted),
            ip("198.51.100.4")
        );
    }
}
