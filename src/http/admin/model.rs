//! The admin API's wire types: what it takes and answers. The command line prints the same
//! types with `--json` (and reads them back from a `--server`), so both paths answer alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use secrecy::ExposeSecret;

use crate::clock::rfc3339;
use crate::domain::TokenKind;
use crate::domain::admin::reads::{Bucket, Cascade, ClientDetail};
use crate::domain::admin::{CreatedClient, OtpEnrolment, Revocation, RevokeOutcome};
use crate::domain::audit::AuditRecord;
use crate::domain::keys::KeyInfo;
use crate::domain::token::LongToken;
use crate::store::Client;

fn time(secs: Option<i64>) -> Option<String> {
    secs.map(rfc3339)
}

/// A client, never its secrets. Times are RFC 3339.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Whether a TOTP authenticator is enrolled.
    pub otp: bool,
    pub public_key_alg: Option<String>,
    pub disabled: bool,
    pub created_at: String,
    /// When it last authenticated (to the minute), if ever.
    pub last_used_at: Option<String>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        ClientView {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            scopes: c.scopes.to_vec(),
            otp: c.otp_seed_sealed.is_some(),
            public_key_alg: c.public_key_alg.clone(),
            disabled: c.disabled,
            created_at: rfc3339(c.created_at),
            last_used_at: time(c.last_used_at),
        }
    }
}

/// How many long-term tokens a client holds, by state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCounts {
    pub live: usize,
    pub rotating: usize,
    /// Held while the client is disabled.
    pub suspended: usize,
}

/// One client in full: everything but its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientDetailView {
    #[serde(flatten)]
    pub client: ClientView,
    pub public_key: Option<String>,
    pub public_key_thumbprint: Option<String>,
    pub long_tokens: TokenCounts,
}

impl From<&ClientDetail> for ClientDetailView {
    fn from(d: &ClientDetail) -> Self {
        let key = d.client.public_key.as_deref();
        let thumbprint =
            key.and_then(|k| crate::domain::client_key::ClientPublicKey::parse(k).ok()).and_then(|k| k.thumbprint());
        ClientDetailView {
            client: ClientView::from(&d.client),
            public_key: d.client.public_key.clone(),
            public_key_thumbprint: thumbprint,
            long_tokens: TokenCounts { live: d.live, rotating: d.rotating, suspended: d.suspended },
        }
    }
}

/// A client to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    /// A label for people (1-100 characters).
    pub name: String,
    /// The scopes the client may grant (at least one).
    pub scopes: Vec<String>,
    /// Also enrol a TOTP authenticator.
    #[serde(default)]
    pub otp: bool,
    /// A public key for assertions: PEM SubjectPublicKeyInfo (Ed25519, P-256, RSA) or a JWK.
    #[serde(default)]
    pub public_key: Option<String>,
}

/// A registered client and its secrets, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedClientView {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_uri: Option<String>,
    /// The `otp_uri` as a QR code (SVG), for an authenticator app to scan.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_qr_svg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_key_alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_key_thumbprint: Option<String>,
}

impl CreatedClientView {
    /// The view of a client just registered, without the QR code (the console adds it).
    pub fn of(c: &CreatedClient, public_key_thumbprint: Option<String>) -> Self {
        CreatedClientView {
            client_id: c.client_id.to_string(),
            client_secret: c.client_secret.expose().to_owned(),
            name: c.name.clone(),
            scopes: c.scopes.to_vec(),
            otp_secret: c.otp_secret.as_ref().map(|s| s.expose_secret().to_owned()),
            otp_uri: c.otp_uri.as_ref().map(|u| u.expose_secret().to_owned()),
            otp_qr_svg: None,
            public_key_alg: c.public_key_alg.map(str::to_owned),
            public_key_thumbprint: c.public_key_alg.and(public_key_thumbprint),
        }
    }
}

/// A client disabled or enabled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientStateView {
    pub client_id: String,
    pub disabled: bool,
    /// On enabling: the long-term tokens held while disabled that were revoked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revoked_tokens: Option<u64>,
}

/// Enabling a client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    /// Let the long-term tokens issued before it was disabled work again.
    #[serde(default)]
    pub revive_tokens: bool,
}

/// Rotating a client's secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Seconds the old secret keeps working (0 to 2592000; default 0).
    #[serde(default)]
    pub overlap_secs: i64,
}

/// A client's new secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecretView {
    pub client_id: String,
    pub client_secret: String,
    pub previous_secret_valid_until: Option<String>,
}

/// A client's failed-authentication locks lifted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnlockedView {
    pub client_id: String,
    pub unlocked: bool,
}

/// Resetting a client's OTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOtpRequest {
    /// Remove the client's OTP instead of enrolling a new seed.
    #[serde(default)]
    pub remove: bool,
}

/// A client's OTP after a reset: the new seed, shown this once, or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OtpView {
    pub client_id: String,
    pub otp: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub otp_qr_svg: Option<String>,
}

impl OtpView {
    /// A client's OTP after a reset, without the QR code (the console adds it).
    pub fn of(client_id: &crate::domain::ClientId, enrolment: Option<&OtpEnrolment>) -> Self {
        OtpView {
            client_id: client_id.to_string(),
            otp: enrolment.is_some(),
            otp_secret: enrolment.map(|e| e.otp_secret.expose_secret().to_owned()),
            otp_uri: enrolment.map(|e| e.otp_uri.expose_secret().to_owned()),
            otp_qr_svg: None,
        }
    }
}

/// Registering a client's public key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyRequest {
    /// PEM SubjectPublicKeyInfo (Ed25519, P-256, RSA) or a JWK.
    pub public_key: String,
    /// Replace the client's current key.
    #[serde(default)]
    pub replace: bool,
}

/// A client's registered public key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyView {
    pub client_id: String,
    pub public_key_alg: String,
    pub public_key_thumbprint: Option<String>,
    pub replaced: bool,
}

/// A long-term token, never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub token_id: String,
    pub client_id: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub issued_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub origin: Option<String>,
    /// `live`, `rotating`, `disabled`, `revoked` or `expired`.
    pub status: String,
}

impl TokenView {
    pub fn of(t: &LongToken, now: i64) -> Self {
        TokenView {
            token_id: t.id.to_string(),
            client_id: t.client_id.to_string(),
            name: t.name.clone(),
            scopes: t.scopes.to_vec(),
            issued_at: rfc3339(t.issued_at),
            expires_at: rfc3339(t.expires_at),
            revoked_at: time(t.revoked_at),
            last_used_at: time(t.last_used_at),
            origin: t.origin.encode(),
            status: t.status(now).as_str().to_owned(),
        }
    }
}

/// What revoking a long-term token would also end.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CascadeView {
    pub token_id: String,
    pub client_id: String,
    pub status: String,
    /// The valid long-term tokens below it in its lineage, revoked with it (and every
    /// short-term token minted from any of them).
    pub descendants: Vec<String>,
}

impl CascadeView {
    pub fn of(c: &Cascade, now: i64) -> Self {
        CascadeView {
            token_id: c.token.id.to_string(),
            client_id: c.token.client_id.to_string(),
            status: c.token.status(now).as_str().to_owned(),
            descendants: c.descendants.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A revocation's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    pub token_id: String,
    /// `long` or `short`.
    pub token_type: String,
    pub client_id: Option<String>,
    /// `revoked`, `already_revoked` or `already_expired`.
    pub outcome: String,
    /// The long-term tokens below it whose end this brought forward.
    pub cascade: usize,
}

impl From<&Revocation> for RevocationView {
    fn from(r: &Revocation) -> Self {
        let outcome = match r.outcome {
            RevokeOutcome::Revoked => "revoked",
            RevokeOutcome::AlreadyRevoked => "already_revoked",
            RevokeOutcome::AlreadyExpired => "already_expired",
        };
        RevocationView {
            token_id: r.token_id.clone(),
            token_type: if r.kind == TokenKind::Long { "long" } else { "short" }.into(),
            client_id: r.client_id.as_ref().map(ToString::to_string),
            outcome: outcome.into(),
            cascade: r.cascade,
        }
    }
}

/// A signing key, never its private part.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// `pending`, `active`, `retiring` or `retired`.
    pub state: String,
    pub created_at: String,
    pub activates_at: String,
    pub retired_at: Option<String>,
}

impl KeyView {
    pub fn of(k: &KeyInfo, now: i64, short_ttl_max_secs: i64) -> Self {
        KeyView {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.times.state(now, short_ttl_max_secs).as_str().to_owned(),
            created_at: rfc3339(k.times.created_at),
            activates_at: rfc3339(k.times.activates_at),
            retired_at: time(k.times.retired_at),
        }
    }
}

/// Rotating a signing key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// `EdDSA` or `ES256` (default: the algorithm of the newest signing key).
    #[serde(default)]
    pub alg: Option<String>,
    /// Seconds before the new key signs, while verifiers fetch it (default 600; 0 to 86400).
    #[serde(default)]
    pub publish_delay_secs: Option<i64>,
}

/// One event of the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    /// RFC 3339, to the millisecond.
    pub at: String,
    pub event: String,
    pub outcome: String,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    pub source: Option<String>,
    pub mechanism: Option<String>,
    pub reason: Option<String>,
    /// Further non-secret facts (a JSON object), if any.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<&AuditRecord> for AuditEventView {
    fn from(r: &AuditRecord) -> Self {
        let e = &r.event;
        AuditEventView {
            id: r.id,
            at: crate::clock::rfc3339_millis(e.at),
            event: e.event.clone(),
            outcome: e.outcome.clone(),
            client_id: e.client_id.clone(),
            token_id: e.token_id.clone(),
            source: e.source.clone(),
            mechanism: e.mechanism.clone(),
            reason: e.reason.clone(),
            detail: e.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPageView {
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next, older page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Issuance and failed authentications in one hour.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BucketView {
    pub start: String,
    pub long_issued: u64,
    pub short_issued: u64,
    pub auth_failed: u64,
}

impl From<&Bucket> for BucketView {
    fn from(b: &Bucket) -> Self {
        BucketView {
            start: rfc3339(b.start),
            long_issued: b.long_issued,
            short_issued: b.short_issued,
            auth_failed: b.auth_failed,
        }
    }
}

/// The dashboard: activity per hour, and the valid tokens that end within a week.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsView {
    pub bucket_secs: i64,
    pub buckets: Vec<BucketView>,
    pub expiring_soon: Vec<TokenView>,
}

/// The console's sign-in: a client's secret and a one-time code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub client_id: String,
    pub client_secret: String,
    pub otp: String,
}

/// An admin token for the console, kept in the page's memory.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    pub expires_at: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// A trusted external issuer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuerView {
    pub name: String,
    pub issuer: String,
    /// Where its keys come from: a JWKS URL, OIDC discovery, or keys given inline.
    pub keys: String,
    /// The URL its JWK Set is fetched from, if that is where its keys come from.
    pub jwks_uri: Option<String>,
    /// Whether its keys are found through OIDC discovery.
    pub discovery: bool,
    /// Its JWK Set (public keys), if it was given inline.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub created_at: String,
}

/// An issuer no longer trusted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemovedIssuerView {
    pub name: String,
    pub removed: bool,
    /// The federation rules that named it, removed with it.
    pub rules_removed: usize,
}

/// A federation rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FederationRuleView {
    pub rule_id: String,
    pub client_id: String,
    pub issuer: String,
    pub audience: String,
    /// `claim=pattern` conditions, all of which must hold.
    pub matches: Vec<String>,
    pub max_ttl_days: i64,
    pub scopes: Option<Vec<String>>,
}

/// A federation rule removed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemovedRuleView {
    pub rule_id: String,
    pub client_id: String,
    pub removed: bool,
}

/// A webhook receiver, never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
}

/// A webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub message_id: String,
    pub webhook_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The message sent: Standard Webhooks' `{type, timestamp, data}`.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

impl From<&crate::domain::federation::issuer::TrustedIssuer> for IssuerView {
    fn from(i: &crate::domain::federation::issuer::TrustedIssuer) -> Self {
        use crate::domain::federation::issuer::IssuerKeys;
        let (keys, jwks_uri, jwks) = match &i.keys {
            IssuerKeys::JwksUri(uri) => (format!("jwks_uri {uri}"), Some(uri.clone()), None),
            IssuerKeys::Discovery => ("OIDC discovery".to_owned(), None, None),
            IssuerKeys::Jwks(set) => ("a JWK Set given inline".to_owned(), None, serde_json::from_str(set).ok()),
        };
        IssuerView {
            name: i.name.as_str().to_owned(),
            issuer: i.issuer.clone(),
            keys,
            jwks_uri,
            discovery: matches!(i.keys, IssuerKeys::Discovery),
            jwks,
            created_at: rfc3339(i.created_at),
        }
    }
}

impl From<&crate::domain::federation::matching::FederationRule> for FederationRuleView {
    fn from(r: &crate::domain::federation::matching::FederationRule) -> Self {
        FederationRuleView {
            rule_id: r.id.clone(),
            client_id: r.client_id.to_string(),
            issuer: r.issuer.clone(),
            audience: r.audience.clone(),
            matches: r.matches.iter().map(|m| format!("{}={}", m.path, m.pattern.as_str())).collect(),
            max_ttl_days: r.max_ttl_days,
            scopes: r.scopes.as_ref().map(crate::domain::Scopes::to_vec),
        }
    }
}

impl From<&crate::domain::federation::matching::FederationRule> for RemovedRuleView {
    fn from(r: &crate::domain::federation::matching::FederationRule) -> Self {
        RemovedRuleView { rule_id: r.id.clone(), client_id: r.client_id.to_string(), removed: true }
    }
}

impl From<&crate::domain::webhook::Webhook> for WebhookView {
    fn from(w: &crate::domain::webhook::Webhook) -> Self {
        WebhookView {
            webhook_id: w.id.as_str().to_owned(),
            url: w.url.clone(),
            events: w.events.iter().map(|t| t.as_str().to_owned()).collect(),
            created_at: rfc3339(w.created_at),
        }
    }
}

impl From<&crate::domain::webhook::Delivery> for DeliveryView {
    fn from(d: &crate::domain::webhook::Delivery) -> Self {
        let ms = |t: i64| rfc3339(t.div_euclid(1000));
        let pending = d.status == crate::domain::webhook::DeliveryStatus::Pending;
        DeliveryView {
            message_id: d.message_id.as_str().to_owned(),
            webhook_id: d.webhook_id.as_str().to_owned(),
            event_type: d.event_type.clone(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            next_attempt_at: pending.then(|| ms(d.next_attempt_at)),
            created_at: ms(d.created_at),
            finished_at: d.finished_at.map(ms),
            payload: serde_json::from_str(&d.payload).ok(),
        }
    }
}

/// An issuer to trust: the exact `iss` of its tokens, and one source of keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssuerRequest {
    /// A short name for the operator (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The exact `iss` of its tokens: HTTPS (HTTP only on a loopback address).
    pub issuer: String,
    /// Its keys from this JWK Set URL…
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// …or found through OIDC discovery…
    #[serde(default)]
    pub discovery: bool,
    /// …or this JWK Set, given now.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

/// A federation rule to add.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleRequest {
    pub client_id: String,
    /// A trusted issuer's name.
    pub issuer: String,
    /// The audience its tokens must carry.
    pub audience: String,
    /// `CLAIM=VALUE` conditions (at least one), all of which must hold; `*` matches any run of characters.
    pub matches: Vec<String>,
    /// The longest lifetime a token issued through the rule may have (1-90, default 1).
    #[serde(default)]
    pub max_ttl_days: Option<i64>,
    /// The scopes it may grant (a subset of the client's; default: the client's).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A webhook receiver to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookRequest {
    /// HTTPS (HTTP only on a loopback address).
    pub url: String,
    /// The event types it receives, or `["all"]`.
    pub events: Vec<String>,
}

/// A receiver just registered, with its signing secret: in this answer only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddedWebhookView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: give it to the receiver, which verifies every delivery with it.
    pub secret: String,
}

/// A receiver removed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemovedWebhookView {
    pub webhook_id: String,
    pub removed: bool,
}

/// Scheduling a message's failed deliveries again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// Only to this receiver (default: every receiver it failed for).
    #[serde(default)]
    pub webhook_id: Option<String>,
}

/// Failed deliveries scheduled again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedeliveredView {
    pub message_id: String,
    pub deliveries: u64,
}
