//! Long-term tokens: what is stored of one, where it stands at a given time, and what a new one
//! or a rotation asks the store to write.

use super::types::{ClientId, LongTokenId, Scopes};

/// A long-term token as stored (its hash aside).
#[derive(Debug, Clone)]
pub struct LongToken {
    pub id: LongTokenId,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub name: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The long-term token whose short-term token minted this one (`None`: a root).
    pub parent: Option<LongTokenId>,
    /// How it was issued: what may renew or replace it.
    pub origin: TokenOrigin,
    /// When it was last exchanged for a short-term token or presented as a bearer (Unix
    /// seconds, to the minute).
    pub last_used_at: Option<i64>,
    /// Whether the owning client is disabled (read with the token, to save a query).
    pub client_disabled: bool,
}

impl LongToken {
    /// Where the token stands at `now`. The one place a token's liveness is decided.
    pub fn status(&self, now: i64) -> TokenStatus {
        if self.expires_at <= now {
            TokenStatus::Expired
        } else if self.revoked_at.is_some_and(|r| r <= now) {
            TokenStatus::Revoked
        } else if self.client_disabled {
            TokenStatus::Disabled
        } else if self.revoked_at.is_some() {
            TokenStatus::Rotating
        } else {
            TokenStatus::Live
        }
    }

    /// Valid at `now`: not expired, not revoked (a future `revoked_at` is a rotation's grace),
    /// its client not disabled.
    pub fn is_live(&self, now: i64) -> bool {
        matches!(self.status(now), TokenStatus::Live | TokenStatus::Rotating)
    }

    /// When the token stops being valid, whichever comes first.
    pub fn valid_until(&self) -> i64 {
        self.revoked_at.map_or(self.expires_at, |r| r.min(self.expires_at))
    }

    /// Not used for `secs` at `now`: its last use, or its issuance if it was never used, is
    /// that long ago. A token to clean up.
    pub fn unused_for(&self, secs: i64, now: i64) -> bool {
        self.last_used_at.unwrap_or(self.issued_at) <= now - secs
    }

    /// Valid at `now` and ending within `secs`. A token to renew.
    pub fn expiring_within(&self, secs: i64, now: i64) -> bool {
        self.is_live(now) && self.valid_until() <= now + secs
    }
}

/// How a long-term token was issued, which decides what may renew or replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// On the client's own credentials (or a short-term token of such a token).
    Client,
    /// On an external identity, through the federation rule with this id; also every child of
    /// such a token. Only a fresh identity token of the same rule, or the client's own
    /// credentials, may replace it; a short-term token never renews it.
    Federation(String),
    /// The grant of a token exchange through this rule: never replaced.
    Exchange(String),
}

impl TokenOrigin {
    /// Whether the `short_token` grant may rotate it.
    pub fn renewable(&self) -> bool {
        *self == TokenOrigin::Client
    }

    /// The origin of a token minted under one of this origin.
    pub fn of_child(&self) -> TokenOrigin {
        match self {
            TokenOrigin::Exchange(rule) => TokenOrigin::Federation(rule.clone()),
            other => other.clone(),
        }
    }

    /// As stored: `NULL`, `rule:<id>` or `exchange:<id>`.
    pub fn encode(&self) -> Option<String> {
        match self {
            TokenOrigin::Client => None,
            TokenOrigin::Federation(rule) => Some(format!("rule:{rule}")),
            TokenOrigin::Exchange(rule) => Some(format!("exchange:{rule}")),
        }
    }

    pub fn decode(stored: Option<&str>) -> Option<TokenOrigin> {
        match stored.map(|s| s.split_once(':')) {
            None => Some(TokenOrigin::Client),
            Some(Some(("rule", rule))) => Some(TokenOrigin::Federation(rule.to_owned())),
            Some(Some(("exchange", rule))) => Some(TokenOrigin::Exchange(rule.to_owned())),
            Some(_) => None,
        }
    }
}

/// A long-term token to insert.
#[derive(Debug, Clone)]
pub struct NewLongToken {
    pub id: LongTokenId,
    pub client_id: ClientId,
    pub token_hash: [u8; 32],
    pub scopes: Scopes,
    pub name: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Its parent in the lineage, which must be live when it is inserted.
    pub parent: Option<LongTokenId>,
    /// See [`LongToken::origin`].
    pub origin: TokenOrigin,
}

/// An existing token that a new one replaces, revoked at `revoke_at`.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub old: LongTokenId,
    pub revoke_at: i64,
}

/// Where a long-term token stands at a given time, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Valid.
    Live,
    /// Valid until its rotation's grace period ends (`revoked_at`, in the future).
    Rotating,
    /// Not expired or revoked, but its client is disabled (valid again if it is enabled).
    Disabled,
    Revoked,
    Expired,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Live => "live",
            TokenStatus::Rotating => "rotating",
            TokenStatus::Disabled => "disabled",
            TokenStatus::Revoked => "revoked",
            TokenStatus::Expired => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: i64, revoked_at: Option<i64>, client_disabled: bool) -> LongToken {
        LongToken {
            id: LongTokenId(uuid::Uuid::from_u128(1)),
            client_id: ClientId::parse("cli_a").unwrap(),
            scopes: Scopes::default(),
            name: None,
            issued_at: 0,
            expires_at,
            revoked_at,
            parent: None,
            origin: TokenOrigin::Client,
            last_used_at: None,
            client_disabled,
        }
    }

    #[test]
    fn origins_round_trip_and_only_a_clients_own_tokens_are_renewable() {
        for o in [TokenOrigin::Client, TokenOrigin::Federation("fed_a".into()), TokenOrigin::Exchange("fed_b".into())] {
            assert_eq!(TokenOrigin::decode(o.encode().as_deref()), Some(o.clone()));
            assert_eq!(o.renewable(), o == TokenOrigin::Client);
        }
        assert_eq!(TokenOrigin::Exchange("fed_b".into()).of_child(), TokenOrigin::Federation("fed_b".into()));
        assert_eq!(TokenOrigin::decode(Some("other:x")), None);
    }

    #[test]
    fn unused_and_expiring_tokens_are_found_by_their_times() {
        let mut t = record(10_000, None, false);
        t.issued_at = 1000;
        assert!(t.unused_for(500, 1500) && !t.unused_for(501, 1500), "never used: since its issuance");
        t.last_used_at = Some(1400);
        assert!(!t.unused_for(500, 1500) && t.unused_for(100, 1500));
        assert!(t.expiring_within(8500, 1500) && !t.expiring_within(8499, 1500));
        assert!(!record(1400, None, false).expiring_within(8500, 1500), "an expired token is not expiring");
        let rotating = record(10_000, Some(2000), false);
        assert!(rotating.expiring_within(500, 1500), "a rotation's grace ends it");
    }

    #[test]
    fn token_status_names_why_a_token_is_not_live() {
        let now = 1000;
        let cases = [
            (record(2000, None, false), TokenStatus::Live),
            (record(2000, Some(1500), false), TokenStatus::Rotating),
            (record(2000, None, true), TokenStatus::Disabled),
            (record(2000, Some(1500), true), TokenStatus::Disabled),
            (record(2000, Some(1000), false), TokenStatus::Revoked),
            (record(2000, Some(10), true), TokenStatus::Revoked),
            (record(1000, None, false), TokenStatus::Expired),
            (record(900, Some(10), false), TokenStatus::Expired),
        ];
        for (r, expected) in cases {
            assert_eq!(r.status(now), expected, "{r:?}");
            // Exactly the live ones may be used.
            assert_eq!(r.is_live(now), matches!(expected, TokenStatus::Live | TokenStatus::Rotating), "{r:?}");
        }
    }
}
