//! revokeToken: who may revoke what, idempotence, 404 for anything else, and the cascade from
//! a long-term token to the short-term tokens minted from it.

use serde_json::json;

use crate::helpers::{TestApp, TestClient, spawn_app, spawn_app_with};

async fn app_and_client(scopes: &str) -> (TestApp, TestClient) {
    let app = spawn_app().await;
    let client = app.create_client("ci", scopes).await;
    (app, client)
}

#[tokio::test]
async fn a_long_term_token_can_revoke_itself() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;

    let reply = app.revoke(Some(&long.access_token), &long.token_id).await;

    reply.assert_status(204);
    assert!(reply.text.is_empty(), "204 has an empty body: {:?}", reply.text);
    app.post_short(Some(&long.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_short_term_token_can_revoke_itself() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;

    let reply = app.revoke(Some(&short.access_token), &short.token_id).await;

    reply.assert_status(204);
    assert!(reply.text.is_empty());
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
    // Its parent is untouched.
    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn a_long_term_token_can_revoke_the_short_term_tokens_minted_from_it() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let sibling = app.issue_short(&long.access_token).await;

    app.revoke(Some(&long.access_token), &short.token_id).await.assert_status(204);

    app.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
    // Only that one: the long-term token and its other short-term token still work.
    app.issue_short(&long.access_token).await;
    app.revoke(Some(&sibling.access_token), &sibling.token_id).await.assert_status(204);
}

#[tokio::test]
async fn revoking_twice_answers_204_both_times() {
    let (app, client) = app_and_client("tokens:write").await;
    let admin = app.issue_long(&client).await;
    let target = app.issue_long(&client).await;
    let short = app.issue_short(&target.access_token).await;

    for id in [&target.token_id, &target.token_id, &short.token_id, &short.token_id] {
        app.revoke(Some(&admin.access_token), id).await.assert_status(204);
    }
}

#[tokio::test]
async fn revoking_an_expired_token_answers_204() {
    let (app, client) = app_and_client("tokens:write").await;
    let admin = app.issue_long_with(&client, json!({"ttl_days": 90})).await;
    let brief = app.issue_long_with(&client, json!({"ttl_days": 1})).await;
    let short = app.issue_short_with(&admin.access_token, json!({"ttl_seconds": 60})).await;

    app.clock.advance_secs(2 * 86_400);

    app.revoke(Some(&admin.access_token), &brief.token_id).await.assert_status(204);
    app.revoke(Some(&admin.access_token), &short.token_id).await.assert_status(204);
}

#[tokio::test]
async fn revoking_a_long_term_token_rejects_its_short_term_tokens() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read tokens:write tokens:introspect").await;
    let auditor = app.issue_long(&client).await;
    let long = app.issue_long(&client).await;
    let first = app.issue_short(&long.access_token).await;
    let second = app.issue_short_with(&long.access_token, json!({"scopes": ["read"]})).await;
    assert!(app.is_active(&auditor.access_token, &first.access_token).await);

    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);

    for short in [&first, &second] {
        app.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
        assert!(!app.is_active(&auditor.access_token, &short.access_token).await);
    }
    app.post_long_with_short(&first.access_token, &json!({"grant_type": "short_token"})).await.assert_invalid_token();
    assert!(!app.is_active(&auditor.access_token, &long.access_token).await);
}

#[tokio::test]
async fn a_token_with_tokens_write_can_revoke_any_token_of_its_client() {
    let (app, client) = app_and_client("read tokens:write").await;
    let admin = app.issue_long(&client).await;
    let other = app.issue_long_with(&client, json!({"scopes": ["read"]})).await;
    let others_short = app.issue_short(&other.access_token).await;
    let spare = app.issue_long(&client).await;

    app.revoke(Some(&admin.access_token), &others_short.token_id).await.assert_status(204);
    app.revoke(Some(&admin.access_token), &other.token_id).await.assert_status(204);

    app.post_short(Some(&other.access_token), None).await.assert_invalid_token();
    app.revoke(Some(&others_short.access_token), &others_short.token_id).await.assert_invalid_token();

    // A short-term token holding tokens:write may too.
    let admin_short = app.issue_short(&admin.access_token).await;
    app.revoke(Some(&admin_short.access_token), &spare.token_id).await.assert_status(204);
    app.post_short(Some(&spare.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_long_term_token_without_tokens_write_cannot_revoke_a_sibling() {
    let (app, client) = app_and_client("read").await;
    let one = app.issue_long(&client).await;
    let sibling = app.issue_long(&client).await;
    let siblings_short = app.issue_short(&sibling.access_token).await;

    app.revoke(Some(&one.access_token), &sibling.token_id).await.assert_error(404, "not_found");
    app.revoke(Some(&one.access_token), &siblings_short.token_id).await.assert_error(404, "not_found");

    app.issue_short(&sibling.access_token).await;
    app.revoke(Some(&siblings_short.access_token), &siblings_short.token_id).await.assert_status(204);
}

#[tokio::test]
async fn a_short_term_token_without_tokens_write_cannot_revoke_its_parent_or_siblings() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let sibling = app.issue_short(&long.access_token).await;

    app.revoke(Some(&short.access_token), &long.token_id).await.assert_error(404, "not_found");
    app.revoke(Some(&short.access_token), &sibling.token_id).await.assert_error(404, "not_found");

    app.issue_short(&long.access_token).await;
    app.revoke(Some(&sibling.access_token), &sibling.token_id).await.assert_status(204);
}

#[tokio::test]
async fn another_clients_token_is_not_found_even_with_tokens_write() {
    let app = spawn_app().await;
    let mine = app.create_client("mine", "read tokens:write").await;
    let theirs = app.create_client("theirs", "read").await;
    let admin = app.issue_long(&mine).await;
    let their_long = app.issue_long(&theirs).await;
    let their_short = app.issue_short(&their_long.access_token).await;

    let unknown =
        app.revoke(Some(&admin.access_token), &uuid::Uuid::now_v7().to_string()).await.assert_error(404, "not_found");
    let foreign = app.revoke(Some(&admin.access_token), &their_long.token_id).await.assert_error(404, "not_found");
    app.revoke(Some(&admin.access_token), &their_short.token_id).await.assert_error(404, "not_found");

    assert_eq!(unknown, foreign, "existence is not revealed");
    app.issue_short(&their_long.access_token).await;
    app.revoke(Some(&their_short.access_token), &their_short.token_id).await.assert_status(204);
}

#[tokio::test]
async fn an_unknown_or_garbage_token_id_is_not_found() {
    let (app, client) = app_and_client("tokens:write").await;
    let admin = app.issue_long(&client).await;
    let short = app.issue_short(&admin.access_token).await;
    let mut forged_short_id = short.token_id.clone();
    let last = forged_short_id.pop().expect("an id");
    forged_short_id.push(if last == 'A' { 'B' } else { 'A' });
    let long_id = "x".repeat(500);

    for id in [
        uuid::Uuid::now_v7().to_string().as_str(),
        "nope",
        "st_",
        forged_short_id.as_str(),
        "00000000-0000-0000-0000-000000000000",
        long_id.as_str(),
        "%00",
    ] {
        app.revoke(Some(&admin.access_token), id).await.assert_error(404, "not_found");
    }
    app.issue_short(&admin.access_token).await;
}

#[tokio::test]
async fn revoking_without_a_bearer_token_gets_a_bearer_challenge() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;

    app.revoke(None, &long.token_id).await.assert_bearer_required();

    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn revoking_with_an_invalid_bearer_token_is_invalid_token() {
    let (app, client) = app_and_client("read").await;
    let long = app.issue_long(&client).await;

    for bearer in ["garbage", "tsl_abc", "a.b.c", &long.token_id] {
        app.revoke(Some(bearer), &long.token_id).await.assert_invalid_token();
    }

    app.issue_short(&long.access_token).await;
}

#[tokio::test]
async fn a_revoked_token_cannot_revoke_anything() {
    let (app, client) = app_and_client("tokens:write").await;
    let one = app.issue_long(&client).await;
    let two = app.issue_long(&client).await;
    app.revoke(Some(&one.access_token), &one.token_id).await.assert_status(204);

    app.revoke(Some(&one.access_token), &two.token_id).await.assert_invalid_token();

    app.issue_short(&two.access_token).await;
}

#[tokio::test]
async fn revocation_is_never_rate_limited() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 2;
        s.failures_per_address = 3;
    })
    .await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;

    // Exhaust the failure allowance of both the client and the address.
    for _ in 0..4 {
        app.post_long(&crate::helpers::merge(crate::helpers::secret_grant(&client), json!({"client_secret": "wrong"})))
            .await;
    }
    app.post_long(&crate::helpers::secret_grant(&client)).await.assert_rate_limited();

    // Failed revocations stay 401, and a valid one still works.
    for _ in 0..5 {
        app.revoke(Some("garbage"), &short.token_id).await.assert_invalid_token();
    }
    app.revoke(None, &short.token_id).await.assert_status(401);
    app.revoke(Some(&long.access_token), &short.token_id).await.assert_status(204);
    app.revoke(Some(&long.access_token), "nope").await.assert_error(404, "not_found");
    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);
}
