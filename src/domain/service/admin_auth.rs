//! The admin API's callers: short-term tokens minted for the admin API's URL (their `aud`)
//! holding `admin:read` or `admin:write`, and the console's sign-in, which gets one with a
//! client secret and a one-time code together.

use std::net::IpAddr;

use secrecy::SecretString;

use super::api::{Bearer, Credential};
use super::bearer::{foreign_audience, presented};
use super::failures::failure_keys;
use super::{AuthFail, TokenService};
use crate::clock::Now;
use crate::domain::audit::{self, AuditEventExt, Operator, event};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::revocation::{self, RevokeOutcome};
use crate::domain::token::{LongToken, NewLongToken, TokenOrigin};
use crate::domain::types::{ClientId, LONG_TOKEN_PREFIX, LongTokenId, Mechanism, OpaqueSecret, Scopes, ShortTokenId};

/// The scope of the admin API's reads.
pub const ADMIN_READ: &str = "admin:read";
/// The scope of the admin API's changes (it allows the reads too).
pub const ADMIN_WRITE: &str = "admin:write";
/// The name of the long-term token behind a console session.
pub const CONSOLE_SESSION_NAME: &str = "admin console session";

/// What an admin request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRight {
    Read,
    Write,
}

/// An authenticated admin API caller.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub client_id: ClientId,
    /// The admin token's id (`jti`).
    pub token_id: ShortTokenId,
    pub scopes: Scopes,
    pub addr: IpAddr,
}

impl AdminCaller {
    /// Whether the caller's token holds the scope `right` needs: `admin:read` or
    /// `admin:write` for reads, `admin:write` for changes (`InsufficientScope` otherwise).
    pub fn require(&self, right: AdminRight) -> DomainResult<()> {
        let (read, write) = (self.scopes.contains(ADMIN_READ), self.scopes.contains(ADMIN_WRITE));
        let allowed = match right {
            AdminRight::Read => read || write,
            AdminRight::Write => write,
        };
        if allowed {
            return Ok(());
        }
        let need = if right == AdminRight::Write { ADMIN_WRITE } else { "admin:read or admin:write" };
        Err(DomainError::InsufficientScope(format!("this admin request needs a token holding {need}")))
    }

    /// The operator its changes are recorded as.
    pub fn operator(&self) -> Operator {
        Operator::Admin { client_id: self.client_id.clone(), token_id: self.token_id.to_string(), addr: self.addr }
    }
}

/// A console session: an admin token, and when it ends.
#[derive(Debug)]
pub struct AdminSession {
    pub access_token: SecretString,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub expires_at: i64,
    pub expires_in: i64,
}

fn not_admin_token(client: Option<ClientId>, msg: &str, reason: &'static str) -> AuthFail {
    AuthFail::new(DomainError::InvalidToken(msg.into()), client, reason)
}

impl TokenService {
    /// The admin API's URL, the audience of admin tokens (`None`: no admin API).
    pub fn admin_audience(&self) -> Option<&str> {
        self.config.admin_audience.as_deref().map(|a| a.trim_end_matches('/'))
    }

    /// Authenticates an admin API request: a live short-term token minted for the admin API's
    /// URL. A failed authentication counts against the address like any bearer's. What the
    /// caller may do is [`AdminCaller::require`]'s to say.
    pub async fn authenticate_admin(&self, bearer: Bearer, addr: IpAddr) -> DomainResult<AdminCaller> {
        let now = self.now();
        self.check_limits(&failure_keys(Mechanism::ShortToken, None, addr), now.ms())?;
        let caller = match self.check_admin_token(&bearer, now).await {
            Ok(c) => c,
            Err(fail) => return Err(self.on_failure(fail, Mechanism::ShortToken, None, addr, now.ms(), false).await),
        };
        self.last_use.client(&caller.client_id, now.secs());
        Ok(AdminCaller { addr, ..caller })
    }

    async fn check_admin_token(&self, bearer: &Bearer, now: Now) -> Result<AdminCaller, AuthFail> {
        let token = presented(bearer)?;
        if token.starts_with(LONG_TOKEN_PREFIX) {
            let msg = "the admin API takes a short-term token minted for its URL, not a long-term token";
            return Err(not_admin_token(None, msg, "long_token_on_admin_api"));
        }
        let v = self.verify_short(token, now).await?;
        match self.admin_audience() {
            // The URL, with or without one trailing slash (as for the issuer's audience).
            Some(admin) if v.claims.aud == admin || v.claims.aud.strip_suffix('/') == Some(admin) => {}
            _ => return Err(foreign_audience(&v.client_id)),
        }
        let addr = IpAddr::from([0, 0, 0, 0]);
        Ok(AdminCaller { client_id: v.client_id, token_id: v.id, scopes: v.scopes, addr })
    }

    /// The console's sign-in: the client's secret and a one-time code, both checked (each a
    /// failed authentication when wrong, limited like any other), then an admin token for the
    /// admin API's URL with the client's admin scopes, minted from a long-term token that
    /// lives no longer than it (so the session shows in the client's tokens and its audit).
    pub async fn admin_session(
        &self,
        client_id: ClientId,
        secret: SecretString,
        code: SecretString,
        addr: IpAddr,
    ) -> DomainResult<AdminSession> {
        let Some(audience) = self.admin_audience().map(str::to_owned) else {
            return Err(DomainError::InvalidRequest("this server has no admin API".into()));
        };
        let now = self.now();
        let by_secret = Credential::ClientSecret { client_id: client_id.clone(), secret };
        let granted = self.authenticate_credential(by_secret, addr, now).await?;
        // Before the code is checked: a client that may not sign in does not burn it.
        let admin = Scopes::from_list(&[ADMIN_READ, ADMIN_WRITE]).map_err(DomainError::Internal)?;
        if granted.scopes.intersection(&admin).is_empty() {
            return Err(DomainError::InsufficientScope(format!(
                "client {client_id} holds neither {ADMIN_READ} nor {ADMIN_WRITE}; it cannot sign in to the console"
            )));
        }
        let by_code = Credential::Otp { client_id: granted.client_id, code };
        let granted = self.authenticate_credential(by_code, addr, now).await?;
        let scopes = granted.scopes.intersection(&admin);
        if scopes.is_empty() {
            return Err(DomainError::InsufficientScope(format!("client {client_id} no longer holds an admin scope")));
        }
        let expires_at = now.secs() + i64::from(self.config.short_ttl_max_secs);
        let parent = self.session_parent(&granted.client_id, &scopes, expires_at, addr, now).await?;
        let id = ShortTokenId::generate(&self.keyring, parent.id, expires_at);
        let jwt = self.sign_short(&parent, &id, &scopes.to_vec(), &audience, now)?;
        tracing::info!(client_id = %parent.client_id, token_id = %parent.id, "admin console session started");
        Ok(AdminSession {
            access_token: jwt.into(),
            client_id: parent.client_id.clone(),
            scopes,
            expires_at,
            expires_in: expires_at - now.secs(),
        })
    }

    /// The long-term token behind a console session, recorded as issued with the secret and a
    /// one-time code; its secret is never shown to anyone.
    async fn session_parent(
        &self,
        client_id: &ClientId,
        scopes: &Scopes,
        expires_at: i64,
        addr: IpAddr,
        now: Now,
    ) -> DomainResult<LongToken> {
        let secret = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
        let new = NewLongToken {
            id: LongTokenId::generate(),
            client_id: client_id.clone(),
            token_hash: self.keyring.keyed_hash(secret.expose().as_bytes()),
            scopes: scopes.clone(),
            name: Some(CONSOLE_SESSION_NAME.into()),
            issued_at: now.secs(),
            expires_at,
            parent: None,
            origin: TokenOrigin::Client,
        };
        let ev = audit::new(now.ms(), event::LONG_TOKEN_ISSUED, audit::SUCCESS)
            .client(client_id)
            .token(new.id)
            .addr(addr)
            .mechanism(Mechanism::Otp.as_str())
            .detail(serde_json::json!({
                "scopes": scopes.to_space_separated(),
                "expires_at": expires_at,
                "admin_session": true,
            }));
        self.insert_long(&new, None, ev).await?;
        Ok(LongToken {
            id: new.id,
            client_id: new.client_id,
            scopes: new.scopes,
            name: new.name,
            issued_at: new.issued_at,
            expires_at: new.expires_at,
            revoked_at: None,
            parent: None,
            origin: new.origin,
            last_used_at: None,
            client_disabled: false,
        })
    }

    /// Ends a console session: the caller's admin token is revoked (idempotent).
    pub async fn end_admin_session(&self, caller: &AdminCaller) -> DomainResult<RevokeOutcome> {
        let now = self.now();
        let ev = audit::new(now.ms(), event::TOKEN_REVOKED, audit::SUCCESS)
            .client(&caller.client_id)
            .token(&caller.token_id)
            .addr(caller.addr)
            .mechanism(Mechanism::ShortToken.as_str())
            .detail(serde_json::json!({ "kind": "short", "admin_session": true }));
        let outcome = revocation::revoke_short(self.store.as_ref(), &caller.token_id, now.secs(), ev).await?;
        self.short_revoked.remove(caller.token_id.as_str());
        Ok(outcome)
    }

    /// Records an admin API request in the audit trail: who (client, admin token, address),
    /// what (`operation`: method and path, never a query or body) and its status. A failure
    /// to record is logged, not answered: the request has been served.
    pub async fn audit_admin_request(&self, caller: &AdminCaller, operation: &str, status: u16) {
        let outcome = if status < 400 { audit::SUCCESS } else { audit::FAILURE };
        let ev = audit::new(self.now().ms(), event::ADMIN_REQUEST, outcome)
            .client(&caller.client_id)
            .token(&caller.token_id)
            .addr(caller.addr)
            .mechanism(Mechanism::ShortToken.as_str())
            .detail(serde_json::json!({ "operation": operation, "status": status }));
        if let Err(e) = self.store.record_audit(vec![ev]).await {
            tracing::warn!(error = %e, client_id = %caller.client_id, "recording an admin request failed");
        }
    }
}
