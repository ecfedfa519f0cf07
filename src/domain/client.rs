//! A registered client, as stored: its secret's keyed hash, its sealed TOTP seed, its public
//! key for assertions. `Debug` shows none of them.

use super::types::{ClientId, Scopes};

/// A registered client.
#[derive(Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub scopes: Scopes,
    /// Keyed hash of the client secret.
    pub secret_hash: Vec<u8>,
    /// Keyed hash of the secret it replaced, accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<i64>,
    /// The TOTP seed, sealed.
    pub otp_seed_sealed: Option<Vec<u8>>,
    pub otp_last_step: i64,
    pub public_key: Option<String>,
    pub public_key_alg: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    /// When it last authenticated, with any credential (Unix seconds, to the minute).
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("otp", &self.otp_seed_sealed.is_some())
            .field("public_key_alg", &self.public_key_alg)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl Client {
    /// A client for tests: its id, its scopes, a fixed secret hash (`[7; 32]`), nothing else.
    pub fn example(id: &str, scopes: &str, created_at: i64) -> Client {
        Client {
            id: ClientId::parse(id).expect("a client id"),
            name: format!("client {id}"),
            scopes: Scopes::from_space_separated(scopes).expect("scopes"),
            secret_hash: vec![7; 32],
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            otp_seed_sealed: None,
            otp_last_step: 0,
            public_key: None,
            public_key_alg: None,
            disabled: false,
            created_at,
            last_used_at: None,
        }
    }
}
