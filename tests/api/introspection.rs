//! `POST /v1/auth/tokens/introspect` (RFC 7662 style), for callers holding `tokens:introspect`.

use serde_json::json;

use crate::helpers::{INTROSPECT, TestApp, TestClient, jwt_claims, rfc3339, sorted, spawn_app, string_list};

/// An app, a client, and an auditor long-term token of that client holding
/// `tokens:introspect`.
async fn setup() -> (TestApp, TestClient, String) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read deploy tokens:introspect").await;
    let auditor = app.issue_long(&client).await.access_token;
    (app, client, auditor)
}

#[tokio::test]
async fn an_active_long_term_token_is_described() {
    let (app, client, auditor) = setup().await;
    let long = app.issue_long_with(&client, json!({"scopes": ["read"], "ttl_days": 5})).await;

    let reply = app.introspect(&auditor, &long.access_token).await;

    reply.assert_status(200);
    reply.assert_json_content_type();
    let body = reply.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "long");
    assert_eq!(body["token_id"], long.token_id.as_str());
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(string_list(&body["scopes"]), sorted(&["read"]));
    assert_eq!(body["iat"].as_i64().expect("iat"), rfc3339(&long.body["issued_at"]));
    assert_eq!(body["exp"].as_i64().expect("exp"), rfc3339(&long.body["expires_at"]));
}

#[tokio::test]
async fn an_active_short_term_token_is_described() {
    let (app, client, auditor) = setup().await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short_with(&long.access_token, json!({"scopes": ["deploy"], "ttl_seconds": 120})).await;

    let body = app.introspect(&auditor, &short.access_token).await.json();

    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "short");
    assert_eq!(body["token_id"], short.token_id.as_str());
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(string_list(&body["scopes"]), sorted(&["deploy"]));
    let claims = jwt_claims(&short.access_token);
    assert_eq!(body["iat"], claims["iat"]);
    assert_eq!(body["exp"], claims["exp"]);
}

#[tokio::test]
async fn a_revoked_token_is_inactive() {
    let (app, client, auditor) = setup().await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let other_short = app.issue_short(&long.access_token).await;
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_status(204);

    let reply = app.introspect(&auditor, &short.access_token).await;

    reply.assert_status(200);
    assert_eq!(reply.json(), json!({"active": false}));
    assert!(app.is_active(&auditor, &other_short.access_token).await);
    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);
    assert_eq!(app.introspect(&auditor, &long.access_token).await.json(), json!({"active": false}));
    assert_eq!(
        app.introspect(&auditor, &other_short.access_token).await.json(),
        json!({"active": false}),
        "the cascade reaches introspection"
    );
}

#[tokio::test]
async fn an_expired_token_is_inactive() {
    let (app, client, auditor) = setup().await;
    let long = app.issue_long_with(&client, json!({"ttl_days": 1})).await;
    let short = app.issue_short_with(&auditor, json!({"ttl_seconds": 60})).await;

    app.clock.advance_secs(2 * 86_400);

    assert_eq!(app.introspect(&auditor, &long.access_token).await.json(), json!({"active": false}));
    assert_eq!(app.introspect(&auditor, &short.access_token).await.json(), json!({"active": false}));
}

#[tokio::test]
async fn garbage_is_inactive() {
    let (app, _client, auditor) = setup().await;
    let forged = crate::keys::unsecured_jwt(&json!({"sub": "x", "exp": app.now() + 60}));

    for token in ["garbage", "", "tsl_0000000000000000000000000000000000000000000000000", "a.b.c", forged.as_str()] {
        let reply = app.introspect(&auditor, token).await;
        reply.assert_status(200);
        assert_eq!(reply.json(), json!({"active": false}), "token {token:?}");
    }
}

#[tokio::test]
async fn a_short_term_token_holding_tokens_introspect_may_introspect() {
    let (app, client, auditor) = setup().await;
    let short = app.issue_short_with(&auditor, json!({"scopes": ["tokens:introspect"]})).await;
    let long = app.issue_long(&client).await;

    assert!(app.is_active(&short.access_token, &long.access_token).await);
}

#[tokio::test]
async fn a_caller_without_tokens_introspect_is_insufficient_scope() {
    let (app, client, auditor) = setup().await;
    let reader = app.issue_long_with(&client, json!({"scopes": ["read"]})).await;
    let reader_short = app.issue_short(&reader.access_token).await;

    app.introspect(&reader.access_token, &auditor).await.assert_error(403, "insufficient_scope");
    app.introspect(&reader_short.access_token, &auditor).await.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn a_caller_without_a_valid_bearer_token_gets_401() {
    let (app, client, auditor) = setup().await;
    let long = app.issue_long(&client).await;

    let reply = app.send(app.post(INTROSPECT).json(&json!({"token": long.access_token}))).await;
    reply.assert_bearer_required();

    app.introspect("garbage", &long.access_token).await.assert_invalid_token();
    app.revoke(Some(&auditor), &auditor_id(&app, &auditor).await).await.assert_status(204);
    app.introspect(&auditor, &long.access_token).await.assert_invalid_token();
}

async fn auditor_id(app: &TestApp, auditor: &str) -> String {
    let body = app.introspect(auditor, auditor).await.json();
    body["token_id"].as_str().expect("token_id").to_owned()
}

#[tokio::test]
async fn a_malformed_introspection_request_is_a_bad_request() {
    let (app, _client, auditor) = setup().await;

    for body in [json!({}), json!({"token": 5}), json!({"tokens": "x"})] {
        let reply = app.send(app.post(INTROSPECT).bearer_auth(&auditor).json(&body)).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn a_token_in_its_rotation_grace_period_reports_when_the_grace_ends() {
    let (app, client, auditor) = setup().await;
    let old = app.issue_long(&client).await;

    let new = app.issue_long_with(&client, json!({"rotate_token_id": old.token_id, "grace_seconds": 300})).await;

    let body = app.introspect(&auditor, &old.access_token).await.json();
    assert_eq!(body["active"], true);
    let grace_end = rfc3339(&new.body["issued_at"]) + 300;
    assert_eq!(body["exp"].as_i64().expect("exp"), grace_end);
}
