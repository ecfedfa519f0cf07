//! `TokenService`: the three operations of the seed, introspection, and key loading.

mod failures;

use std::borrow::Cow;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};

use failures::failure_keys;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::audit::{self, AuditEventExt, ShortIssuanceCounter, event};
use super::cache::TtlCache;
use super::client_key::{self, ClientPublicKey};
use super::error::{DomainError, DomainResult};
use super::keys::KeySchedule;
use super::limits::{FailureLimits, IssuanceLimiter, LimitConfig, RetryAfter, Suppressed};
use super::otp;
use super::types::*;
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::signer::{KeySet, NewShortClaims, ShortClaims, SigningAlg};
use crate::store::{ClientRecord, InsertError, LongTokenRecord, NewLongToken, Purged, Rotation, Store, StoreError};
use crate::telemetry::metrics as telemetry;

/// The service's rules that operators may tune.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The `iss` of every JWT and the `issuer` of the metadata.
    pub issuer: String,
    /// `aud` of short-term tokens when the request names none.
    pub default_audience: String,
    pub long_ttl_default_days: u32,
    pub long_ttl_max_days: u32,
    pub short_ttl_default_secs: u32,
    pub short_ttl_max_secs: u32,
    /// Failed authentications allowed per client id per window (0: no limit).
    pub failures_per_client: u32,
    /// Failed authentications allowed per source address per window (0: no limit).
    pub failures_per_address: u32,
    pub failure_window_secs: u32,
    /// Failed OTP codes allowed per client per day (0: no limit).
    pub otp_failures_per_day: u32,
    /// How long after its check began a failed secret, OTP code or assertion is answered.
    pub failure_delay_ms: u32,
    /// Failed authentications recorded one by one per failure window, in all (the rest are
    /// counted in summaries).
    pub audit_failures_per_window: u32,
    /// Issuances (long or short) per client per minute; 0 turns the limit off.
    pub issuance_per_client_per_minute: u32,
    /// How long expired long-term tokens are kept (so revoking one still answers 204).
    pub expired_retention_secs: i64,
    pub signing_alg: SigningAlg,
    /// How long a long-term token record may be served from memory; the staleness bound
    /// for changes made by other processes. 0 disables the cache.
    pub token_cache_ttl_ms: i64,
    /// Record every short-term issuance in the audit trail (default: counted per client).
    pub audit_short_tokens: bool,
    /// How long audit events are kept.
    pub audit_retention_secs: i64,
}

impl ServiceConfig {
    /// The contract's defaults for `issuer`.
    pub fn with_issuer(issuer: String) -> Self {
        ServiceConfig {
            default_audience: issuer.clone(),
            issuer,
            long_ttl_default_days: 30,
            long_ttl_max_days: 90,
            short_ttl_default_secs: 900,
            short_ttl_max_secs: 900,
            failures_per_client: 10,
            failures_per_address: 100,
            failure_window_secs: 60,
            otp_failures_per_day: 30,
            failure_delay_ms: 20,
            audit_failures_per_window: 1000,
            issuance_per_client_per_minute: 0,
            expired_retention_secs: 7 * 86_400,
            signing_alg: SigningAlg::EdDSA,
            token_cache_ttl_ms: 1000,
            audit_short_tokens: false,
            audit_retention_secs: 365 * 86_400,
        }
    }

    pub fn long_token_endpoint(&self) -> String {
        format!("{}/v1/auth/tokens/long", self.issuer.trim_end_matches('/'))
    }
}

/// How a caller asks for a long-term token: exactly one mechanism.
pub enum Credential {
    ClientSecret {
        client_id: ClientId,
        secret: SecretString,
    },
    Otp {
        client_id: ClientId,
        code: SecretString,
    },
    /// `client_key` is the `X-Client-Key` header, which must name the assertion's client.
    Assertion {
        assertion: SecretString,
        client_key: Option<ClientId>,
    },
    ShortToken {
        token: Bearer,
        client_key: Option<ClientId>,
    },
}

impl Credential {
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Credential::ClientSecret { .. } => Mechanism::ClientSecret,
            Credential::Otp { .. } => Mechanism::Otp,
            Credential::Assertion { .. } => Mechanism::Assertion,
            Credential::ShortToken { .. } => Mechanism::ShortToken,
        }
    }
}

/// The `Authorization` header as presented: every kind is an authentication, and a missing or
/// malformed one is a failed authentication like a bad token.
pub enum Bearer {
    Absent,
    /// Present, but not `Bearer <token>` (or too long).
    Malformed,
    Token(SecretString),
}

/// The options of a long-term token request, as received (validated here).
#[derive(Debug, Default, Clone)]
pub struct LongTokenParams {
    pub scopes: Option<Scopes>,
    pub ttl_days: Option<i64>,
    pub name: Option<String>,
    /// The raw `rotate_token_id`, and `grace_seconds`.
    pub rotate_token_id: Option<String>,
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct ShortTokenParams {
    pub scopes: Option<Scopes>,
    pub audience: Option<String>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug)]
pub struct IssuedLong {
    pub id: LongTokenId,
    pub token: OpaqueSecret,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated: Option<LongTokenId>,
}

#[derive(Debug)]
pub struct IssuedShort {
    pub id: ShortTokenId,
    pub jwt: String,
    pub client_id: ClientId,
    /// The scopes the token holds, sorted.
    pub scopes: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// An authenticated bearer.
#[derive(Debug, Clone)]
pub enum Caller {
    Long(Arc<LongTokenRecord>),
    Short { id: ShortTokenId, client_id: ClientId, scopes: Scopes, claims: Arc<ShortClaims> },
}

/// A short-term JWT whose signature and claims have been checked (not its revocation).
#[derive(Debug, Clone)]
struct VerifiedShort {
    id: ShortTokenId,
    client_id: ClientId,
    scopes: Scopes,
    claims: Arc<ShortClaims>,
}

impl Caller {
    pub fn client_id(&self) -> &ClientId {
        match self {
            Caller::Long(t) => &t.client_id,
            Caller::Short { client_id, .. } => client_id,
        }
    }

    pub fn scopes(&self) -> &Scopes {
        match self {
            Caller::Long(t) => &t.scopes,
            Caller::Short { scopes, .. } => scopes,
        }
    }
}

/// What a bearer token is presented for, outside issuance.
#[derive(Debug, Clone, Copy)]
pub enum BearerUse<'a> {
    Introspection,
    /// Revoking the token with this id (as given in the path).
    Revocation {
        target: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Long,
    Short,
}

/// What introspection reports about an active token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token_id: String,
    pub kind: TokenKind,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The audience a short-term token was minted for (a resource server checks it is itself).
    pub audience: Option<String>,
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

/// What a successful authentication for a long-term token grants.
struct Granted {
    client_id: ClientId,
    /// The scopes the caller may grant.
    scopes: Scopes,
    /// With the `short_token` grant: the long-term token behind the short-term token.
    minted_by: Option<LongTokenId>,
}

impl Granted {
    fn root(client_id: ClientId, scopes: Scopes) -> Self {
        Granted { client_id, scopes, minted_by: None }
    }
}

fn rotation_target_not_live() -> DomainError {
    DomainError::InvalidRequest("rotate_token_id is not a live long-term token of this client".into())
}

/// How many generations `descends_from` walks up before it gives up.
const MAX_LINEAGE_DEPTH: usize = 64;

/// A short-term token minted for another service, presented here as a credential.
fn foreign_audience(client: &ClientId) -> AuthFail {
    AuthFail::new(
        DomainError::InvalidToken("token was issued for another audience".into()),
        Some(client.clone()),
        "foreign_audience",
    )
}

/// The token of a presented `Authorization` header, or the failed authentication its absence
/// or malformation is.
fn presented(bearer: &Bearer) -> Result<&str, AuthFail> {
    match bearer {
        Bearer::Token(t) => Ok(t.expose_secret()),
        Bearer::Absent => Err(AuthFail::new(DomainError::MissingToken, None, "token_missing")),
        Bearer::Malformed => Err(AuthFail::new(
            DomainError::InvalidToken("Authorization must be Bearer <token>".into()),
            None,
            "authorization_malformed",
        )),
    }
}

fn rate_limited(r: RetryAfter) -> DomainError {
    DomainError::RateLimited { retry_after_secs: r.0 }
}

/// The one answer to every refused OTP code: wrong, replayed, unknown client, none enrolled.
const OTP_REFUSED: &str = "one-time code is not valid";
/// The one answer to an assertion that is not the client's: unknown or disabled client, no
/// key, a key of another type, a bad signature.
const ASSERTION_REFUSED: &str = "assertion is not valid";

/// How far `iat`/`nbf` may be in the future, and `exp` beyond its maximum, for clock skew.
const SKEW_SECS: i64 = 30;
/// The furthest ahead an assertion's `exp` may be (RFC 7523 §3: short-lived).
const ASSERTION_MAX_LIFETIME_SECS: i64 = 300;
const MAX_NAME_CHARS: usize = 100;
const MAX_GRACE_SECS: i64 = 86_400;
const MIN_SHORT_TTL_SECS: i64 = 60;

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
    long_tokens: TtlCache<LongTokenId, Arc<LongTokenRecord>>,
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
        let window_ms = i64::from(config.failure_window_secs.max(1)) * 1000;
        let suppressed = Suppressed::new(window_ms, u64::from(config.audit_failures_per_window));
        // At start, every lock that may still hold: the longest window is a day.
        let limits_seen_at = AtomicI64::new(clock.now_millis() - 86_400_000);
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
            config,
        })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The keys in force at `now`, re-selected from the schedule when a key's activation,
    /// retirement or removal from the JWKS has come (a single atomic load otherwise).
    fn key_set(&self, now: i64) -> Arc<KeySet> {
        if now >= self.keys_valid_until.load(Ordering::Relaxed) {
            let schedule = self.schedule.read().unwrap_or_else(|e| e.into_inner()).clone();
            self.install(&schedule, now);
        }
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Selects the keys in force at `now` from `schedule` and installs them if they differ.
    fn install(&self, schedule: &KeySchedule, now: i64) {
        match schedule.select(now, self.config.signing_alg, i64::from(self.config.short_ttl_max_secs)) {
            Ok(fresh) => {
                let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
                if keys.jwks() != fresh.set.jwks() || keys.active_kid() != fresh.set.active_kid() {
                    tracing::info!(
                        active = fresh.set.active_kid(),
                        published = fresh.published,
                        "signing keys changed"
                    );
                    *keys = fresh.set;
                }
                telemetry::signing_keys(fresh.published);
                self.keys_valid_until.store(fresh.valid_until, Ordering::Relaxed);
            }
            Err(e) => {
                // Keep the current keys; try again at the next reload.
                tracing::error!(error = %e, "cannot select signing keys");
                self.keys_valid_until.store(now.saturating_add(60), Ordering::Relaxed);
            }
        }
    }

    /// Re-reads the signing keys (called periodically), so that keys added or rotated by
    /// another instance or by an operator reach this one.
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(
            KeySchedule::load(self.store.as_ref(), &self.keyring, self.clock.as_ref(), self.config.signing_alg).await?,
        );
        *self.schedule.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        self.install(&fresh, self.clock.now());
        Ok(())
    }

    /// Sets the `tokensmith_signing_keys` gauge: the keys this instance publishes and verifies
    /// with. Every change of the keys in force sets it; the server calls this once its metrics
    /// recorder is installed, for the keys loaded at start.
    pub fn record_key_gauge(&self) {
        telemetry::signing_keys(self.key_set(self.clock.now()).key_count());
    }

    /// The JWK Set to publish.
    pub fn jwks(&self) -> serde_json::Value {
        self.key_set(self.clock.now()).jwks().clone()
    }

    // ----- issueLongTermToken -------------------------------------------------------------

    /// Authenticates `credential` and issues a long-term token.
    pub async fn issue_long(
        &self,
        credential: Credential,
        params: LongTokenParams,
        addr: IpAddr,
    ) -> DomainResult<IssuedLong> {
        let now_ms = self.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        // Everything that needs no secret is checked first, so a bad option never burns a
        // one-time code or an assertion id.
        let ttl_days = self.long_ttl_days(params.ttl_days)?;
        let name = validate_name(params.name)?;
        let rotation = self.rotation(params.rotate_token_id.as_deref(), params.grace_seconds, now)?;

        let claimed = match &credential {
            Credential::ClientSecret { client_id, .. } | Credential::Otp { client_id, .. } => Some(client_id.clone()),
            Credential::Assertion { assertion, client_key } => {
                let claimed = client_key::claimed_client(assertion.expose_secret()).and_then(|c| ClientId::parse(&c));
                if let (Some(header), Some(claimed)) = (client_key, &claimed)
                    && header != claimed
                {
                    return Err(DomainError::InvalidRequest(
                        "X-Client-Key does not name the assertion's client".into(),
                    ));
                }
                claimed.or_else(|| client_key.clone())
            }
            Credential::ShortToken { .. } => None,
        };
        let grant = credential.mechanism();
        self.check_limits(&failure_keys(grant, claimed.as_ref(), addr), now_ms)?;

        let started = tokio::time::Instant::now();
        let granted = match self.authenticate_grant(credential, now).await {
            Ok(ok) => ok,
            Err(fail) => {
                let err = self.on_failure(fail, grant, claimed, addr, now_ms, true).await;
                self.answer_failures_alike(grant, started).await;
                return Err(err);
            }
        };
        let client_id = granted.client_id.clone();
        // A lock reached while this credential was checked holds for it too.
        self.check_limits(&failure_keys(grant, Some(&client_id), addr), self.clock.now_millis())?;
        if let Some(l) = &self.issuance {
            l.check(&client_id).map_err(rate_limited)?;
        }

        let parent = self.lineage(&granted, rotation.as_ref(), now).await?;
        // A child never outlives its parent nor holds more than it does.
        let (mut grantable, mut expires_at) = (granted.scopes, now + i64::from(ttl_days) * 86_400);
        if let Some(p) = &parent {
            grantable = grantable.intersection(&p.scopes);
            expires_at = expires_at.min(p.valid_until());
        }
        let scopes = match params.scopes {
            Some(requested) if !requested.is_subset(&grantable) => {
                return Err(DomainError::InsufficientScope(format!(
                    "requested scopes exceed what this caller may grant ({})",
                    grantable.to_space_separated()
                )));
            }
            Some(requested) => requested,
            None => grantable,
        };

        let token = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
        let new = NewLongToken {
            id: LongTokenId::generate(),
            client_id,
            token_hash: self.keyring.keyed_hash(token.expose().as_bytes()),
            scopes,
            name,
            issued_at: now,
            expires_at,
            parent: parent.map(|p| p.id),
        };
        self.insert_long(&new, rotation, grant, addr, now_ms).await?;
        telemetry::long_token_issued(grant);
        tracing::info!(client_id = %new.client_id, token_id = %new.id, %grant, rotated = ?rotation.map(|r| r.old.to_string()), "long-term token issued");
        Ok(IssuedLong {
            id: new.id,
            token,
            client_id: new.client_id,
            scopes: new.scopes,
            issued_at: now,
            expires_at,
            rotated: rotation.map(|r| r.old),
        })
    }

    /// Holds the answer to a failed guessable credential (secret, OTP code, assertion) until
    /// `failure_delay_ms` after its check began: however long the lookup of a client took (one
    /// that exists, is disabled, has a key of some type, or none at all), the answer comes at
    /// the same time, and says nothing about the client. It also slows guessing down.
    async fn answer_failures_alike(&self, mechanism: Mechanism, started: tokio::time::Instant) {
        if mechanism.is_guessable() {
            let delay = std::time::Duration::from_millis(u64::from(self.config.failure_delay_ms));
            tokio::time::sleep_until(started + delay).await;
        }
    }

    /// The new token's parent, live, for its caps: a token minted with a short-term token is a
    /// child of that token's long-term token; a rotation's successor takes the place of the
    /// token it replaces instead (a root's successor is a root, a child's a child of the same
    /// parent). A short-term token may rotate only its own long-term token or a descendant of
    /// it, so a stolen one cannot trade a token of another lineage for a root.
    async fn lineage(
        &self,
        granted: &Granted,
        rotation: Option<&Rotation>,
        now: i64,
    ) -> DomainResult<Option<Arc<LongTokenRecord>>> {
        let parent = match rotation {
            None => granted.minted_by,
            Some(r) => {
                let target = self.store.get_long_token(&r.old).await?;
                let Some(target) = target.filter(|t| t.client_id == granted.client_id && t.is_live(now)) else {
                    return Err(rotation_target_not_live());
                };
                if let Some(minter) = granted.minted_by
                    && !self.descends_from(&target, minter).await?
                {
                    return Err(DomainError::InsufficientScope(
                        "a short-term token may rotate only its own long-term token or one minted from it".into(),
                    ));
                }
                target.parent
            }
        };
        let Some(parent) = parent else { return Ok(None) };
        match self.store.get_long_token(&parent).await? {
            Some(p) if p.is_live(now) => Ok(Some(Arc::new(p))),
            _ if rotation.is_some() => Err(rotation_target_not_live()),
            _ => Err(DomainError::InvalidToken("token has expired or been revoked".into())),
        }
    }

    /// Whether `token` is `ancestor` or descends from it (walking up at most `MAX_LINEAGE_DEPTH`
    /// generations).
    async fn descends_from(&self, token: &LongTokenRecord, ancestor: LongTokenId) -> Result<bool, StoreError> {
        let (mut id, mut parent) = (token.id, token.parent);
        for _ in 0..MAX_LINEAGE_DEPTH {
            if id == ancestor {
                return Ok(true);
            }
            let Some(next) = parent else { return Ok(false) };
            let Some(record) = self.store.get_long_token(&next).await? else { return Ok(false) };
            (id, parent) = (record.id, record.parent);
        }
        Ok(false)
    }

    /// Stores a new long-term token (and its rotation) with its audit event, and forgets the
    /// cached records of the tokens whose end that brought forward.
    async fn insert_long(
        &self,
        new: &NewLongToken,
        rotation: Option<Rotation>,
        grant: Mechanism,
        addr: IpAddr,
        now_ms: i64,
    ) -> DomainResult<()> {
        let name = if rotation.is_some() { event::LONG_TOKEN_ROTATED } else { event::LONG_TOKEN_ISSUED };
        let mut detail = serde_json::Map::new();
        if let Some(r) = rotation {
            detail.insert("rotated_token_id".into(), r.old.to_string().into());
            detail.insert("old_valid_until".into(), r.revoke_at.into());
        }
        if let Some(p) = new.parent {
            detail.insert("parent_token_id".into(), p.to_string().into());
        }
        let mut ev = audit::new(now_ms, name, audit::SUCCESS).client(&new.client_id).token(new.id).addr(addr);
        ev = ev.mechanism(grant.as_str());
        if !detail.is_empty() {
            ev = ev.detail(serde_json::Value::Object(detail));
        }
        match self.store.insert_long_token_audited(new, rotation, new.issued_at, ev).await {
            Ok(ended) => {
                for id in &ended {
                    self.long_tokens.remove(id);
                }
                Ok(())
            }
            Err(InsertError::RotationTargetNotLive) => Err(rotation_target_not_live()),
            Err(InsertError::ParentNotLive) if rotation.is_some() => Err(rotation_target_not_live()),
            Err(InsertError::ParentNotLive) => {
                Err(DomainError::InvalidToken("token has expired or been revoked".into()))
            }
            Err(InsertError::Store(e)) => Err(e.into()),
        }
    }

    fn long_ttl_days(&self, requested: Option<i64>) -> DomainResult<u32> {
        let max = self.config.long_ttl_max_days;
        match requested {
            None => Ok(self.config.long_ttl_default_days.min(max)),
            Some(d) if d >= 1 && d <= i64::from(max) => Ok(d as u32),
            Some(_) => Err(DomainError::InvalidRequest(format!("ttl_days must be between 1 and {max}"))),
        }
    }

    fn rotation(&self, rotate: Option<&str>, grace: Option<i64>, now: i64) -> DomainResult<Option<Rotation>> {
        match (rotate, grace) {
            (None, None) => Ok(None),
            (None, Some(_)) => {
                Err(DomainError::InvalidRequest("grace_seconds is only allowed with rotate_token_id".into()))
            }
            (Some(raw), grace) => {
                let grace = grace.unwrap_or(0);
                if !(0..=MAX_GRACE_SECS).contains(&grace) {
                    return Err(DomainError::InvalidRequest(format!(
                        "grace_seconds must be between 0 and {MAX_GRACE_SECS}"
                    )));
                }
                let Some(TokenId::Long(old)) = TokenId::parse(&self.keyring, raw) else {
                    return Err(rotation_target_not_live());
                };
                Ok(Some(Rotation { old, revoke_at: now + grace }))
            }
        }
    }

    /// Whether `secret` is the client's current secret, or its previous one while a rotation's
    /// overlap runs. The same work whatever the client's state: two constant-time comparisons,
    /// against random bytes where there is no stored hash. Only a well-formed secret (prefix,
    /// length, checksum: every secret this service issues) can match, and a comparison with a
    /// stand-in counts for nothing, so no fixed value ever authenticates anyone.
    fn secret_matches(&self, client: Option<&ClientRecord>, secret: &str, now: i64) -> bool {
        let well_formed = OpaqueSecret::parse(CLIENT_SECRET_PREFIX, secret).is_some();
        let current = client.map(|c| &c.secret_hash[..]);
        let previous = client
            .filter(|c| c.previous_secret_expires_at.is_some_and(|until| now < until))
            .and_then(|c| c.previous_secret_hash.as_deref());
        let matches_current = self.keyring.verify_hash(secret.as_bytes(), current.unwrap_or(&self.dummy));
        let matches_previous = self.keyring.verify_hash(secret.as_bytes(), previous.unwrap_or(&self.dummy));
        well_formed & ((current.is_some() & matches_current) | (previous.is_some() & matches_previous))
    }

    /// Checks a credential; on success, the client and the scopes the caller may grant.
    async fn authenticate_grant(&self, credential: Credential, now: i64) -> Result<Granted, AuthFail> {
        match credential {
            Credential::ClientSecret { client_id, secret } => {
                let client = self.store.get_client(&client_id).await?;
                let matches = self.secret_matches(client.as_ref(), secret.expose_secret(), now);
                match client {
                    Some(c) if matches && !c.disabled => Ok(Granted::root(c.id, c.scopes)),
                    c => {
                        let reason = match c {
                            None => "unknown_client",
                            Some(c) if c.disabled => "client_disabled",
                            Some(_) => "wrong_secret",
                        };
                        Err(AuthFail::new(DomainError::InvalidClient, Some(client_id), reason))
                    }
                }
            }
            Credential::Otp { client_id, code } => {
                let bad = |msg: &str, reason| {
                    AuthFail::new(DomainError::InvalidGrant(msg.into()), Some(client_id.clone()), reason)
                };
                let client = self.store.get_client(&client_id).await?.filter(|c| !c.disabled);
                let seed = client.as_ref().and_then(|c| {
                    let sealed = c.otp_seed_sealed.as_deref()?;
                    self.keyring.open(c.id.as_str().as_bytes(), sealed)
                });
                // Same work whether or not the client exists and has enrolled: the code is
                // always checked, against a seed that no client has if need be.
                let step = otp::matching_step(
                    seed.as_deref().map_or(&self.dummy[..otp::SECRET_LEN], |s| &s[..]),
                    code.expose_secret(),
                    now,
                );
                let (client, step) = match (client, seed.is_some(), step) {
                    (Some(c), true, Some(step)) => (c, step),
                    (None, ..) => return Err(bad(OTP_REFUSED, "unknown_or_disabled_client")),
                    (Some(_), false, _) => return Err(bad(OTP_REFUSED, "no_otp_enrolled")),
                    (Some(_), true, None) => return Err(bad(OTP_REFUSED, "wrong_otp")),
                };
                // A replayed code gets the answer of a wrong one: which codes were used is
                // nobody's business but the client's.
                if !self.store.consume_otp_step(&client.id, step).await? {
                    return Err(bad(OTP_REFUSED, "otp_replay"));
                }
                Ok(Granted::root(client.id, client.scopes))
            }
            Credential::Assertion { assertion, .. } => {
                self.authenticate_assertion(assertion.expose_secret(), now).await
            }
            Credential::ShortToken { token, client_key } => {
                let token = presented(&token)?;
                let caller = self.verify_short(token, now).await?;
                let Caller::Short { id, client_id, scopes, claims } = caller else {
                    return Err(AuthFail::from(DomainError::InvalidToken("a short-term token is required".into())));
                };
                if !self.is_own_audience(&claims.aud) {
                    return Err(foreign_audience(&client_id));
                }
                if client_key.is_some_and(|k| k != client_id) {
                    return Err(
                        DomainError::InvalidRequest("X-Client-Key does not name the token's client".into()).into()
                    );
                }
                if !scopes.contains(TOKENS_WRITE) {
                    return Err(DomainError::InsufficientScope(format!(
                        "the short-term token must hold {TOKENS_WRITE} to mint long-term tokens"
                    ))
                    .into());
                }
                let client = self.store.get_client(&client_id).await?;
                let Some(client) = client.filter(|c| !c.disabled) else {
                    return Err(AuthFail::new(
                        DomainError::InvalidToken("token is not valid".into()),
                        Some(client_id),
                        "client_disabled",
                    ));
                };
                Ok(Granted {
                    client_id: client.id,
                    scopes: scopes.intersection(&client.scopes),
                    minted_by: Some(id.parent),
                })
            }
        }
    }

    /// RFC 7523 §3 checks, with the signature first so no unauthenticated request can burn
    /// an assertion id.
    async fn authenticate_assertion(&self, assertion: &str, now: i64) -> Result<Granted, AuthFail> {
        let invalid = |msg: &str, client: Option<ClientId>, reason| {
            AuthFail::new(DomainError::InvalidGrant(msg.into()), client, reason)
        };
        if assertion.len() > 8192 {
            return Err(invalid("assertion is too large", None, "assertion_malformed"));
        }
        let Some(client_id) = client_key::claimed_client(assertion).and_then(|c| ClientId::parse(&c)) else {
            return Err(invalid("assertion is not a JWT with an iss claim", None, "assertion_malformed"));
        };
        let client = self.store.get_client(&client_id).await?;
        let key = client
            .as_ref()
            .filter(|c| !c.disabled)
            .and_then(|c| c.public_key.as_deref())
            .and_then(|pem| ClientPublicKey::parse(pem).ok())
            .filter(|key| client_key::header_alg_is(assertion, key.alg));
        // One answer, and the same work (a signature check), whether the client is unknown,
        // disabled, has no key, has a key of another type, or the signature is a forgery: the
        // answer never tells which clients exist or what keys they hold.
        let (Some(client), Some(key)) = (client, key) else {
            client_key::verify_against_dummy(assertion);
            return Err(invalid(ASSERTION_REFUSED, Some(client_id), "unknown_client_or_key"));
        };
        let Ok(claims) = client_key::verify_signature(assertion, &key) else {
            return Err(invalid(ASSERTION_REFUSED, Some(client.id.clone()), "assertion_invalid"));
        };
        // From here on the assertion is signed by the client's own key: its holder may learn
        // exactly what is wrong with it.
        let fail =
            |msg: String| AuthFail::new(DomainError::InvalidGrant(msg), Some(client.id.clone()), "assertion_invalid");
        if claims.iss.as_deref() != Some(client.id.as_str()) || claims.sub.as_deref() != Some(client.id.as_str()) {
            return Err(fail("assertion iss and sub must both be the client id".into()));
        }
        let endpoint = self.config.long_token_endpoint();
        let issuer = self.config.issuer.trim_end_matches('/');
        if !claims.aud.iter().any(|a| a.trim_end_matches('/') == issuer || *a == endpoint) {
            return Err(fail(format!("assertion aud must be {issuer} or {endpoint}")));
        }
        let Some(exp) = claims.exp else {
            return Err(fail("assertion has no exp".into()));
        };
        if exp <= now {
            return Err(fail("assertion has expired".into()));
        }
        if exp > now + ASSERTION_MAX_LIFETIME_SECS {
            return Err(fail(format!("assertion exp must be at most {ASSERTION_MAX_LIFETIME_SECS} seconds ahead")));
        }
        if claims.iat.is_some_and(|iat| iat > now + SKEW_SECS) || claims.nbf.is_some_and(|nbf| nbf > now + SKEW_SECS) {
            return Err(fail("assertion is not valid yet (iat or nbf in the future)".into()));
        }
        // Stored as text: no control character (PostgreSQL refuses a NUL byte).
        let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 256 && !j.chars().any(char::is_control));
        let Some(jti) = jti else {
            return Err(fail("assertion needs a jti of 1 to 256 characters, without control characters".into()));
        };
        // Kept past its `exp` by the skew allowance, so that an instance whose clock is behind
        // (and so still accepts the assertion) finds it used.
        if !self.store.consume_assertion_jti(&client.id, &jti, exp + SKEW_SECS).await? {
            return Err(AuthFail {
                reason: "assertion_replay",
                ..fail("assertion was already used (jti replay)".into())
            });
        }
        Ok(Granted::root(client.id, client.scopes))
    }

    // ----- issueShortTermToken ------------------------------------------------------------

    /// Exchanges a long-term bearer token for a short-term JWT.
    pub async fn issue_short(
        &self,
        bearer: Bearer,
        params: ShortTokenParams,
        addr: IpAddr,
    ) -> DomainResult<IssuedShort> {
        let now_ms = self.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        let max = i64::from(self.config.short_ttl_max_secs);
        let ttl = match params.ttl_seconds {
            None => i64::from(self.config.short_ttl_default_secs).min(max),
            Some(t) if (MIN_SHORT_TTL_SECS..=max).contains(&t) => t,
            Some(_) => {
                return Err(DomainError::InvalidRequest(format!(
                    "ttl_seconds must be between {MIN_SHORT_TTL_SECS} and {max}"
                )));
            }
        };
        let audience = match params.audience {
            None => Cow::Borrowed(self.config.default_audience.as_str()),
            Some(a) if !a.is_empty() && a.len() <= 256 && a.chars().all(is_plain_text) => Cow::Owned(a),
            Some(_) => {
                return Err(DomainError::InvalidRequest("audience must be 1 to 256 printable characters".into()));
            }
        };
        // A bearer token cannot be guessed: only its address's limit applies, never its client's.
        self.check_limits(&failure_keys(Mechanism::LongToken, None, addr), now_ms)?;
        let parent = match presented(&bearer) {
            Ok(token) => self.verify_long(token, now).await,
            Err(fail) => Err(fail),
        };
        let parent = match parent {
            Ok(p) => p,
            Err(fail) => return Err(self.on_failure(fail, Mechanism::LongToken, None, addr, now_ms, true).await),
        };
        if let Some(l) = &self.issuance {
            l.check(&parent.client_id).map_err(rate_limited)?;
        }
        let scopes = match params.scopes {
            Some(s) if !s.is_subset(&parent.scopes) => {
                return Err(DomainError::InvalidScope(format!(
                    "scopes must be a subset of the long-term token's scopes ({})",
                    parent.scopes.to_space_separated()
                )));
            }
            Some(s) => s.to_vec(),
            None => parent.scopes.to_vec(),
        };
        // Never outlive the parent: a short-term token ends when its long-term token does.
        let expires_at = (now + ttl).min(parent.valid_until());
        let id = ShortTokenId::generate(&self.keyring, parent.id, expires_at);
        let (client_id, jti, scope) = (parent.client_id.as_str(), id.as_str(), scopes.join(" "));
        let claims = NewShortClaims {
            iss: &self.config.issuer,
            sub: client_id,
            client_id,
            aud: &audience,
            iat: now,
            exp: id.expires_at,
            jti,
            scope: &scope,
        };
        let jwt = self.key_set(now).sign(&claims).ok_or_else(|| DomainError::Internal("signing failed".into()))?;
        telemetry::short_token_issued();
        if self.config.audit_short_tokens {
            let ev = audit::new(now_ms, event::SHORT_TOKEN_ISSUED, audit::SUCCESS)
                .client(&parent.client_id)
                .token(&id)
                .addr(addr)
                .mechanism("long_token")
                .detail(serde_json::json!({ "parent_token_id": parent.id.to_string() }));
            self.store.record_audit(vec![ev]).await?;
        } else {
            self.short_issued.add(&parent.client_id);
        }
        Ok(IssuedShort {
            expires_at: id.expires_at,
            id,
            jwt,
            client_id: parent.client_id.clone(),
            scopes,
            issued_at: now,
        })
    }

    // ----- bearer authentication ----------------------------------------------------------

    /// Authenticates the bearer token of a request (revocation, introspection), of either
    /// kind; a failure is recorded in the audit trail (these operations have no limits).
    pub async fn authenticate(&self, bearer: Bearer, addr: IpAddr, purpose: BearerUse<'_>) -> DomainResult<Caller> {
        let now_ms = self.clock.now_millis();
        let (checked, mechanism) = match presented(&bearer) {
            Ok(token) => self.check_token(token).await,
            Err(fail) => (Err(fail), Mechanism::Bearer),
        };
        match checked.and_then(|caller| self.check_audience(caller, purpose)) {
            Ok(c) => Ok(c),
            Err(fail) => Err(self.on_failure(fail, mechanism, None, addr, now_ms, false).await),
        }
    }

    /// A short-term token is a credential here only when it was minted for tokensmith itself;
    /// one minted for another service (RFC 8707, RFC 9068 §4) may only revoke itself.
    fn check_audience(&self, caller: Caller, purpose: BearerUse<'_>) -> Result<Caller, AuthFail> {
        match &caller {
            Caller::Short { id, claims, client_id, .. } if !self.is_own_audience(&claims.aud) => match purpose {
                BearerUse::Revocation { target } if target == id.as_str() => Ok(caller),
                _ => Err(foreign_audience(client_id)),
            },
            _ => Ok(caller),
        }
    }

    /// Whether `aud` is tokensmith's own audience: its issuer URL (with or without one
    /// trailing slash).
    fn is_own_audience(&self, aud: &str) -> bool {
        let issuer = self.config.issuer.trim_end_matches('/');
        aud == issuer || aud.strip_suffix('/') == Some(issuer)
    }

    /// Checks a token of either kind, and names the kind it looked like.
    async fn check_token(&self, token: &str) -> (Result<Caller, AuthFail>, Mechanism) {
        let now = self.clock.now();
        if token.starts_with(LONG_TOKEN_PREFIX) {
            (self.verify_long(token, now).await.map(Caller::Long), Mechanism::LongToken)
        } else {
            (self.verify_short(token, now).await, Mechanism::ShortToken)
        }
    }

    async fn verify_long(&self, bearer: &str, now: i64) -> Result<Arc<LongTokenRecord>, AuthFail> {
        if !bearer.starts_with(LONG_TOKEN_PREFIX) {
            return Err(DomainError::InvalidToken("a long-term token is required".into()).into());
        }
        // The checksum rejects a mistyped or forged token before any lookup.
        let Some(token) = OpaqueSecret::parse(LONG_TOKEN_PREFIX, bearer) else {
            return Err(AuthFail::new(
                DomainError::InvalidToken("token is malformed (checksum mismatch)".into()),
                None,
                "token_malformed",
            ));
        };
        let hash = self.keyring.keyed_hash(token.expose().as_bytes());
        let now_ms = self.clock.now_millis();
        let record = match self.token_ids.get(&hash, now_ms) {
            Some(id) => self.long_token(&id, now_ms).await?,
            None => {
                let r = self.store.find_long_token_by_hash(&hash).await?.map(Arc::new);
                if let Some(r) = &r {
                    self.token_ids.insert(hash, r.id, r.expires_at * 1000, now_ms);
                    self.remember_long(r, now_ms);
                }
                r
            }
        };
        match record {
            Some(t) if t.is_live(now) => Ok(t),
            Some(t) => Err(AuthFail::new(
                DomainError::InvalidToken("token has expired or been revoked".into()),
                Some(t.client_id.clone()),
                "token_expired_or_revoked",
            )),
            None => Err(AuthFail::new(DomainError::InvalidToken("token is not valid".into()), None, "token_unknown")),
        }
    }

    /// A long-term token's record, from the cache when fresh enough.
    async fn long_token(&self, id: &LongTokenId, now_ms: i64) -> Result<Option<Arc<LongTokenRecord>>, StoreError> {
        if let Some(r) = self.long_tokens.get(id, now_ms) {
            return Ok(Some(r));
        }
        let r = self.store.get_long_token(id).await?.map(Arc::new);
        if let Some(r) = &r {
            self.remember_long(r, now_ms);
        }
        Ok(r)
    }

    fn remember_long(&self, r: &Arc<LongTokenRecord>, now_ms: i64) {
        self.long_tokens.insert(r.id, Arc::clone(r), now_ms + self.config.token_cache_ttl_ms, now_ms);
    }

    async fn is_short_revoked(&self, id: &ShortTokenId, now_ms: i64) -> Result<bool, StoreError> {
        if let Some(r) = self.short_revoked.get(id.as_str(), now_ms) {
            return Ok(r);
        }
        let r = self.store.is_short_token_revoked(id).await?;
        let deadline = if r { id.expires_at * 1000 } else { now_ms + self.config.token_cache_ttl_ms };
        self.short_revoked.insert(id.to_string(), r, deadline, now_ms);
        Ok(r)
    }

    /// Checks a short-term JWT's signature and claims (or finds it already checked).
    fn verify_jwt(&self, jwt: &str, now_ms: i64) -> Result<VerifiedShort, AuthFail> {
        let invalid = |msg: &str| AuthFail::new(DomainError::InvalidToken(msg.into()), None, "token_invalid");
        let key: [u8; 32] = Sha256::digest(jwt.as_bytes()).into();
        if let Some(v) = self.verified.get(&key, now_ms) {
            return Ok(v);
        }
        let claims = self.key_set(now_ms.div_euclid(1000)).verify(jwt).map_err(|e| invalid(&e.to_string()))?;
        if claims.iss != self.config.issuer {
            return Err(invalid("token was issued by another issuer"));
        }
        let client_id = ClientId::parse(&claims.client_id).ok_or_else(|| invalid("token is not valid"))?;
        let id = ShortTokenId::parse(&self.keyring, &claims.jti).ok_or_else(|| invalid("token is not valid"))?;
        let parent_differs = claims.ltid.as_ref().is_some_and(|l| *l != id.parent.to_string());
        if parent_differs || id.expires_at != claims.exp || claims.sub != claims.client_id {
            return Err(invalid("token is not valid"));
        }
        let scopes = Scopes::from_space_separated(&claims.scope).map_err(|_| invalid("token is not valid"))?;
        let v = VerifiedShort { id, client_id, scopes, claims: Arc::new(claims) };
        self.verified.insert(key, v.clone(), v.claims.exp * 1000, now_ms);
        Ok(v)
    }

    async fn verify_short(&self, jwt: &str, now: i64) -> Result<Caller, AuthFail> {
        let now_ms = self.clock.now_millis();
        let VerifiedShort { id, client_id, scopes, claims } = self.verify_jwt(jwt, now_ms)?;
        let revoked = || {
            AuthFail::new(
                DomainError::InvalidToken("token has expired or been revoked".into()),
                Some(client_id.clone()),
                "token_expired_or_revoked",
            )
        };
        if claims.exp <= now || self.is_short_revoked(&id, now_ms).await? {
            return Err(revoked());
        }
        // Revocation cascades: a short-term token is valid only while its parent is.
        match self.long_token(&id.parent, now_ms).await? {
            Some(p) if p.is_live(now) && p.client_id == client_id => {}
            _ => return Err(revoked()),
        }
        Ok(Caller::Short { id, client_id, scopes, claims })
    }

    // ----- revokeToken --------------------------------------------------------------------

    /// Revokes `target` on behalf of `caller`. Idempotent; `NotFound` for ids the caller may
    /// not revoke, so existence is never revealed.
    pub async fn revoke(&self, caller: &Caller, target: &str, addr: IpAddr) -> DomainResult<()> {
        let now_ms = self.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        let (by, mechanism) = match caller {
            Caller::Long(t) => (t.id.to_string(), "long_token"),
            Caller::Short { id, .. } => (id.to_string(), "short_token"),
        };
        let revoked = |client: &ClientId, token: &dyn std::fmt::Display, kind: &str| {
            audit::new(now_ms, event::TOKEN_REVOKED, audit::SUCCESS)
                .client(client)
                .token(token)
                .addr(addr)
                .mechanism(mechanism)
                .detail(serde_json::json!({ "kind": kind, "by_token_id": by }))
        };
        let may_write = caller.scopes().contains(TOKENS_WRITE);
        match TokenId::parse(&self.keyring, target).ok_or(DomainError::NotFound)? {
            TokenId::Long(id) => {
                let is_self = matches!(caller, Caller::Long(t) if t.id == id);
                let record = self.store.get_long_token(&id).await?.ok_or(DomainError::NotFound)?;
                if !(is_self || (may_write && record.client_id == *caller.client_id())) {
                    return Err(DomainError::NotFound);
                }
                if record.revoked_at.is_some_and(|r| r <= now) || record.expires_at <= now {
                    return Ok(());
                }
                let ended =
                    self.store.revoke_long_token_audited(&id, now, revoked(&record.client_id, &id, "long")).await?;
                for id in &ended {
                    self.long_tokens.remove(id);
                }
                telemetry::token_revoked(TokenKind::Long);
                tracing::info!(client_id = %record.client_id, token_id = %id, "long-term token revoked");
            }
            TokenId::Short(id) => {
                let allowed = match caller {
                    Caller::Short { id: own, .. } if *own == id => true,
                    Caller::Long(t) if t.id == id.parent => true,
                    _ if may_write => {
                        self.store.get_long_token(&id.parent).await?.is_some_and(|p| p.client_id == *caller.client_id())
                    }
                    _ => false,
                };
                if !allowed {
                    return Err(DomainError::NotFound);
                }
                if id.expires_at <= now {
                    return Ok(());
                }
                self.store.revoke_short_token_audited(&id, revoked(caller.client_id(), &id, "short")).await?;
                self.short_revoked.insert(id.to_string(), true, id.expires_at * 1000, self.clock.now_millis());
                telemetry::token_revoked(TokenKind::Short);
                tracing::info!(client_id = %caller.client_id(), token_id = %id, "short-term token revoked");
            }
        }
        Ok(())
    }

    // ----- introspection (RFC 7662) -------------------------------------------------------

    /// Reports whether `token` is active; the caller must hold `tokens:introspect`.
    pub async fn introspect(&self, caller: &Caller, token: &str) -> DomainResult<Option<TokenInfo>> {
        if !caller.scopes().contains(TOKENS_INTROSPECT) {
            return Err(DomainError::InsufficientScope(format!(
                "introspection requires the {TOKENS_INTROSPECT} scope"
            )));
        }
        match self.check_token(token).await.0.map_err(|f| f.err) {
            Ok(Caller::Long(t)) => Ok(Some(TokenInfo {
                token_id: t.id.to_string(),
                kind: TokenKind::Long,
                client_id: t.client_id.clone(),
                scopes: t.scopes.clone(),
                issued_at: t.issued_at,
                // A rotation's grace period ends the token early: report when it really stops.
                expires_at: t.valid_until(),
                audience: None,
            })),
            Ok(Caller::Short { id, client_id, scopes, claims }) => Ok(Some(TokenInfo {
                token_id: id.to_string(),
                kind: TokenKind::Short,
                client_id,
                scopes,
                issued_at: claims.iat,
                expires_at: claims.exp,
                audience: Some(claims.aud.clone()),
            })),
            Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
            Err(_) => Ok(None),
        }
    }

    // ----- housekeeping -------------------------------------------------------------------

    /// Deletes what has expired, in bounded batches, and forgets stale limiter entries.
    pub async fn purge_expired(&self) -> Result<Purged, StoreError> {
        const BATCH: u32 = 1000;
        let now = self.clock.now();
        let mut total = Purged::default();
        loop {
            let started = std::time::Instant::now();
            let p = self.store.purge_expired(now, now - self.config.expired_retention_secs, BATCH).await?;
            total.long_tokens += p.long_tokens;
            total.revoked_short_tokens += p.revoked_short_tokens;
            total.used_assertions += p.used_assertions;
            total.limits += p.limits;
            let full = [p.long_tokens, p.revoked_short_tokens, p.used_assertions, p.limits];
            if full.iter().all(|&n| n < u64::from(BATCH)) {
                break;
            }
            // Paced: pause three times as long as the batch took, so a large backlog uses at
            // most a quarter of one core and requests keep their latency while it drains.
            tokio::time::sleep(started.elapsed() * 3).await;
        }
        self.flush_short_counts().await?;
        let audit_before = self.clock.now_millis() - self.config.audit_retention_secs * 1000;
        while self.store.purge_audit(audit_before, BATCH).await? == u64::from(BATCH) {}
        let now_ms = self.clock.now_millis();
        self.token_ids.prune(now_ms);
        self.long_tokens.prune(now_ms);
        self.short_revoked.prune(now_ms);
        self.verified.prune(now_ms);
        if let Some(l) = &self.issuance {
            l.prune();
        }
        Ok(total)
    }
}

impl TokenService {
    /// Records the short-term issuances counted since the last call, one event per client.
    pub async fn flush_short_counts(&self) -> Result<(), StoreError> {
        let counts = self.short_issued.take();
        if counts.is_empty() {
            return Ok(());
        }
        let now_ms = self.clock.now_millis();
        let events = counts
            .iter()
            .map(|(client, n)| {
                audit::new(now_ms, event::SHORT_TOKENS_ISSUED, audit::SUCCESS)
                    .client(client)
                    .mechanism("long_token")
                    .detail(serde_json::json!({ "count": n }))
            })
            .collect();
        if let Err(e) = self.store.record_audit(events).await {
            self.short_issued.restore(counts);
            return Err(e);
        }
        Ok(())
    }
}

fn validate_name(name: Option<String>) -> DomainResult<Option<String>> {
    match name {
        Some(n) if n.chars().count() > MAX_NAME_CHARS || !n.chars().all(is_plain_text) => {
            Err(DomainError::InvalidRequest(format!(
                "name must be at most {MAX_NAME_CHARS} characters, without control, format or separator characters"
            )))
        }
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests;
