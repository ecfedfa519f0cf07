//! The `client_credentials` grant with a one-time TOTP code.

use super::grants::Granted;
use super::{AuthFail, TokenService};
use crate::domain::error::DomainError;
use crate::domain::otp;
use crate::domain::types::ClientId;

/// The one answer to every refused OTP code: wrong, replayed, unknown client, none enrolled.
pub(super) const OTP_REFUSED: &str = "one-time code is not valid";

impl TokenService {
    pub(super) async fn grant_otp(&self, client_id: ClientId, code: &str, now: i64) -> Result<Granted, AuthFail> {
        let refused =
            |reason| AuthFail::new(DomainError::InvalidGrant(OTP_REFUSED.into()), Some(client_id.clone()), reason);
        let client = self.store.get_client(&client_id).await?.filter(|c| !c.disabled);
        let seed = client.as_ref().and_then(|c| {
            let sealed = c.otp_seed_sealed.as_deref()?;
            self.keyring.open(c.id.as_str().as_bytes(), sealed)
        });
        // Same work whether or not the client exists and has enrolled: the code is always
        // checked, against a seed that no client has if need be.
        let step = otp::matching_step(seed.as_deref().map_or(&self.dummy[..otp::SECRET_LEN], |s| &s[..]), code, now);
        let (client, step) = match (client, seed.is_some(), step) {
            (Some(c), true, Some(step)) => (c, step),
            (None, ..) => return Err(refused("unknown_or_disabled_client")),
            (Some(_), false, _) => return Err(refused("no_otp_enrolled")),
            (Some(_), true, None) => return Err(refused("wrong_otp")),
        };
        // A replayed code gets the answer of a wrong one: which codes were used is nobody's
        // business but the client's.
        if !self.store.consume_otp_step(&client.id, step).await? {
            return Err(refused("otp_replay"));
        }
        Ok(Granted::root(client.id, client.scopes))
    }
}
