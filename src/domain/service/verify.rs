//! Checking a presented token of either kind: a long-term token by its keyed hash, a
//! short-term JWT by its signature and claims, then (both) whether it is still live. Caches
//! sit in front of the store; each entry is kept at most `token_cache_ttl_ms`, or until the
//! token's expiry where the fact cannot change.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::api::Caller;
use super::{AuthFail, TokenService, expired_or_revoked};
use crate::clock::{self, Now};
use crate::domain::error::DomainError;
use crate::domain::token::LongToken;
use crate::domain::types::{ClientId, LONG_TOKEN_PREFIX, LongTokenId, Mechanism, OpaqueSecret, Scopes, ShortTokenId};
use crate::signer::ShortClaims;
use crate::store::StoreError;

/// A short-term JWT whose signature and claims have been checked.
#[derive(Debug, Clone)]
pub(super) struct VerifiedShort {
    pub id: ShortTokenId,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub claims: Arc<ShortClaims>,
}

impl From<VerifiedShort> for Caller {
    fn from(v: VerifiedShort) -> Self {
        Caller::Short { id: v.id, client_id: v.client_id, scopes: v.scopes, claims: v.claims }
    }
}

fn invalid_token(reason: &'static str) -> AuthFail {
    AuthFail::new(DomainError::InvalidToken("token is not valid".into()), None, reason)
}

impl TokenService {
    /// Checks a token of either kind, and names the kind it looked like.
    pub(super) async fn check_token(&self, token: &str, now: Now) -> (Result<Caller, AuthFail>, Mechanism) {
        if token.starts_with(LONG_TOKEN_PREFIX) {
            (self.verify_long(token, now).await.map(Caller::Long), Mechanism::LongToken)
        } else {
            (self.verify_short(token, now).await.map(Caller::from), Mechanism::ShortToken)
        }
    }

    /// A live long-term token.
    pub(super) async fn verify_long(&self, bearer: &str, now: Now) -> Result<Arc<LongToken>, AuthFail> {
        if !bearer.starts_with(LONG_TOKEN_PREFIX) {
            return Err(DomainError::InvalidToken("a long-term token is required".into()).into());
        }
        // The checksum rejects a mistyped or forged token before any lookup.
        let Some(token) = OpaqueSecret::parse(LONG_TOKEN_PREFIX, bearer) else {
            let err = DomainError::InvalidToken("token is malformed (checksum mismatch)".into());
            return Err(AuthFail::new(err, None, "token_malformed"));
        };
        let hash = self.keyring.keyed_hash(token.expose().as_bytes());
        let record = match self.token_ids.get(&hash, now.ms()) {
            Some(id) => self.long_token(&id, now.ms()).await?,
            None => {
                let r = self.store.find_long_token_by_hash(&hash).await?.map(Arc::new);
                if let Some(r) = &r {
                    self.token_ids.insert(hash, r.id, clock::millis(r.expires_at), now.ms());
                    self.remember_long(r, now.ms());
                }
                r
            }
        };
        match record {
            Some(t) if t.is_live(now.secs()) => Ok(t),
            Some(t) => Err(AuthFail::new(expired_or_revoked(), Some(t.client_id.clone()), "token_expired_or_revoked")),
            None => Err(invalid_token("token_unknown")),
        }
    }

    /// A live short-term token: signed, not revoked, its long-term token live. Revocation
    /// cascades this way: a short-term token is valid only while its parent is.
    pub(super) async fn verify_short(&self, jwt: &str, now: Now) -> Result<VerifiedShort, AuthFail> {
        let v = self.verify_jwt(jwt, now)?;
        let revoked = || AuthFail::new(expired_or_revoked(), Some(v.client_id.clone()), "token_expired_or_revoked");
        if v.claims.exp <= now.secs() || self.is_short_revoked(&v.id, now.ms()).await? {
            return Err(revoked());
        }
        match self.long_token(&v.id.parent, now.ms()).await? {
            Some(p) if p.is_live(now.secs()) && p.client_id == v.client_id => Ok(v),
            _ => Err(revoked()),
        }
    }

    /// Checks a short-term JWT's signature and claims (or finds it already checked).
    fn verify_jwt(&self, jwt: &str, now: Now) -> Result<VerifiedShort, AuthFail> {
        let invalid = |msg: &str| AuthFail::new(DomainError::InvalidToken(msg.into()), None, "token_invalid");
        let key: [u8; 32] = Sha256::digest(jwt.as_bytes()).into();
        if let Some(v) = self.verified.get(&key, now.ms()) {
            return Ok(v);
        }
        let claims = self.key_set(now.secs()).verify(jwt).map_err(|e| invalid(&e.to_string()))?;
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
        self.verified.insert(key, v.clone(), clock::millis(v.claims.exp), now.ms());
        Ok(v)
    }

    /// A long-term token's record, from the cache when fresh enough.
    async fn long_token(&self, id: &LongTokenId, now_ms: i64) -> Result<Option<Arc<LongToken>>, StoreError> {
        if let Some(r) = self.long_tokens.get(id, now_ms) {
            return Ok(Some(r));
        }
        let r = self.store.get_long_token(id).await?.map(Arc::new);
        if let Some(r) = &r {
            self.remember_long(r, now_ms);
        }
        Ok(r)
    }

    fn remember_long(&self, r: &Arc<LongToken>, now_ms: i64) {
        self.long_tokens.insert(r.id, Arc::clone(r), now_ms + self.config.token_cache_ttl_ms, now_ms);
    }

    async fn is_short_revoked(&self, id: &ShortTokenId, now_ms: i64) -> Result<bool, StoreError> {
        if let Some(r) = self.short_revoked.get(id.as_str(), now_ms) {
            return Ok(r);
        }
        let r = self.store.is_short_token_revoked(id).await?;
        // A revocation is final: remembered until the token expires anyway.
        let deadline = if r { clock::millis(id.expires_at) } else { now_ms + self.config.token_cache_ttl_ms };
        self.short_revoked.insert(id.to_string(), r, deadline, now_ms);
        Ok(r)
    }
}
