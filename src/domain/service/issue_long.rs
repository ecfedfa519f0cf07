//! issueLongTermToken: authenticate one credential, then issue (or rotate into) a long-term
//! token whose scopes and lifetime the caller, the client and the token's parent all bound.

use std::net::IpAddr;

use secrecy::ExposeSecret;

use super::api::{Credential, IssuedLong, LongTokenParams};
use super::failures::failure_keys;
use super::grants::Granted;
use super::lineage::rotation_target_not_live;
use super::{TokenService, expired_or_revoked};
use crate::clock::Now;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::client_key;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::federation::issuer::is_issuer_url;
use crate::domain::token::{LongToken, NewLongToken, Rotation};
use crate::domain::types::{ClientId, LONG_TOKEN_PREFIX, LongTokenId, Mechanism, OpaqueSecret, Scopes};
use crate::store::{AuditEvent, InsertError};
use crate::telemetry::metrics as telemetry;

const MAX_GRACE_SECS: i64 = 86_400;
const SECS_PER_DAY: i64 = 86_400;

impl TokenService {
    /// Authenticates `credential` and issues a long-term token.
    pub async fn issue_long(
        &self,
        credential: Credential,
        params: LongTokenParams,
        addr: IpAddr,
    ) -> DomainResult<IssuedLong> {
        let now = self.now();
        // Everything that needs no secret is checked first, so a bad option never burns a
        // one-time code or an assertion id.
        let ttl_days = self.long_ttl_days(params.ttl_days)?;
        let rotation = rotation(params.rotate_token_id, params.grace_seconds, now.secs())?;
        let grant = credential.mechanism();
        if let Some(requested) = &params.scopes {
            admin_scopes_need_a_strong_grant(grant, requested)?;
        }
        let granted = self.authenticate_credential(credential, addr, now).await?;
        if let Some(r) = &rotation {
            self.weak_grant_may_replace(grant, r.old).await?;
        }
        let parent = self.lineage(&granted, rotation.as_ref(), now.secs()).await?;
        let ttl_days = granted.ttl_cap_days.map_or(ttl_days, |cap| ttl_days.min(cap));
        let (scopes, expires_at) = caps(&granted, parent.as_deref(), params.scopes, ttl_days, now.secs())?;
        admin_scopes_need_a_strong_grant(grant, &scopes)?;
        let token = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
        let new = NewLongToken {
            id: LongTokenId::generate(),
            client_id: granted.client_id,
            token_hash: self.keyring.keyed_hash(token.expose().as_bytes()),
            scopes,
            name: params.name.map(|n| n.into_string()),
            issued_at: now.secs(),
            expires_at,
            parent: parent.as_ref().map(|p| p.id),
            // A child of a token issued on an external identity is one too.
            origin: match parent.as_deref() {
                Some(p) if !p.origin.renewable() => p.origin.of_child(),
                _ => granted.origin.clone(),
            },
        };
        let ev = issued_event(&new, rotation, grant, addr, now, granted.audit_detail);
        self.insert_long(&new, rotation, ev).await?;
        telemetry::long_token_issued(grant);
        tracing::info!(client_id = %new.client_id, token_id = %new.id, %grant, rotated = ?rotation.map(|r| r.old.to_string()), "long-term token issued");
        Ok(IssuedLong {
            id: new.id,
            token,
            client_id: new.client_id,
            scopes: new.scopes,
            issued_at: new.issued_at,
            expires_at,
            rotated: rotation.map(|r| r.old),
        })
    }

    /// Checks the limits, then the credential: a failure is counted, audited and answered no
    /// sooner than `failure_delay_ms` after the check began.
    pub(super) async fn authenticate_credential(
        &self,
        credential: Credential,
        addr: IpAddr,
        now: Now,
    ) -> DomainResult<Granted> {
        let claimed = claimed_client(&credential)?;
        let grant = credential.mechanism();
        self.check_limits(&failure_keys(grant, claimed.as_ref(), addr), now.ms())?;
        let started = tokio::time::Instant::now();
        let granted = match self.authenticate_grant(credential, now).await {
            Ok(ok) => ok,
            Err(fail) => {
                let err = self.on_failure(fail, grant, claimed, addr, now.ms(), true).await;
                self.answer_failures_alike(grant, started).await;
                return Err(err);
            }
        };
        // A lock reached while this credential was checked holds for it too; a credential
        // nobody can guess (an external identity token) is held by its address's lock only.
        let client = (!granted.unguessable).then_some(&granted.client_id);
        self.check_limits(&failure_keys(grant, client, addr), now.ms())?;
        self.check_issuance(&granted.client_id)?;
        self.last_use.client(&granted.client_id, now.secs());
        Ok(granted)
    }

    /// Holds the answer to a failed guessable credential (secret, OTP code, assertion) or
    /// external identity token until `failure_delay_ms` after its check began: however long the lookup of a client took (one
    /// that exists, is disabled, has a key of some type, or none at all), the answer comes at
    /// the same time, and says nothing about the client. It also slows guessing down.
    async fn answer_failures_alike(&self, mechanism: Mechanism, started: tokio::time::Instant) {
        if mechanism.delays_failures() {
            let delay = std::time::Duration::from_millis(u64::from(self.config.failure_delay_ms));
            tokio::time::sleep_until(started + delay).await;
        }
    }

    /// Stores a new long-term token (and its rotation) with its audit event, and forgets the
    /// cached records of the tokens whose end that brought forward.
    pub(super) async fn insert_long(
        &self,
        new: &NewLongToken,
        rotation: Option<Rotation>,
        ev: AuditEvent,
    ) -> DomainResult<()> {
        match self.store.insert_long_token(new, rotation, new.issued_at, ev).await {
            Ok(ended) => {
                for id in &ended {
                    self.long_tokens.remove(id);
                }
                Ok(())
            }
            Err(InsertError::RotationTargetNotLive) => Err(rotation_target_not_live()),
            Err(InsertError::ParentNotLive) if rotation.is_some() => Err(rotation_target_not_live()),
            Err(InsertError::ParentNotLive) => Err(expired_or_revoked()),
            Err(InsertError::Store(e)) => Err(e.into()),
        }
    }

    /// A client secret or a one-time code alone may not replace (and so end) a token holding
    /// an admin scope (an operator's automation, a console session): what it could not get, it
    /// may not take away.
    async fn weak_grant_may_replace(&self, grant: Mechanism, old: LongTokenId) -> DomainResult<()> {
        if !matches!(grant, Mechanism::ClientSecret | Mechanism::Otp) {
            return Ok(());
        }
        match self.store.get_long_token(&old).await? {
            Some(t) => admin_scopes_need_a_strong_grant(grant, &t.scopes),
            None => Ok(()),
        }
    }

    fn long_ttl_days(&self, requested: Option<i64>) -> DomainResult<u32> {
        let max = self.config.long_ttl_max_days;
        match requested {
            None => Ok(self.config.long_ttl_default_days.min(max)),
            Some(d) if d >= 1 && d <= i64::from(max) => Ok(d as u32),
            Some(_) => Err(DomainError::InvalidRequest(format!("ttl_days must be between 1 and {max}"))),
        }
    }
}

/// The client a credential names before it is checked (for the limits): the request's
/// `client_id`, or an assertion's `iss`, which must agree with `X-Client-Key` when both are
/// given. A short-term token names none: it cannot be guessed.
fn claimed_client(credential: &Credential) -> DomainResult<Option<ClientId>> {
    match credential {
        Credential::ClientSecret { client_id, .. } | Credential::Otp { client_id, .. } => Ok(Some(client_id.clone())),
        Credential::Assertion { assertion, client_key } => {
            // An external identity token (its `iss` an issuer's URL) names no client before it is
            // verified and cannot be guessed: it counts against its address only.
            if client_key::claimed_issuer(assertion.expose_secret()).as_deref().is_some_and(is_issuer_url) {
                return Ok(None);
            }
            let iss = client_key::claimed_client(assertion.expose_secret());
            let claimed = iss.and_then(|c| ClientId::parse(&c));
            if let (Some(header), Some(claimed)) = (client_key, &claimed)
                && header != claimed
            {
                return Err(DomainError::InvalidRequest("X-Client-Key does not name the assertion's client".into()));
            }
            Ok(claimed.or_else(|| client_key.clone()))
        }
        Credential::ShortToken { .. } | Credential::External { .. } => Ok(None),
    }
}

/// The rotation a request asks for: `grace_seconds` only with `rotate_token_id`, and at most
/// a day.
fn rotation(rotate: Option<LongTokenId>, grace: Option<i64>, now: i64) -> DomainResult<Option<Rotation>> {
    match (rotate, grace) {
        (None, None) => Ok(None),
        (None, Some(_)) => {
            Err(DomainError::InvalidRequest("grace_seconds is only allowed with rotate_token_id".into()))
        }
        (Some(old), grace) => {
            let grace = grace.unwrap_or(0);
            if !(0..=MAX_GRACE_SECS).contains(&grace) {
                return Err(DomainError::InvalidRequest(format!(
                    "grace_seconds must be between 0 and {MAX_GRACE_SECS}"
                )));
            }
            Ok(Some(Rotation { old, revoke_at: now + grace }))
        }
    }
}

/// The new token's scopes (the requested ones, or all it may have) and expiry: within what
/// the caller may grant and, for a child, within its parent's scopes and lifetime.
fn caps(
    granted: &Granted,
    parent: Option<&LongToken>,
    requested: Option<Scopes>,
    ttl_days: u32,
    now: i64,
) -> DomainResult<(Scopes, i64)> {
    let (mut grantable, mut expires_at) = (granted.scopes.clone(), now + i64::from(ttl_days) * SECS_PER_DAY);
    if let Some(p) = parent {
        grantable = grantable.intersection(&p.scopes);
        expires_at = expires_at.min(p.valid_until());
    }
    match requested {
        Some(requested) if !requested.is_subset(&grantable) => Err(DomainError::InsufficientScope(format!(
            "requested scopes exceed what this caller may grant ({})",
            grantable.to_space_separated()
        ))),
        Some(requested) => Ok((requested, expires_at)),
        None => Ok((grantable, expires_at)),
    }
}

/// A long-term token holding an admin scope administers the deployment for up to 90 days: one
/// guessable factor (a client secret, or a one-time code, alone) does not get one. A client's
/// private key (an assertion), an external identity, or a token minted from such a token does;
/// an operator with a secret and an authenticator signs in at the admin API with both together
/// (which gives an admin token of the short-term lifetime, and no long-term token).
fn admin_scopes_need_a_strong_grant(grant: Mechanism, scopes: &Scopes) -> DomainResult<()> {
    let admin = scopes.contains(super::ADMIN_READ) || scopes.contains(super::ADMIN_WRITE);
    if admin && matches!(grant, Mechanism::ClientSecret | Mechanism::Otp) {
        return Err(DomainError::InsufficientScope(
            "admin:read and admin:write are not granted to a client secret or a one-time code alone: use an \
             assertion signed with the client's private key, or sign in at the admin API with the secret and a \
             code together (POST /admin/v1/session); or ask for scopes without them"
                .into(),
        ));
    }
    Ok(())
}

/// The audit event of an issuance or a rotation.
fn issued_event(
    new: &NewLongToken,
    rotation: Option<Rotation>,
    grant: Mechanism,
    addr: IpAddr,
    now: Now,
    extra: Option<serde_json::Value>,
) -> AuditEvent {
    let name = if rotation.is_some() { event::LONG_TOKEN_ROTATED } else { event::LONG_TOKEN_ISSUED };
    let mut detail = match extra {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(r) = rotation {
        detail.insert("rotated_token_id".into(), r.old.to_string().into());
        detail.insert("old_valid_until".into(), r.revoke_at.into());
    }
    if let Some(p) = new.parent {
        detail.insert("parent_token_id".into(), p.to_string().into());
    }
    let ev = audit::new(now.ms(), name, audit::SUCCESS).client(&new.client_id).token(new.id).addr(addr);
    let ev = ev.mechanism(grant.as_str());
    if detail.is_empty() { ev } else { ev.detail(serde_json::Value::Object(detail)) }
}
