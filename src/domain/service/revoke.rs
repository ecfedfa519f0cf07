//! revokeToken: a bearer revokes a token it may revoke — itself; a short-term token minted
//! from itself; with `tokens:write`, any token of its client. Every other id, whether it
//! exists or not, is answered `NotFound`, so existence is never revealed. The revocation itself
//! is `domain::revocation`'s, shared with the operator's `token revoke`.

use std::net::IpAddr;

use super::TokenService;
use super::api::{Caller, TokenKind};
use crate::clock::{self, Now};
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::revocation::{self, RevokeOutcome};
use crate::domain::types::{ClientId, LongTokenId, ShortTokenId, TOKENS_WRITE, TokenId};
use crate::store::AuditEvent;
use crate::telemetry::metrics as telemetry;

impl TokenService {
    /// Revokes `target` on behalf of `caller`. Idempotent.
    pub async fn revoke(&self, caller: &Caller, target: &str, addr: IpAddr) -> DomainResult<()> {
        let now = self.now();
        match TokenId::parse(&self.keyring, target).ok_or(DomainError::NotFound)? {
            TokenId::Long(id) => self.revoke_long(caller, id, addr, now).await,
            TokenId::Short(id) => self.revoke_short(caller, id, addr, now).await,
        }
    }

    async fn revoke_long(&self, caller: &Caller, id: LongTokenId, addr: IpAddr, now: Now) -> DomainResult<()> {
        let is_self = matches!(caller, Caller::Long(t) if t.id == id);
        let record = self.store.get_long_token(&id).await?.ok_or(DomainError::NotFound)?;
        if !(is_self || (may_write(caller) && record.client_id == *caller.client_id())) {
            return Err(DomainError::NotFound);
        }
        let ev = revoked_event(caller, &record.client_id, &id, TokenKind::Long, addr, now);
        let (outcome, ended) = revocation::revoke_long(self.store.as_ref(), &record, now.secs(), ev).await?;
        for id in &ended {
            self.long_tokens.remove(id);
        }
        if outcome == RevokeOutcome::Revoked {
            telemetry::token_revoked(TokenKind::Long);
            tracing::info!(client_id = %record.client_id, token_id = %id, "long-term token revoked");
        }
        Ok(())
    }

    async fn revoke_short(&self, caller: &Caller, id: ShortTokenId, addr: IpAddr, now: Now) -> DomainResult<()> {
        let allowed = match caller {
            Caller::Short { id: own, .. } if *own == id => true,
            Caller::Long(t) if t.id == id.parent => true,
            _ if may_write(caller) => {
                self.store.get_long_token(&id.parent).await?.is_some_and(|p| p.client_id == *caller.client_id())
            }
            _ => false,
        };
        if !allowed {
            return Err(DomainError::NotFound);
        }
        let ev = revoked_event(caller, caller.client_id(), &id, TokenKind::Short, addr, now);
        if revocation::revoke_short(self.store.as_ref(), &id, now.secs(), ev).await? == RevokeOutcome::Revoked {
            self.short_revoked.insert(id.to_string(), true, clock::millis(id.expires_at), now.ms());
            telemetry::token_revoked(TokenKind::Short);
            tracing::info!(client_id = %caller.client_id(), token_id = %id, "short-term token revoked");
        }
        Ok(())
    }
}

fn may_write(caller: &Caller) -> bool {
    caller.scopes().contains(TOKENS_WRITE)
}

fn revoked_event(
    caller: &Caller,
    client: &ClientId,
    token: &dyn std::fmt::Display,
    kind: TokenKind,
    addr: IpAddr,
    now: Now,
) -> AuditEvent {
    audit::new(now.ms(), event::TOKEN_REVOKED, audit::SUCCESS)
        .client(client)
        .token(token)
        .addr(addr)
        .mechanism(caller.mechanism().as_str())
        .detail(serde_json::json!({ "kind": kind.as_str(), "by_token_id": caller.token_id() }))
}
