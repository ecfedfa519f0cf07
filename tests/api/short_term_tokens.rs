//! issueShortTermToken: a long-term token (LongTokenAuth) buys a short-lived JWT that anyone
//! can verify offline with the JWKS (RFC 9068 profile).

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::{
    SHORT, TestApp, TestClient, issued, jwt_claims, jwt_header, rfc3339, sorted, spawn_app, spawn_app_with,
    verify_with_jwks,
};

async fn setup(scopes: &str) -> (TestApp, TestClient, crate::helpers::Issued) {
    let app = spawn_app().await;
    let client = app.create_client("ci", scopes).await;
    let long = app.issue_long(&client).await;
    (app, client, long)
}

#[tokio::test]
async fn a_long_term_token_issues_a_short_term_token() {
    let (app, client, long) = setup("deploy read").await;

    let reply = app.post_short(Some(&long.access_token), None).await;

    let short = issued(&reply);
    let body = &short.body;
    assert_eq!(short.scopes(), sorted(&["deploy", "read"]));
    assert_eq!(body["expires_in"], 900, "15 minutes by default");
    let issued_at = rfc3339(&body["issued_at"]);
    assert_eq!(rfc3339(&body["expires_at"]) - issued_at, 900);
    assert!((issued_at - app.now()).abs() <= 5);
    assert_eq!(jwt_claims(&short.access_token)["sub"], client.client_id.as_str());
}

#[tokio::test]
async fn the_short_term_token_is_a_jwt_that_verifies_against_the_jwks() {
    let (app, client, long) = setup("deploy read").await;

    let short = app.issue_short(&long.access_token).await;

    let header = jwt_header(&short.access_token);
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 type");
    assert_eq!(header["alg"], "EdDSA", "EdDSA by default");
    let claims = verify_with_jwks(&app, &short.access_token, Algorithm::EdDSA, &app.issuer).await;
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["aud"], app.issuer.as_str(), "the default audience is the issuer");
    assert_eq!(claims["jti"], short.token_id.as_str(), "jti = token_id");
    let mut scope: Vec<&str> = claims["scope"].as_str().expect("scope").split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["deploy", "read"], "space-separated scopes");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp") - iat, 900);
    assert_eq!(iat, rfc3339(&short.body["issued_at"]));
}

#[tokio::test]
async fn each_short_term_token_has_its_own_id() {
    let (app, _client, long) = setup("read").await;

    let first = app.issue_short(&long.access_token).await;
    let second = app.issue_short(&long.access_token).await;

    assert_ne!(first.token_id, second.token_id);
    assert_ne!(first.access_token, second.access_token);
}

#[tokio::test]
async fn the_jwks_publishes_public_keys_only() {
    let app = spawn_app().await;

    let jwks = app.jwks().await;

    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key["kid"].is_string(), "{key}");
        assert!(key["kty"].is_string(), "{key}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "no private member {private} in {key}");
        }
    }
}

#[tokio::test]
async fn short_term_tokens_are_signed_with_es256_when_configured() {
    let app = spawn_app_with(|s| s.signing_alg = tokensmith::signer::SigningAlg::ES256).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    let short = app.issue_short(&long.access_token).await;

    assert_eq!(jwt_header(&short.access_token)["alg"], "ES256");
    let claims = verify_with_jwks(&app, &short.access_token, Algorithm::ES256, &app.issuer).await;
    assert_eq!(claims["jti"], short.token_id.as_str());
    let kid = jwt_header(&short.access_token)["kid"].clone();
    let jwks = app.jwks().await;
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the signing key is published")
        .clone();
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    // The ES256 token is still a valid bearer here.
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_status(204);
}

#[tokio::test]
async fn the_requested_audience_becomes_the_aud_claim() {
    let (app, _client, long) = setup("read").await;

    let short = app.issue_short_with(&long.access_token, json!({"audience": "https://api.example.com"})).await;

    let claims = verify_with_jwks(&app, &short.access_token, Algorithm::EdDSA, "https://api.example.com").await;
    assert_eq!(claims["aud"], "https://api.example.com");
}

#[tokio::test]
async fn the_default_audience_is_configurable() {
    let app = spawn_app_with(|s| s.default_audience = Some("https://resource.example".to_owned())).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    let short = app.issue_short(&long.access_token).await;

    assert_eq!(jwt_claims(&short.access_token)["aud"], "https://resource.example");
}

#[tokio::test]
async fn requested_scopes_narrow_the_short_term_token() {
    let (app, _client, long) = setup("deploy read").await;

    let short = app.issue_short_with(&long.access_token, json!({"scopes": ["read"]})).await;

    assert_eq!(short.scopes(), sorted(&["read"]));
    assert_eq!(jwt_claims(&short.access_token)["scope"], "read");
}

#[tokio::test]
async fn scopes_beyond_the_long_term_tokens_are_invalid_scope() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy read").await;
    let long = app.issue_long_with(&client, json!({"scopes": ["read"]})).await;

    // One the client has but this long-term token does not, and one nobody has.
    for scopes in [json!(["deploy"]), json!(["read", "admin"])] {
        let reply = app.post_short(Some(&long.access_token), Some(&json!({ "scopes": scopes }))).await;
        reply.assert_error(400, "invalid_scope");
    }
}

#[tokio::test]
async fn ttl_seconds_sets_the_lifetime_from_60_to_900_seconds() {
    let (app, _client, long) = setup("read").await;

    for ttl in [60, 300, 900] {
        let short = app.issue_short_with(&long.access_token, json!({"ttl_seconds": ttl})).await;
        assert_eq!(short.body["expires_in"], ttl);
        let claims = jwt_claims(&short.access_token);
        assert_eq!(claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"), ttl);
    }
}

#[tokio::test]
async fn ttl_seconds_outside_60_to_900_is_a_bad_request() {
    let (app, _client, long) = setup("read").await;

    for ttl in [json!(59), json!(901), json!(0), json!(-60), json!(86_400), json!("300")] {
        let reply = app.post_short(Some(&long.access_token), Some(&json!({ "ttl_seconds": ttl }))).await;
        assert_eq!(reply.status, 400, "ttl_seconds {ttl}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn the_short_term_ttl_maximum_is_configurable() {
    let app = spawn_app_with(|s| s.short_ttl_max_secs = 300).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;

    let reply = app.post_short(Some(&long.access_token), Some(&json!({"ttl_seconds": 600}))).await;

    reply.assert_invalid_request();
    app.issue_short_with(&long.access_token, json!({"ttl_seconds": 300})).await;
}

#[tokio::test]
async fn the_request_body_is_optional() {
    let (app, _client, long) = setup("read").await;

    app.issue_short_with(&long.access_token, json!({})).await;
    let reply = app.send(app.post(SHORT).bearer_auth(&long.access_token).header("content-length", "0")).await;
    issued(&reply);
}

#[tokio::test]
async fn a_malformed_short_term_request_is_a_bad_request() {
    let (app, _client, long) = setup("read").await;

    for body in ["{", "[1]", "{\"scopes\": \"read\"}", "{\"audience\": 5}", "{\"unknown\": true}"] {
        let reply = app
            .send(app.post(SHORT).bearer_auth(&long.access_token).header("content-type", "application/json").body(body))
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn no_bearer_token_gets_a_bearer_challenge() {
    let app = spawn_app().await;

    app.post_short(None, None).await.assert_bearer_required();
}

#[tokio::test]
async fn a_non_bearer_authorization_gets_401() {
    let (app, client, _long) = setup("read").await;

    let reply = app.send(app.post(SHORT).basic_auth(&client.client_id, Some(&client.client_secret))).await;

    reply.assert_status(401);
    assert!(reply.header("www-authenticate").unwrap_or_default().starts_with("Bearer"));
}

#[tokio::test]
async fn an_invalid_long_term_token_is_invalid_token() {
    let (app, _client, long) = setup("read").await;
    // A single mistyped character breaks the checksum.
    let mut chars: Vec<char> = long.access_token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    let mistyped: String = chars.into_iter().collect();
    let truncated = &long.access_token[..long.access_token.len() - 1];

    for bearer in
        [mistyped.as_str(), truncated, "tsl_", "garbage", "tsl_0000000000000000000000000000000000000000000000000"]
    {
        app.post_short(Some(bearer), None).await.assert_invalid_token();
    }
}

#[tokio::test]
async fn a_short_term_token_cannot_issue_short_term_tokens() {
    let (app, _client, long) = setup("read tokens:write").await;
    let short = app.issue_short(&long.access_token).await;

    app.post_short(Some(&short.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_revoked_long_term_token_is_invalid_token() {
    let (app, _client, long) = setup("read").await;
    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);

    app.post_short(Some(&long.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn an_expired_long_term_token_is_invalid_token() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long_with(&client, json!({"ttl_days": 1})).await;

    app.clock.advance_secs(2 * 86_400);

    app.post_short(Some(&long.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_short_term_token_stops_working_when_it_expires() {
    let (app, _client, long) = setup("read").await;
    let short = app.issue_short_with(&long.access_token, json!({"ttl_seconds": 60})).await;
    let other = app.issue_short(&long.access_token).await;

    app.clock.advance_secs(120);

    // As a bearer, an expired short-term token fails (here: revoking another token).
    app.revoke(Some(&short.access_token), &other.token_id).await.assert_invalid_token();
}

#[tokio::test]
async fn a_long_term_token_of_a_disabled_client_is_invalid_token() {
    let (app, client, long) = setup("read").await;

    let out = app.cli(&["client", "disable", &client.client_id]).await;
    assert!(out.status.success(), "client disable: {}", String::from_utf8_lossy(&out.stderr));

    app.post_short(Some(&long.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (app, _client, long) = setup("read").await;

    let reply = app.send(app.post(SHORT).header("authorization", format!("bearer {}", long.access_token))).await;

    issued(&reply);
}
