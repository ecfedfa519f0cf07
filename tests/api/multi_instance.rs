//! Two real instances on one database (PostgreSQL, or one SQLite file): revocations made
//! through one are seen by the other within the one-second staleness bound of the long-term
//! token cache; single-use credentials are single-use across instances, also when two requests
//! race; failed-authentication limits hold for both together; signing keys are shared.
//!
//! These tests run on both backends (see `helpers::backend`).

use std::future::Future;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, TestClient, assertion_grant, issued, merge, secret_grant, spawn_app_with, verify_with_jwks,
};
use crate::keys::{ClientKey, KeyForm};

/// Both instances announce this issuer, as instances behind one load balancer must.
const ISSUER: &str = "http://tokensmith.test";
/// `token_cache_ttl_ms` by default: how long an instance may serve a long-term token record
/// (or a short-term token's revocation state) from memory.
const STALENESS_BOUND: Duration = Duration::from_millis(1000);
/// Allowance for the injected clock's whole milliseconds and for `Instant` against wall time.
const SLACK: Duration = Duration::from_millis(100);
/// How long a test polls before it fails (reached only when the bound does not hold).
const GIVE_UP: Duration = Duration::from_secs(10);

/// Instance A and instance B on one database, with the same settings and master key.
async fn two_instances() -> (TestApp, TestApp) {
    two_instances_with(|_| {}).await
}

async fn two_instances_with(
    configure: impl Fn(&mut tokensmith::config::Settings) + Send + Sync + 'static,
) -> (TestApp, TestApp) {
    let a = spawn_app_with(move |s| {
        s.issuer = Some(ISSUER.to_owned());
        configure(s);
    })
    .await;
    let b = a.spawn_sibling().await;
    (a, b)
}

fn random_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Polls `probe` on an instance that did not make a change (revocation, disabling) until it
/// answers 401 `invalid_token`, and checks the staleness bound in real time: every request it
/// still accepted was sent less than one second after `changed`, the moment the change was
/// acknowledged. (That instance cached the record before the change was committed, with a
/// deadline one second after loading it on its clock, which runs at real time here: a request
/// it accepts is processed, so also sent, before that deadline.) Stating the bound on the send
/// time keeps the test exact on a loaded machine, where an answer may come late.
///
/// This is a bounded real-time loop with short sleeps on purpose: it measures a real-time bound.
/// Returns how long after `changed` the first rejected request was sent.
async fn assert_rejected_within_the_bound<F, Fut>(what: &str, changed: Instant, accepted: u16, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Reply>,
{
    loop {
        let sent = Instant::now();
        let reply = probe().await;
        let after = sent.duration_since(changed);
        if reply.status == 401 {
            reply.assert_invalid_token();
            return after;
        }
        assert_eq!(reply.status, accepted, "{what}: accepted or rejected, got {}: {}", reply.status, reply.text);
        assert!(
            after < STALENESS_BOUND + SLACK,
            "{what}: still accepted by a request sent {after:?} after the change (bound: {STALENESS_BOUND:?})"
        );
        assert!(changed.elapsed() < GIVE_UP, "{what}: never rejected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_long_term_token_revoked_through_one_instance_is_rejected_by_the_other_within_one_second() {
    let (a, b) = two_instances().await;
    let client = a.create_client("ci", "read tokens:introspect").await;
    let long = a.issue_long(&client).await;
    let short = a.issue_short(&long.access_token).await;
    let auditor = b.issue_long(&client).await;
    // B holds the long-term token's record in its cache, and the short-term token is accepted.
    b.issue_short(&long.access_token).await;
    let unknown = random_id();
    b.revoke(Some(&short.access_token), &unknown).await.assert_error(404, "not_found");

    a.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);
    let changed = Instant::now();

    // The instance that revoked rejects both at once.
    a.post_short(Some(&long.access_token), None).await.assert_invalid_token();
    a.revoke(Some(&short.access_token), &unknown).await.assert_invalid_token();
    // The other, within the bound, without a restart; the short-term token by the cascade.
    tokio::join!(
        assert_rejected_within_the_bound("the long-term token on B", changed, 201, || b
            .post_short(Some(&long.access_token), None)),
        assert_rejected_within_the_bound("its short-term token on B", changed, 404, || b
            .revoke(Some(&short.access_token), &unknown)),
    );
    assert!(!b.is_active(&auditor.access_token, &long.access_token).await);
    assert!(!b.is_active(&auditor.access_token, &short.access_token).await);
    // As its own bearer, it can no longer revoke itself through B either.
    b.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
}

#[tokio::test]
async fn a_child_token_is_rejected_by_the_other_instance_within_one_second_of_its_parents_revocation() {
    let (a, b) = two_instances().await;
    let client = a.create_client("ci", "read tokens:write").await;
    let parent = a.issue_long(&client).await;
    let short = a.issue_short(&parent.access_token).await;
    let child = issued(&a.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await);
    let grandchild_short = b.issue_short(&child.access_token).await;
    let grandchild =
        issued(&b.post_long_with_short(&grandchild_short.access_token, &json!({"grant_type": "short_token"})).await);
    // B holds both records in its cache.
    b.issue_short(&child.access_token).await;
    b.issue_short(&grandchild.access_token).await;

    a.revoke(Some(&parent.access_token), &parent.token_id).await.assert_status(204);
    let changed = Instant::now();

    a.post_short(Some(&child.access_token), None).await.assert_invalid_token();
    a.post_short(Some(&grandchild.access_token), None).await.assert_invalid_token();
    tokio::join!(
        assert_rejected_within_the_bound("the child on B", changed, 201, || b
            .post_short(Some(&child.access_token), None)),
        assert_rejected_within_the_bound("the grandchild on B", changed, 201, || b
            .post_short(Some(&grandchild.access_token), None)),
    );
}

#[tokio::test]
async fn a_short_term_token_revoked_through_one_instance_is_rejected_by_the_other_within_one_second() {
    let (a, b) = two_instances().await;
    let client = a.create_client("ci", "read tokens:introspect").await;
    let long = a.issue_long(&client).await;
    let short = a.issue_short(&long.access_token).await;
    let unknown = random_id();
    // A has checked the short-term token, so its revocation state is in A's cache.
    a.revoke(Some(&short.access_token), &unknown).await.assert_error(404, "not_found");

    b.revoke(Some(&long.access_token), &short.token_id).await.assert_status(204);
    let changed = Instant::now();

    b.revoke(Some(&short.access_token), &unknown).await.assert_invalid_token();
    assert_rejected_within_the_bound("the short-term token on A", changed, 404, || {
        a.revoke(Some(&short.access_token), &unknown)
    })
    .await;
    assert!(!a.is_active(&long.access_token, &short.access_token).await);
    // Its parent is untouched.
    a.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn a_client_disabled_by_the_command_line_is_rejected_by_running_instances_within_one_second() {
    let (a, b) = two_instances().await;
    let client = a.create_client("ci", "read").await;
    let long = a.issue_long(&client).await;
    a.issue_short(&long.access_token).await;
    b.issue_short(&long.access_token).await;

    let out = a.cli(&["client", "disable", &client.client_id]).await;
    assert!(out.status.success(), "client disable: {}", String::from_utf8_lossy(&out.stderr));
    let changed = Instant::now();

    tokio::join!(
        assert_rejected_within_the_bound("on A", changed, 201, || a.post_short(Some(&long.access_token), None)),
        assert_rejected_within_the_bound("on B", changed, 201, || b.post_short(Some(&long.access_token), None)),
    );
    a.post_long(&secret_grant(&client)).await.assert_error(401, "invalid_client");
    b.post_long(&secret_grant(&client)).await.assert_error(401, "invalid_client");
}

/// Sends `body` to the long-token endpoint of A and B at the same time; checks that exactly one
/// is issued and the other is a 401 `invalid_grant`.
async fn race_on_both(a: &TestApp, b: &TestApp, body: &Value, round: usize) {
    let (on_a, on_b) = tokio::join!(a.post_long(body), b.post_long(body));
    let (won, lost) = match (on_a.status.as_u16(), on_b.status.as_u16()) {
        (201, _) => (on_a, on_b),
        (_, 201) => (on_b, on_a),
        (x, y) => panic!("round {round}: one of the two is issued, got {x}: {} and {y}: {}", on_a.text, on_b.text),
    };
    issued(&won);
    lost.assert_error(401, "invalid_grant");
}

// Multi-threaded, so that the two instances' handlers run in parallel, not interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_otp_code_is_accepted_once_across_instances_also_when_two_requests_race() {
    let (a, b) = two_instances().await;
    let client = a.create_otp_client("ci", "read").await;
    a.align_to_otp_step();
    let otp =
        |code: String| json!({"grant_type": "client_credentials", "client_id": client.client_id, "otp_code": code});

    // Used on A, replayed on B (and the other way round).
    let code = a.otp_code(&client);
    issued(&a.post_long(&otp(code.clone())).await);
    b.post_long(&otp(code)).await.assert_error(401, "invalid_grant");
    a.clock.advance_secs(30);
    let code = b.otp_code(&client);
    issued(&b.post_long(&otp(code.clone())).await);
    a.post_long(&otp(code)).await.assert_error(401, "invalid_grant");

    // The same code at both at once, in a fresh step each round (the clock is shared).
    for round in 0..4 {
        a.clock.advance_secs(30);
        race_on_both(&a, &b, &otp(a.otp_code(&client)), round).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_assertion_is_accepted_once_across_instances_also_when_two_requests_race() {
    let (a, b) = two_instances().await;
    let key = ClientKey::ed25519();
    let client = a.create_key_client("robot", "read", &key, KeyForm::Pem).await;

    let assertion = key.sign(&a.assertion_claims(&client.client_id));
    issued(&b.post_long(&assertion_grant(&assertion)).await);
    a.post_long(&assertion_grant(&assertion)).await.assert_error(401, "invalid_grant");

    for round in 0..6 {
        let assertion = key.sign(&a.assertion_claims(&client.client_id));
        race_on_both(&a, &b, &assertion_grant(&assertion), round).await;
    }
}

fn wrong_secret(client: &TestClient) -> Value {
    merge(secret_grant(client), json!({"client_secret": "tsc_not-the-secret"}))
}

/// Failed authentications are counted in the database: N instances allow the same number as
/// one, and a lock decided by one is honoured by the others within the staleness bound.
#[tokio::test]
async fn failed_authentication_limits_hold_for_the_whole_deployment() {
    let limit = 3;
    let (a, b) = two_instances_with(move |s| s.failures_per_client = limit).await;
    let client = a.create_client("ci", "read").await;
    // B has seen the client succeed before anyone failed.
    issued(&b.post_long(&secret_grant(&client)).await);

    a.post_long(&wrong_secret(&client)).await.assert_status(401);
    b.post_long(&wrong_secret(&client)).await.assert_status(401);
    a.post_long(&wrong_secret(&client)).await.assert_status(401);
    let locked = Instant::now();

    // The limit is reached for the deployment: every further guess, on either, is refused.
    a.post_long(&wrong_secret(&client)).await.assert_rate_limited();
    b.post_long(&wrong_secret(&client)).await.assert_rate_limited();
    a.post_long(&secret_grant(&client)).await.assert_rate_limited();
    // B refuses even the right secret within the bound (it learns the lock from the database).
    loop {
        let sent = Instant::now();
        let reply = b.post_long(&secret_grant(&client)).await;
        if reply.status == 429 {
            reply.assert_rate_limited();
            break;
        }
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert!(sent.duration_since(locked) < STALENESS_BOUND + SLACK, "B still accepts after the bound");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    a.clock.advance_secs(61);
    issued(&a.post_long(&secret_grant(&client)).await);
    issued(&b.post_long(&secret_grant(&client)).await);
}

/// Guesses racing on both instances at once: no more than the limit are judged in all.
#[tokio::test]
async fn racing_guesses_on_two_instances_are_judged_at_most_the_limit_in_all() {
    let limit = 5;
    let (a, b) = two_instances_with(move |s| s.failures_per_client = limit).await;
    let client = a.create_client("ci", "read").await;
    let body = wrong_secret(&client);

    let replies =
        crate::helpers::join_all((0..40).map(|i| if i % 2 == 0 { a.post_long(&body) } else { b.post_long(&body) }))
            .await;

    let judged = replies.iter().filter(|r| r.status == 401).count();
    assert!(replies.iter().all(|r| r.status == 401 || r.status == 429), "only 401 or 429");
    assert_eq!(judged, limit as usize, "exactly the limit judged across both instances");
}

#[tokio::test]
async fn instances_share_signing_keys_so_a_jwt_from_one_verifies_with_the_others_jwks() {
    let (a, b) = two_instances().await;
    let client = a.create_client("ci", "read").await;
    let long = a.issue_long(&client).await;
    let from_a = a.issue_short(&long.access_token).await;
    let from_b = b.issue_short(&long.access_token).await;

    assert_eq!(a.jwks().await, b.jwks().await, "one key set");
    let claims = verify_with_jwks(&b, &from_a.access_token, Algorithm::EdDSA, ISSUER).await;
    assert_eq!(claims["jti"], from_a.token_id.as_str());
    let claims = verify_with_jwks(&a, &from_b.access_token, Algorithm::EdDSA, ISSUER).await;
    assert_eq!(claims["jti"], from_b.token_id.as_str());
    // And each instance accepts the other's JWT as a bearer token.
    b.revoke(Some(&from_a.access_token), &random_id()).await.assert_error(404, "not_found");
    a.revoke(Some(&from_b.access_token), &random_id()).await.assert_error(404, "not_found");
}
