//! Rotation: a new long-term token replaces a live one of the same client, at once or after
//! `grace_seconds`.

use serde_json::json;

use crate::helpers::{TestApp, TestClient, merge, secret_grant, spawn_app};

async fn app_and_client() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read tokens:write").await;
    (app, client)
}

#[tokio::test]
async fn rotating_without_grace_revokes_the_old_token_at_once() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    let old_short = app.issue_short(&old.access_token).await;

    let new = app.issue_long_with(&client, json!({"rotate_token_id": old.token_id})).await;

    assert_eq!(new.body["rotated_token_id"], old.token_id.as_str());
    assert_ne!(new.token_id, old.token_id);
    app.post_short(Some(&old.access_token), None).await.assert_invalid_token();
    app.revoke(Some(&old_short.access_token), &old_short.token_id).await.assert_invalid_token();
    app.issue_short(&new.access_token).await;
}

#[tokio::test]
async fn an_explicit_grace_of_zero_revokes_the_old_token_at_once() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;

    app.issue_long_with(&client, json!({"rotate_token_id": old.token_id, "grace_seconds": 0})).await;

    app.post_short(Some(&old.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn the_old_token_keeps_working_until_the_grace_period_ends() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;

    let new = app.issue_long_with(&client, json!({"rotate_token_id": old.token_id, "grace_seconds": 300})).await;

    assert_eq!(new.body["rotated_token_id"], old.token_id.as_str());
    app.issue_short(&old.access_token).await;
    app.clock.advance_secs(240);
    app.issue_short(&old.access_token).await;

    app.clock.advance_secs(120);

    app.post_short(Some(&old.access_token), None).await.assert_invalid_token();
    app.issue_short(&new.access_token).await;
}

#[tokio::test]
async fn rotation_works_with_the_short_token_grant() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    let short = app.issue_short(&old.access_token).await;

    let reply = app
        .post_long_with_short(
            &short.access_token,
            &json!({"grant_type": "short_token", "rotate_token_id": old.token_id}),
        )
        .await;

    let new = crate::helpers::issued(&reply);
    assert_eq!(new.body["rotated_token_id"], old.token_id.as_str());
    app.post_short(Some(&old.access_token), None).await.assert_invalid_token();
    app.issue_short(&new.access_token).await;
}

#[tokio::test]
async fn grace_seconds_outside_0_to_86400_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;

    for grace in [json!(-1), json!(86_401), json!(1_000_000), json!("60")] {
        let reply = app
            .post_long(&merge(secret_grant(&client), json!({"rotate_token_id": old.token_id, "grace_seconds": grace})))
            .await;
        assert_eq!(reply.status, 400, "grace_seconds {grace}: {}", reply.text);
        reply.assert_invalid_request();
    }
    app.issue_long_with(&client, json!({"rotate_token_id": old.token_id, "grace_seconds": 86_400})).await;
}

#[tokio::test]
async fn rotating_a_revoked_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    app.revoke(Some(&old.access_token), &old.token_id).await.assert_status(204);

    let reply = app.post_long(&merge(secret_grant(&client), json!({"rotate_token_id": old.token_id}))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn rotating_an_already_rotated_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    app.issue_long_with(&client, json!({"rotate_token_id": old.token_id})).await;

    let reply = app.post_long(&merge(secret_grant(&client), json!({"rotate_token_id": old.token_id}))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn rotating_an_expired_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long_with(&client, json!({"ttl_days": 1})).await;
    app.clock.advance_secs(2 * 86_400);

    let reply = app.post_long(&merge(secret_grant(&client), json!({"rotate_token_id": old.token_id}))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn rotating_another_clients_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let other = app.create_client("other", "read").await;
    let theirs = app.issue_long(&other).await;

    let reply = app.post_long(&merge(secret_grant(&client), json!({"rotate_token_id": theirs.token_id}))).await;

    reply.assert_invalid_request();
    app.issue_short(&theirs.access_token).await;
}

#[tokio::test]
async fn rotating_something_that_is_not_a_long_term_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    for id in [short.token_id.as_str(), unknown.as_str(), "garbage", "", long.access_token.as_str()] {
        let reply = app.post_long(&merge(secret_grant(&client), json!({"rotate_token_id": id}))).await;
        assert_eq!(reply.status, 400, "rotate_token_id {id:?}: {}", reply.text);
        reply.assert_invalid_request();
    }
    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn rotating_the_same_token_twice_at_once_succeeds_once() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    let body = merge(secret_grant(&client), json!({"rotate_token_id": old.token_id}));

    let replies = crate::helpers::join_all((0..3).map(|_| app.post_long(&body))).await;

    let accepted = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(accepted, 1, "one replacement: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn short_term_tokens_of_the_old_token_stop_working_when_the_grace_period_ends() {
    let (app, client) = app_and_client().await;
    let old = app.issue_long(&client).await;
    app.issue_long_with(&client, json!({"rotate_token_id": old.token_id, "grace_seconds": 120})).await;
    let short = app.issue_short(&old.access_token).await;
    let other = app.issue_short(&old.access_token).await;

    app.clock.advance_secs(180);

    app.revoke(Some(&short.access_token), &other.token_id).await.assert_invalid_token();
}
