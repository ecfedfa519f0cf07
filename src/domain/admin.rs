//! Administration that runs outside a request: registering clients, listing them.

use super::audit::{self, AuditEventExt, event};
use super::client_key::{ClientPublicKey, alg_name};
use super::otp;
use super::types::{CLIENT_SECRET_PREFIX, ClientId, OpaqueSecret, Scopes};
use crate::crypto::Keyring;
use crate::store::{ClientRecord, Store, StoreError};

/// What `client create` asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub scopes: Scopes,
    pub otp: bool,
    /// A PEM SubjectPublicKeyInfo or a JWK, for assertions.
    pub public_key: Option<String>,
}

/// What `client create` prints, once.
#[derive(Debug)]
pub struct CreatedClient {
    pub client_id: ClientId,
    pub name: String,
    pub scopes: Scopes,
    pub client_secret: OpaqueSecret,
    pub otp_secret: Option<secrecy::SecretString>,
    pub otp_uri: Option<secrecy::SecretString>,
    pub public_key_alg: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("no client {0}")]
    NoSuchClient(ClientId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const MAX_CLIENT_NAME_CHARS: usize = 100;

/// Registers a client: its secret is stored as a keyed hash and its TOTP seed sealed.
pub async fn create_client(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    spec: NewClient,
) -> Result<CreatedClient, AdminError> {
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!(
            "--name must be 1 to {MAX_CLIENT_NAME_CHARS} characters without control characters"
        )));
    }
    let public_key_alg = match &spec.public_key {
        Some(text) => Some(alg_name(ClientPublicKey::parse(text).map_err(AdminError::Invalid)?.alg)),
        None => None,
    };
    let id = ClientId::generate();
    let secret = OpaqueSecret::generate(CLIENT_SECRET_PREFIX);
    let (otp_seed_sealed, otp_secret, otp_uri) = if spec.otp {
        let seed = zeroize::Zeroizing::new(otp::generate_secret());
        let uri = otp::otp_uri(&seed, &format!("{name} ({id})"))
            .or_else(|| otp::otp_uri(&seed, id.as_str()))
            .ok_or_else(|| AdminError::Invalid("cannot build the otpauth URI".into()))?;
        (Some(keyring.seal(id.as_str().as_bytes(), &seed)), Some(otp::secret_base32(&seed).into()), Some(uri.into()))
    } else {
        (None, None, None)
    };
    let record = ClientRecord {
        id: id.clone(),
        name: name.clone(),
        scopes: spec.scopes.clone(),
        secret_hash: keyring.keyed_hash(secret.expose().as_bytes()).to_vec(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        otp_seed_sealed,
        otp_last_step: 0,
        public_key: spec.public_key.map(|k| k.trim().to_owned()),
        public_key_alg: public_key_alg.map(str::to_owned),
        disabled: false,
        created_at: now,
    };
    store.insert_client(&record).await?;
    store
        .record_audit(vec![
            audit::new(now * 1000, event::CLIENT_CREATED, audit::SUCCESS).client(&id).source(audit::CLI).detail(
                serde_json::json!({
                    "scopes": spec.scopes.to_space_separated(),
                    "otp": spec.otp,
                    "public_key_alg": public_key_alg,
                }),
            ),
        ])
        .await?;
    tracing::info!(client_id = %id, "client created");
    Ok(CreatedClient {
        client_id: id,
        name,
        scopes: spec.scopes,
        client_secret: secret,
        otp_secret,
        otp_uri,
        public_key_alg,
    })
}

/// The longest overlap `rotate-secret` allows for the old secret.
pub const MAX_SECRET_OVERLAP_SECS: i64 = 30 * 86_400;

/// Gives a client a new secret. The old one keeps working for `overlap_secs` (0: it stops at
/// once), so deployments can switch without an outage. Returns the new secret, to print once.
pub async fn rotate_client_secret(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    id: &ClientId,
    overlap_secs: i64,
) -> Result<OpaqueSecret, AdminError> {
    if !(0..=MAX_SECRET_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(AdminError::Invalid(format!(
            "--overlap must be between 0 and {} days",
            MAX_SECRET_OVERLAP_SECS / 86_400
        )));
    }
    let secret = OpaqueSecret::generate(CLIENT_SECRET_PREFIX);
    let hash = keyring.keyed_hash(secret.expose().as_bytes());
    let until = (overlap_secs > 0).then_some(now + overlap_secs);
    if !store.rotate_client_secret(id, &hash, until).await? {
        return Err(AdminError::NoSuchClient(id.clone()));
    }
    store
        .record_audit(vec![
            audit::new(now * 1000, event::CLIENT_SECRET_ROTATED, audit::SUCCESS)
                .client(id)
                .source(audit::CLI)
                .detail(serde_json::json!({ "overlap_seconds": overlap_secs })),
        ])
        .await?;
    tracing::info!(client_id = %id, overlap_secs, "client secret rotated");
    Ok(secret)
}

/// Disables (or enables again) a client: its credentials and all its tokens stop working.
pub async fn set_client_disabled(store: &dyn Store, now: i64, id: &ClientId, disabled: bool) -> Result<(), AdminError> {
    if !store.set_client_disabled(id, disabled).await? {
        return Err(AdminError::NoSuchClient(id.clone()));
    }
    let name = if disabled { event::CLIENT_DISABLED } else { event::CLIENT_ENABLED };
    store.record_audit(vec![audit::new(now * 1000, name, audit::SUCCESS).client(id).source(audit::CLI)]).await?;
    Ok(())
}
