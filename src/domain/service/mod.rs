//! `TokenService`: the operations on tokens, one file each.
//!
//! | file               | operation                                                        |
//! |--------------------|------------------------------------------------------------------|
//! | `issue_long.rs`    | issueLongTermToken: options, rotation, scopes and lifetime caps   |
//! | `grants.rs`        | which credential a request presents; `grant_*.rs` check each one  |
//! | `lineage.rs`       | the parent a new long-term token hangs under                      |
//! | `issue_short.rs`   | issueShortTermToken: a JWT minted from a long-term token          |
//! | `exchange.rs`      | token exchange (RFC 8693): an external identity token to a JWT   |
//! | `bearer.rs`        | authenticating the bearer of a request, and its audience          |
//! | `verify.rs`        | checking a token of either kind, with the caches in front         |
//! | `revoke.rs`        | revokeToken, by the caller's rights                               |
//! | `introspect.rs`    | RFC 7662 introspection                                            |
//! | `signing_keys.rs`  | the keys in force, and the JWKS                                   |
//! | `failures.rs`      | failed authentications: limits, locks, the audit trail            |
//! | `expiry.rs`        | expiry warnings: `token.expiring` once per token and lead time    |
//! | `cleanup.rs`       | housekeeping: expired rows, caches, issuance counts, last uses    |
//!
//! Every operation reads the clock once (a [`Now`]) and passes it down, so all its rules see
//! the same instant.

mod admin_auth;
mod api;
mod bearer;
mod cleanup;
mod config;
mod exchange;
mod expiry;
mod failures;
mod grant_assertion;
mod grant_federation;
mod grant_otp;
mod grant_secret;
mod grant_short_token;
mod grants;
mod introspect;
mod issue_long;
mod issue_short;
mod lineage;
mod revoke;
mod signing_keys;
mod verify;

use crate::domain::federation::keys::{Fetched, IssuerKeyCache, KeyFetcher, KeyPolicy};
use std::num::NonZeroU32;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

pub use admin_auth::{ADMIN_READ, ADMIN_WRITE, AdminCaller, AdminRight, AdminSession, CONSOLE_SESSION_NAME};
pub use api::{
    Bearer, BearerUse, Caller, Credential, ExchangeParams, IssuedLong, IssuedShort, LongTokenParams, ShortTokenParams,
    TokenInfo, TokenKind,
};
pub use config::ServiceConfig;

use super::audit::ShortIssuanceCounter;
use super::cache::TtlCache;
use super::error::DomainError;
use super::keys::KeySchedule;
use super::limits::{FailureLimits, IssuanceLimiter, LimitConfig, Suppressed};
use super::types::{ClientId, LongTokenId};
use super::usage::LastUse;
use crate::clock::{self, Clock, Now};
use crate::crypto::Keyring;
use crate::signer::KeySet;
use crate::store::{Store, StoreError};
use verify::VerifiedShort;

pub struct TokenService {
    store: Arc<dyn Store>,
    keyring: Keyring,
    /// Every stored signing key with its schedule (re-read periodically).
    schedule: RwLock<Arc<KeySchedule>>,
    /// The keys in force, swapped whole when they change; readers clone the `Arc` and never
    /// wait on signing.
    keys: RwLock<Arc<KeySet>>,
    /// When the schedule says the keys in force change next (Unix seconds).
    keys_valid_until: AtomicI64,
    clock: Arc<dyn Clock>,
    /// The failed-authentication locks this process knows (see `domain::limits`).
    failures: FailureLimits,
    /// Failures counted instead of recorded one by one, for the audit trail's summaries.
    suppressed: Suppressed,
    /// When `refresh_limits` last read the locks set elsewhere (Unix ms).
    limits_seen_at: AtomicI64,
    issuance: Option<IssuanceLimiter>,
    /// Which token id a long-term token's hash belongs to (immutable; kept until expiry).
    token_ids: TtlCache<[u8; 32], LongTokenId>,
    /// Long-term token records by id, each for at most `token_cache_ttl_ms`.
    long_tokens: TtlCache<LongTokenId, Arc<crate::domain::token::LongToken>>,
    /// Whether a short-term token id is revoked, each for at most `token_cache_ttl_ms`.
    short_revoked: TtlCache<String, bool>,
    /// Short-term JWTs whose signature and claims were checked, by SHA-256 of the JWT,
    /// until they expire. Revocation is still checked on every use.
    verified: TtlCache<[u8; 32], VerifiedShort>,
    /// Random bytes drawn at start, standing in for a stored hash or seed where there is none
    /// (an unknown client, no secret rotation running, no OTP enrolled), so that every attempt
    /// takes the same path and time. Random per process: no fixed value can match them, and a
    /// comparison against them never decides an outcome on its own (see `secret_matches`).
    dummy: [u8; 32],
    /// Short-term issuances per client, recorded in the audit trail at each cleanup tick.
    short_issued: ShortIssuanceCounter,
    /// Trusted issuers' keys, for external identity tokens (federation).
    issuer_keys: IssuerKeyCache,
    /// When tokens and clients were last used, written by `flush_last_use`.
    last_use: LastUse,
    /// The (client, lead time) series of the expiring-tokens gauge set by the last pass.
    expiring_series: std::sync::Mutex<Vec<(ClientId, i64)>>,
    config: ServiceConfig,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl TokenService {
    /// Loads (or, on first start, creates) the signing keys and builds the service.
    pub async fn new(
        store: Arc<dyn Store>,
        keyring: Keyring,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> anyhow::Result<Self> {
        let schedule = KeySchedule::load(store.as_ref(), &keyring, clock.as_ref(), config.signing_alg).await?;
        let selected = schedule.select(clock.now(), config.signing_alg, i64::from(config.short_ttl_max_secs))?;
        let failures = FailureLimits::new(LimitConfig {
            per_client: config.failures_per_client,
            per_address: config.failures_per_address,
            window_secs: config.failure_window_secs,
            otp_per_day: config.otp_failures_per_day,
        });
        let window_ms = clock::millis(i64::from(config.failure_window_secs.max(1)));
        let suppressed = Suppressed::new(window_ms, u64::from(config.audit_failures_per_window));
        // At start, every lock that may still hold: the longest window is a day.
        let limits_seen_at = AtomicI64::new(clock.now_millis() - clock::millis(86_400));
        let issuance = NonZeroU32::new(config.issuance_per_client_per_minute).map(IssuanceLimiter::per_minute);
        let mut dummy = [0u8; 32];
        crate::crypto::random_bytes(&mut dummy);
        let size = if config.token_cache_ttl_ms > 0 { 100_000 } else { 0 };
        Ok(TokenService {
            store,
            keyring,
            schedule: RwLock::new(Arc::new(schedule)),
            keys: RwLock::new(selected.set),
            keys_valid_until: AtomicI64::new(selected.valid_until),
            clock,
            failures,
            suppressed,
            limits_seen_at,
            issuance,
            token_ids: TtlCache::new(size),
            long_tokens: TtlCache::new(size),
            short_revoked: TtlCache::new(size),
            verified: TtlCache::new(size / 5),
            dummy,
            short_issued: ShortIssuanceCounter::default(),
            issuer_keys: IssuerKeyCache::new(Arc::new(NoRemoteKeys), KeyPolicy::default()),
            last_use: LastUse::default(),
            expiring_series: std::sync::Mutex::new(Vec::new()),
            config,
        })
    }

    /// Fetches trusted issuers' keys with `fetcher` (the server's HTTP client). Without it,
    /// only issuers whose keys were given as a file verify anything.
    pub fn with_key_fetcher(mut self, fetcher: Arc<dyn KeyFetcher>) -> Self {
        self.issuer_keys = IssuerKeyCache::new(fetcher, KeyPolicy::default());
        self
    }

    /// What the operator's changes and reads (`domain::admin`, `domain::keys`, …) run on,
    /// for the admin API: the store, the keyring, and the time now (Unix seconds).
    pub fn operator_context(&self) -> (&dyn Store, &Keyring, i64) {
        (self.store.as_ref(), &self.keyring, self.now().secs())
    }

    /// Forgets the token records and revocation states this process holds, so that a change
    /// an operator made through it (a revocation, a disabled client) holds here from the next
    /// request. The other caches hold only what never changes (a hash's token id, a JWT's
    /// checked signature); liveness is read again.
    pub fn forget_cached_state(&self) {
        self.long_tokens.clear();
        self.short_revoked.clear();
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Whether the store answers (the readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The instant an operation runs at.
    fn now(&self) -> Now {
        self.clock.instant()
    }

    /// The per-client issuance limit, when one is set.
    fn check_issuance(&self, client: &ClientId) -> Result<(), DomainError> {
        match &self.issuance {
            Some(l) => l.check(client).map_err(|r| DomainError::RateLimited { retry_after_secs: r.0 }),
            None => Ok(()),
        }
    }
}

/// A failed authentication, with the client it concerned when known (for the limits).
struct AuthFail {
    err: DomainError,
    client: Option<ClientId>,
    /// The reason class, for the audit trail (never shown to the caller).
    reason: &'static str,
}

impl AuthFail {
    fn new(err: DomainError, client: Option<ClientId>, reason: &'static str) -> Self {
        AuthFail { err, client, reason }
    }
}

impl From<DomainError> for AuthFail {
    fn from(err: DomainError) -> Self {
        AuthFail { err, client: None, reason: "invalid" }
    }
}

impl From<StoreError> for AuthFail {
    fn from(e: StoreError) -> Self {
        AuthFail { err: DomainError::Store(e), client: None, reason: "unavailable" }
    }
}

/// The fetcher of a service that was given none: every fetch fails, so only issuers whose keys
/// were given as a file verify anything.
struct NoRemoteKeys;

#[async_trait::async_trait]
impl KeyFetcher for NoRemoteKeys {
    async fn get(&self, _url: &url::Url) -> Result<Fetched, String> {
        Err("this service fetches no keys".into())
    }
}

/// The one answer to a token that was once valid and no longer is.
fn expired_or_revoked() -> DomainError {
    DomainError::InvalidToken("token has expired or been revoked".into())
}

#[cfg(test)]
mod tests;
