//! Lineage: a token minted with a short-term token is a child of that token's long-term
//! token, bounded by it; a short-term token may rotate only within its own lineage.

use super::{Harness, scopes};
use crate::domain::{DomainError, LongTokenParams, ShortTokenParams};

#[tokio::test]
async fn a_child_is_bounded_by_its_parent() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy read tokens:write").await;
    let parent = h.long(&c, LongTokenParams { ttl_days: Some(2), ..LongTokenParams::default() }).await.unwrap();
    let short = h.short(&parent, ShortTokenParams::default()).await.unwrap();
    let child = h.minted_by(&short.jwt, LongTokenParams { ttl_days: Some(90), ..LongTokenParams::default() }).await;
    let child = child.unwrap();
    assert_eq!(h.stored(child.id).await.parent, Some(parent.id));
    assert_eq!(child.expires_at, parent.expires_at, "never outlives its parent");
    let narrow = h.long_with(&c, "read tokens:write").await;
    let short = h.short(&narrow, ShortTokenParams::default()).await.unwrap();
    let wider = LongTokenParams { scopes: Some(scopes("deploy")), ..LongTokenParams::default() };
    assert!(matches!(h.minted_by(&short.jwt, wider).await, Err(DomainError::InsufficientScope(_))));
}

#[tokio::test]
async fn a_short_term_token_needs_tokens_write_to_mint() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy tokens:write").await;
    let long = h.long_with(&c, "deploy").await;
    let short = h.short(&long, ShortTokenParams::default()).await.unwrap();
    assert!(matches!(
        h.minted_by(&short.jwt, LongTokenParams::default()).await,
        Err(DomainError::InsufficientScope(_))
    ));
}

#[tokio::test]
async fn a_short_term_token_rotates_only_within_its_lineage() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy tokens:write").await;
    let mine = h.long(&c, LongTokenParams::default()).await.unwrap();
    let other_root = h.long(&c, LongTokenParams::default()).await.unwrap();
    let short = h.short(&mine, ShortTokenParams::default()).await.unwrap();
    let rotate = |id| LongTokenParams { rotate_token_id: Some(id), ..LongTokenParams::default() };
    let refused = h.minted_by(&short.jwt, rotate(other_root.id)).await;
    assert!(matches!(refused, Err(DomainError::InsufficientScope(_))), "{refused:?}");
    assert!(h.authenticates(other_root.token.expose()).await);
    let child = h.minted_by(&short.jwt, LongTokenParams::default()).await.unwrap();
    let successor = h.minted_by(&short.jwt, rotate(child.id)).await.unwrap();
    assert_eq!(h.stored(successor.id).await.parent, Some(mine.id), "a child's successor is a child of the same parent");
    let own = h.minted_by(&short.jwt, rotate(mine.id)).await.unwrap();
    assert_eq!(h.stored(own.id).await.parent, None, "a root's successor is a root");
}
