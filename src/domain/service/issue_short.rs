//! issueShortTermToken: a long-term bearer token is exchanged for a short-lived JWT, with at
//! most its scopes, ending no later than it does.

use std::net::IpAddr;

use super::TokenService;
use super::api::{Bearer, IssuedShort, ShortTokenParams};
use super::bearer::presented;
use super::failures::failure_keys;
use crate::clock::Now;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::token::LongToken;
use crate::domain::types::{Mechanism, Scopes, ShortTokenId};
use crate::signer::NewShortClaims;
use crate::telemetry::metrics as telemetry;

const MIN_SHORT_TTL_SECS: i64 = 60;

impl TokenService {
    /// Exchanges a long-term bearer token for a short-term JWT.
    pub async fn issue_short(
        &self,
        bearer: Bearer,
        params: ShortTokenParams,
        addr: IpAddr,
    ) -> DomainResult<IssuedShort> {
        let now = self.now();
        let ttl = self.short_ttl(params.ttl_seconds)?;
        // A bearer token cannot be guessed: only its address's limit applies, never its client's.
        self.check_limits(&failure_keys(Mechanism::LongToken, None, addr), now.ms())?;
        let verified = match presented(&bearer) {
            Ok(token) => self.verify_long(token, now).await,
            Err(fail) => Err(fail),
        };
        let parent = match verified {
            Ok(p) => p,
            Err(fail) => return Err(self.on_failure(fail, Mechanism::LongToken, None, addr, now.ms(), true).await),
        };
        self.check_issuance(&parent.client_id)?;
        let scopes = within_parent(params.scopes, &parent)?;
        // Never outlive the parent: a short-term token ends when its long-term token does.
        let expires_at = (now.secs() + ttl).min(parent.valid_until());
        let id = ShortTokenId::generate(&self.keyring, parent.id, expires_at);
        let audience = params.audience.as_ref().map_or(self.config.default_audience.as_str(), |a| a.as_str());
        let jwt = self.sign_short(&parent, &id, &scopes, audience, now)?;
        telemetry::short_token_issued();
        self.last_use.token(parent.id, &parent.client_id, now.secs());
        self.record_short_issued(&parent, &id, addr, now).await?;
        Ok(IssuedShort {
            expires_at: id.expires_at,
            id,
            jwt,
            client_id: parent.client_id.clone(),
            scopes,
            issued_at: now.secs(),
        })
    }

    pub(super) fn short_ttl(&self, requested: Option<i64>) -> DomainResult<i64> {
        let max = i64::from(self.config.short_ttl_max_secs);
        match requested {
            None => Ok(i64::from(self.config.short_ttl_default_secs).min(max)),
            Some(t) if (MIN_SHORT_TTL_SECS..=max).contains(&t) => Ok(t),
            Some(_) => {
                Err(DomainError::InvalidRequest(format!("ttl_seconds must be between {MIN_SHORT_TTL_SECS} and {max}")))
            }
        }
    }

    pub(super) fn sign_short(
        &self,
        parent: &LongToken,
        id: &ShortTokenId,
        scopes: &[String],
        audience: &str,
        now: Now,
    ) -> DomainResult<String> {
        let (client_id, scope) = (parent.client_id.as_str(), scopes.join(" "));
        let claims = NewShortClaims {
            iss: &self.config.issuer,
            sub: client_id,
            client_id,
            aud: audience,
            iat: now.secs(),
            exp: id.expires_at,
            jti: id.as_str(),
            scope: &scope,
        };
        self.key_set(now.secs()).sign(&claims).ok_or_else(|| DomainError::Internal("signing failed".into()))
    }

    /// One audit event per issuance when `audit_short_tokens` is set; otherwise a count per
    /// client, recorded at each cleanup pass (`flush_short_counts`).
    async fn record_short_issued(
        &self,
        parent: &LongToken,
        id: &ShortTokenId,
        addr: IpAddr,
        now: Now,
    ) -> DomainResult<()> {
        if !self.config.audit_short_tokens {
            self.short_issued.add(&parent.client_id);
            return Ok(());
        }
        let ev = audit::new(now.ms(), event::SHORT_TOKEN_ISSUED, audit::SUCCESS)
            .client(&parent.client_id)
            .token(id)
            .addr(addr)
            .mechanism(Mechanism::LongToken.as_str())
            .detail(serde_json::json!({ "parent_token_id": parent.id.to_string() }));
        Ok(self.store.record_audit(vec![ev]).await?)
    }
}

/// The requested scopes (or all the parent's), sorted; never more than the parent holds.
fn within_parent(requested: Option<Scopes>, parent: &LongToken) -> DomainResult<Vec<String>> {
    match requested {
        Some(s) if !s.is_subset(&parent.scopes) => Err(DomainError::InvalidScope(format!(
            "scopes must be a subset of the long-term token's scopes ({})",
            parent.scopes.to_space_separated()
        ))),
        Some(s) => Ok(s.to_vec()),
        None => Ok(parent.scopes.to_vec()),
    }
}
