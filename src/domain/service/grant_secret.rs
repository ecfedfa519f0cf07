//! The `client_credentials` grant with a client secret.

use super::grants::Granted;
use super::{AuthFail, TokenService};
use crate::domain::client::Client;
use crate::domain::error::DomainError;
use crate::domain::types::{CLIENT_SECRET_PREFIX, ClientId, OpaqueSecret};

impl TokenService {
    pub(super) async fn grant_secret(&self, client_id: ClientId, secret: &str, now: i64) -> Result<Granted, AuthFail> {
        let client = self.store.get_client(&client_id).await?;
        let matches = self.secret_matches(client.as_ref(), secret, now);
        match client {
            Some(c) if matches && !c.disabled => Ok(Granted::root(c.id, c.scopes)),
            c => {
                let reason = match c {
                    None => "unknown_client",
                    Some(c) if c.disabled => "client_disabled",
                    Some(_) => "wrong_secret",
                };
                Err(AuthFail::new(DomainError::InvalidClient, Some(client_id), reason))
            }
        }
    }

    /// Whether `secret` is the client's current secret, or its previous one while a rotation's
    /// overlap runs. The same work whatever the client's state: two constant-time comparisons,
    /// against random bytes where there is no stored hash. Only a well-formed secret (prefix,
    /// length, checksum: every secret this service issues) can match, and a comparison with a
    /// stand-in counts for nothing, so no fixed value ever authenticates anyone.
    pub(super) fn secret_matches(&self, client: Option<&Client>, secret: &str, now: i64) -> bool {
        let well_formed = OpaqueSecret::parse(CLIENT_SECRET_PREFIX, secret).is_some();
        let current = client.map(|c| &c.secret_hash[..]);
        let previous = client
            .filter(|c| c.previous_secret_expires_at.is_some_and(|until| now < until))
            .and_then(|c| c.previous_secret_hash.as_deref());
        let matches_current = self.keyring.verify_hash(secret.as_bytes(), current.unwrap_or(&self.dummy));
        let matches_previous = self.keyring.verify_hash(secret.as_bytes(), previous.unwrap_or(&self.dummy));
        well_formed & ((current.is_some() & matches_current) | (previous.is_some() & matches_previous))
    }
}
