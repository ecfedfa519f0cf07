//! The `assertion` grant with an external identity token: a JWT whose `iss` is a trusted
//! issuer (not a client), verified against that issuer's keys, matched to exactly one client's
//! federation rule, single-use by its `jti` when it has one. The rule caps the token it gets.

use super::grant_assertion::{ASSERTION_REFUSED, MAX_ASSERTION_LEN};
use super::grants::Granted;
use super::{AuthFail, TokenService};
use crate::domain::client_key;
use crate::domain::error::DomainError;
use crate::domain::federation::issuer::is_issuer_url;
use crate::domain::federation::verify::{self, SKEW_SECS};
use crate::domain::federation::{ExternalIdentity, FederationRule, TrustedIssuer, choose};
use crate::domain::token::TokenOrigin;
use crate::domain::types::ClientId;

const MAX_JTI_LEN: usize = 256;

/// Every failure of an external token gets the client assertions' one answer; the reason goes
/// to the audit trail only. It counts against the address alone, never a client: a client's
/// lock must not be reachable by replaying or forging tokens in its name.
fn refused(reason: &'static str) -> AuthFail {
    AuthFail::new(DomainError::InvalidGrant(ASSERTION_REFUSED.into()), None, reason)
}

impl TokenService {
    /// The trusted issuer whose exact `iss` the (unverified) token names, if any. tokensmith's
    /// own tokens are never external identities, even if an operator trusted its issuer: a
    /// token minted with one guessable factor would otherwise come back as an identity that
    /// may hold more (admin scopes) and outside its lineage.
    pub(super) async fn trusted_issuer_of(&self, iss: &str) -> Result<Option<TrustedIssuer>, AuthFail> {
        if self.is_own_audience(iss) {
            return Err(refused("own_issuer"));
        }
        Ok(self.store.list_issuers().await?.into_iter().find(|i| i.issuer == iss))
    }

    /// An external identity token presented on its own (a token exchange): its `iss` must be a
    /// trusted issuer's.
    pub(super) async fn grant_external(
        &self,
        token: &str,
        client_key: Option<ClientId>,
        now: i64,
    ) -> Result<Granted, AuthFail> {
        let iss = client_key::claimed_issuer(token).filter(|iss| is_issuer_url(iss));
        let Some(iss) = iss else { return Err(refused("issuer_unknown")) };
        match self.trusted_issuer_of(&iss).await? {
            Some(issuer) => self.grant_federation(token, issuer, client_key, now).await,
            None => Err(refused("issuer_unknown")),
        }
    }

    pub(super) async fn grant_federation(
        &self,
        token: &str,
        issuer: TrustedIssuer,
        client_key: Option<ClientId>,
        now: i64,
    ) -> Result<Granted, AuthFail> {
        if token.len() > MAX_ASSERTION_LEN {
            return Err(refused("assertion_malformed"));
        }
        let kid = verify::header_kid(token);
        let keys = self
            .issuer_keys
            .keys(&issuer, kid.as_deref(), now)
            .await
            .map_err(|_| refused("issuer_keys_unavailable"))?;
        let identity =
            verify::verify(token, &issuer.issuer, &keys, now, self.config.federation_max_token_lifetime_secs)
                .map_err(|r| refused(r.as_str()))?;
        let rules = self.store.list_federation_rules(None).await?;
        let rule = choose(&rules, issuer.name.as_str(), &identity.claims).map_err(|_| refused("no_single_rule"))?;
        let client = self.store.get_client(&rule.client_id).await?.filter(|c| !c.disabled);
        let Some(client) = client else {
            return Err(refused("client_disabled"));
        };
        // As with a client's own assertion (only the holder of a valid token gets this far).
        if client_key.is_some_and(|k| k != client.id) {
            let err = DomainError::InvalidRequest("X-Client-Key does not name the assertion's client".into());
            return Err(AuthFail::new(err, None, "client_key_mismatch"));
        }
        self.consume_external_jti(&issuer, &identity, &client.id).await?;
        let scopes = rule.scopes.as_ref().map_or(client.scopes.clone(), |s| s.intersection(&client.scopes));
        let mut granted = Granted::root(client.id, scopes);
        granted.unguessable = true;
        granted.origin = TokenOrigin::Federation(rule.id.clone());
        granted.ttl_cap_days = u32::try_from(rule.max_ttl_days).ok();
        granted.audit_detail = Some(audit_detail(&issuer, rule, &identity));
        Ok(granted)
    }

    /// A `jti` is single-use, across instances, kept past the token's `exp` by the skew; one
    /// the database cannot hold is refused.
    async fn consume_external_jti(
        &self,
        issuer: &TrustedIssuer,
        identity: &ExternalIdentity,
        client: &ClientId,
    ) -> Result<(), AuthFail> {
        let Some(jti) = &identity.jti else { return Ok(()) };
        if jti.is_empty() || jti.len() > MAX_JTI_LEN || jti.chars().any(char::is_control) {
            return Err(refused("assertion_malformed"));
        }
        let key = format!("{}:{jti}", issuer.name.as_str());
        if !self.store.consume_assertion_jti(client, &key, identity.exp + SKEW_SECS).await? {
            return Err(refused("assertion_replay"));
        }
        Ok(())
    }
}

/// What the audit event of the issuance names: the issuer, the rule, the external `sub` and
/// `jti` (never the token).
fn audit_detail(issuer: &TrustedIssuer, rule: &FederationRule, identity: &ExternalIdentity) -> serde_json::Value {
    serde_json::json!({
        "federation": {
            "issuer": issuer.name.as_str(),
            "rule": rule.id,
            "sub": identity.sub,
            "jti": identity.jti,
        }
    })
}
