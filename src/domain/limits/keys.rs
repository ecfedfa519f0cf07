//! What a failed authentication counts against: the source address (IPv6 per /64), the client
//! id, and the client's OTP codes over a day.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::domain::ClientId;

/// A source address as the limits count it: IPv4 as is (an IPv4-mapped IPv6 address as its
/// IPv4 address), IPv6 per /64 — the usual allocation of one subscriber, so stepping through
/// the addresses of one network does not escape the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => AddrKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))),
            },
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let ip = s.strip_suffix("/64").unwrap_or(s).parse().ok()?;
        Some(AddrKey::of(ip))
    }
}

impl fmt::Display for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// One counter of failed authentications.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// Every failure from a source address.
    Address(AddrKey),
    /// Failures of a client's guessable credentials (secret, OTP code, assertion), from anywhere.
    Client(ClientId),
    /// Failed OTP codes of a client, over a day: a 6-digit code is not brute-forced over weeks.
    OtpDay(ClientId),
}

impl LimitKey {
    /// The key as stored: `addr:…`, `client:…` or `otp:…`.
    pub fn encode(&self) -> String {
        match self {
            LimitKey::Address(a) => format!("addr:{a}"),
            LimitKey::Client(c) => format!("client:{c}"),
            LimitKey::OtpDay(c) => format!("otp:{c}"),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (kind, value) = s.split_once(':')?;
        match kind {
            "addr" => AddrKey::parse(value).map(LimitKey::Address),
            "client" => ClientId::parse(value).map(LimitKey::Client),
            "otp" => ClientId::parse(value).map(LimitKey::OtpDay),
            _ => None,
        }
    }

    /// The `client.locked` audit event of a lock on this key (stored form) until `until_ms`,
    /// set at `now_ms`; none for an address's lock.
    pub fn lock_event(key: &str, until_ms: i64, now_ms: i64) -> Option<crate::domain::audit::AuditEvent> {
        use crate::domain::audit::{self, AuditEventExt, event};
        let (client, what) = match LimitKey::decode(key)? {
            LimitKey::Address(_) => return None,
            LimitKey::Client(c) => (c, "credentials"),
            LimitKey::OtpDay(c) => (c, "otp_codes"),
        };
        let detail = serde_json::json!({ "locked": what, "locked_until": until_ms.div_euclid(1000) });
        Some(audit::new(now_ms, event::CLIENT_LOCKED, audit::FAILURE).client(&client).reason("limit").detail(detail))
    }

    /// The client a key concerns, if any.
    pub fn client(&self) -> Option<&ClientId> {
        match self {
            LimitKey::Address(_) => None,
            LimitKey::Client(c) | LimitKey::OtpDay(c) => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(AddrKey::of(ip("2001:db8:1:2:aaaa::1")), AddrKey::of(ip("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(AddrKey::of(ip("2001:db8:1:2::1")), AddrKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(AddrKey::of(ip("::ffff:192.0.2.7")), AddrKey::of(ip("192.0.2.7")));
        assert_ne!(AddrKey::of(ip("192.0.2.7")), AddrKey::of(ip("192.0.2.8")));
        assert_eq!(AddrKey::of(ip("2001:db8:1:2:aaaa::1")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn keys_round_trip_through_their_stored_form() {
        let c = ClientId::parse("cli_abc").unwrap();
        for key in [
            LimitKey::Address(AddrKey::of(ip("203.0.113.9"))),
            LimitKey::Address(AddrKey::of(ip("2001:db8::7"))),
            LimitKey::Client(c.clone()),
            LimitKey::OtpDay(c),
        ] {
            assert_eq!(LimitKey::decode(&key.encode()), Some(key));
        }
        for bad in ["", "addr:", "addr:nope", "client:", "client:a b", "other:x", "nocolon"] {
            assert_eq!(LimitKey::decode(bad), None, "{bad:?}");
        }
    }
}
