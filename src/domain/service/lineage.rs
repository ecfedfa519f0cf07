//! Where a new long-term token hangs in its client's lineage. A token minted with a
//! short-term token is a child of that token's long-term token; a rotation's successor takes
//! the place of the token it replaces (a root's successor is a root, a child's a child of the
//! same parent). A child never outlives its parent nor holds more than it does, and revoking
//! a token revokes everything below it (`store::Store::revoke_long_token`). A token issued on
//! an external identity (and every child of one) is not renewable with a short-term token; see
//! `refuse_replacing` for who may replace what.

use std::sync::Arc;

use super::grants::Granted;
use super::{TokenService, expired_or_revoked};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::token::{LongToken, Rotation, TokenOrigin};
use crate::domain::types::LongTokenId;
use crate::store::StoreError;

/// How many generations `descends_from` walks up before it gives up.
const MAX_LINEAGE_DEPTH: usize = 64;

pub(super) fn rotation_target_not_live() -> DomainError {
    DomainError::InvalidRequest("rotate_token_id is not a live long-term token of this client".into())
}

impl TokenService {
    /// The new token's parent, live, for its caps. A short-term token may rotate only its own
    /// long-term token or a descendant of it, so a stolen one cannot trade a token of another
    /// lineage for a root.
    pub(super) async fn lineage(
        &self,
        granted: &Granted,
        rotation: Option<&Rotation>,
        now: i64,
    ) -> DomainResult<Option<Arc<LongToken>>> {
        let parent = match rotation {
            None => granted.minted_by,
            Some(r) => self.rotation_parent(granted, r, now).await?,
        };
        let Some(parent) = parent else { return Ok(None) };
        match self.store.get_long_token(&parent).await? {
            Some(p) if p.is_live(now) => Ok(Some(Arc::new(p))),
            _ if rotation.is_some() => Err(rotation_target_not_live()),
            _ => Err(expired_or_revoked()),
        }
    }

    /// The parent of the token a rotation replaces, once the caller is found to be allowed to
    /// replace it.
    async fn rotation_parent(&self, granted: &Granted, r: &Rotation, now: i64) -> DomainResult<Option<LongTokenId>> {
        let target = self.store.get_long_token(&r.old).await?;
        let Some(target) = target.filter(|t| t.client_id == granted.client_id && t.is_live(now)) else {
            return Err(rotation_target_not_live());
        };
        refuse_replacing(granted, &target)?;
        if let Some(minter) = granted.minted_by {
            if !self.descends_from(&target, minter).await? {
                return Err(DomainError::InsufficientScope(
                    "a short-term token may rotate only its own long-term token or one minted from it".into(),
                ));
            }
            // A token issued on an external identity ends when its rule said: only a fresh
            // identity token renews it.
            if !target.origin.renewable() {
                return Err(DomainError::InsufficientScope(
                    "a token issued on an external identity cannot be renewed with a short-term token".into(),
                ));
            }
        }
        Ok(target.parent)
    }

    /// Whether `token` is `ancestor` or descends from it (walking up at most
    /// `MAX_LINEAGE_DEPTH` generations).
    async fn descends_from(&self, token: &LongToken, ancestor: LongTokenId) -> Result<bool, StoreError> {
        let (mut id, mut parent) = (token.id, token.parent);
        for _ in 0..MAX_LINEAGE_DEPTH {
            if id == ancestor {
                return Ok(true);
            }
            let Some(next) = parent else { return Ok(false) };
            let Some(record) = self.store.get_long_token(&next).await? else { return Ok(false) };
            (id, parent) = (record.id, record.parent);
        }
        Ok(false)
    }
}

/// What an origin may not replace: an exchange's grant is never replaced, and a workload's
/// identity token replaces only tokens issued through its own rule (never the client's own, nor
/// another workload's).
fn refuse_replacing(granted: &Granted, target: &LongToken) -> DomainResult<()> {
    if matches!(target.origin, TokenOrigin::Exchange(_)) {
        return Err(DomainError::InsufficientScope("a token exchange's grant cannot be rotated".into()));
    }
    if matches!(granted.origin, TokenOrigin::Federation(_)) && granted.origin != target.origin {
        return Err(DomainError::InsufficientScope(
            "an external identity token may rotate only tokens issued through its own federation rule".into(),
        ));
    }
    Ok(())
}
