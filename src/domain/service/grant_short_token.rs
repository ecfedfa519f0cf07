//! The `short_token` grant: a short-term token holding `tokens:write`, minted for tokensmith
//! itself, mints a long-term token that becomes a child of the token behind it.

use super::api::Bearer;
use super::bearer::{foreign_audience, presented};
use super::grants::Granted;
use super::{AuthFail, TokenService};
use crate::clock::Now;
use crate::domain::error::DomainError;
use crate::domain::token::TokenOrigin;
use crate::domain::types::{ClientId, TOKENS_WRITE};

impl TokenService {
    pub(super) async fn grant_short_token(
        &self,
        token: &Bearer,
        client_key: Option<ClientId>,
        now: Now,
    ) -> Result<Granted, AuthFail> {
        let short = self.verify_short(presented(token)?, now).await?;
        if !self.is_own_audience(&short.claims.aud) {
            return Err(foreign_audience(&short.client_id));
        }
        if client_key.is_some_and(|k| k != short.client_id) {
            return Err(DomainError::InvalidRequest("X-Client-Key does not name the token's client".into()).into());
        }
        if !short.scopes.contains(TOKENS_WRITE) {
            return Err(DomainError::InsufficientScope(format!(
                "the short-term token must hold {TOKENS_WRITE} to mint long-term tokens"
            ))
            .into());
        }
        let client = self.store.get_client(&short.client_id).await?;
        let Some(client) = client.filter(|c| !c.disabled) else {
            return Err(AuthFail::new(
                DomainError::InvalidToken("token is not valid".into()),
                Some(short.client_id),
                "client_disabled",
            ));
        };
        Ok(Granted {
            client_id: client.id,
            scopes: short.scopes.intersection(&client.scopes),
            minted_by: Some(short.id.parent),
            ttl_cap_days: None,
            audit_detail: None,
            unguessable: true,
            // A child's origin is its parent's when that is not the client (`issue_long`).
            origin: TokenOrigin::Client,
        })
    }
}
