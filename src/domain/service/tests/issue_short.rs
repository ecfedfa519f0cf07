//! issueShortTermToken's bounds: lifetime, scopes, audience, and never outliving the parent.

use super::{Harness, T0, scopes};
use crate::domain::{Audience, DomainError, LongTokenParams, ShortTokenParams};

fn ttl(secs: i64) -> ShortTokenParams {
    ShortTokenParams { ttl_seconds: Some(secs), ..ShortTokenParams::default() }
}

#[tokio::test]
async fn lifetimes_default_to_15_minutes_and_stay_within_60_to_900_seconds() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy").await;
    let long = h.long(&c, LongTokenParams::default()).await.unwrap();
    assert_eq!(h.short(&long, ShortTokenParams::default()).await.unwrap().expires_at, T0 + 900);
    assert_eq!(h.short(&long, ttl(60)).await.unwrap().expires_at, T0 + 60);
    for bad in [59, 901, 0, -5] {
        assert!(matches!(h.short(&long, ttl(bad)).await, Err(DomainError::InvalidRequest(_))), "{bad}");
    }
}

#[tokio::test]
async fn scopes_are_a_subset_of_the_long_term_tokens() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy read").await;
    let long = h.long_with(&c, "read").await;
    assert_eq!(h.short(&long, ShortTokenParams::default()).await.unwrap().scopes, ["read"]);
    let wider = ShortTokenParams { scopes: Some(scopes("read deploy")), ..ShortTokenParams::default() };
    assert!(matches!(h.short(&long, wider).await, Err(DomainError::InvalidScope(_))));
}

#[tokio::test]
async fn a_short_term_token_ends_when_its_long_term_token_does() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "deploy").await;
    let old = h.long(&c, LongTokenParams::default()).await.unwrap();
    let rotation =
        LongTokenParams { rotate_token_id: Some(old.id), grace_seconds: Some(100), ..LongTokenParams::default() };
    h.long(&c, rotation).await.unwrap();
    let short = h.short(&old, ShortTokenParams::default()).await.unwrap();
    assert_eq!(short.expires_at, T0 + 100, "capped by the rotation's grace");
    h.clock.advance_secs(100);
    assert!(!h.authenticates(&short.jwt).await);
}

#[tokio::test]
async fn the_audience_is_the_issuer_unless_named() {
    let h = Harness::without_limits().await;
    let c = h.client_with("c", "tokens:introspect").await;
    let long = h.long(&c, LongTokenParams::default()).await.unwrap();
    let caller = h
        .service
        .authenticate(super::bearer(long.token.expose()), super::addr(), crate::domain::BearerUse::Introspection)
        .await
        .unwrap();
    let own = h.short(&long, ShortTokenParams::default()).await.unwrap();
    let info = h.service.introspect(&caller, &own.jwt).await.unwrap().unwrap();
    assert_eq!(info.audience.as_deref(), Some("https://tokens.test"));
    let named = ShortTokenParams {
        audience: Some(Audience::parse("https://api.example".into()).unwrap()),
        ..ShortTokenParams::default()
    };
    let foreign = h.short(&long, named).await.unwrap();
    let info = h.service.introspect(&caller, &foreign.jwt).await.unwrap().unwrap();
    assert_eq!(info.audience.as_deref(), Some("https://api.example"));
    assert!(!h.authenticates(&foreign.jwt).await, "a token for another service is no credential here");
}
