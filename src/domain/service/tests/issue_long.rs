//! issueLongTermToken's bounds: lifetimes, scopes, rotation.

use super::{Harness, T0, scopes};
use crate::domain::{DomainError, LongTokenId, LongTokenParams};

const DAY: i64 = 86_400;

fn ttl(days: i64) -> LongTokenParams {
    LongTokenParams { ttl_days: Some(days), ..LongTokenParams::default() }
}

fn rotate(old: LongTokenId, grace: Option<i64>) -> LongTokenParams {
    LongTokenParams { rotate_token_id: Some(old), grace_seconds: grace, ..LongTokenParams::default() }
}

#[tokio::test]
async fn lifetimes_default_to_30_days_and_stay_within_1_to_90() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy").await;
    assert_eq!(h.long(&c, LongTokenParams::default()).await.unwrap().expires_at, T0 + 30 * DAY);
    assert_eq!(h.long(&c, ttl(1)).await.unwrap().expires_at, T0 + DAY);
    assert_eq!(h.long(&c, ttl(90)).await.unwrap().expires_at, T0 + 90 * DAY);
    for bad in [0, -1, 91, i64::MAX] {
        assert!(matches!(h.long(&c, ttl(bad)).await, Err(DomainError::InvalidRequest(_))), "{bad}");
    }
}

#[tokio::test]
async fn a_token_holds_at_most_the_clients_scopes() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy read").await;
    assert_eq!(h.long(&c, LongTokenParams::default()).await.unwrap().scopes, scopes("deploy read"));
    assert_eq!(h.long_with(&c, "read").await.scopes, scopes("read"));
    let wider = LongTokenParams { scopes: Some(scopes("read admin")), ..LongTokenParams::default() };
    assert!(matches!(h.long(&c, wider).await, Err(DomainError::InsufficientScope(_))));
}

#[tokio::test]
async fn a_rotation_keeps_the_old_token_for_its_grace_and_happens_once() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy").await;
    let old = h.long(&c, LongTokenParams::default()).await.unwrap();
    let new = h.long(&c, rotate(old.id, Some(60))).await.unwrap();
    assert_eq!(new.rotated, Some(old.id));
    assert!(h.authenticates(old.token.expose()).await, "within its grace");
    let again = h.long(&c, rotate(old.id, None)).await;
    assert!(matches!(again, Err(DomainError::InvalidRequest(_))), "a token is rotated once: {again:?}");
    h.clock.advance_secs(60);
    assert!(!h.authenticates(old.token.expose()).await, "after its grace");
    assert!(h.authenticates(new.token.expose()).await);
}

#[tokio::test]
async fn rotation_options_are_checked_before_any_credential() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy").await;
    let other = h.client_with("other", "deploy").await;
    let theirs = h.long(&other, LongTokenParams::default()).await.unwrap();
    let grace_alone = LongTokenParams { grace_seconds: Some(10), ..LongTokenParams::default() };
    assert!(matches!(h.long(&c, grace_alone).await, Err(DomainError::InvalidRequest(_))));
    for grace in [-1, 86_401] {
        assert!(matches!(h.long(&c, rotate(theirs.id, Some(grace))).await, Err(DomainError::InvalidRequest(_))));
    }
    let foreign = h.long(&c, rotate(theirs.id, None)).await;
    assert!(matches!(foreign, Err(DomainError::InvalidRequest(_))), "another client's token: {foreign:?}");
    assert!(h.authenticates(theirs.token.expose()).await);
    let unknown = h.long(&c, rotate(LongTokenId::generate(), None)).await;
    assert!(matches!(unknown, Err(DomainError::InvalidRequest(_))));
}
