//! Administration that runs outside a request (the command line): registering clients,
//! their public keys, the state of long-term tokens, revocation by an operator.

pub mod reads;

use super::audit::{self, AuditEvent, AuditEventExt, ByOperator, event};
use super::client_key::{ClientPublicKey, alg_name};
use super::limits::LimitKey;
use super::otp;
use super::revocation;
pub use super::revocation::RevokeOutcome;
use super::service::TokenKind;
use super::types::{CLIENT_SECRET_PREFIX, ClientId, OpaqueSecret, Scopes, TokenId, is_plain_text};
use crate::clock;
use crate::crypto::Keyring;
use crate::store::{Client, Store, StoreError};

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
    /// No client has this id.
    #[error("no client {0}")]
    UnknownClient(ClientId),
    /// A well-formed long-term token id that no stored token has (never issued, or purged
    /// after its expiry).
    #[error("no long-term token {0}")]
    UnknownToken(String),
    /// No trusted issuer has this name.
    #[error("no trusted issuer {0}")]
    UnknownIssuer(String),
    /// No federation rule has this id.
    #[error("no federation rule {0}")]
    UnknownRule(String),
    /// No webhook receiver has this id.
    #[error("no webhook receiver {0}")]
    UnknownWebhook(String),
    /// The client already has a public key, and replacing it was not asked for.
    #[error("client {client} already has a public key ({alg})")]
    KeyExists { client: ClientId, alg: String },
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
    if name.is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS || !name.chars().all(is_plain_text) {
        return Err(AdminError::Invalid(format!(
            "--name must be 1 to {MAX_CLIENT_NAME_CHARS} characters of visible text (no control, format or invisible characters, no space but the ASCII one)"
        )));
    }
    let public_key_alg = match &spec.public_key {
        Some(text) => Some(alg_name(ClientPublicKey::parse(text).map_err(AdminError::Invalid)?.alg)),
        None => None,
    };
    let id = ClientId::generate();
    let secret = OpaqueSecret::generate(CLIENT_SECRET_PREFIX);
    let (otp_seed_sealed, otp_secret, otp_uri) = if spec.otp {
        let (sealed, secret, uri) = new_otp_seed(keyring, &id, &name)?;
        (Some(sealed), Some(secret), Some(uri))
    } else {
        (None, None, None)
    };
    let record = Client {
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
        last_used_at: None,
        created_at: now,
    };
    store.insert_client(&record).await?;
    store
        .record_audit(vec![
            audit::new(clock::millis(now), event::CLIENT_CREATED, audit::SUCCESS).client(&id).by_operator().detail(
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
        return Err(AdminError::UnknownClient(id.clone()));
    }
    store
        .record_audit(vec![
            audit::new(clock::millis(now), event::CLIENT_SECRET_ROTATED, audit::SUCCESS)
                .client(id)
                .by_operator()
                .detail(serde_json::json!({ "overlap_seconds": overlap_secs })),
        ])
        .await?;
    tracing::info!(client_id = %id, overlap_secs, "client secret rotated");
    Ok(secret)
}

/// Disables a client: its credentials and all its tokens stop working.
pub async fn disable_client(store: &dyn Store, now: i64, id: &ClientId) -> Result<(), AdminError> {
    let ev = audit::new(clock::millis(now), event::CLIENT_DISABLED, audit::SUCCESS).client(id).by_operator();
    if !store.set_client_disabled(id, true, ev).await? {
        return Err(AdminError::UnknownClient(id.clone()));
    }
    Ok(())
}

/// Enables a client again. Its credentials work again at once; the long-term tokens it held
/// stay dead — revoked now, before the client is enabled, so none of them works for a moment
/// — unless `revive_tokens` (an operator who disabled a client during an incident expects the
/// tokens issued before it to stay dead). Returns how many tokens were revoked.
pub async fn enable_client(
    store: &dyn Store,
    now: i64,
    id: &ClientId,
    revive_tokens: bool,
) -> Result<usize, AdminError> {
    let client = store.get_client(id).await?.ok_or_else(|| AdminError::UnknownClient(id.clone()))?;
    // Enabling a client that is not disabled changes nothing: its tokens are its live ones.
    if !client.disabled {
        return Ok(0);
    }
    let mut revoked = 0;
    if !revive_tokens {
        for token in store.list_current_long_tokens(Some(id), now).await? {
            let ev = audit::new(clock::millis(now), event::TOKEN_REVOKED, audit::SUCCESS)
                .client(id)
                .token(token.id)
                .by_operator()
                .detail(serde_json::json!({ "kind": "long", "why": "client enabled without --revive-tokens" }));
            revoked += store.revoke_long_token(&token.id, now, ev).await?.len();
        }
    }
    let ev = audit::new(clock::millis(now), event::CLIENT_ENABLED, audit::SUCCESS)
        .client(id)
        .by_operator()
        .detail(serde_json::json!({ "revived_tokens": revive_tokens, "revoked_tokens": revoked }));
    if !store.set_client_disabled(id, false, ev).await? {
        return Err(AdminError::UnknownClient(id.clone()));
    }
    Ok(revoked)
}

/// Lifts a client's failed-authentication locks (its secret, OTP and assertion after too many
/// failures, and its OTP codes after too many in a day) and forgets those failures. Running
/// servers see it within a second.
pub async fn unlock_client(store: &dyn Store, now_ms: i64, id: &ClientId) -> Result<(), AdminError> {
    if store.get_client(id).await?.is_none() {
        return Err(AdminError::UnknownClient(id.clone()));
    }
    let keys = [LimitKey::Client(id.clone()).encode(), LimitKey::OtpDay(id.clone()).encode()];
    store.reset_limits(&keys, now_ms).await?;
    let ev = audit::new(now_ms, event::CLIENT_UNLOCKED, audit::SUCCESS).client(id).by_operator();
    store.record_audit(vec![ev]).await?;
    tracing::info!(client_id = %id, "client unlocked");
    Ok(())
}

/// A client's new OTP enrolment, to print once.
#[derive(Debug)]
pub struct OtpEnrolment {
    pub otp_secret: secrecy::SecretString,
    pub otp_uri: secrecy::SecretString,
}

/// Gives a client a new TOTP seed (`Some`, to print once) or removes its OTP (`None`); codes of
/// the old seed stop working at once, and the client's OTP failures of the day are forgotten.
pub async fn reset_otp(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    id: &ClientId,
    remove: bool,
) -> Result<Option<OtpEnrolment>, AdminError> {
    let client = store.get_client(id).await?.ok_or_else(|| AdminError::UnknownClient(id.clone()))?;
    let (sealed, enrolment) = if remove {
        (None, None)
    } else {
        let (sealed, secret, uri) = new_otp_seed(keyring, id, &client.name)?;
        (Some(sealed), Some(OtpEnrolment { otp_secret: secret, otp_uri: uri }))
    };
    if !store.set_client_otp(id, sealed.as_deref()).await? {
        return Err(AdminError::UnknownClient(id.clone()));
    }
    store.reset_limits(&[LimitKey::OtpDay(id.clone()).encode()], clock::millis(now)).await?;
    let ev = audit::new(clock::millis(now), event::CLIENT_OTP_RESET, audit::SUCCESS)
        .client(id)
        .by_operator()
        .detail(serde_json::json!({ "removed": remove }));
    store.record_audit(vec![ev]).await?;
    Ok(enrolment)
}

/// A fresh TOTP seed for client `id`: sealed for the store, and in base32 and as an
/// `otpauth://` URI for the operator, once.
fn new_otp_seed(
    keyring: &Keyring,
    id: &ClientId,
    name: &str,
) -> Result<(Vec<u8>, secrecy::SecretString, secrecy::SecretString), AdminError> {
    let seed = zeroize::Zeroizing::new(otp::generate_secret());
    let uri = otp::otp_uri(&seed, &format!("{name} ({id})"))
        .or_else(|| otp::otp_uri(&seed, id.as_str()))
        .ok_or_else(|| AdminError::Invalid("cannot build the otpauth URI".into()))?;
    Ok((keyring.seal(id.as_str().as_bytes(), &seed), otp::secret_base32(&seed).into(), uri.into()))
}

/// Registers `text` (a PEM SubjectPublicKeyInfo or a JWK) as the public key of client `id`
/// for assertions. A client has one key: it is set where there is none, and replaced only
/// with `replace`. The key is checked before anything is written; returns its algorithm.
pub async fn set_public_key(
    store: &dyn Store,
    now: i64,
    id: &ClientId,
    text: &str,
    replace: bool,
) -> Result<&'static str, AdminError> {
    let alg = alg_name(ClientPublicKey::parse(text).map_err(AdminError::Invalid)?.alg);
    let client = store.get_client(id).await?.ok_or_else(|| AdminError::UnknownClient(id.clone()))?;
    if let (Some(existing), false) = (&client.public_key_alg, replace) {
        return Err(AdminError::KeyExists { client: id.clone(), alg: existing.clone() });
    }
    // Conditional: a key registered meanwhile by someone else is not overwritten silently.
    if !store.set_client_public_key(id, text.trim(), alg, replace).await? {
        return match store.get_client(id).await? {
            None => Err(AdminError::UnknownClient(id.clone())),
            Some(c) => Err(AdminError::KeyExists { client: id.clone(), alg: c.public_key_alg.unwrap_or_default() }),
        };
    }
    store
        .record_audit(vec![
            audit::new(clock::millis(now), event::CLIENT_KEY_SET, audit::SUCCESS)
                .client(id)
                .by_operator()
                .detail(serde_json::json!({ "alg": alg, "replaced": client.public_key.is_some() })),
        ])
        .await?;
    tracing::info!(client_id = %id, alg, replaced = client.public_key.is_some(), "client public key registered");
    Ok(alg)
}

#[derive(Debug, Clone)]
pub struct Revocation {
    pub token_id: String,
    pub kind: TokenKind,
    /// The owning client, when known (a short-term token's parent may have been purged).
    pub client_id: Option<ClientId>,
    pub outcome: RevokeOutcome,
    /// The long-term tokens below it whose end this brought forward.
    pub cascade: usize,
}

/// Revokes a token by id as an operator: no bearer, any client's token. The rules are the
/// service's (see `TokenService::revoke`): idempotent; a long-term token's revocation
/// cascades to its short-term tokens, because those are valid only while their parent is;
/// a short-term id is authenticated by its MAC, so ids this database never issued are refused.
pub async fn revoke_token(
    store: &dyn Store,
    keyring: &Keyring,
    now: i64,
    target: &str,
) -> Result<Revocation, AdminError> {
    let id = TokenId::parse(keyring, target).ok_or_else(|| {
        AdminError::Invalid(if target.starts_with("st_") {
            format!("{target:?} is not a short-term token id issued with this database's master key")
        } else {
            format!("{target:?} is not a token id: expected a long-term token id (a UUID) or a short-term id (st_…)")
        })
    })?;
    match id {
        TokenId::Long(id) => {
            let record = store.get_long_token(&id).await?.ok_or_else(|| AdminError::UnknownToken(id.to_string()))?;
            let ev = operator_revoked(now, &id, Some(&record.client_id), TokenKind::Long);
            let (outcome, ended) = revocation::revoke_long(store, &record, now, ev).await?;
            let cascade = ended.iter().filter(|e| **e != id).count();
            if outcome == RevokeOutcome::Revoked {
                tracing::info!(client_id = %record.client_id, token_id = %id, "long-term token revoked by an operator");
            }
            let client_id = Some(record.client_id);
            Ok(Revocation { token_id: id.to_string(), kind: TokenKind::Long, client_id, outcome, cascade })
        }
        TokenId::Short(id) => {
            let client_id = store.get_long_token(&id.parent).await?.map(|p| p.client_id);
            let ev = operator_revoked(now, &id, client_id.as_ref(), TokenKind::Short);
            let outcome = revocation::revoke_short(store, &id, now, ev).await?;
            if outcome == RevokeOutcome::Revoked {
                tracing::info!(token_id = %id, "short-term token revoked by an operator");
            }
            Ok(Revocation { token_id: id.to_string(), kind: TokenKind::Short, client_id, outcome, cascade: 0 })
        }
    }
}

/// The audit event of an operator's revocation.
fn operator_revoked(now: i64, token: &dyn std::fmt::Display, client: Option<&ClientId>, kind: TokenKind) -> AuditEvent {
    let kind = match kind {
        TokenKind::Long => "long",
        TokenKind::Short => "short",
    };
    let mut ev = audit::new(clock::millis(now), event::TOKEN_REVOKED, audit::SUCCESS)
        .token(token)
        .by_operator()
        .detail(serde_json::json!({ "kind": kind }));
    if let Some(c) = client {
        ev = ev.client(c);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LongTokenId;

    const NOW: i64 = 1_800_000_000;

    async fn store_with_tokens() -> (std::sync::Arc<dyn Store>, tempfile::TempDir) {
        use crate::store::NewLongToken;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("admin.db").display());
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(crate::store::sqlite::SqliteStore::connect(&url).await.unwrap());
        let client = Client::example("cli_a", "read", NOW);
        store.insert_client(&client).await.unwrap();
        // Token n: 1 live, 2 expired, 3 revoked.
        for (n, expires_at) in [(1u128, NOW + 3600), (2, NOW - 1), (3, NOW + 3600)] {
            let t = NewLongToken {
                id: LongTokenId(uuid::Uuid::from_u128(n)),
                client_id: client.id.clone(),
                token_hash: [n as u8; 32],
                scopes: client.scopes.clone(),
                name: None,
                issued_at: NOW - 7200,
                expires_at,
                parent: None,
                origin: crate::domain::token::TokenOrigin::Client,
            };
            store.insert_long_token(&t, None, NOW - 7200, ev()).await.unwrap();
        }
        store.revoke_long_token(&LongTokenId(uuid::Uuid::from_u128(3)), NOW - 60, ev()).await.unwrap();
        (store, dir)
    }

    fn ev() -> crate::store::AuditEvent {
        crate::domain::audit::new(NOW, "test", crate::domain::audit::SUCCESS)
    }

    fn long(n: u128) -> LongTokenId {
        LongTokenId(uuid::Uuid::from_u128(n))
    }

    #[tokio::test]
    async fn an_operator_revokes_long_term_tokens_idempotently() {
        let (store, _dir) = store_with_tokens().await;
        let keys = Keyring::random();
        let revoke = |id: String| {
            let (store, keys) = (store.clone(), keys.clone());
            async move { revoke_token(store.as_ref(), &keys, NOW, &id).await }
        };

        let r = revoke(long(1).to_string()).await.unwrap();
        assert_eq!(
            (r.kind, r.outcome, r.client_id.as_ref().map(ClientId::as_str)),
            (TokenKind::Long, RevokeOutcome::Revoked, Some("cli_a"))
        );
        assert_eq!(store.get_long_token(&long(1)).await.unwrap().unwrap().revoked_at, Some(NOW));
        assert_eq!(revoke(long(1).to_string()).await.unwrap().outcome, RevokeOutcome::AlreadyRevoked);
        // Expired or revoked before: nothing is written.
        assert_eq!(revoke(long(2).to_string()).await.unwrap().outcome, RevokeOutcome::AlreadyExpired);
        assert_eq!(store.get_long_token(&long(2)).await.unwrap().unwrap().revoked_at, None);
        assert_eq!(revoke(long(3).to_string()).await.unwrap().outcome, RevokeOutcome::AlreadyRevoked);
        assert_eq!(store.get_long_token(&long(3)).await.unwrap().unwrap().revoked_at, Some(NOW - 60));
        // Unknown and malformed ids.
        assert!(matches!(revoke(long(99).to_string()).await, Err(AdminError::UnknownToken(_))));
        for bad in ["", "nope", "0000-0000", "st_x", "tsl_abc"] {
            assert!(matches!(revoke(bad.into()).await, Err(AdminError::Invalid(_))), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_operator_revokes_short_term_tokens_this_database_issued() {
        let (store, _dir) = store_with_tokens().await;
        let keys = Keyring::random();
        let live = crate::domain::ShortTokenId::generate(&keys, long(1), NOW + 300);
        let r = revoke_token(store.as_ref(), &keys, NOW, live.as_str()).await.unwrap();
        assert_eq!((r.kind, r.outcome), (TokenKind::Short, RevokeOutcome::Revoked));
        assert_eq!(r.client_id.as_ref().map(ClientId::as_str), Some("cli_a"));
        assert!(store.is_short_token_revoked(&live).await.unwrap());
        let again = revoke_token(store.as_ref(), &keys, NOW, live.as_str()).await.unwrap();
        assert_eq!(again.outcome, RevokeOutcome::Revoked, "idempotent");

        let expired = crate::domain::ShortTokenId::generate(&keys, long(1), NOW - 1);
        let r = revoke_token(store.as_ref(), &keys, NOW, expired.as_str()).await.unwrap();
        assert_eq!(r.outcome, RevokeOutcome::AlreadyExpired);
        assert!(!store.is_short_token_revoked(&expired).await.unwrap());
        // Issued under another master key: not ours.
        let foreign = crate::domain::ShortTokenId::generate(&Keyring::random(), long(1), NOW + 300);
        assert!(matches!(
            revoke_token(store.as_ref(), &keys, NOW, foreign.as_str()).await,
            Err(AdminError::Invalid(_))
        ));
        assert!(!store.is_short_token_revoked(&foreign).await.unwrap());
    }

    #[tokio::test]
    async fn a_public_key_is_checked_before_it_is_stored() {
        let (store, _dir) = store_with_tokens().await;
        let id = ClientId::parse("cli_a").unwrap();
        let jwk = |seed: u8| p256::SecretKey::from_slice(&[seed; 32]).unwrap().public_key().to_jwk_string();

        for bad in ["", "not a key", r#"{"kty":"oct","k":"c2VjcmV0"}"#] {
            assert!(matches!(set_public_key(store.as_ref(), NOW, &id, bad, true).await, Err(AdminError::Invalid(_))));
        }
        assert_eq!(store.get_client(&id).await.unwrap().unwrap().public_key, None, "nothing stored");
        let unknown = ClientId::parse("cli_nobody").unwrap();
        assert!(matches!(
            set_public_key(store.as_ref(), NOW, &unknown, &jwk(1), false).await,
            Err(AdminError::UnknownClient(_))
        ));

        assert_eq!(set_public_key(store.as_ref(), NOW, &id, &jwk(1), false).await.unwrap(), "ES256");
        let err = set_public_key(store.as_ref(), NOW, &id, &jwk(2), false).await.unwrap_err();
        assert!(matches!(&err, AdminError::KeyExists { alg, .. } if alg == "ES256"), "{err:?}");
        assert_eq!(store.get_client(&id).await.unwrap().unwrap().public_key.as_deref(), Some(jwk(1).as_str()));
        set_public_key(store.as_ref(), NOW, &id, &jwk(2), true).await.unwrap();
        assert_eq!(store.get_client(&id).await.unwrap().unwrap().public_key.as_deref(), Some(jwk(2).as_str()));
    }
}
