//! Store conformance: one set of tests, run against every backend.
//!
//! Each test function takes a fresh, empty store. The `sqlite` module runs them on a new
//! SQLite file in a temporary directory; the `postgres` module runs them on a new PostgreSQL
//! database created for the test (and dropped after it) through the server named by
//! `TOKENSMITH_TEST_POSTGRES_URL`, e.g. `postgres://postgres@127.0.0.1:5432/test`. Without
//! that variable the PostgreSQL variant says SKIPPED on stderr (never a silent pass); with it,
//! an unreachable server fails the test.

use std::io::Write;
use std::sync::Arc;

use uuid::Uuid;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    AuditEvent, AuditQuery, Client, FailureCounter, FailureRecorded, InsertError, LastUses, LongToken, NewLongToken,
    Purged, Rotation, SigningKeyRecord, Store, StoreError,
};
use crate::crypto::{self, Keyring};
use crate::domain::federation::{ClaimMatch, FederationRule, IssuerKeys, IssuerName, TrustedIssuer};
use crate::domain::limits::Window;
use crate::domain::token::TokenOrigin;
use crate::domain::webhook::{Delivery, DeliveryQuery, DeliveryStatus, DeliveryUpdate, EventType, Webhook, WebhookId};
use crate::domain::{ClientId, LongTokenId, Scopes, ShortTokenId};

const PG_URL_VAR: &str = "TOKENSMITH_TEST_POSTGRES_URL";
/// Concurrent callers in the race tests.
const RACERS: usize = 20;
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

// ----- fixtures -----------------------------------------------------------------------------

fn client_id(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

fn scopes(s: &str) -> Scopes {
    Scopes::from_space_separated(s).unwrap()
}

fn client(id: &str, created_at: i64) -> Client {
    Client::example(id, "deploy tokens:write", created_at)
}

fn long_id(n: u128) -> LongTokenId {
    LongTokenId(Uuid::from_u128(n))
}

fn hash_of(n: u128) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(&n.to_be_bytes());
    h[31] = 0xAB;
    h
}

/// Token number `n` of `client`, issued at `issued_at`, valid for `ttl` seconds.
fn token(n: u128, client: &str, issued_at: i64, ttl: i64) -> NewLongToken {
    NewLongToken {
        id: long_id(n),
        client_id: client_id(client),
        token_hash: hash_of(n),
        scopes: scopes("deploy"),
        name: Some(format!("token {n}")),
        issued_at,
        expires_at: issued_at + ttl,
        parent: None,
        origin: TokenOrigin::Client,
    }
}

/// Token `n` as a child of token `parent`.
fn child(n: u128, parent: u128, client: &str, issued_at: i64, ttl: i64) -> NewLongToken {
    NewLongToken { parent: Some(long_id(parent)), ..token(n, client, issued_at, ttl) }
}

async fn insert(s: &dyn Store, t: &NewLongToken) {
    s.insert_long_token(t, None, t.issued_at, ev()).await.unwrap();
}

async fn get(s: &dyn Store, n: u128) -> LongToken {
    s.get_long_token(&long_id(n)).await.unwrap().unwrap_or_else(|| panic!("token {n} is missing"))
}

fn assert_not_live<T: std::fmt::Debug>(r: Result<T, InsertError>) {
    assert!(matches!(r, Err(InsertError::RotationTargetNotLive)), "{r:?}");
}

// ----- the tests ----------------------------------------------------------------------------

async fn ping_answers(s: Arc<dyn Store>) {
    s.ping().await.unwrap();
}

async fn clients_round_trip(s: Arc<dyn Store>) {
    let mut full = client("cli_full", NOW);
    full.scopes = scopes("a b tokens:introspect");
    full.secret_hash = (0u8..32).collect();
    full.otp_seed_sealed = Some(vec![0, 1, 2, 255, 0]);
    full.otp_last_step = 12_345;
    full.public_key = Some("-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n".into());
    full.public_key_alg = Some("EdDSA".into());
    full.disabled = true;
    s.insert_client(&full).await.unwrap();

    let got = s.get_client(&full.id).await.unwrap().unwrap();
    assert_eq!(got.id, full.id);
    assert_eq!(got.name, full.name);
    assert_eq!(got.scopes, full.scopes);
    assert_eq!(got.secret_hash, full.secret_hash);
    assert_eq!(got.otp_seed_sealed, full.otp_seed_sealed);
    assert_eq!(got.otp_last_step, 12_345);
    assert_eq!(got.public_key, full.public_key);
    assert_eq!(got.public_key_alg, full.public_key_alg);
    assert!(got.disabled);
    assert_eq!(got.created_at, NOW);

    let plain = client("cli_plain", NOW);
    s.insert_client(&plain).await.unwrap();
    let got = s.get_client(&plain.id).await.unwrap().unwrap();
    assert_eq!((got.otp_seed_sealed, got.public_key, got.public_key_alg, got.disabled), (None, None, None, false));

    assert!(s.get_client(&client_id("cli_nobody")).await.unwrap().is_none());

    // The id is the key: a second client with it is refused and the first is untouched.
    let mut dup = client("cli_plain", NOW + 1);
    dup.name = "impostor".into();
    assert!(matches!(s.insert_client(&dup).await, Err(StoreError::Backend(_))));
    assert_eq!(s.get_client(&plain.id).await.unwrap().unwrap().name, plain.name);
}

async fn clients_are_listed_by_creation_then_id(s: Arc<dyn Store>) {
    assert!(s.list_clients().await.unwrap().is_empty());
    // Ties on created_at are ordered bytewise by id ('B' < 'a' < 'b'), as in SQLite.
    for (id, at) in [("cli_b", 20), ("cli_late", 30), ("cli_a", 20), ("cli_early", 10), ("cli_B", 20)] {
        s.insert_client(&client(id, at)).await.unwrap();
    }
    let ids: Vec<String> = s.list_clients().await.unwrap().iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids, ["cli_early", "cli_B", "cli_a", "cli_b", "cli_late"]);
}

async fn otp_steps_only_move_forward(s: Arc<dyn Store>) {
    let c = client("cli_otp", NOW);
    s.insert_client(&c).await.unwrap();
    assert!(s.consume_otp_step(&c.id, 100).await.unwrap());
    assert!(!s.consume_otp_step(&c.id, 100).await.unwrap(), "a step is accepted once");
    assert!(!s.consume_otp_step(&c.id, 99).await.unwrap(), "an earlier step after a later one");
    assert!(s.consume_otp_step(&c.id, 102).await.unwrap());
    assert!(!s.consume_otp_step(&c.id, 101).await.unwrap());
    assert_eq!(s.get_client(&c.id).await.unwrap().unwrap().otp_last_step, 102);
    assert!(!s.consume_otp_step(&client_id("cli_nobody"), 100).await.unwrap(), "unknown client");
    // Another client's steps are its own.
    let other = client("cli_other", NOW);
    s.insert_client(&other).await.unwrap();
    assert!(s.consume_otp_step(&other.id, 100).await.unwrap());
}

async fn otp_step_is_single_use_under_races(s: Arc<dyn Store>) {
    let c = client("cli_race", NOW);
    s.insert_client(&c).await.unwrap();
    for step in [1000, 1001, 1005] {
        let wins = race(RACERS, |_| {
            let (s, id) = (s.clone(), c.id.clone());
            async move { s.consume_otp_step(&id, step).await.unwrap() }
        })
        .await;
        assert_eq!(wins, 1, "step {step}: exactly one of {RACERS} concurrent uses may succeed");
    }
    // Different steps racing: only moves forward, and the highest always ends up stored.
    let wins = race(RACERS, |i| {
        let (s, id) = (s.clone(), c.id.clone());
        async move { s.consume_otp_step(&id, 2000 + i as i64).await.unwrap() }
    })
    .await;
    assert!((1..=RACERS).contains(&wins));
    assert_eq!(s.get_client(&c.id).await.unwrap().unwrap().otp_last_step, 2000 + RACERS as i64 - 1);
}

async fn assertion_jti_is_single_use(s: Arc<dyn Store>) {
    let (a, b) = (client_id("cli_a"), client_id("cli_b"));
    assert!(s.consume_assertion_jti(&a, "jti-1", NOW + 300).await.unwrap());
    assert!(!s.consume_assertion_jti(&a, "jti-1", NOW + 300).await.unwrap(), "a replay");
    assert!(!s.consume_assertion_jti(&a, "jti-1", NOW + 999).await.unwrap(), "a replay with another exp");
    assert!(s.consume_assertion_jti(&b, "jti-1", NOW + 300).await.unwrap(), "ids are per client");
    assert!(s.consume_assertion_jti(&a, "jti-2", NOW + 300).await.unwrap());
    assert!(s.consume_assertion_jti(&a, "JTI-1", NOW + 300).await.unwrap(), "ids compare exactly");
}

async fn assertion_jti_is_single_use_under_races(s: Arc<dyn Store>) {
    let a = client_id("cli_a");
    for round in 0..3 {
        let jti = format!("race-{round}");
        let wins = race(RACERS, |_| {
            let (s, a, jti) = (s.clone(), a.clone(), jti.clone());
            async move { s.consume_assertion_jti(&a, &jti, NOW + 300).await.unwrap() }
        })
        .await;
        assert_eq!(wins, 1, "{jti}: exactly one of {RACERS} concurrent uses may succeed");
    }
}

async fn long_tokens_round_trip(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    let mut t = token(1, "cli_a", NOW, 30 * DAY);
    t.scopes = scopes("deploy tokens:introspect tokens:write");
    insert(&*s, &t).await;
    let mut unnamed = token(2, "cli_a", NOW, DAY);
    unnamed.name = None;
    unnamed.origin = TokenOrigin::Exchange("fed_x".into());
    insert(&*s, &unnamed).await;

    for r in [get(&*s, 1).await, s.find_long_token_by_hash(&hash_of(1)).await.unwrap().unwrap()] {
        assert_eq!(r.id, t.id);
        assert_eq!(r.client_id, t.client_id);
        assert_eq!(r.scopes, t.scopes);
        assert_eq!(r.name.as_deref(), Some("token 1"));
        assert_eq!((r.issued_at, r.expires_at, r.revoked_at), (NOW, NOW + 30 * DAY, None));
        assert!(!r.client_disabled);
        assert_eq!(r.origin, TokenOrigin::Client);
        assert!(r.is_live(NOW));
    }
    assert_eq!(get(&*s, 2).await.name, None);
    assert_eq!(get(&*s, 2).await.origin, TokenOrigin::Exchange("fed_x".into()));
    assert!(s.get_long_token(&long_id(99)).await.unwrap().is_none());
    assert!(s.find_long_token_by_hash(&hash_of(99)).await.unwrap().is_none());

    // The hash is unique; the failed insert leaves nothing behind.
    let mut same_hash = token(3, "cli_a", NOW, DAY);
    same_hash.token_hash = hash_of(1);
    assert!(matches!(
        s.insert_long_token(&same_hash, None, NOW, ev()).await,
        Err(InsertError::Store(StoreError::Backend(_)))
    ));
    assert!(s.get_long_token(&long_id(3)).await.unwrap().is_none());
    // So is the id.
    let mut same_id = token(1, "cli_a", NOW, DAY);
    same_id.token_hash = hash_of(4);
    assert!(matches!(
        s.insert_long_token(&same_id, None, NOW, ev()).await,
        Err(InsertError::Store(StoreError::Backend(_)))
    ));
    // A token needs an existing client.
    let orphan = token(5, "cli_nobody", NOW, DAY);
    assert!(matches!(
        s.insert_long_token(&orphan, None, NOW, ev()).await,
        Err(InsertError::Store(StoreError::Backend(_)))
    ));
    assert!(s.get_long_token(&long_id(5)).await.unwrap().is_none());
}

async fn long_tokens_carry_their_clients_disabled_flag(s: Arc<dyn Store>) {
    let mut off = client("cli_off", NOW);
    off.disabled = true;
    s.insert_client(&off).await.unwrap();
    insert(&*s, &token(1, "cli_off", NOW, DAY)).await;
    let r = get(&*s, 1).await;
    assert!(r.client_disabled);
    assert!(!r.is_live(NOW));
    assert!(s.find_long_token_by_hash(&hash_of(1)).await.unwrap().unwrap().client_disabled);
    assert!(s.list_long_tokens(None).await.unwrap()[0].client_disabled);
}

async fn long_tokens_are_listed_by_issue_time_then_id(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    s.insert_client(&client("cli_b", NOW)).await.unwrap();
    assert!(s.list_long_tokens(None).await.unwrap().is_empty());
    // Ids 0xa… and 0x1… issued together: ordered by id text.
    for (n, c, at) in
        [(0xa0, "cli_a", NOW + 5), (0x30, "cli_b", NOW + 1), (0x10, "cli_a", NOW + 5), (0x20, "cli_a", NOW)]
    {
        insert(&*s, &token(n, c, at, DAY)).await;
    }
    let ids = |v: Vec<LongToken>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_long_tokens(None).await.unwrap()),
        [long_id(0x20), long_id(0x30), long_id(0x10), long_id(0xa0)]
    );
    assert_eq!(
        ids(s.list_long_tokens(Some(&client_id("cli_a"))).await.unwrap()),
        [long_id(0x20), long_id(0x10), long_id(0xa0)]
    );
    assert_eq!(ids(s.list_long_tokens(Some(&client_id("cli_b"))).await.unwrap()), [long_id(0x30)]);
    assert!(s.list_long_tokens(Some(&client_id("cli_nobody"))).await.unwrap().is_empty());
}

async fn rotation_without_grace_revokes_at_once(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    let new = token(2, "cli_a", NOW, 30 * DAY);
    s.insert_long_token(&new, Some(Rotation { old: long_id(1), revoke_at: NOW }), NOW, ev()).await.unwrap();
    let old = get(&*s, 1).await;
    assert_eq!(old.revoked_at, Some(NOW));
    assert!(!old.is_live(NOW));
    assert!(get(&*s, 2).await.is_live(NOW));
    // The rotated token cannot be rotated again.
    assert_not_live(
        s.insert_long_token(
            &token(3, "cli_a", NOW, DAY),
            Some(Rotation { old: long_id(1), revoke_at: NOW }),
            NOW,
            ev(),
        )
        .await,
    );
    assert!(s.get_long_token(&long_id(3)).await.unwrap().is_none());
}

async fn rotation_with_grace_schedules_the_earliest_revocation(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    let rotate = |n: u128, revoke_at: i64| {
        let s = s.clone();
        async move {
            s.insert_long_token(
                &token(n, "cli_a", NOW, 30 * DAY),
                Some(Rotation { old: long_id(1), revoke_at }),
                NOW,
                ev(),
            )
            .await
        }
    };
    rotate(2, NOW + 300).await.unwrap();
    let old = get(&*s, 1).await;
    assert_eq!(old.revoked_at, Some(NOW + 300));
    assert!(old.is_live(NOW) && old.is_live(NOW + 299) && !old.is_live(NOW + 300));
    // Still live during its grace, but a token is rotated once: a second successor is refused.
    assert_not_live(rotate(3, NOW + 100).await);
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW + 300), "a refused rotation changes nothing");
    assert!(s.get_long_token(&long_id(3)).await.unwrap().is_none());
    // Revoking it during its grace brings the end forward; a later time never postpones it.
    s.revoke_long_token(&long_id(1), NOW + 100, ev()).await.unwrap();
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW + 100));
    s.revoke_long_token(&long_id(1), NOW + 500, ev()).await.unwrap();
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW + 100), "a later revocation never extends the token");
    assert!(get(&*s, 2).await.is_live(NOW), "the successor is not the rotated token's child");
    // Once the grace is over it is no longer live at `now`.
    let late = NOW + 100;
    assert_not_live(
        s.insert_long_token(
            &token(5, "cli_a", late, DAY),
            Some(Rotation { old: long_id(1), revoke_at: late }),
            late,
            ev(),
        )
        .await,
    );
    assert!(s.get_long_token(&long_id(5)).await.unwrap().is_none());
}

async fn rotation_needs_a_live_target_of_the_same_client(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    s.insert_client(&client("cli_b", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_b", NOW - DAY, 30 * DAY)).await; // another client's
    insert(&*s, &token(2, "cli_a", NOW - DAY, 30 * DAY)).await; // revoked before now
    s.revoke_long_token(&long_id(2), NOW - 10, ev()).await.unwrap();
    insert(&*s, &token(3, "cli_a", NOW - DAY, DAY)).await; // expired exactly now
    insert(&*s, &token(4, "cli_a", NOW - 3 * DAY, DAY)).await; // expired long ago
    insert(&*s, &token(5, "cli_a", NOW - DAY, 30 * DAY)).await; // revoked exactly now
    s.revoke_long_token(&long_id(5), NOW, ev()).await.unwrap();
    let before: Vec<_> = s.list_long_tokens(None).await.unwrap().into_iter().map(|r| (r.id, r.revoked_at)).collect();

    for (target, what) in [
        (1, "another client's"),
        (2, "revoked"),
        (3, "just expired"),
        (4, "expired"),
        (5, "just revoked"),
        (99, "unknown"),
    ] {
        let new = token(100 + target, "cli_a", NOW, DAY);
        let r =
            s.insert_long_token(&new, Some(Rotation { old: long_id(target), revoke_at: NOW + 60 }), NOW, ev()).await;
        assert!(matches!(r, Err(InsertError::RotationTargetNotLive)), "{what} target: {r:?}");
        assert!(s.get_long_token(&new.id).await.unwrap().is_none(), "{what}: the new token must not exist");
        assert!(s.find_long_token_by_hash(&new.token_hash).await.unwrap().is_none());
    }
    let after: Vec<_> = s.list_long_tokens(None).await.unwrap().into_iter().map(|r| (r.id, r.revoked_at)).collect();
    assert_eq!(before, after, "a refused rotation changes nothing");
}

async fn rotation_race_without_grace_has_one_winner(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    let results = race_all(RACERS, |i| {
        let s = s.clone();
        async move {
            let new = token(1000 + i as u128, "cli_a", NOW, DAY);
            s.insert_long_token(&new, Some(Rotation { old: long_id(1), revoke_at: NOW }), NOW, ev()).await
        }
    })
    .await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(_) | Err(InsertError::RotationTargetNotLive))), "{results:?}");
    assert_eq!(s.list_long_tokens(None).await.unwrap().len(), 2, "the old token and the one winner");
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW));
}

async fn long_token_revocation_is_idempotent_and_never_postponed(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    s.revoke_long_token(&long_id(1), NOW, ev()).await.unwrap();
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW));
    s.revoke_long_token(&long_id(1), NOW, ev()).await.unwrap();
    s.revoke_long_token(&long_id(1), NOW + 50, ev()).await.unwrap();
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW), "a later revocation keeps the earlier time");
    s.revoke_long_token(&long_id(1), NOW - 5, ev()).await.unwrap();
    assert_eq!(get(&*s, 1).await.revoked_at, Some(NOW - 5), "an earlier one wins");
    // Unknown ids and expired tokens: no error.
    s.revoke_long_token(&long_id(99), NOW, ev()).await.unwrap();
    insert(&*s, &token(2, "cli_a", NOW - 3 * DAY, DAY)).await;
    s.revoke_long_token(&long_id(2), NOW, ev()).await.unwrap();
    assert_eq!(get(&*s, 2).await.revoked_at, Some(NOW));
    // Revoking a token in its rotation grace ends the grace now.
    insert(&*s, &token(3, "cli_a", NOW - DAY, 30 * DAY)).await;
    s.insert_long_token(
        &token(4, "cli_a", NOW, DAY),
        Some(Rotation { old: long_id(3), revoke_at: NOW + 300 }),
        NOW,
        ev(),
    )
    .await
    .unwrap();
    s.revoke_long_token(&long_id(3), NOW + 1, ev()).await.unwrap();
    assert_eq!(get(&*s, 3).await.revoked_at, Some(NOW + 1));
    // Concurrent revocations: all succeed, the earliest time is kept.
    insert(&*s, &token(5, "cli_a", NOW - DAY, 30 * DAY)).await;
    let ok = race(RACERS, |i| {
        let s = s.clone();
        async move { s.revoke_long_token(&long_id(5), NOW + 100 - i as i64, ev()).await.is_ok() }
    })
    .await;
    assert_eq!(ok, RACERS);
    assert_eq!(get(&*s, 5).await.revoked_at, Some(NOW + 100 - RACERS as i64 + 1));
}

async fn revocation_cascades_to_every_descendant_and_no_further(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &child(2, 1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &child(3, 2, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &child(4, 1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &token(5, "cli_a", NOW - DAY, 30 * DAY)).await; // a root of its own
    insert(&*s, &child(6, 5, "cli_a", NOW - DAY, 30 * DAY)).await;
    s.revoke_long_token(&long_id(4), NOW - 10, ev()).await.unwrap(); // revoked before: keeps its time
    assert_eq!(get(&*s, 3).await.parent, Some(long_id(2)));

    let mut revoked = s.revoke_long_token(&long_id(2), NOW, audit_event(1, "revoked", None)).await.unwrap();
    revoked.sort_by_key(|id| id.0);
    assert_eq!(revoked, [long_id(2), long_id(3)], "the token and its descendants, nothing above or beside");
    let mut revoked = s.revoke_long_token(&long_id(1), NOW + 1, audit_event(2, "revoked", None)).await.unwrap();
    revoked.sort_by_key(|id| id.0);
    assert_eq!(revoked, [long_id(1)], "the descendants were revoked before, at an earlier time");
    assert_eq!(get(&*s, 2).await.revoked_at, Some(NOW));
    assert_eq!(get(&*s, 4).await.revoked_at, Some(NOW - 10));
    assert!(get(&*s, 5).await.is_live(NOW + 1) && get(&*s, 6).await.is_live(NOW + 1));
}

async fn a_child_needs_a_live_parent_of_its_client(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    s.insert_client(&client("cli_b", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &token(2, "cli_a", NOW - DAY, 30 * DAY)).await;
    s.revoke_long_token(&long_id(2), NOW, ev()).await.unwrap();
    insert(&*s, &token(3, "cli_b", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &token(4, "cli_a", NOW - 2 * DAY, DAY)).await; // expired

    for (parent, what) in [(2, "revoked"), (3, "another client's"), (4, "expired"), (99, "unknown")] {
        let r = s.insert_long_token(&child(10 + parent, parent, "cli_a", NOW, DAY), None, NOW, ev()).await;
        assert!(matches!(r, Err(InsertError::ParentNotLive)), "{what} parent: {r:?}");
        assert!(s.get_long_token(&long_id(10 + parent)).await.unwrap().is_none(), "{what}: nothing inserted");
    }
    s.insert_long_token(&child(11, 1, "cli_a", NOW, DAY), None, NOW, ev()).await.unwrap();
    assert_eq!(get(&*s, 11).await.parent, Some(long_id(1)));
}

async fn a_rotation_ends_the_rotated_tokens_descendants_with_it(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &child(2, 1, "cli_a", NOW - DAY, 30 * DAY)).await;
    insert(&*s, &child(3, 2, "cli_a", NOW - DAY, 30 * DAY)).await;
    let rotation = Rotation { old: long_id(1), revoke_at: NOW + 300 };

    let mut ended = s
        .insert_long_token(&token(4, "cli_a", NOW, DAY), Some(rotation), NOW, audit_event(1, "rotated", None))
        .await
        .unwrap();
    ended.sort_by_key(|id| id.0);

    assert_eq!(ended, [long_id(1), long_id(2), long_id(3)]);
    for n in 1..=3 {
        assert_eq!(get(&*s, n).await.revoked_at, Some(NOW + 300), "token {n} ends with the grace");
    }
    assert!(get(&*s, 4).await.is_live(NOW + 300), "the successor takes the old token's place, a root");
    assert_eq!(get(&*s, 4).await.parent, None);
    let query = AuditQuery { client_id: None, since: None, after_id: 0, limit: 10 };
    let events = s.list_audit(&query).await.unwrap();
    let detail = events.iter().find(|e| e.event.event == "rotated").unwrap().event.detail.clone().unwrap();
    assert!(detail.contains(r#""cascade":2"#), "the rotation's event counts the descendants it ends: {detail}");
}

async fn children_racing_their_parents_revocation_never_outlive_it(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - DAY, 30 * DAY)).await;
    for round in 0..5u128 {
        let parent = 100 + round;
        insert(&*s, &token(parent, "cli_a", NOW - DAY, 30 * DAY)).await;
        let results = race_all(RACERS, |i| {
            let s = s.clone();
            async move {
                if i == 0 {
                    s.revoke_long_token(&long_id(parent), NOW, ev()).await.map(|_| true).map_err(|e| e.to_string())
                } else {
                    let c = child(parent * 1000 + i as u128, parent, "cli_a", NOW, DAY);
                    match s.insert_long_token(&c, None, NOW, ev()).await {
                        Ok(_) => Ok(true),
                        Err(InsertError::ParentNotLive) => Ok(false),
                        Err(e) => Err(e.to_string()),
                    }
                }
            }
        })
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for t in s.list_long_tokens(None).await.unwrap().iter().filter(|t| t.parent == Some(long_id(parent))) {
            assert_eq!(t.revoked_at, Some(NOW), "round {round}: child {} outlived its parent's revocation", t.id);
        }
    }
}

fn counter(key: &str, limit: u32) -> FailureCounter {
    FailureCounter { key: key.into(), window: Window { limit, window_ms: 60_000 }, announce_lock: true }
}

async fn a_lock_is_recorded_only_for_a_counter_that_announces_it(s: Arc<dyn Store>) {
    let ms = NOW * 1000;
    // A made-up client id is locked like any other, in silence.
    let ghost = FailureCounter { announce_lock: false, ..counter("client:cli_ghost", 1) };
    let silent = s.record_failure(std::slice::from_ref(&ghost), ms).await.unwrap();
    assert_eq!(silent, FailureRecorded::Counted { locked: vec![("client:cli_ghost".into(), ms + 60_000)] });
    let real = counter("otp:cli_real", 1);
    s.record_failure(std::slice::from_ref(&real), ms + 1).await.unwrap();
    let query = AuditQuery { client_id: None, since: None, after_id: 0, limit: 100 };
    let events = s.list_audit(&query).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event.event.as_str(), events[0].event.client_id.as_deref()),
        ("client.locked", Some("cli_real"))
    );
    assert!(events[0].event.detail.as_deref().unwrap().contains(r#""locked":"otp_codes""#));
}

async fn failures_are_counted_until_the_limit_then_refused(s: Arc<dyn Store>) {
    let ms = NOW * 1000;
    let (addr, client) = (counter("addr:10.0.0.1", 5), counter("client:cli_a", 2));
    let both = [addr.clone(), client.clone()];
    assert_eq!(s.record_failure(&both, ms).await.unwrap(), FailureRecorded::Counted { locked: vec![] });
    let locked = s.record_failure(&both, ms + 10).await.unwrap();
    assert_eq!(locked, FailureRecorded::Counted { locked: vec![("client:cli_a".into(), ms + 60_000)] });
    // The lock is recorded with the failure that set it: a client's, not an address's.
    let query = AuditQuery { client_id: None, since: None, after_id: 0, limit: 100 };
    let events = s.list_audit(&query).await.unwrap();
    let locks: Vec<_> = events.iter().filter(|e| e.event.event == "client.locked").collect();
    assert_eq!(locks.len(), 1);
    assert_eq!((locks[0].event.client_id.as_deref(), locks[0].event.at), (Some("cli_a"), ms + 10));
    // The client is at its limit: the failure is refused and the address not counted either.
    let refused = s.record_failure(&both, ms + 20).await.unwrap();
    assert_eq!(refused, FailureRecorded::Refused { key: "client:cli_a".into(), until: ms + 60_000 });
    for i in 0..3 {
        assert!(matches!(
            s.record_failure(std::slice::from_ref(&addr), ms + 30 + i).await.unwrap(),
            FailureRecorded::Counted { .. }
        ));
    }
    assert!(matches!(
        s.record_failure(std::slice::from_ref(&addr), ms + 40).await.unwrap(),
        FailureRecorded::Refused { .. }
    ));
    // The window frees one failure at a time.
    assert!(matches!(
        s.record_failure(std::slice::from_ref(&client), ms + 60_000).await.unwrap(),
        FailureRecorded::Counted { .. }
    ));
    // The locks are visible to every process that polls, and an operator lifts them.
    let mut changed = s.changed_locks(ms).await.unwrap();
    changed.sort();
    assert_eq!(changed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["addr:10.0.0.1", "client:cli_a"]);
    assert!(s.changed_locks(ms + 120_000).await.unwrap().is_empty());
    s.reset_limits(&["client:cli_a".into()], ms + 120_000).await.unwrap();
    assert_eq!(s.changed_locks(ms + 120_000).await.unwrap(), [("client:cli_a".to_owned(), 0)]);
    assert_eq!(
        s.record_failure(std::slice::from_ref(&client), ms + 120_001).await.unwrap(),
        FailureRecorded::Counted { locked: vec![] }
    );
    // Rows past their window are purged.
    let purged = s.purge_expired(NOW + 3600, NOW - 7 * DAY, 1000).await.unwrap();
    assert_eq!(purged.limits, 2);
}

async fn racing_failures_are_counted_at_most_the_limit(s: Arc<dyn Store>) {
    let key = counter("client:cli_race", 7);
    let results = race_all(RACERS, |i| {
        let (s, key) = (s.clone(), key.clone());
        async move { s.record_failure(std::slice::from_ref(&key), NOW * 1000 + i as i64).await.unwrap() }
    })
    .await;
    let counted = results.iter().filter(|r| matches!(r, FailureRecorded::Counted { .. })).count();
    assert_eq!(counted, 7, "{results:?}");
    let locks =
        results.iter().filter(|r| matches!(r, FailureRecorded::Counted { locked } if !locked.is_empty())).count();
    assert_eq!(locks, 1, "exactly one failure reaches the limit");
}

async fn short_token_revocation_is_idempotent(s: Arc<dyn Store>) {
    let keys = Keyring::random();
    let a = ShortTokenId::generate(&keys, long_id(1), NOW + 900);
    let b = ShortTokenId::generate(&keys, long_id(1), NOW + 900);
    assert!(!s.is_short_token_revoked(&a).await.unwrap());
    s.revoke_short_token(&a, ev()).await.unwrap();
    assert!(s.is_short_token_revoked(&a).await.unwrap());
    assert!(!s.is_short_token_revoked(&b).await.unwrap(), "only that id");
    s.revoke_short_token(&a, ev()).await.unwrap();
    let ok = race(RACERS, |_| {
        let (s, b) = (s.clone(), b.clone());
        async move { s.revoke_short_token(&b, ev()).await.is_ok() }
    })
    .await;
    assert_eq!(ok, RACERS);
    assert!(s.is_short_token_revoked(&a).await.unwrap() && s.is_short_token_revoked(&b).await.unwrap());
}

async fn signing_keys_round_trip(s: Arc<dyn Store>) {
    assert!(s.list_signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, alg: &str, created_at: i64, retired_at: Option<i64>| SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        key_sealed: kid.bytes().chain([0, 255, 1]).collect(),
        created_at,
        activates_at: created_at + 5,
        retired_at,
    };
    let keys = [
        key("k-new", "EdDSA", NOW, None),
        key("k-old", "EdDSA", NOW - DAY, Some(NOW - 10)),
        key("k-es", "ES256", NOW, None),
        key("K-tie", "ES256", NOW, None),
    ];
    for k in &keys {
        s.insert_signing_key(k).await.unwrap();
    }
    let listed = s.list_signing_keys().await.unwrap();
    let kids: Vec<&str> = listed.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k-old", "K-tie", "k-es", "k-new"], "by creation, then kid bytewise");
    for k in &keys {
        let got = listed.iter().find(|l| l.kid == k.kid).unwrap();
        assert_eq!(
            (&got.alg, &got.key_sealed, got.created_at, got.activates_at, got.retired_at),
            (&k.alg, &k.key_sealed, k.created_at, k.activates_at, k.retired_at)
        );
    }
    assert!(s.insert_signing_key(&key("k-new", "ES256", NOW + 1, None)).await.is_err(), "the kid is the key");
    assert_eq!(s.list_signing_keys().await.unwrap().len(), 4);
}

async fn signing_key_rotation_retires_the_keys_of_its_algorithm_when_it_activates(s: Arc<dyn Store>) {
    let key = |kid: &str, alg: &str, created_at: i64, activates_at: i64, retired_at: Option<i64>| SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        key_sealed: vec![1, 2, 3],
        created_at,
        activates_at,
        retired_at,
    };
    s.insert_signing_key(&key("ed-old", "EdDSA", NOW - DAY, 0, Some(NOW - 100))).await.unwrap();
    s.insert_signing_key(&key("ed-cur", "EdDSA", NOW - 50, 0, None)).await.unwrap();
    s.insert_signing_key(&key("ed-late", "EdDSA", NOW - 40, 0, Some(NOW + 10 * DAY))).await.unwrap();
    s.insert_signing_key(&key("es-cur", "ES256", NOW - 50, 0, None)).await.unwrap();
    s.rotate_signing_key(&key("ed-new", "EdDSA", NOW, NOW + 600, None), ev()).await.unwrap();
    let retired: std::collections::HashMap<String, Option<i64>> =
        s.list_signing_keys().await.unwrap().into_iter().map(|k| (k.kid, k.retired_at)).collect();
    assert_eq!(retired["ed-old"], Some(NOW - 100), "an already retired key keeps its time");
    assert_eq!(retired["ed-cur"], Some(NOW + 600), "the signing key retires when the new one activates");
    assert_eq!(retired["ed-late"], Some(NOW + 600), "a later retirement is brought forward");
    assert_eq!(retired["es-cur"], None, "other algorithms are untouched");
    assert_eq!(retired["ed-new"], None);
    // The kid is the key: a duplicate changes nothing, not even the retirements.
    assert!(s.rotate_signing_key(&key("ed-new", "ES256", NOW, NOW + 900, None), ev()).await.is_err());
    let after = s.list_signing_keys().await.unwrap();
    assert_eq!(after.len(), 5);
    assert_eq!(after.iter().find(|k| k.kid == "es-cur").unwrap().retired_at, None);
}

async fn client_secret_rotation_keeps_the_old_hash_for_the_overlap(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    assert!(s.rotate_client_secret(&client_id("cli_a"), &[8; 32], Some(NOW + 3600)).await.unwrap());
    let c = s.get_client(&client_id("cli_a")).await.unwrap().unwrap();
    assert_eq!(
        (c.secret_hash, c.previous_secret_hash, c.previous_secret_expires_at),
        (vec![8; 32], Some(vec![7; 32]), Some(NOW + 3600))
    );
    // Without overlap, the old secret is dropped at once.
    assert!(s.rotate_client_secret(&client_id("cli_a"), &[9; 32], None).await.unwrap());
    let c = s.get_client(&client_id("cli_a")).await.unwrap().unwrap();
    assert_eq!((c.secret_hash, c.previous_secret_hash, c.previous_secret_expires_at), (vec![9; 32], None, None));
    assert!(!s.rotate_client_secret(&client_id("cli_nobody"), &[1; 32], None).await.unwrap());
}

/// A plain audit event for writes whose trail the test does not read.
fn ev() -> AuditEvent {
    audit_event(0, "test", None)
}

fn audit_event(at: i64, event: &str, client: Option<&str>) -> AuditEvent {
    AuditEvent {
        at,
        event: event.into(),
        outcome: "success".into(),
        client_id: client.map(Into::into),
        token_id: Some(format!("tok-{at}")),
        source: Some("127.0.0.1".into()),
        mechanism: Some("client_secret".into()),
        reason: None,
        detail: Some(r#"{"n":1}"#.into()),
    }
}

async fn audit_events_round_trip_filter_page_and_purge(s: Arc<dyn Store>) {
    let all = |q: AuditQuery| {
        let s = Arc::clone(&s);
        async move { s.list_audit(&AuditQuery { limit: 100, ..q }).await.unwrap() }
    };
    assert!(all(AuditQuery::default()).await.is_empty());
    s.record_audit(vec![audit_event(1000, "a", Some("cli_a")), audit_event(2000, "b", None)]).await.unwrap();
    s.record_audit(vec![]).await.unwrap();
    s.record_audit(vec![audit_event(3000, "c", Some("cli_b")), audit_event(4000, "d", Some("cli_a"))]).await.unwrap();
    let got = all(AuditQuery::default()).await;
    assert_eq!(got.iter().map(|r| r.event.event.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    assert_eq!(got[0].event, audit_event(1000, "a", Some("cli_a")), "every field round-trips");
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    let for_a = all(AuditQuery { client_id: Some("cli_a".into()), ..Default::default() }).await;
    assert_eq!(for_a.iter().map(|r| r.event.event.as_str()).collect::<Vec<_>>(), ["a", "d"]);
    let since = all(AuditQuery { since: Some(2000), ..Default::default() }).await;
    assert_eq!(since.iter().map(|r| r.event.event.as_str()).collect::<Vec<_>>(), ["b", "c", "d"]);
    let page = s.list_audit(&AuditQuery { after_id: got[1].id, limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|r| r.event.event.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(s.purge_audit(3000, 1).await.unwrap(), 1, "bounded by the batch");
    assert_eq!(s.purge_audit(3000, 100).await.unwrap(), 1);
    assert_eq!(all(AuditQuery::default()).await.iter().map(|r| r.event.event.as_str()).collect::<Vec<_>>(), ["c", "d"]);
}

async fn audited_writes_record_their_event_with_them_or_not_at_all(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    let events = |s: Arc<dyn Store>| async move {
        let all = s.list_audit(&AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
        all.into_iter().map(|r| r.event.event).collect::<Vec<_>>()
    };
    s.insert_long_token(&token(1, "cli_a", NOW, DAY), None, NOW, audit_event(1, "issued", Some("cli_a")))
        .await
        .unwrap();
    // A rotation whose target is not live writes neither the token nor the event.
    let rotation = Rotation { old: long_id(99), revoke_at: NOW };
    let r =
        s.insert_long_token(&token(2, "cli_a", NOW, DAY), Some(rotation), NOW, audit_event(2, "rotated", None)).await;
    assert_not_live(r.map(drop));
    assert!(s.get_long_token(&long_id(2)).await.unwrap().is_none());
    s.revoke_long_token(&long_id(1), NOW + 5, audit_event(3, "revoked", None)).await.unwrap();
    assert_eq!(get(s.as_ref(), 1).await.revoked_at, Some(NOW + 5));
    let keyring = Keyring::random();
    let short = ShortTokenId::generate(&keyring, long_id(1), NOW + 300);
    s.revoke_short_token(&short, audit_event(4, "short revoked", None)).await.unwrap();
    assert!(s.is_short_token_revoked(&short).await.unwrap());
    assert_eq!(events(Arc::clone(&s)).await, ["issued", "revoked", "short revoked"]);
}

async fn purge_deletes_only_what_expired_in_bounded_batches(s: Arc<dyn Store>) {
    let retention = 7 * DAY;
    let long_before = NOW - retention;
    s.insert_client(&client("cli_a", NOW - 100 * DAY)).await.unwrap();
    // Long-term tokens: 5 expired before `long_before`, one exactly at it, one live.
    for n in 1..=5 {
        insert(&*s, &token(n, "cli_a", NOW - 60 * DAY, 40 * DAY + n as i64)).await;
    }
    insert(&*s, &token(6, "cli_a", long_before - DAY, DAY)).await;
    insert(&*s, &token(7, "cli_a", NOW, DAY)).await;
    // Revoked short-term tokens: 5 expired, one expiring exactly now, one later.
    let keys = Keyring::random();
    let shorts: Vec<ShortTokenId> = (0..7)
        .map(|i| ShortTokenId::generate(&keys, long_id(7), if i < 5 { NOW - 10 - i } else { NOW + (i - 5) * 600 }))
        .collect();
    for id in &shorts {
        s.revoke_short_token(id, ev()).await.unwrap();
    }
    // Assertion ids: 5 expired, one expiring exactly now, one later; across two clients.
    let (a, b) = (client_id("cli_a"), client_id("cli_b"));
    for i in 0..5i64 {
        let c = if i % 2 == 0 { &a } else { &b };
        assert!(s.consume_assertion_jti(c, &format!("old-{i}"), NOW - 1 - i).await.unwrap());
    }
    assert!(s.consume_assertion_jti(&a, "now", NOW).await.unwrap());
    assert!(s.consume_assertion_jti(&b, "later", NOW + 300).await.unwrap());

    let p = |l, r, u| Purged {
        long_tokens: l,
        revoked_short_tokens: r,
        used_assertions: u,
        limits: 0,
        webhook_deliveries: 0,
    };
    assert_eq!(s.purge_expired(NOW, long_before, 2).await.unwrap(), p(2, 2, 2));
    assert_eq!(s.purge_expired(NOW, long_before, 2).await.unwrap(), p(2, 2, 2));
    assert_eq!(s.purge_expired(NOW, long_before, 2).await.unwrap(), p(1, 1, 1));
    assert_eq!(s.purge_expired(NOW, long_before, 2).await.unwrap(), p(0, 0, 0));
    assert_eq!(s.purge_expired(NOW, long_before, 1000).await.unwrap(), p(0, 0, 0));

    let left: Vec<_> = s.list_long_tokens(None).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(left, [long_id(6), long_id(7)]);
    for (i, id) in shorts.iter().enumerate() {
        assert_eq!(s.is_short_token_revoked(id).await.unwrap(), i >= 5, "short id {i}");
    }
    // A purged assertion id is free again; the others are still remembered.
    assert!(s.consume_assertion_jti(&a, "old-0", NOW + 300).await.unwrap());
    assert!(s.consume_assertion_jti(&b, "old-1", NOW + 300).await.unwrap());
    assert!(!s.consume_assertion_jti(&a, "now", NOW + 300).await.unwrap());
    assert!(!s.consume_assertion_jti(&b, "later", NOW + 300).await.unwrap());
    // The client is never purged.
    assert!(s.get_client(&a).await.unwrap().is_some());
}

async fn purge_with_a_large_batch_takes_everything_at_once(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW - 100 * DAY)).await.unwrap();
    for n in 1..=30 {
        insert(&*s, &token(n, "cli_a", NOW - 60 * DAY, DAY)).await;
        assert!(s.consume_assertion_jti(&client_id("cli_a"), &format!("j{n}"), NOW - 1).await.unwrap());
    }
    let p = s.purge_expired(NOW, NOW - 7 * DAY, 1000).await.unwrap();
    assert_eq!(
        p,
        Purged { long_tokens: 30, revoked_short_tokens: 0, used_assertions: 30, limits: 0, webhook_deliveries: 0 }
    );
    assert!(s.list_long_tokens(None).await.unwrap().is_empty());
}

// ----- admin listings and changes -----------------------------------------------------------

async fn current_long_tokens_are_neither_expired_nor_revoked(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    let mut off = client("cli_off", NOW);
    off.disabled = true;
    s.insert_client(&off).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW - 10, DAY)).await; // live
    insert(&*s, &token(2, "cli_a", NOW - DAY, DAY)).await; // expired exactly now
    insert(&*s, &token(3, "cli_a", NOW - 20, DAY)).await; // revoked before now
    s.revoke_long_token(&long_id(3), NOW - 10, ev()).await.unwrap();
    insert(&*s, &token(4, "cli_a", NOW - 30, DAY)).await; // rotating: revoked in 300 s
    s.insert_long_token(
        &token(5, "cli_a", NOW, DAY),
        Some(Rotation { old: long_id(4), revoke_at: NOW + 300 }),
        NOW,
        ev(),
    )
    .await
    .unwrap();
    insert(&*s, &token(6, "cli_a", NOW - 40, DAY)).await; // revoked exactly now
    s.revoke_long_token(&long_id(6), NOW, ev()).await.unwrap();
    insert(&*s, &token(7, "cli_off", NOW - 50, DAY)).await; // a disabled client's: still current
    insert(&*s, &token(8, "cli_a", NOW - 3 * DAY, DAY)).await; // expired long ago

    let ids = |v: Vec<LongToken>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_current_long_tokens(None, NOW).await.unwrap()),
        [long_id(7), long_id(4), long_id(1), long_id(5)],
        "ordered by issue time"
    );
    let of_a = s.list_current_long_tokens(Some(&client_id("cli_a")), NOW).await.unwrap();
    assert_eq!(ids(of_a.clone()), [long_id(4), long_id(1), long_id(5)]);
    assert_eq!(of_a[0].revoked_at, Some(NOW + 300), "the grace's end is reported");
    let of_off = s.list_current_long_tokens(Some(&client_id("cli_off")), NOW).await.unwrap();
    assert!(of_off[0].client_disabled);
    assert!(s.list_current_long_tokens(Some(&client_id("cli_nobody")), NOW).await.unwrap().is_empty());
    // Once the grace is over, the rotated token is no longer current.
    assert_eq!(
        ids(s.list_current_long_tokens(Some(&client_id("cli_a")), NOW + 300).await.unwrap()),
        [long_id(1), long_id(5)]
    );
    // Listing writes nothing: every token is still there.
    assert_eq!(s.list_long_tokens(None).await.unwrap().len(), 8);
}

async fn a_client_public_key_is_set_once_unless_replaced(s: Arc<dyn Store>) {
    let c = client("cli_a", NOW);
    s.insert_client(&c).await.unwrap();
    s.insert_client(&client("cli_b", NOW)).await.unwrap();
    let (pem, jwk) = ("-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----", r#"{"kty":"EC"}"#);

    assert!(s.set_client_public_key(&c.id, pem, "EdDSA", false).await.unwrap());
    let got = s.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!((got.public_key.as_deref(), got.public_key_alg.as_deref()), (Some(pem), Some("EdDSA")));
    // A second key is refused without `replace`, and the first stays.
    assert!(!s.set_client_public_key(&c.id, jwk, "ES256", false).await.unwrap());
    let got = s.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!((got.public_key.as_deref(), got.public_key_alg.as_deref()), (Some(pem), Some("EdDSA")));
    // With `replace` it is swapped, and nothing else of the client changes.
    assert!(s.set_client_public_key(&c.id, jwk, "ES256", true).await.unwrap());
    let got = s.get_client(&c.id).await.unwrap().unwrap();
    assert_eq!((got.public_key.as_deref(), got.public_key_alg.as_deref()), (Some(jwk), Some("ES256")));
    assert_eq!((got.name, got.scopes, got.secret_hash, got.disabled), (c.name, c.scopes, c.secret_hash, false));
    // Unknown clients change nothing; other clients are untouched.
    assert!(!s.set_client_public_key(&client_id("cli_nobody"), pem, "EdDSA", true).await.unwrap());
    assert!(s.get_client(&client_id("cli_nobody")).await.unwrap().is_none());
    assert_eq!(s.get_client(&client_id("cli_b")).await.unwrap().unwrap().public_key, None);
}

// ----- helpers for races --------------------------------------------------------------------

/// Runs `n` copies of `f` at once (on the multi-threaded runtime) and returns every result.
async fn race_all<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, fut) = (barrier.clone(), f(i));
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// How many of `n` concurrent calls answered `true`.
async fn race<F, Fut>(n: usize, f: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    race_all(n, f).await.into_iter().filter(|won| *won).count()
}

// ----- backends -----------------------------------------------------------------------------

/// A fresh SQLite store in a temporary directory (removed on drop).
async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    (Arc::new(SqliteStore::connect(&url).await.unwrap()), dir)
}

/// A database created for one test on the server of `TOKENSMITH_TEST_POSTGRES_URL`,
/// dropped (best effort) when this value is.
pub(crate) struct PgTestDb {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl PgTestDb {
    /// `None`, after saying SKIPPED, when the variable is unset.
    pub(crate) async fn create(test: &str) -> Option<PgTestDb> {
        let Ok(base) = std::env::var(PG_URL_VAR) else {
            // Written to the process's stderr directly so that libtest does not capture it.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL variant of store test `{test}` ({PG_URL_VAR} is not set)"
            );
            return None;
        };
        let admin_url = admin_url(&base).await;
        let mut suffix = [0u8; 8];
        crypto::random_bytes(&mut suffix);
        let name = format!("tokensmith_test_{}", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut conn = admin_connection(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        let _ = sqlx::Connection::close(conn).await;
        let url = with_database(&base, &name);
        Some(PgTestDb { admin_url, name, url })
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be single-threaded: use a thread with
        // its own runtime. FORCE ends the store's pooled connections (PostgreSQL 13+).
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                use sqlx::Connection;
                let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await else { return };
                let force = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if sqlx::raw_sql(sqlx::AssertSqlSafe(force)).execute(&mut conn).await.is_err() {
                    let plain = format!("DROP DATABASE IF EXISTS {name}");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(plain)).execute(&mut conn).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn admin_connection(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{PG_URL_VAR} is set but {} cannot be reached: {e}", super::redact_url(url)))
}

/// The URL to create test databases through: the given one, or the same server's `postgres`
/// database when the given database does not exist (so a bare server works too).
async fn admin_url(base: &str) -> String {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(base).await {
        Ok(conn) => {
            let _ = conn.close().await;
            base.to_owned()
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => with_database(base, "postgres"),
        Err(e) => panic!("{PG_URL_VAR} is set but {} cannot be reached: {e}", super::redact_url(base)),
    }
}

/// `url` with its database (the path) replaced by `db`, keeping any query parameters.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, None), |(m, q)| (m, Some(q)));
    let host_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[host_start..].find('/') {
        Some(slash) => &main[..host_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

// ----- federation -----------------------------------------------------------------------------

fn issuer(name: &str, iss: &str, keys: IssuerKeys) -> TrustedIssuer {
    TrustedIssuer { name: IssuerName::parse(name).unwrap(), issuer: iss.into(), keys, created_at: NOW }
}

fn rule(id: &str, client: &str, issuer: &str) -> FederationRule {
    FederationRule {
        id: id.into(),
        client_id: client_id(client),
        issuer: issuer.into(),
        audience: "https://tokensmith.example".into(),
        matches: vec![
            ClaimMatch::parse("sub=repo:acme/deploy:ref:refs/heads/*").unwrap(),
            ClaimMatch::parse("kubernetes.io/namespace=a=b").unwrap(),
        ],
        max_ttl_days: 3,
        scopes: Some(scopes("deploy")),
    }
}

async fn issuers_round_trip_and_names_and_iss_are_unique(store: Arc<dyn Store>) {
    let github = issuer("github", "https://token.actions.githubusercontent.com", IssuerKeys::Discovery);
    let k8s = issuer("k8s", "https://k8s.example", IssuerKeys::Jwks(r#"{"keys":[]}"#.into()));
    let ci = issuer("ci", "https://ci.example", IssuerKeys::JwksUri("https://ci.example/jwks".into()));
    for i in [&github, &k8s, &ci] {
        assert!(store.insert_issuer(i, ev()).await.unwrap());
    }
    assert_eq!(store.list_issuers().await.unwrap(), vec![ci.clone(), github.clone(), k8s], "by name");
    let same_name = issuer("github", "https://other.example", IssuerKeys::Discovery);
    let same_iss = issuer("gh2", "https://token.actions.githubusercontent.com", IssuerKeys::Discovery);
    assert!(!store.insert_issuer(&same_name, ev()).await.unwrap());
    assert!(!store.insert_issuer(&same_iss, ev()).await.unwrap());
    assert_eq!(store.list_issuers().await.unwrap().len(), 3, "nothing written");
}

async fn federation_rules_round_trip_and_go_with_their_issuer(store: Arc<dyn Store>) {
    store.insert_client(&client("cli_a", NOW)).await.unwrap();
    store.insert_client(&client("cli_b", NOW)).await.unwrap();
    for name in ["github", "k8s"] {
        store
            .insert_issuer(&issuer(name, &format!("https://{name}.example"), IssuerKeys::Discovery), ev())
            .await
            .unwrap();
    }
    let mut unscoped = rule("fed_2", "cli_b", "k8s");
    unscoped.scopes = None;
    for r in [rule("fed_1", "cli_a", "github"), unscoped.clone(), rule("fed_3", "cli_a", "k8s")] {
        store.insert_federation_rule(&r, NOW, ev()).await.unwrap();
    }
    let all = store.list_federation_rules(None).await.unwrap();
    assert_eq!(all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["fed_1", "fed_2", "fed_3"]);
    assert_eq!(all[0], rule("fed_1", "cli_a", "github"), "conditions and caps as written");
    assert_eq!(all[1], unscoped);
    let of_b = store.list_federation_rules(Some(&client_id("cli_b"))).await.unwrap();
    assert_eq!(of_b, vec![unscoped]);

    assert!(store.remove_federation_rule("fed_1", ev()).await.unwrap());
    assert!(!store.remove_federation_rule("fed_1", ev()).await.unwrap(), "once");
    assert!(store.remove_issuer(&IssuerName::parse("k8s").unwrap(), ev()).await.unwrap());
    assert!(!store.remove_issuer(&IssuerName::parse("k8s").unwrap(), ev()).await.unwrap());
    assert!(store.list_federation_rules(None).await.unwrap().is_empty(), "the issuer's rules went with it");
    assert_eq!(store.list_issuers().await.unwrap().len(), 1);
}

/// Runs each test function against a fresh SQLite store and a fresh PostgreSQL database.
async fn last_uses_are_recorded_never_backwards(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW, DAY)).await;
    assert_eq!(
        (get(&*s, 1).await.last_used_at, s.get_client(&client_id("cli_a")).await.unwrap().unwrap().last_used_at),
        (None, None)
    );
    let uses = |at: i64| LastUses {
        tokens: vec![(long_id(1), at), (long_id(99), at)],
        clients: vec![(client_id("cli_a"), at), (client_id("cli_gone"), at)],
    };
    s.record_last_use(uses(NOW + 60)).await.unwrap();
    // An older time (another instance's, written late) does not move it back.
    s.record_last_use(uses(NOW + 30)).await.unwrap();
    assert_eq!(get(&*s, 1).await.last_used_at, Some(NOW + 60));
    assert_eq!(s.get_client(&client_id("cli_a")).await.unwrap().unwrap().last_used_at, Some(NOW + 60));
    s.record_last_use(uses(NOW + 120)).await.unwrap();
    assert_eq!(s.list_long_tokens(None).await.unwrap()[0].last_used_at, Some(NOW + 120));
    assert_eq!(s.list_clients().await.unwrap()[0].last_used_at, Some(NOW + 120));
    s.record_last_use(LastUses::default()).await.unwrap();
}

async fn expiry_warnings_are_given_once_with_their_event(s: Arc<dyn Store>) {
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    for (n, ttl) in [(1u128, 3 * DAY), (2, 10 * DAY), (3, DAY)] {
        insert(&*s, &token(n, "cli_a", NOW, ttl)).await;
    }
    let expiring = s.list_expiring_long_tokens(NOW, NOW + 7 * DAY, 0).await.unwrap();
    assert_eq!(expiring.iter().map(|t| t.id).collect::<Vec<_>>(), [long_id(3), long_id(1)], "soonest first");
    let longer = s.list_expiring_long_tokens(NOW, NOW + 7 * DAY, DAY).await.unwrap();
    assert_eq!(longer.iter().map(|t| t.id).collect::<Vec<_>>(), [long_id(1)], "issued for longer than a day");
    assert_eq!(s.list_unwarned_expiring(NOW, 7 * DAY).await.unwrap().len(), 0, "issued for 3 days: not at 7");
    assert_eq!(s.list_unwarned_expiring(NOW, 2 * DAY).await.unwrap().len(), 0, "not yet within 2 days");
    assert!(s_warn(&*s, 1, 7 * DAY).await);
    assert!(!s_warn(&*s, 1, 7 * DAY).await, "once");
    assert!(s_warn(&*s, 1, DAY).await, "once per lead time");
    assert_eq!(s.list_unwarned_expiring(NOW + 2 * DAY + 1, DAY).await.unwrap().len(), 0, "warned");
    assert_eq!(s.list_unwarned_expiring(NOW + 2 * DAY + 1, 2 * DAY).await.unwrap().len(), 1, "not at 2 days");
    let query = AuditQuery { client_id: None, since: None, after_id: 0, limit: 100 };
    let events = s.list_audit(&query).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.event.event == "token.expiring").count(), 2);
    // Gone with the token.
    s.purge_expired(NOW + 4 * DAY, NOW + 4 * DAY, 100).await.unwrap();
    let left = s.list_expiring_long_tokens(NOW + 4 * DAY, NOW + 20 * DAY, 0).await.unwrap();
    assert!(left.iter().all(|t| t.id == long_id(2)));
}

async fn s_warn(s: &dyn Store, n: u128, lead: i64) -> bool {
    s.warn_expiring(&long_id(n), lead, audit_event(lead, "token.expiring", Some("cli_a"))).await.unwrap()
}

// ----- webhooks -----------------------------------------------------------------------------

fn webhook(id: &str, events: &[EventType]) -> Webhook {
    Webhook {
        id: WebhookId::from_stored(id.into()),
        url: format!("https://{id}.example/hook"),
        events: events.to_vec(),
        secret_sealed: vec![1, 2, 3],
        created_at: NOW,
    }
}

fn wh_a() -> WebhookId {
    WebhookId::from_stored("wh_a".into())
}

fn pending_only(all: &[Delivery]) -> Vec<&Delivery> {
    all.iter().filter(|d| d.status == DeliveryStatus::Pending).collect()
}

async fn all_deliveries(s: &dyn Store) -> Vec<Delivery> {
    s.list_deliveries(&DeliveryQuery { webhook: None, status: None, limit: 1000 }).await.unwrap()
}

async fn webhook_messages_are_written_with_their_event_to_each_subscriber(s: Arc<dyn Store>) {
    let revoked_and_issued = webhook("wh_a", &[EventType::TokenIssued, EventType::TokenRevoked]);
    s.insert_webhook(&revoked_and_issued, 20, ev()).await.unwrap();
    s.insert_webhook(&webhook("wh_b", &[EventType::TokenRevoked, EventType::KeyRotated]), 20, ev()).await.unwrap();
    let listed = s.list_webhooks().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], revoked_and_issued, "receivers round-trip with their events");
    let at = crate::clock::millis(NOW);
    s.record_audit(vec![
        audit_event(at, "token.revoked", Some("cli_a")),
        audit_event(at, "long_token.issued", Some("cli_a")),
        audit_event(at, "auth.failed", Some("cli_a")),
        audit_event(at, "client.created", Some("cli_a")),
    ])
    .await
    .unwrap();
    let all = all_deliveries(&*s).await;
    let mut seen: Vec<(&str, &str)> = all.iter().map(|d| (d.webhook_id.as_str(), d.event_type.as_str())).collect();
    seen.sort_unstable();
    assert_eq!(seen, [("wh_a", "token.issued"), ("wh_a", "token.revoked"), ("wh_b", "token.revoked")]);
    let revoked: Vec<&Delivery> = all.iter().filter(|d| d.event_type == "token.revoked").collect();
    assert_eq!(revoked[0].message_id, revoked[1].message_id, "one message id for every receiver");
    assert_eq!(revoked[0].payload, revoked[1].payload);
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0 && d.next_attempt_at == at));
    // A change that writes nothing writes no message either.
    s.insert_client(&client("cli_a", NOW)).await.unwrap();
    assert!(
        !s.set_client_disabled(&client_id("cli_nobody"), true, audit_event(at, "client.disabled", None)).await.unwrap()
    );
    assert_eq!(all_deliveries(&*s).await.len(), 3);
    // The revocation of a lineage counts its descendants, in the audit trail and the message.
    s.insert_webhook(&webhook("wh_c", &[EventType::TokenRevoked]), 20, ev()).await.unwrap();
    insert(&*s, &token(1, "cli_a", NOW, DAY)).await;
    insert(&*s, &NewLongToken { parent: Some(long_id(1)), ..token(2, "cli_a", NOW, DAY) }).await;
    s.revoke_long_token(&long_id(1), NOW, audit_event(at, "token.revoked", Some("cli_a"))).await.unwrap();
    let of_c = DeliveryQuery { webhook: Some(WebhookId::from_stored("wh_c".into())), status: None, limit: 10 };
    let c = s.list_deliveries(&of_c).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&c[0].payload).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["cascade"].as_i64()), (Some("token.revoked"), Some(1)));
    // Removing a receiver drops its deliveries.
    assert!(s.remove_webhook(&WebhookId::from_stored("wh_a".into()), ev()).await.unwrap());
    assert!(!s.remove_webhook(&WebhookId::from_stored("wh_a".into()), ev()).await.unwrap(), "once");
    assert!(all_deliveries(&*s).await.iter().all(|d| d.webhook_id.as_str() != "wh_a"));
}

async fn deliveries_are_claimed_under_a_lease_and_finished_once(s: Arc<dyn Store>) {
    s.insert_webhook(&webhook("wh_a", &[EventType::TokenRevoked]), 20, ev()).await.unwrap();
    let at = crate::clock::millis(NOW);
    s.record_audit((0..3).map(|i| audit_event(at + i, "token.revoked", None)).collect()).await.unwrap();
    assert!(s.claim_deliveries(&wh_a(), at - 1, at + 10_000, 10).await.unwrap().is_empty(), "not due yet");
    assert!(!s.any_delivery_due(at - 1).await.unwrap());
    assert!(s.any_delivery_due(at + 5).await.unwrap());
    // Another receiver's deliveries are claimed for it alone.
    s.insert_webhook(&webhook("wh_b", &[EventType::KeyRotated]), 20, ev()).await.unwrap();
    s.record_audit(vec![audit_event(at, "signing_key.rotated", None)]).await.unwrap();
    let b = WebhookId::from_stored("wh_b".into());
    let of_b = s.claim_deliveries(&b, at + 5, at + 10_000, 10).await.unwrap();
    assert_eq!((of_b.len(), of_b[0].event_type.as_str()), (1, "key.rotated"));
    assert!(s.remove_webhook(&b, ev()).await.unwrap());
    let first = s.claim_deliveries(&wh_a(), at + 5, at + 10_000, 2).await.unwrap();
    assert_eq!(first.len(), 2, "at most the limit");
    assert!(first.iter().all(|d| d.attempts == 1 && d.next_attempt_at == at + 10_000));
    let second = s.claim_deliveries(&wh_a(), at + 5, at + 10_000, 10).await.unwrap();
    assert_eq!(second.len(), 1, "the leased ones are not claimed again");
    assert!(s.claim_deliveries(&wh_a(), at + 9_999, at + 20_000, 10).await.unwrap().is_empty());
    // One attempt failed and is retried later; one was delivered.
    let retry = DeliveryUpdate {
        status: DeliveryStatus::Pending,
        next_attempt_at: at + 60_000,
        last_error: Some("status 500".into()),
        finished_at: None,
    };
    assert!(s.update_delivery(&first[0], &retry).await.unwrap());
    let delivered = DeliveryUpdate {
        status: DeliveryStatus::Delivered,
        next_attempt_at: at + 100,
        last_error: None,
        finished_at: Some(at + 100),
    };
    assert!(s.update_delivery(&first[1], &delivered).await.unwrap());
    assert!(!s.update_delivery(&first[1], &retry).await.unwrap(), "a finished delivery stays finished");
    // The third's claimer died: after its lease it is claimed again, and the stale claim's
    // outcome no longer applies.
    let again = s.claim_deliveries(&wh_a(), at + 10_001, at + 30_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message_id.clone(), again[0].attempts), (second[0].message_id.clone(), 2));
    assert!(!s.update_delivery(&second[0], &delivered).await.unwrap(), "the expired claim changes nothing");
    assert!(s.update_delivery(&again[0], &delivered).await.unwrap());
    let all = all_deliveries(&*s).await;
    assert_eq!(pending_only(&all).len(), 1);
    let delivered_only = DeliveryQuery { webhook: None, status: Some(DeliveryStatus::Delivered), limit: 10 };
    assert_eq!(s.list_deliveries(&delivered_only).await.unwrap().len(), 2);
    // Finished deliveries go with the retention; pending ones stay.
    let p = s.purge_expired(NOW + DAY, NOW + 1, 100).await.unwrap();
    assert_eq!(p.webhook_deliveries, 2);
    assert_eq!(all_deliveries(&*s).await.len(), 1);
    // The last one fails for good; an operator schedules it again, from the first attempt.
    let last = s.claim_deliveries(&wh_a(), at + 60_000, at + 70_000, 10).await.unwrap();
    let failed = DeliveryUpdate { status: DeliveryStatus::Failed, finished_at: Some(at + 60_001), ..retry.clone() };
    assert!(s.update_delivery(&last[0], &failed).await.unwrap());
    let other = Some(WebhookId::from_stored("wh_b".into()));
    assert_eq!(s.redeliver(&last[0].message_id, other.as_ref(), at + 80_000).await.unwrap(), 0, "another receiver's");
    assert_eq!(s.redeliver(&last[0].message_id, None, at + 80_000).await.unwrap(), 1);
    assert_eq!(s.redeliver(&last[0].message_id, None, at + 80_000).await.unwrap(), 0, "no longer failed");
    let again = s.claim_deliveries(&wh_a(), at + 80_000, at + 90_000, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts, again[0].last_error.clone()), (1, 1, None));
}

async fn racing_receivers_never_pass_the_cap(s: Arc<dyn Store>) {
    let added = race(RACERS, |i| {
        let s = s.clone();
        async move { s.insert_webhook(&webhook(&format!("wh_{i}"), &[EventType::TokenRevoked]), 5, ev()).await.unwrap() }
    })
    .await;
    assert_eq!(added, 5);
    assert_eq!(s.list_webhooks().await.unwrap().len(), 5);
    let query = AuditQuery { client_id: None, since: None, after_id: 0, limit: 100 };
    assert_eq!(s.list_audit(&query).await.unwrap().len(), 5, "an event for each receiver added, and no other");
}

async fn racing_claims_never_share_a_delivery(s: Arc<dyn Store>) {
    s.insert_webhook(&webhook("wh_a", &[EventType::TokenRevoked]), 20, ev()).await.unwrap();
    let at = crate::clock::millis(NOW);
    s.record_audit((0..60).map(|i| audit_event(at + i, "token.revoked", None)).collect()).await.unwrap();
    let claims = race_all(RACERS, |_| {
        let s = s.clone();
        async move { s.claim_deliveries(&wh_a(), at + 100, at + 10_000, 5).await.unwrap() }
    })
    .await;
    let mut ids: Vec<String> = claims.iter().flatten().map(|d| d.message_id.to_string()).collect();
    let claimed = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "no delivery claimed twice");
    assert!(claimed >= 5, "the claims made progress");
    assert!(all_deliveries(&*s).await.iter().all(|d| d.attempts <= 1));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::PgTestDb::create(stringify!($name)).await else { return };
                    let store = super::PgStore::connect(&db.url).await.unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    ping_answers,
    clients_round_trip,
    clients_are_listed_by_creation_then_id,
    otp_steps_only_move_forward,
    otp_step_is_single_use_under_races,
    assertion_jti_is_single_use,
    assertion_jti_is_single_use_under_races,
    long_tokens_round_trip,
    long_tokens_carry_their_clients_disabled_flag,
    long_tokens_are_listed_by_issue_time_then_id,
    rotation_without_grace_revokes_at_once,
    rotation_with_grace_schedules_the_earliest_revocation,
    rotation_needs_a_live_target_of_the_same_client,
    rotation_race_without_grace_has_one_winner,
    long_token_revocation_is_idempotent_and_never_postponed,
    revocation_cascades_to_every_descendant_and_no_further,
    a_child_needs_a_live_parent_of_its_client,
    a_rotation_ends_the_rotated_tokens_descendants_with_it,
    children_racing_their_parents_revocation_never_outlive_it,
    failures_are_counted_until_the_limit_then_refused,
    a_lock_is_recorded_only_for_a_counter_that_announces_it,
    racing_failures_are_counted_at_most_the_limit,
    short_token_revocation_is_idempotent,
    signing_keys_round_trip,
    signing_key_rotation_retires_the_keys_of_its_algorithm_when_it_activates,
    client_secret_rotation_keeps_the_old_hash_for_the_overlap,
    audit_events_round_trip_filter_page_and_purge,
    audited_writes_record_their_event_with_them_or_not_at_all,
    purge_deletes_only_what_expired_in_bounded_batches,
    purge_with_a_large_batch_takes_everything_at_once,
    // admin listings and changes
    current_long_tokens_are_neither_expired_nor_revoked,
    a_client_public_key_is_set_once_unless_replaced,
    last_uses_are_recorded_never_backwards,
    expiry_warnings_are_given_once_with_their_event,
    // federation
    issuers_round_trip_and_names_and_iss_are_unique,
    federation_rules_round_trip_and_go_with_their_issuer,
    // webhooks
    webhook_messages_are_written_with_their_event_to_each_subscriber,
    deliveries_are_claimed_under_a_lease_and_finished_once,
    racing_claims_never_share_a_delivery,
    racing_receivers_never_pass_the_cap,
);

// ----- PostgreSQL only: several instances, lost connections ---------------------------------

mod postgres_only {
    use super::*;

    #[test]
    fn database_urls_are_rewritten() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgresql://u:p@h/test?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(with_database("postgres://u@h?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }

    /// Instances that start together on an empty database all come up (the migration runs
    /// without an advisory lock), and later starts find it applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_together_share_one_schema() {
        let Some(db) = PgTestDb::create("instances_starting_together_share_one_schema").await else { return };
        let stores = race_all(4, |_| {
            let url = db.url.clone();
            async move { PgStore::connect(&url).await }
        })
        .await;
        let stores: Vec<PgStore> = stores.into_iter().map(|s| s.unwrap()).collect();
        let again = PgStore::connect(&db.url).await.unwrap();
        // One instance writes, another reads it: they share the data.
        stores[0].insert_client(&client("cli_shared", NOW)).await.unwrap();
        assert!(again.get_client(&client_id("cli_shared")).await.unwrap().is_some());
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(again.pool())
            .await
            .unwrap();
        let migrations =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
        assert_eq!(applied, migrations as i64, "each migration applied once");
    }

    /// A single-use check holds across instances, each with its own pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn single_use_holds_across_instances() {
        let Some(db) = PgTestDb::create("single_use_holds_across_instances").await else { return };
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..4 {
            stores.push(Arc::new(PgStore::connect(&db.url).await.unwrap()));
        }
        stores[0].insert_client(&client("cli_a", NOW)).await.unwrap();
        let id = client_id("cli_a");
        let otp = race(RACERS, |i| {
            let (s, id) = (stores[i % stores.len()].clone(), id.clone());
            async move { s.consume_otp_step(&id, 77).await.unwrap() }
        })
        .await;
        assert_eq!(otp, 1);
        let jti = race(RACERS, |i| {
            let (s, id) = (stores[i % stores.len()].clone(), id.clone());
            async move { s.consume_assertion_jti(&id, "shared", NOW + 300).await.unwrap() }
        })
        .await;
        assert_eq!(jti, 1);
    }

    /// After the server ends every connection (`pg_terminate_backend`, as in a restart or a
    /// failover), the store replaces them by itself: the next calls succeed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_store_recovers_from_terminated_connections() {
        let Some(db) = PgTestDb::create("the_store_recovers_from_terminated_connections").await else { return };
        let store = PgStore::connect(&db.url).await.unwrap();
        store.insert_client(&client("cli_a", NOW)).await.unwrap();
        // Open several pooled connections, so that several die.
        let s: Arc<dyn Store> = Arc::new(store.clone());
        race_all(8, |_| {
            let s = s.clone();
            async move { s.get_client(&client_id("cli_a")).await.unwrap() }
        })
        .await;
        let mut admin = admin_connection(&db.admin_url).await;
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
        )
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(killed >= 1, "no connection was terminated");
        for _ in 0..20 {
            assert!(store.get_client(&client_id("cli_a")).await.unwrap().is_some());
        }
        assert!(store.consume_otp_step(&client_id("cli_a"), 5).await.unwrap());
    }

    /// A closed pool, like an unreachable server, is `Unavailable` (503), not `Backend`.
    #[tokio::test]
    async fn a_closed_pool_is_unavailable() {
        let Some(db) = PgTestDb::create("a_closed_pool_is_unavailable").await else { return };
        let store = PgStore::connect(&db.url).await.unwrap();
        store.pool().close().await;
        assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
        assert!(matches!(store.get_client(&client_id("cli_a")).await, Err(StoreError::Unavailable(_))));
    }
}
