//! Where a webhook may point: http(s) URLs of public hosts only, unless the operator allows
//! private networks (`RAPPORT_WEBHOOK_ALLOW_PRIVATE`). A webhook must not become a way into
//! the internal network, so the check runs when the URL is saved and again on every delivery,
//! on the addresses the name resolves to then (a name that later resolves to a private address
//! is refused at delivery; redirects are never followed).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Checks a URL's form: http or https, a host, no credentials, no fragment.
pub fn parse(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with https:// or http://".to_owned());
    }
    if url.host().is_none() {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; verify the signature instead".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".to_owned());
    }
    Ok(url)
}

/// Whether an address is on the public internet.
///
/// IPv6 forms that carry an IPv4 address are judged two ways. IPv4-mapped (`::ffff:0:0/96`)
/// and IPv4-translated (`::ffff:0:0:0/96`) addresses are how a dual-stack socket names an IPv4
/// peer, and connecting to one reaches exactly that IPv4 address: the embedded address
/// decides. Translation and tunnel ranges (NAT64 `64:ff9b::/96` and the local-use
/// `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`) are refused outright: where the
/// IPv4 address sits in a local-use NAT64 prefix depends on how the operator configured it
/// (RFC 6052 allows /32 to /96), so it cannot be read back reliably, the packets pass through
/// a translator or relay inside or next to our network, and 6to4 and Teredo are deprecated
/// transition mechanisms no real webhook receiver needs.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] <= 1) // NAT64, well-known and local-use
                || s[0] == 0x2002 // 6to4
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
        }
    }
}

/// The IPv4 address an IPv4-mapped or IPv4-translated IPv6 address stands for.
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let [a, b, c, d, e, f, g, h] = v6.segments();
    if [a, b, c, d, e, f] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(Ipv4Addr::from(u32::from(g) << 16 | u32::from(h)));
    }
    None
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240) // reserved
}

/// Resolves the URL's host and checks every address; the error says why it is refused.
pub async fn check(url: &Url, allow_private: bool) -> Result<(), String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| format!("has a host, {name}, that does not resolve"))?
            .map(|a| a.ip())
            .collect(),
        None => return Err("must name a host".to_owned()),
    };
    if addresses.is_empty() {
        return Err("has a host that resolves to no address".to_owned());
    }
    if !allow_private && let Some(ip) = addresses.iter().find(|ip| !is_public(**ip)) {
        return Err(format!(
            "points to {ip}, a loopback, private or link-local address; only public \
             addresses are allowed (an operator can allow private networks with \
             RAPPORT_WEBHOOK_ALLOW_PRIVATE)"
        ));
    }
    Ok(())
}

/// The delivery client's resolver: drops non-public addresses unless allowed, so a name
/// re-pointed at the internal network after it was saved is refused at delivery.
#[derive(Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(
                    format!("{} resolves to no public address; refused", name.as_str()).into(),
                );
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn ipv4_mapped_and_translated_addresses_are_judged_by_their_ipv4_address() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.168.0.1",
            "::ffff:0.0.0.0",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
        for ip in ["::ffff:8.8.8.8", "::ffff:0:8.8.8.8"] {
            assert!(public(ip), "{ip} stands for a public IPv4 address");
        }
    }

    #[test]
    fn six_to_four_is_refused_whatever_it_embeds() {
        // 2002:7f00:1:: tunnels to 127.0.0.1, 2002:a9fe:a9fe:: to the metadata service,
        // 2002:808:808:: to 8.8.8.8: the whole range goes.
        for ip in [
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:808:808::1",
            "2002::",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
    }

    #[test]
    fn nat64_prefixes_are_refused_whatever_they_embed() {
        for ip in [
            "64:ff9b::808:808",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b:1:7f00:1::",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
        // Just outside the local-use /48.
        assert!(public("64:ff9b:2::1"));
    }

    #[test]
    fn teredo_is_refused() {
        assert!(!public("2001:0:4136:e378:8000:63bf:3fff:fdd2"));
        // 2001:db8::/32 aside, the rest of 2001::/16 holds ordinary public networks.
        assert!(public("2001:4860:4860::8888"));
    }

    #[test]
    fn public_addresses_stay_allowed() {
        for ip in [
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8844",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_for_form() {
        assert!(parse("https://hooks.example.com/rapport").is_ok());
        assert!(parse("http://hooks.example.com:8080/x?y=1").is_ok());
        assert!(parse("ftp://example.com").is_err());
        assert!(parse("https://user:pw@example.com").is_err());
        assert!(parse("https://example.com/#x").is_err());
        assert!(parse("not a url").is_err());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let url = parse("http://127.0.0.1:9/hook").unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&url, false).await.is_err());
        assert!(check(&url, true).await.is_ok());
        let url = parse("http://[::1]:9/hook").unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&url, false).await.is_err());
        let url = parse("http://localhost:9/hook").unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&url, false).await.is_err());
    }
}
