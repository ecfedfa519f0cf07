//! issueLongTermToken: malformed requests are 400 with the JSON error body, before any
//! credential is judged, and they do not count as failed authentications.

use serde_json::{Value, json};

use crate::helpers::{LONG, TestApp, TestClient, merge, secret_grant, spawn_app};

async fn app_and_client() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    (app, client)
}

/// Sends each body with the client's valid secret mixed in and expects 400 `invalid_request`.
async fn assert_each_is_invalid_request(app: &TestApp, client: &TestClient, extras: Vec<Value>) {
    for extra in extras {
        let body = merge(secret_grant(client), extra.clone());
        let reply = app.post_long(&body).await;
        assert_eq!(reply.status, 400, "{body} should be a bad request, got {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn ttl_days_outside_one_to_ninety_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(
        &app,
        &client,
        vec![
            json!({"ttl_days": 0}),
            json!({"ttl_days": 91}),
            json!({"ttl_days": -1}),
            json!({"ttl_days": 100_000}),
            json!({"ttl_days": 1.5}),
            json!({"ttl_days": "30"}),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_name_longer_than_100_characters_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(&app, &client, vec![json!({"name": "n".repeat(101)})]).await;
}

#[tokio::test]
async fn both_a_client_secret_and_an_otp_code_is_a_bad_request() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    let code = app.otp_code(&client);

    let reply = app.post_long(&merge(secret_grant(&client), json!({"otp_code": code}))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn neither_a_client_secret_nor_an_otp_code_is_a_bad_request() {
    let (app, client) = app_and_client().await;

    let reply = app.post_long(&json!({"grant_type": "client_credentials", "client_id": client.client_id})).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn a_field_of_another_grant_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(&app, &client, vec![json!({"assertion": "a.b.c"})]).await;
}

#[tokio::test]
async fn grace_seconds_without_rotate_token_id_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(&app, &client, vec![json!({"grace_seconds": 60}), json!({"grace_seconds": 0})])
        .await;
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let (app, client) = app_and_client().await;

    for grant_type in ["password", "authorization_code", "CLIENT_CREDENTIALS"] {
        let reply = app.post_long(&merge(secret_grant(&client), json!({"grant_type": grant_type}))).await;
        reply.assert_error(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn a_missing_grant_type_without_a_bearer_token_is_a_bad_request() {
    let (app, client) = app_and_client().await;

    let reply = app.post_long(&merge(secret_grant(&client), json!({"grant_type": null}))).await;

    reply.assert_status(400);
    let code = reply.json()["error"].clone();
    assert!(
        code == "invalid_request" || code == "unsupported_grant_type",
        "a 400 with invalid_request or unsupported_grant_type, got {code}"
    );
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(
        &app,
        &client,
        vec![
            json!({"client_id": 42}),
            json!({"client_secret": ["s"]}),
            json!({"scopes": "read"}),
            json!({"scopes": [1, 2]}),
            json!({"name": {"n": 1}}),
            json!({"ttl_days": true}),
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_a_bad_request() {
    let (app, client) = app_and_client().await;
    assert_each_is_invalid_request(&app, &client, vec![json!({"scope": "read"}), json!({"extra": 1})]).await;
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let (app, _client) = app_and_client().await;

    for body in ["{", "not json", "[]", "null", "\"client_credentials\"", "{\"grant_type\": }"] {
        let reply = app.send(app.post(LONG).header("content-type", "application/json").body(body)).await;
        assert_eq!(reply.status, 400, "{body:?} should be a bad request, got {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn a_missing_or_empty_body_is_a_bad_request() {
    let (app, _client) = app_and_client().await;

    app.send(app.post(LONG)).await.assert_invalid_request();
    app.send(app.post(LONG).header("content-type", "application/json").body("")).await.assert_invalid_request();
    app.post_long(&json!({})).await.assert_status(400);
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let body = secret_grant(&client).to_string();

    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let reply = app.send(app.post(LONG).header("content-type", content_type).body(body.clone())).await;
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_bad_request() {
    let (app, client) = app_and_client().await;
    let body = merge(secret_grant(&client), json!({"name": "n".repeat(70 * 1024)}));

    let reply = app.post_long(&body).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn bad_requests_do_not_count_as_failed_authentications() {
    let (app, client) = app_and_client().await;

    // Far more than the ten failures a client is allowed per minute.
    for _ in 0..12 {
        app.post_long(&merge(secret_grant(&client), json!({"ttl_days": 0}))).await.assert_status(400);
        app.post_long(&merge(secret_grant(&client), json!({"scopes": ["admin"]}))).await.assert_status(403);
    }

    app.issue_long(&client).await;
}

#[tokio::test]
async fn the_long_term_ttl_maximum_is_configurable() {
    let app = crate::helpers::spawn_app_with(|s| s.long_ttl_max_days = 30).await;
    let client = app.create_client("ci", "read").await;

    assert_each_is_invalid_request(&app, &client, vec![json!({"ttl_days": 31}), json!({"ttl_days": 90})]).await;
    app.issue_long_with(&client, json!({"ttl_days": 30})).await;
}
