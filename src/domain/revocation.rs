//! Revocation, the one core that both `revokeToken` (a bearer revoking what it may) and an
//! operator's `token revoke` (anything) run once they have decided it is allowed: idempotent —
//! a token that already ended is left as it is —, a long-term token together with every token
//! below it in its lineage (and so every short-term token minted from any of them, which are
//! valid only while their parent is), a short-term token by its authenticated id.

use super::audit::AuditEvent;
use super::token::{LongToken, TokenStatus};
use super::types::{LongTokenId, ShortTokenId};
use crate::store::{Store, StoreError};

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    /// Nothing to do: it was revoked before (a long-term token).
    AlreadyRevoked,
    /// Nothing to do: it has expired.
    AlreadyExpired,
}

/// Revokes `token` (as just read) at `now` with `event`, unless it has already ended; returns
/// the outcome and the tokens whose end it brought forward (the token and its descendants).
pub async fn revoke_long(
    store: &dyn Store,
    token: &LongToken,
    now: i64,
    event: AuditEvent,
) -> Result<(RevokeOutcome, Vec<LongTokenId>), StoreError> {
    match token.status(now) {
        TokenStatus::Expired => Ok((RevokeOutcome::AlreadyExpired, Vec::new())),
        TokenStatus::Revoked => Ok((RevokeOutcome::AlreadyRevoked, Vec::new())),
        TokenStatus::Live | TokenStatus::Rotating | TokenStatus::Disabled => {
            let ended = store.revoke_long_token(&token.id, now, event).await?;
            Ok((RevokeOutcome::Revoked, ended))
        }
    }
}

/// Records the short-term token `id` as revoked with `event`, unless it has expired (revoking
/// it again is harmless: the store keeps one row).
pub async fn revoke_short(
    store: &dyn Store,
    id: &ShortTokenId,
    now: i64,
    event: AuditEvent,
) -> Result<RevokeOutcome, StoreError> {
    if id.expires_at <= now {
        return Ok(RevokeOutcome::AlreadyExpired);
    }
    store.revoke_short_token(id, event).await?;
    Ok(RevokeOutcome::Revoked)
}
