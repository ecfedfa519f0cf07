//! Row types shared by the SQL stores: the same columns, decoded by sqlx for either
//! database, and checked once when they become records.

use sqlx::FromRow;
use uuid::Uuid;

use super::{
    AuditEvent, AuditRecord, Client, FederationRule, IssuerName, LongToken, SigningKeyRecord, StoreError, TrustedIssuer,
};
use crate::domain::federation::{ClaimMatch, IssuerKeys};
use crate::domain::token::TokenOrigin;
use crate::domain::webhook::{Delivery, DeliveryStatus, EventType, MessageId, Webhook, WebhookId};
use crate::domain::{ClientId, LongTokenId, Scopes};

#[derive(FromRow)]
pub(super) struct ClientRow {
    id: String,
    name: String,
    scopes: String,
    secret_hash: Vec<u8>,
    previous_secret_hash: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    otp_seed_sealed: Option<Vec<u8>>,
    otp_last_step: i64,
    public_key: Option<String>,
    public_key_alg: Option<String>,
    disabled: bool,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Client {
            id: ClientId::parse(&r.id)
                .ok_or_else(|| StoreError::Backend(format!("bad client id in database: {:?}", r.id)))?,
            name: r.name,
            scopes: Scopes::from_space_separated(&r.scopes).map_err(StoreError::Backend)?,
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at,
            otp_seed_sealed: r.otp_seed_sealed,
            otp_last_step: r.otp_last_step,
            public_key: r.public_key,
            public_key_alg: r.public_key_alg,
            disabled: r.disabled,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct LongTokenRow {
    id: String,
    client_id: String,
    scopes: String,
    name: Option<String>,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    parent_id: Option<String>,
    origin: Option<String>,
    last_used_at: Option<i64>,
    client_disabled: bool,
}

impl TryFrom<LongTokenRow> for LongToken {
    type Error = StoreError;
    fn try_from(r: LongTokenRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("bad {what} in database"));
        Ok(LongToken {
            id: long_id(&r.id).ok_or_else(|| bad("token id"))?,
            client_id: ClientId::parse(&r.client_id).ok_or_else(|| bad("client id"))?,
            scopes: Scopes::from_space_separated(&r.scopes).map_err(StoreError::Backend)?,
            name: r.name,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            parent: r.parent_id.as_deref().map(|p| long_id(p).ok_or_else(|| bad("parent token id"))).transpose()?,
            origin: TokenOrigin::decode(r.origin.as_deref()).ok_or_else(|| bad("token origin"))?,
            last_used_at: r.last_used_at,
            client_disabled: r.client_disabled,
        })
    }
}

/// A long-term token id as stored (hyphenated UUID).
pub(super) fn long_id(s: &str) -> Option<LongTokenId> {
    Uuid::parse_str(s).ok().map(LongTokenId)
}

/// Long-term token ids as returned by a statement.
pub(super) fn long_ids(ids: &[String]) -> Result<Vec<LongTokenId>, StoreError> {
    ids.iter().map(|id| long_id(id).ok_or_else(|| StoreError::Backend("bad token id in database".into()))).collect()
}

#[derive(FromRow)]
pub(super) struct SigningKeyRow {
    kid: String,
    alg: String,
    key_sealed: Vec<u8>,
    created_at: i64,
    activates_at: i64,
    retired_at: Option<i64>,
}

impl From<SigningKeyRow> for SigningKeyRecord {
    fn from(r: SigningKeyRow) -> Self {
        SigningKeyRecord {
            kid: r.kid,
            alg: r.alg,
            key_sealed: r.key_sealed,
            created_at: r.created_at,
            activates_at: r.activates_at,
            retired_at: r.retired_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct AuditRow {
    id: i64,
    at: i64,
    event: String,
    outcome: String,
    client_id: Option<String>,
    token_id: Option<String>,
    source: Option<String>,
    mechanism: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            event: AuditEvent {
                at: r.at,
                event: r.event,
                outcome: r.outcome,
                client_id: r.client_id,
                token_id: r.token_id,
                source: r.source,
                mechanism: r.mechanism,
                reason: r.reason,
                detail: r.detail,
            },
        }
    }
}

#[derive(FromRow)]
pub(super) struct IssuerRow {
    name: String,
    issuer: String,
    jwks_uri: Option<String>,
    discovery: bool,
    jwks: Option<String>,
    created_at: i64,
}

impl TryFrom<IssuerRow> for TrustedIssuer {
    type Error = StoreError;
    fn try_from(r: IssuerRow) -> Result<Self, StoreError> {
        let keys = match (r.jwks_uri, r.discovery, r.jwks) {
            (Some(uri), false, None) => IssuerKeys::JwksUri(uri),
            (None, true, None) => IssuerKeys::Discovery,
            (None, false, Some(jwks)) => IssuerKeys::Jwks(jwks),
            _ => return Err(StoreError::Backend(format!("issuer {:?} has no single source of keys", r.name))),
        };
        Ok(TrustedIssuer {
            name: IssuerName::parse(&r.name).map_err(StoreError::Backend)?,
            issuer: r.issuer,
            keys,
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct RuleRow {
    id: String,
    client_id: String,
    issuer_name: String,
    audience: String,
    matches: String,
    max_ttl_days: i64,
    scopes: Option<String>,
}

impl TryFrom<RuleRow> for FederationRule {
    type Error = StoreError;
    fn try_from(r: RuleRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("federation rule {:?}: bad {what} in database", r.id));
        let pairs: Vec<(String, String)> = serde_json::from_str(&r.matches).map_err(|_| bad("conditions"))?;
        let matches = pairs
            .iter()
            .map(|(path, pattern)| ClaimMatch::parse(&format!("{path}={pattern}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("conditions"))?;
        let scopes = r.scopes.as_deref().map(Scopes::from_space_separated).transpose().map_err(|_| bad("scopes"))?;
        Ok(FederationRule {
            client_id: ClientId::parse(&r.client_id).ok_or_else(|| bad("client id"))?,
            id: r.id,
            issuer: r.issuer_name,
            audience: r.audience,
            matches,
            max_ttl_days: r.max_ttl_days,
            scopes,
        })
    }
}

#[derive(FromRow)]
pub(super) struct WebhookRow {
    id: String,
    url: String,
    secret_sealed: Vec<u8>,
    created_at: i64,
}

impl WebhookRow {
    /// The receiver, with the event types subscribed (`(webhook id, type)` rows of all receivers).
    pub(super) fn into_webhook(self, events: &[(String, String)]) -> Webhook {
        let mut types: Vec<EventType> =
            events.iter().filter(|(w, _)| *w == self.id).filter_map(|(_, t)| EventType::parse(t)).collect();
        types.sort();
        Webhook {
            id: WebhookId::from_stored(self.id),
            url: self.url,
            events: types,
            secret_sealed: self.secret_sealed,
            created_at: self.created_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct DeliveryRow {
    message_id: String,
    webhook_id: String,
    event_type: String,
    payload: String,
    created_at: i64,
    status: String,
    attempts: i32,
    next_attempt_at: i64,
    last_error: Option<String>,
    finished_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            message_id: MessageId::from_stored(r.message_id),
            webhook_id: WebhookId::from_stored(r.webhook_id),
            event_type: r.event_type,
            payload: r.payload,
            created_at: r.created_at,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Backend(format!("bad delivery status in database: {:?}", r.status)))?,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            finished_at: r.finished_at,
        })
    }
}
