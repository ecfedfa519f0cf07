//! Token exchange (RFC 8693): an external identity token from a trusted issuer, straight to a
//! short-term token, with no long-term token handed out in between.
//!
//! Every short-term token hangs under a long-term token: its id names it, and it is valid only
//! while that token is live. An exchange stores one of its own, the *exchange grant*: a
//! long-term token whose secret is drawn at random and thrown away (so nothing can ever present
//! it), living exactly as long as the short-term token. Revocation, the cascade, a disabled
//! client and introspection then hold for exchanged tokens as for any other, by the same code.

use std::net::IpAddr;

use super::TokenService;
use super::api::{Credential, ExchangeParams, IssuedShort};
use super::grants::Granted;
use crate::clock::Now;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::token::{LongToken, NewLongToken, TokenOrigin};
use crate::domain::types::{LONG_TOKEN_PREFIX, LongTokenId, Mechanism, OpaqueSecret, Scopes, ShortTokenId};
use crate::store::AuditEvent;
use crate::telemetry::metrics as telemetry;

/// The name an exchange grant is listed under.
pub const EXCHANGE_GRANT_NAME: &str = "token exchange";

impl TokenService {
    /// Exchanges an external identity token for a short-term JWT.
    pub async fn exchange(&self, params: ExchangeParams, addr: IpAddr) -> DomainResult<IssuedShort> {
        let now = self.now();
        let ttl = self.short_ttl(None)?;
        let credential = Credential::External { token: params.subject_token, client_key: params.client_key };
        let granted = self.authenticate_credential(credential, addr, now).await?;
        let scopes = within_granted(params.scopes, &granted.scopes)?;
        let TokenOrigin::Federation(rule) = &granted.origin else {
            return Err(DomainError::Internal("an exchange authenticated something other than a rule".into()));
        };
        let grant = NewLongToken {
            id: LongTokenId::generate(),
            client_id: granted.client_id.clone(),
            token_hash: self.keyring.keyed_hash(OpaqueSecret::generate(LONG_TOKEN_PREFIX).expose().as_bytes()),
            scopes,
            name: Some(EXCHANGE_GRANT_NAME.to_owned()),
            issued_at: now.secs(),
            expires_at: now.secs() + ttl,
            parent: None,
            origin: TokenOrigin::Exchange(rule.clone()),
        };
        let id = ShortTokenId::generate(&self.keyring, grant.id, grant.expires_at);
        self.insert_long(&grant, None, exchanged_event(&grant, &id, granted, addr, now)).await?;
        let grant = stored(grant);
        let audience = params.audience.as_ref().map_or(self.config.default_audience.as_str(), |a| a.as_str());
        let scopes = grant.scopes.to_vec();
        let jwt = self.sign_short(&grant, &id, &scopes, audience, now)?;
        telemetry::short_token_issued();
        tracing::info!(client_id = %grant.client_id, token_id = %id, grant_id = %grant.id, "token exchanged");
        Ok(IssuedShort {
            expires_at: id.expires_at,
            id,
            jwt,
            client_id: grant.client_id,
            scopes,
            issued_at: now.secs(),
        })
    }
}

/// The requested scopes (or all the rule grants); never more.
fn within_granted(requested: Option<Scopes>, granted: &Scopes) -> DomainResult<Scopes> {
    match requested {
        Some(s) if !s.is_subset(granted) => Err(DomainError::InvalidScope(format!(
            "scope must be a subset of what the federation rule grants ({})",
            granted.to_space_separated()
        ))),
        Some(s) => Ok(s),
        None => Ok(granted.clone()),
    }
}

/// The exchange grant as the store now holds it.
fn stored(new: NewLongToken) -> LongToken {
    LongToken {
        id: new.id,
        client_id: new.client_id,
        scopes: new.scopes,
        name: new.name,
        issued_at: new.issued_at,
        expires_at: new.expires_at,
        revoked_at: None,
        parent: None,
        origin: new.origin,
        last_used_at: None,
        client_disabled: false,
    }
}

/// One audit event per exchange, always: the short-term token, its grant, and the external
/// identity (issuer, rule, `sub`, `jti`; never the token).
fn exchanged_event(grant: &NewLongToken, id: &ShortTokenId, granted: Granted, addr: IpAddr, now: Now) -> AuditEvent {
    let mut detail = match granted.audit_detail {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    detail.insert("grant_token_id".into(), grant.id.to_string().into());
    detail.insert("expires_at".into(), grant.expires_at.into());
    audit::new(now.ms(), event::TOKEN_EXCHANGED, audit::SUCCESS)
        .client(&grant.client_id)
        .token(id)
        .addr(addr)
        .mechanism(Mechanism::TokenExchange.as_str())
        .detail(serde_json::Value::Object(detail))
}
