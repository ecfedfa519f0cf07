//! The four ways to authenticate for a long-term token, and the external identity token of a
//! token exchange; each is checked in its own `grant_*.rs`. On success, the client and the
//! scopes the caller may grant.

use secrecy::ExposeSecret;

use super::api::Credential;
use super::{AuthFail, TokenService};
use crate::clock::Now;
use crate::domain::token::TokenOrigin;
use crate::domain::types::{ClientId, LongTokenId, Scopes};

/// What a successful authentication for a long-term token grants.
pub(super) struct Granted {
    pub client_id: ClientId,
    /// The scopes the caller may grant.
    pub scopes: Scopes,
    /// With the `short_token` grant: the long-term token behind the short-term token.
    pub minted_by: Option<LongTokenId>,
    /// The longest lifetime the credential allows (a federation rule's), in days.
    pub ttl_cap_days: Option<u32>,
    /// Facts the issuance's audit event names (a federation rule, the external identity).
    pub audit_detail: Option<serde_json::Value>,
    /// Whether the credential could not have been guessed by someone who knows only the
    /// client id (an external identity token): the client's failure locks do not hold it.
    pub unguessable: bool,
    /// How the token it gets is issued (an external identity token's rule, or the client's
    /// own credentials); see `LongToken::origin`.
    pub origin: TokenOrigin,
}

impl Granted {
    pub fn root(client_id: ClientId, scopes: Scopes) -> Self {
        Granted {
            client_id,
            scopes,
            minted_by: None,
            ttl_cap_days: None,
            audit_detail: None,
            unguessable: false,
            origin: TokenOrigin::Client,
        }
    }
}

impl TokenService {
    /// Checks a credential at `now`.
    pub(super) async fn authenticate_grant(&self, credential: Credential, now: Now) -> Result<Granted, AuthFail> {
        match credential {
            Credential::ClientSecret { client_id, secret } => {
                self.grant_secret(client_id, secret.expose_secret(), now.secs()).await
            }
            Credential::Otp { client_id, code } => self.grant_otp(client_id, code.expose_secret(), now.secs()).await,
            Credential::Assertion { assertion, client_key } => {
                self.grant_assertion(assertion.expose_secret(), client_key, now.secs()).await
            }
            Credential::ShortToken { token, client_key } => self.grant_short_token(&token, client_key, now).await,
            Credential::External { token, client_key } => {
                self.grant_external(token.expose_secret(), client_key, now.secs()).await
            }
        }
    }
}
