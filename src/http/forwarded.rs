//! The client's address behind trusted proxies.
//!
//! The address a request counts against is the TCP peer's, unless the peer is a configured
//! trusted proxy: then it is the right-most address of the forwarding chain that is not a
//! trusted proxy (every hop to its right is one of ours and appended what it saw; anything to
//! its left came from the client and may be forged). The chain is `X-Forwarded-For`, or, when
//! that is absent, the `for=` parameters of `Forwarded` (RFC 7239). With no trusted proxy
//! configured, both headers are ignored.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The address to count `peer`'s request against.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // An IPv4 peer of a dual-stack listener arrives as `::ffff:a.b.c.d`: it is that IPv4
    // address, for the trusted ranges, the limits and the audit trail alike.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in chain(headers).into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            // A hop that is not an address (`unknown`, an obfuscated name, garbage): nothing
            // further left can be trusted, so the request counts against the last proxy.
            None => return nearest,
        }
    }
    nearest
}

/// The forwarding chain, left (client) to right (nearest proxy); `None` for a hop that is not
/// an address.
fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    if !xff.is_empty() {
        return xff.iter().flat_map(|v| v.split(',')).map(parse_hop).collect();
    }
    let forwarded = headers.get_all("forwarded").iter().filter_map(|v| v.to_str().ok());
    forwarded.flat_map(|v| v.split(',')).map(forwarded_for).collect()
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value.trim().trim_matches('"')))?
    })
}

/// One hop: an IPv4 or IPv6 address, possibly with a port (`192.0.2.1:80`, `[2001:db8::1]:80`),
/// an IPv4-mapped IPv6 address as its IPv4 address.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip: IpAddr = if let Ok(ip) = hop.parse() {
        ip
    } else if let Some(rest) = hop.strip_prefix('[') {
        rest.split_once(']').and_then(|(ip, _)| ip.parse().ok())?
    } else {
        let (ip, port) = hop.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        ip.parse().ok()?
    };
    Some(ip.to_canonical())
}

/// Parses `--trusted-proxies`: CIDR ranges or single addresses.
pub fn parse_trusted(items: &[String]) -> Result<Vec<IpNet>, String> {
    // One empty value (`--trusted-proxies ""`) names none; an empty item among others is a slip.
    if let [only] = items
        && only.trim().is_empty()
    {
        return Ok(Vec::new());
    }
    items
        .iter()
        .map(|s| s.trim())
        .map(|s| {
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("trusted proxy {s:?} is not an address or a CIDR range (e.g. 10.0.0.0/8)"))?;
            // `10.1.2.3/8` trusts all of 10/8: say so rather than guess which was meant.
            if net != net.trunc() {
                return Err(format!(
                    "trusted proxy {s:?} has host bits past its prefix: write {} for the range, or the address alone",
                    net.trunc()
                ));
            }
            Ok(net)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn trusted_proxies_are_refused_rather_than_misread() {
        let list = |items: &[&str]| parse_trusted(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(list(&[""]), Ok(vec![]), "one empty value names none");
        assert_eq!(list(&["10.0.0.0/8", "127.0.0.1"]).unwrap().len(), 2);
        assert!(list(&["10.0.0.0/8", "", "10.1.0.0/16"]).is_err(), "an empty item is a slip");
        assert!(list(&["127.0.0.1", ""]).is_err());
        assert!(list(&["10.1.2.3/8"]).unwrap_err().contains("10.0.0.0/8"), "host bits past the prefix");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn proxies() -> Vec<IpNet> {
        parse_trusted(&["10.0.0.0/8".into(), "2001:db8:ffff::1".into()]).unwrap()
    }

    #[test]
    fn without_trusted_proxies_forwarding_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=198.51.100.1")]);
        assert_eq!(client_addr(ip("10.1.1.1"), &h, &[]), ip("10.1.1.1"));
        // A peer that is not a trusted proxy is the client, whatever it claims.
        assert_eq!(client_addr(ip("192.0.2.5"), &h, &proxies()), ip("192.0.2.5"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies();
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &p), ip("203.0.113.9"), "1.1.1.1 may be forged");
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &p), ip("203.0.113.9"), "several header lines, a port");
        let h = headers(&[("forwarded", r#"for=198.51.100.1;proto=https, for="[2001:db8::17]:4711""#)]);
        assert_eq!(client_addr(ip("2001:db8:ffff::1"), &h, &p), ip("2001:db8::17"));
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.8")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &p), ip("10.0.0.9"), "all ours: the farthest");
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &p), ip("10.0.0.2"), "garbage: the nearest proxy");
        assert_eq!(client_addr(ip("10.0.0.2"), &HeaderMap::new(), &p), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_addresses() {
        let p = proxies();
        let h = headers(&[("x-forwarded-for", "203.0.113.9, ::ffff:10.0.0.7")]);
        // A dual-stack listener's IPv4 peer, and a mapped hop, are trusted like 10.0.0.0/8.
        assert_eq!(client_addr(ip("::ffff:10.0.0.2"), &h, &p), ip("203.0.113.9"));
        assert_eq!(client_addr(ip("::ffff:192.0.2.5"), &h, &p), ip("192.0.2.5"), "untrusted: the peer, as IPv4");
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.4")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &p), ip("198.51.100.4"));
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=198.51.100.1")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &proxies()), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_parse_as_ranges_or_addresses() {
        assert_eq!(parse_trusted(&["10.0.0.0/8".into(), " ::1 ".into()]).unwrap().len(), 2);
        assert!(parse_trusted(&["10.0.0.0/33".into()]).unwrap_err().contains("10.0.0.0/33"));
        assert!(parse_trusted(&["proxy.example".into()]).is_err());
    }
}
