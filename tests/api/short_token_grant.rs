//! issueLongTermToken with the `short_token` grant: a short-term JWT holding `tokens:write`
//! presented as `Authorization: Bearer` (ShortTokenAuth).

use serde_json::json;

use crate::helpers::{LONG, TestApp, TestClient, issued, sorted, spawn_app};

/// An app, a client with `tokens:write read deploy`, its long-term token and a short-term
/// token holding every scope of it.
async fn setup() -> (TestApp, TestClient, crate::helpers::Issued, crate::helpers::Issued) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "tokens:write read deploy").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    (app, client, long, short)
}

#[tokio::test]
async fn a_short_term_token_with_tokens_write_issues_a_long_term_token() {
    let (app, client, long, short) = setup().await;

    let reply = app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await;

    let minted = issued(&reply);
    assert_eq!(reply.header("x-token-id"), Some(minted.token_id.as_str()));
    assert!(minted.access_token.starts_with("tsl_"));
    assert_ne!(minted.token_id, long.token_id);
    assert_eq!(minted.body["client_id"], client.client_id.as_str());
    assert_eq!(minted.scopes(), sorted(&["tokens:write", "read", "deploy"]));
    app.issue_short(&minted.access_token).await;
}

#[tokio::test]
async fn grant_type_may_be_omitted_when_a_short_term_bearer_token_is_sent() {
    let (app, _client, _long, short) = setup().await;

    let reply = app.post_long_with_short(&short.access_token, &json!({"scopes": ["read"], "ttl_days": 3})).await;

    let minted = issued(&reply);
    assert_eq!(minted.scopes(), sorted(&["read"]));
    assert_eq!(minted.body["expires_in"], 3 * 86_400);
}

#[tokio::test]
async fn a_short_term_token_without_tokens_write_is_insufficient_scope() {
    let (app, _client, long, _short) = setup().await;
    let read_only = app.issue_short_with(&long.access_token, json!({"scopes": ["read"]})).await;

    let reply = app.post_long_with_short(&read_only.access_token, &json!({"grant_type": "short_token"})).await;

    reply.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn scopes_beyond_the_short_term_tokens_are_insufficient_scope() {
    let (app, _client, long, _short) = setup().await;
    // The client may have `deploy`, but this short-term token does not.
    let narrow = app.issue_short_with(&long.access_token, json!({"scopes": ["tokens:write", "read"]})).await;

    for scopes in [json!(["deploy"]), json!(["read", "deploy"]), json!(["admin"])] {
        let reply = app
            .post_long_with_short(&narrow.access_token, &json!({"grant_type": "short_token", "scopes": scopes}))
            .await;
        reply.assert_error(403, "insufficient_scope");
    }
}

#[tokio::test]
async fn a_long_term_token_minted_with_a_short_term_token_holds_at_most_its_scopes_by_default() {
    let (app, _client, long, _short) = setup().await;
    let narrow = app.issue_short_with(&long.access_token, json!({"scopes": ["tokens:write", "read"]})).await;

    let reply = app.post_long_with_short(&narrow.access_token, &json!({"grant_type": "short_token"})).await;

    assert_eq!(issued(&reply).scopes(), sorted(&["tokens:write", "read"]));
}

#[tokio::test]
async fn an_invalid_bearer_for_the_short_token_grant_is_invalid_token() {
    let (app, _client, long, short) = setup().await;
    let mut tampered = short.access_token.clone();
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");

    // Garbage, a tampered signature, and a long-term token where a short-term one belongs.
    for bearer in ["garbage", tampered.as_str(), long.access_token.as_str()] {
        let reply = app.post_long_with_short(bearer, &json!({"grant_type": "short_token"})).await;
        reply.assert_invalid_token();
    }
}

#[tokio::test]
async fn an_expired_short_term_token_is_invalid_token() {
    let (app, _client, long, _short) = setup().await;
    let short = app.issue_short_with(&long.access_token, json!({"ttl_seconds": 60})).await;

    app.clock.advance_secs(3600);

    let reply = app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await;
    reply.assert_invalid_token();
}

#[tokio::test]
async fn a_revoked_short_term_token_is_invalid_token() {
    let (app, _client, _long, short) = setup().await;
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_status(204);

    let reply = app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await;

    reply.assert_invalid_token();
}

#[tokio::test]
async fn a_short_term_token_of_a_revoked_long_term_token_is_invalid_token() {
    let (app, _client, long, short) = setup().await;
    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);

    let reply = app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await;

    reply.assert_invalid_token();
}

#[tokio::test]
async fn the_short_token_grant_without_a_bearer_token_is_refused() {
    let app = spawn_app().await;

    let reply = app.post_long(&json!({"grant_type": "short_token"})).await;

    assert!(
        reply.status == 400 || reply.status == 401,
        "no token to exchange: 400 or 401, got {}: {}",
        reply.status,
        reply.text
    );
    let body = reply.json();
    assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn fields_of_other_grants_with_the_short_token_grant_are_a_bad_request() {
    let (app, client, _long, short) = setup().await;

    for extra in
        [json!({"client_secret": client.client_secret}), json!({"otp_code": "123456"}), json!({"assertion": "a.b.c"})]
    {
        let mut body = json!({"grant_type": "short_token"});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        let reply = app.post_long_with_short(&short.access_token, &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn an_x_client_key_naming_another_client_than_the_short_term_token_is_a_bad_request() {
    let (app, _client, _long, short) = setup().await;
    let other = app.create_client("other", "read").await;

    let reply = app
        .send(
            app.post(LONG)
                .bearer_auth(&short.access_token)
                .header("X-Client-Key", &other.client_id)
                .json(&json!({"grant_type": "short_token"})),
        )
        .await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn a_long_term_token_minted_with_a_short_term_token_is_revoked_with_its_parent() {
    let (app, _client, long, short) = setup().await;
    let minted = issued(&app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await);
    app.issue_short(&minted.access_token).await;

    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);

    // The exchanged short-term token dies with its parent, and so does the child it minted.
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
    app.post_short(Some(&minted.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn an_x_client_key_naming_the_short_term_tokens_client_is_accepted() {
    let (app, client, _long, short) = setup().await;

    let reply = app
        .send(
            app.post(LONG)
                .bearer_auth(&short.access_token)
                .header("X-Client-Key", &client.client_id)
                .json(&json!({"grant_type": "short_token"})),
        )
        .await;

    issued(&reply);
}
