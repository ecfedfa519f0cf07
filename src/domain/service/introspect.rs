//! Introspection (RFC 7662): whether a token is active, and what it holds. Any caller with
//! `tokens:introspect` may ask about any token — a resource server checks tokens of every
//! client.

use super::TokenService;
use super::api::{Caller, TokenInfo, TokenKind};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::types::TOKENS_INTROSPECT;

impl TokenService {
    /// Reports whether `token` is active; `None` when it is not (or is no token at all).
    pub async fn introspect(&self, caller: &Caller, token: &str) -> DomainResult<Option<TokenInfo>> {
        if !caller.scopes().contains(TOKENS_INTROSPECT) {
            return Err(DomainError::InsufficientScope(format!(
                "introspection requires the {TOKENS_INTROSPECT} scope"
            )));
        }
        match self.check_token(token, self.now()).await.0.map_err(|f| f.err) {
            Ok(caller) => Ok(Some(info(caller))),
            Err(DomainError::Store(e)) => Err(DomainError::Store(e)),
            Err(_) => Ok(None),
        }
    }
}

fn info(active: Caller) -> TokenInfo {
    match active {
        Caller::Long(t) => TokenInfo {
            token_id: t.id.to_string(),
            kind: TokenKind::Long,
            client_id: t.client_id.clone(),
            scopes: t.scopes.clone(),
            issued_at: t.issued_at,
            // A rotation's grace period ends the token early: report when it really stops.
            expires_at: t.valid_until(),
            audience: None,
        },
        Caller::Short { id, client_id, scopes, claims } => TokenInfo {
            token_id: id.to_string(),
            kind: TokenKind::Short,
            client_id,
            scopes,
            issued_at: claims.iat,
            expires_at: claims.exp,
            audience: Some(claims.aud.clone()),
        },
    }
}
