//! The `assertion` grant: a JWT signed with the client's own private key (RFC 7523 §3), with
//! the signature checked first so that no unauthenticated request can burn an assertion id.

use super::grants::Granted;
use super::{AuthFail, TokenService};
use crate::domain::client::Client;
use crate::domain::client_key::{self, AssertionClaims, ClientPublicKey};
use crate::domain::error::DomainError;
use crate::domain::federation::issuer::is_issuer_url;
use crate::domain::types::ClientId;

/// The one answer to an assertion that is not the client's: unknown or disabled client, no
/// key, a key of another type, a bad signature.
pub(super) const ASSERTION_REFUSED: &str = "assertion is not valid";
/// How far `iat`/`nbf` may be in the future, and how long a used `jti` outlives its `exp`,
/// for clock skew between instances.
const SKEW_SECS: i64 = 30;
/// The furthest ahead an assertion's `exp` may be (RFC 7523 §3: short-lived).
const ASSERTION_MAX_LIFETIME_SECS: i64 = 300;
/// The longest assertion read, a client's or an external identity token (a Kubernetes token
/// is 1 to 2 KiB).
pub(super) const MAX_ASSERTION_LEN: usize = 8192;
const MAX_JTI_LEN: usize = 256;

impl TokenService {
    pub(super) async fn grant_assertion(
        &self,
        assertion: &str,
        client_key: Option<ClientId>,
        now: i64,
    ) -> Result<Granted, AuthFail> {
        // An `iss` in the form of an issuer's URL may be a trusted issuer's: an external
        // identity token.
        // (Whatever its size or its other claims: every refusal of such a token is the one
        // answer.)
        if let Some(iss) = client_key::claimed_issuer(assertion).filter(|iss| is_issuer_url(iss))
            && let Some(issuer) = self.trusted_issuer_of(&iss).await?
        {
            return self.grant_federation(assertion, issuer, client_key, now).await;
        }
        let (client, claims) = self.signed_assertion(assertion).await?;
        // From here on the assertion is signed by the client's own key: its holder may learn
        // exactly what is wrong with it.
        let fail =
            |msg: String| AuthFail::new(DomainError::InvalidGrant(msg), Some(client.id.clone()), "assertion_invalid");
        let (exp, jti) = self.check_assertion_claims(&client.id, claims, now).map_err(fail)?;
        // Kept past its `exp` by the skew allowance, so that an instance whose clock is behind
        // (and so still accepts the assertion) finds it used.
        if !self.store.consume_assertion_jti(&client.id, &jti, exp + SKEW_SECS).await? {
            return Err(AuthFail {
                reason: "assertion_replay",
                ..fail("assertion was already used (jti replay)".into())
            });
        }
        Ok(Granted::root(client.id, client.scopes))
    }

    /// The client whose key signed `assertion`, and its claims. One answer, and the same work
    /// (a signature check), whether the client is unknown, disabled, has no key, has a key of
    /// another type, or the signature is a forgery: the answer never tells which clients
    /// exist or what keys they hold.
    async fn signed_assertion(&self, assertion: &str) -> Result<(Client, AssertionClaims), AuthFail> {
        let invalid = |msg: &str, client: Option<ClientId>, reason| {
            AuthFail::new(DomainError::InvalidGrant(msg.into()), client, reason)
        };
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(invalid("assertion is too large", None, "assertion_malformed"));
        }
        let Some(client_id) = client_key::claimed_client(assertion).and_then(|c| ClientId::parse(&c)) else {
            return Err(invalid("assertion is not a JWT with an iss claim", None, "assertion_malformed"));
        };
        let client = self.store.get_client(&client_id).await?;
        let key = client
            .as_ref()
            .filter(|c| !c.disabled)
            .and_then(|c| c.public_key.as_deref())
            .and_then(|pem| ClientPublicKey::parse(pem).ok())
            .filter(|key| client_key::header_alg_is(assertion, key.alg));
        let (Some(client), Some(key)) = (client, key) else {
            client_key::verify_against_dummy(assertion);
            return Err(invalid(ASSERTION_REFUSED, Some(client_id), "unknown_client_or_key"));
        };
        match client_key::verify_signature(assertion, &key) {
            Ok(claims) => Ok((client, claims)),
            Err(_) => Err(invalid(ASSERTION_REFUSED, Some(client.id.clone()), "assertion_invalid")),
        }
    }

    /// RFC 7523 §3's claims: `iss` and `sub` the client, `aud` this service, a short `exp`,
    /// no `iat`/`nbf` in the future, a `jti`. Returns `exp` and the `jti`.
    fn check_assertion_claims(
        &self,
        client: &ClientId,
        claims: AssertionClaims,
        now: i64,
    ) -> Result<(i64, String), String> {
        if claims.iss.as_deref() != Some(client.as_str()) || claims.sub.as_deref() != Some(client.as_str()) {
            return Err("assertion iss and sub must both be the client id".into());
        }
        let endpoint = self.config.long_token_endpoint();
        let issuer = self.config.bare_issuer();
        if !claims.aud.iter().any(|a| a.trim_end_matches('/') == issuer || *a == endpoint) {
            return Err(format!("assertion aud must be {issuer} or {endpoint}"));
        }
        let Some(exp) = claims.exp else {
            return Err("assertion has no exp".into());
        };
        if exp <= now {
            return Err("assertion has expired".into());
        }
        if exp > now + ASSERTION_MAX_LIFETIME_SECS {
            return Err(format!("assertion exp must be at most {ASSERTION_MAX_LIFETIME_SECS} seconds ahead"));
        }
        if claims.iat.is_some_and(|iat| iat > now + SKEW_SECS) || claims.nbf.is_some_and(|nbf| nbf > now + SKEW_SECS) {
            return Err("assertion is not valid yet (iat or nbf in the future)".into());
        }
        // Stored as text: no control character (PostgreSQL refuses a NUL byte).
        match claims.jti.filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN && !j.chars().any(char::is_control)) {
            Some(jti) => Ok((exp, jti)),
            None => Err(format!("assertion needs a jti of 1 to {MAX_JTI_LEN} characters, without control characters")),
        }
    }
}
