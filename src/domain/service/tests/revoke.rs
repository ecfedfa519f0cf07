//! revokeToken's rules: who may revoke what (the permission matrix), idempotence, the cascade
//! down a lineage, and `NotFound` for every id the caller may not touch.

use super::{Harness, T0};
use crate::domain::audit::event;
use crate::domain::{DomainError, IssuedLong, IssuedShort, LongTokenId, ShortTokenParams};

/// Two clients. A: `la_write` (deploy tokens:write) and `la_plain` (deploy), with short-term
/// tokens `sa_write` and `sa_plain` from `la_write` (with and without tokens:write) and
/// `sa_of_plain` from `la_plain`. B: `lb_write`.
struct World {
    h: Harness,
    la_write: IssuedLong,
    la_plain: IssuedLong,
    lb_write: IssuedLong,
    sa_write: IssuedShort,
    sa_plain: IssuedShort,
    sa_of_plain: IssuedShort,
}

async fn world() -> World {
    let h = Harness::without_limits().await;
    let a = h.client_with("a", "deploy tokens:write").await;
    let b = h.client_with("b", "deploy tokens:write").await;
    let la_write = h.long_with(&a, "deploy tokens:write").await;
    let la_plain = h.long_with(&a, "deploy").await;
    let lb_write = h.long_with(&b, "deploy tokens:write").await;
    let only = |s: &str| ShortTokenParams { scopes: Some(super::scopes(s)), ..ShortTokenParams::default() };
    let sa_write = h.short(&la_write, ShortTokenParams::default()).await.unwrap();
    let sa_plain = h.short(&la_write, only("deploy")).await.unwrap();
    let sa_of_plain = h.short(&la_plain, ShortTokenParams::default()).await.unwrap();
    World { h, la_write, la_plain, lb_write, sa_write, sa_plain, sa_of_plain }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    LaWrite,
    LaPlain,
    LbWrite,
    SaWrite,
    SaPlain,
    SaOfPlain,
}

impl World {
    fn token(&self, who: Who) -> &str {
        match who {
            Who::LaWrite => self.la_write.token.expose(),
            Who::LaPlain => self.la_plain.token.expose(),
            Who::LbWrite => self.lb_write.token.expose(),
            Who::SaWrite => &self.sa_write.jwt,
            Who::SaPlain => &self.sa_plain.jwt,
            Who::SaOfPlain => &self.sa_of_plain.jwt,
        }
    }

    fn id(&self, who: Who) -> String {
        match who {
            Who::LaWrite => self.la_write.id.to_string(),
            Who::LaPlain => self.la_plain.id.to_string(),
            Who::LbWrite => self.lb_write.id.to_string(),
            Who::SaWrite => self.sa_write.id.to_string(),
            Who::SaPlain => self.sa_plain.id.to_string(),
            Who::SaOfPlain => self.sa_of_plain.id.to_string(),
        }
    }
}

#[tokio::test]
async fn who_may_revoke_what() {
    use Who::*;
    // (caller, target, allowed): itself; a short-term token minted from itself; with
    // tokens:write, any token of its client; nothing else.
    let matrix = [
        (LaPlain, LaPlain, true),
        (LaPlain, SaOfPlain, true),
        (LaPlain, LaWrite, false),
        (LaPlain, SaWrite, false),
        (LaWrite, LaPlain, true),
        (LaWrite, SaOfPlain, true),
        (LaWrite, SaPlain, true),
        (LaWrite, LbWrite, false),
        (LbWrite, LaPlain, false),
        (LbWrite, SaWrite, false),
        (SaPlain, SaPlain, true),
        (SaPlain, LaWrite, false),
        (SaPlain, SaWrite, false),
        (SaWrite, LaPlain, true),
        (SaWrite, SaOfPlain, true),
        (SaWrite, LbWrite, false),
        (SaOfPlain, LaPlain, false),
    ];
    for (caller, target, allowed) in matrix {
        let w = world().await;
        let result = w.h.revoke(w.token(caller), &w.id(target)).await;
        match (allowed, result) {
            (true, Ok(())) => assert!(!w.h.authenticates(w.token(target)).await, "{caller:?} revoked {target:?}"),
            (false, Err(DomainError::NotFound)) => {
                assert!(w.h.authenticates(w.token(target)).await, "{caller:?} left {target:?} alone")
            }
            (_, r) => panic!("{caller:?} revoking {target:?}: expected allowed={allowed}, got {r:?}"),
        }
    }
}

#[tokio::test]
async fn ids_that_name_nothing_revocable_are_not_found() {
    let w = world().await;
    let by = w.token(Who::LaWrite);
    for target in [
        LongTokenId::generate().to_string(),
        "not-an-id".to_owned(),
        "st_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        w.la_write.id.0.simple().to_string(),
    ] {
        assert!(
            matches!(
                w.h.service.revoke(&caller(&w, by).await, &target, super::addr()).await,
                Err(DomainError::NotFound)
            ),
            "{target}"
        );
    }
}

async fn caller(w: &World, token: &str) -> crate::domain::Caller {
    w.h.service
        .authenticate(super::bearer(token), super::addr(), crate::domain::BearerUse::Introspection)
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_is_idempotent_and_audited_once() {
    let w = world().await;
    let target = w.id(Who::LaPlain);
    let by = caller(&w, w.token(Who::LaWrite)).await;
    w.h.service.revoke(&by, &target, super::addr()).await.unwrap();
    w.h.service.revoke(&by, &target, super::addr()).await.unwrap();
    let short = w.id(Who::SaPlain);
    w.h.service.revoke(&by, &short, super::addr()).await.unwrap();
    w.h.service.revoke(&by, &short, super::addr()).await.unwrap();
    let revoked = w.h.events(event::TOKEN_REVOKED).await;
    let ids: Vec<_> = revoked.iter().filter_map(|r| r.event.token_id.clone()).collect();
    assert_eq!(ids.iter().filter(|i| **i == target).count(), 1, "{ids:?}");
    assert_eq!(w.h.stored(w.la_plain.id).await.revoked_at, Some(T0));
}

#[tokio::test]
async fn an_expired_token_is_revoked_without_a_write() {
    let w = world().await;
    let by = caller(&w, w.token(Who::LaWrite)).await;
    let short = w.id(Who::SaPlain);
    w.h.clock.advance_secs(901);
    assert!(w.h.service.revoke(&by, &short, super::addr()).await.is_ok(), "an expired short-term token: 204");
    assert!(w.h.events(event::TOKEN_REVOKED).await.is_empty());
    assert!(!w.h.store.is_short_token_revoked(&w.sa_plain.id).await.unwrap());
}

#[tokio::test]
async fn revoking_a_long_term_token_ends_everything_below_it() {
    let w = world().await;
    let child = w.h.minted_by(&w.sa_write.jwt, Default::default()).await.unwrap();
    let grandchild_short = w.h.short(&child, ShortTokenParams::default()).await.unwrap();
    assert!(w.h.authenticates(&grandchild_short.jwt).await);
    w.h.revoke(w.token(Who::LaWrite), &w.id(Who::LaWrite)).await.unwrap();
    for token in [w.token(Who::SaWrite), w.token(Who::SaPlain), child.token.expose(), &grandchild_short.jwt] {
        assert!(!w.h.authenticates(token).await);
    }
    assert_eq!(w.h.stored(child.id).await.revoked_at, Some(T0), "the child's row says so too");
    assert!(w.h.authenticates(w.token(Who::LaPlain)).await, "another lineage of the client is untouched");
}
