//! Authenticating the bearer of a request (revocation, introspection) and what a short-term
//! token's audience lets it do here.

use std::net::IpAddr;

use secrecy::ExposeSecret;

use super::api::{Bearer, BearerUse, Caller};
use super::{AuthFail, TokenService};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::types::{ClientId, Mechanism};

/// The token of a presented `Authorization` header, or the failed authentication its absence
/// or malformation is.
pub(super) fn presented(bearer: &Bearer) -> Result<&str, AuthFail> {
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

/// A short-term token minted for another service, presented here as a credential.
pub(super) fn foreign_audience(client: &ClientId) -> AuthFail {
    AuthFail::new(
        DomainError::InvalidToken("token was issued for another audience".into()),
        Some(client.clone()),
        "foreign_audience",
    )
}

impl TokenService {
    /// Authenticates the bearer token of a request, of either kind; a failure is counted
    /// against the address and recorded in the audit trail.
    pub async fn authenticate(&self, bearer: Bearer, addr: IpAddr, purpose: BearerUse<'_>) -> DomainResult<Caller> {
        let now = self.now();
        let (checked, mechanism) = match presented(&bearer) {
            Ok(token) => self.check_token(token, now).await,
            Err(fail) => (Err(fail), Mechanism::Bearer),
        };
        match checked.and_then(|caller| self.check_audience(caller, purpose)) {
            Ok(c) => {
                match &c {
                    Caller::Long(t) => self.last_use.token(t.id, &t.client_id, now.secs()),
                    Caller::Short { client_id, .. } => self.last_use.client(client_id, now.secs()),
                }
                Ok(c)
            }
            Err(fail) => Err(self.on_failure(fail, mechanism, None, addr, now.ms(), false).await),
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
    pub(super) fn is_own_audience(&self, aud: &str) -> bool {
        let issuer = self.config.bare_issuer();
        aud == issuer || aud.strip_suffix('/') == Some(issuer)
    }
}
