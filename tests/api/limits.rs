//! Failed-authentication limits (per client and per source address) and the optional issuance
//! limit: past them every attempt, a correct one included, is 429 with `Retry-After`, until
//! the window frees.

use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestClient, issued, join_all, merge, secret_grant, spawn_app, spawn_app_with, unknown_client_id,
};

fn wrong_secret(client: &TestClient) -> Value {
    merge(secret_grant(client), json!({"client_secret": "tsc_not-the-secret"}))
}

#[tokio::test]
async fn ten_wrong_secrets_lock_the_client_until_the_window_frees() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    for attempt in 1..=10 {
        let reply = app.post_long(&wrong_secret(&client)).await;
        assert_eq!(reply.status, 401, "attempt {attempt} is within the limit: {}", reply.text);
    }
    app.post_long(&wrong_secret(&client)).await.assert_rate_limited();
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();

    app.clock.advance_secs(61);

    issued(&app.post_long(&secret_grant(&client)).await);
}

#[tokio::test]
async fn a_locked_client_is_locked_for_every_mechanism() {
    let app = spawn_app_with(|s| s.failures_per_client = 3).await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    for _ in 0..3 {
        app.post_long(&wrong_secret(&client)).await.assert_status(401);
    }

    let otp =
        json!({"grant_type": "client_credentials", "client_id": client.client_id, "otp_code": app.otp_code(&client)});
    app.post_long(&otp).await.assert_rate_limited();
    app.send(
        app.post(crate::helpers::LONG)
            .header("X-Client-Key", &client.client_id)
            .json(&merge(secret_grant(&client), json!({"client_id": null}))),
    )
    .await
    .assert_rate_limited();
}

#[tokio::test]
async fn a_locked_client_does_not_lock_other_clients() {
    let app = spawn_app_with(|s| s.failures_per_client = 3).await;
    let client = app.create_client("ci", "read").await;
    let other = app.create_client("other", "read").await;
    for _ in 0..4 {
        app.post_long(&wrong_secret(&client)).await;
    }
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();

    issued(&app.post_long(&secret_grant(&other)).await);
}

#[tokio::test]
async fn failed_assertions_count_against_the_client() {
    let app = spawn_app_with(|s| s.failures_per_client = 2).await;
    let key = crate::keys::ClientKey::ed25519();
    let client = app.create_key_client("robot", "read", &key, crate::keys::KeyForm::Pem).await;
    let impostor = crate::keys::ClientKey::ed25519();
    for _ in 0..2 {
        let forged = impostor.sign(&app.assertion_claims(&client.client_id));
        app.post_long(&crate::helpers::assertion_grant(&forged)).await.assert_error(401, "invalid_grant");
    }

    let good = key.sign(&app.assertion_claims(&client.client_id));
    app.post_long(&crate::helpers::assertion_grant(&good)).await.assert_rate_limited();

    app.clock.advance_secs(61);
    let good = key.sign(&app.assertion_claims(&client.client_id));
    issued(&app.post_long(&crate::helpers::assertion_grant(&good)).await);
}

#[tokio::test]
async fn the_address_limit_applies_across_clients() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 100;
        s.failures_per_address = 5;
    })
    .await;
    let client = app.create_client("ci", "read").await;

    for attempt in 1..=5 {
        let reply = app.post_long(&merge(secret_grant(&client), json!({"client_id": unknown_client_id()}))).await;
        assert_eq!(reply.status, 401, "attempt {attempt}: {}", reply.text);
    }
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();

    app.clock.advance_secs(61);

    issued(&app.post_long(&secret_grant(&client)).await);
}

#[tokio::test]
async fn concurrent_wrong_secrets_never_exceed_the_limit() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let body = wrong_secret(&client);

    let replies: Vec<Reply> = join_all((0..30).map(|_| app.post_long(&body))).await;

    let unauthorized = replies.iter().filter(|r| r.status == 401).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(unauthorized + limited, 30, "only 401 or 429");
    assert!(unauthorized <= 10, "at most 10 failures are judged, got {unauthorized}");
    for reply in replies.iter().filter(|r| r.status == 429) {
        reply.assert_rate_limited();
    }
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();
}

#[tokio::test]
async fn invalid_bearer_tokens_on_short_issuance_are_limited_per_address() {
    let app = spawn_app_with(|s| s.failures_per_address = 3).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    for _ in 0..3 {
        app.post_short(Some("tsl_garbage"), None).await.assert_invalid_token();
    }
    app.post_short(Some("tsl_garbage"), None).await.assert_rate_limited();
    app.post_short(Some(&long.access_token), None).await.assert_rate_limited();

    app.clock.advance_secs(61);

    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn a_revoked_bearer_token_counts_against_its_address_never_its_client() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 2;
        s.failures_per_address = 4;
    })
    .await;
    let client = app.create_client("ci", "read").await;
    let revoked = app.issue_long(&client).await;
    let good = app.issue_long(&client).await;
    app.revoke(Some(&revoked.access_token), &revoked.token_id).await.assert_status(204);

    for _ in 0..3 {
        app.post_short(Some(&revoked.access_token), None).await.assert_invalid_token();
    }

    // Past the client's limit, but bearer failures never lock a client: its tokens and
    // secret still work.
    app.issue_short(&good.access_token).await;
    issued(&app.post_long(&secret_grant(&client)).await);
    // The address has one failure left, then every issuance from it is refused.
    app.post_short(Some(&revoked.access_token), None).await.assert_invalid_token();
    app.post_short(Some(&good.access_token), None).await.assert_rate_limited();
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_is_a_failed_authentication() {
    let app = spawn_app_with(|s| s.failures_per_address = 3).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    app.post_short(None, None).await.assert_bearer_required();
    let malformed = app.post(crate::helpers::SHORT).header("Authorization", "Basic dXNlcjpwYXNz");
    app.send(malformed).await.assert_invalid_token();
    app.revoke(None, &long.token_id).await.assert_bearer_required();

    app.post_short(Some(&long.access_token), None).await.assert_rate_limited();
    app.post_short(None, None).await.assert_rate_limited();
}

#[tokio::test]
async fn bad_short_term_requests_do_not_count_as_failed_authentications() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 2;
        s.failures_per_address = 2;
    })
    .await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    for _ in 0..5 {
        app.post_short(Some(&long.access_token), Some(&json!({"ttl_seconds": 5}))).await.assert_status(400);
        app.post_short(Some(&long.access_token), Some(&json!({"scopes": ["admin"]})))
            .await
            .assert_error(400, "invalid_scope");
    }

    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn the_issuance_limit_answers_429_past_its_rate() {
    let app = spawn_app_with(|s| s.issuance_per_client_per_minute = 2).await;
    let client = app.create_client("ci", "read").await;
    let other = app.create_client("other", "read").await;

    app.issue_long(&client).await;
    app.issue_long(&client).await;
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();

    issued(&app.post_long(&secret_grant(&other)).await);
}

#[tokio::test]
async fn the_issuance_limit_applies_to_short_term_tokens_too() {
    let app = spawn_app_with(|s| s.issuance_per_client_per_minute = 2).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = app.post_short(Some(&long.access_token), None).await;
        if reply.status == 429 {
            reply.assert_rate_limited();
        } else {
            issued(&reply);
        }
        statuses.push(reply.status.as_u16());
    }

    assert_eq!(statuses.last(), Some(&429), "past two issuances a minute: {statuses:?}");
}

#[tokio::test]
async fn the_issuance_limit_is_off_by_default() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    for _ in 0..25 {
        app.issue_short(&long.access_token).await;
    }
    for _ in 0..5 {
        app.issue_long(&client).await;
    }
}
