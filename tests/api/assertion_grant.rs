//! issueLongTermToken with a JWT assertion signed by the client's registered key (RFC 7523).

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::helpers::{JWT_BEARER, LONG, TestApp, TestClient, assertion_grant, issued, merge, sorted, spawn_app};
use crate::keys::{ClientKey, KeyForm, KeyKind, hs256_jwt, unsecured_jwt};

async fn app_with_key_client(kind: KeyKind, form: KeyForm) -> (TestApp, TestClient, ClientKey) {
    let app = spawn_app().await;
    let key = ClientKey::generate(kind);
    let client = app.create_key_client("robot", "deploy read", &key, form).await;
    (app, client, key)
}

/// Posts an assertion grant built from `key` over the default claims changed by `changes`.
async fn post_assertion(app: &TestApp, client: &TestClient, key: &ClientKey, changes: Value) -> crate::helpers::Reply {
    let claims = merge(app.assertion_claims(&client.client_id), changes);
    app.post_long(&assertion_grant(&key.sign(&claims))).await
}

async fn assert_assertion_is_accepted(kind: KeyKind, form: KeyForm) {
    let (app, client, key) = app_with_key_client(kind, form).await;

    let reply = post_assertion(&app, &client, &key, json!({})).await;

    let token = issued(&reply);
    assert_eq!(reply.header("x-token-id"), Some(token.token_id.as_str()));
    assert_eq!(token.body["client_id"], client.client_id.as_str());
    assert_eq!(token.scopes(), sorted(&["deploy", "read"]));
    app.issue_short(&token.access_token).await;
}

#[tokio::test]
async fn an_ed25519_assertion_with_a_pem_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::Ed25519, KeyForm::Pem).await;
}

#[tokio::test]
async fn an_ed25519_assertion_with_a_jwk_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::Ed25519, KeyForm::Jwk).await;
}

#[tokio::test]
async fn an_es256_assertion_with_a_pem_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::P256, KeyForm::Pem).await;
}

#[tokio::test]
async fn an_es256_assertion_with_a_jwk_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::P256, KeyForm::Jwk).await;
}

#[tokio::test]
async fn an_rs256_assertion_with_a_jwk_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::Rsa, KeyForm::Jwk).await;
}

#[tokio::test]
async fn an_rs256_assertion_with_a_pem_key_issues_a_long_term_token() {
    assert_assertion_is_accepted(KeyKind::Rsa, KeyForm::Pem).await;
}

#[tokio::test]
async fn the_jwt_bearer_grant_type_urn_is_accepted() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    let reply = app.post_long(&json!({"grant_type": JWT_BEARER, "assertion": assertion})).await;

    issued(&reply);
}

#[tokio::test]
async fn the_long_token_endpoint_url_is_accepted_as_audience() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let audience = format!("{}{LONG}", app.issuer);

    issued(&post_assertion(&app, &client, &key, json!({"aud": audience})).await);
    // An audience array holding the issuer is the same audience (RFC 7519 §4.1.3).
    issued(&post_assertion(&app, &client, &key, json!({"aud": [app.issuer]})).await);
}

#[tokio::test]
async fn assertion_scopes_narrow_the_long_term_token() {
    let (app, client, key) = app_with_key_client(KeyKind::P256, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    let reply = app.post_long(&merge(assertion_grant(&assertion), json!({"scopes": ["read"], "ttl_days": 2}))).await;

    let token = issued(&reply);
    assert_eq!(token.scopes(), sorted(&["read"]));
    assert_eq!(token.body["expires_in"], 2 * 86_400);
}

#[tokio::test]
async fn an_assertion_asking_for_scopes_beyond_the_clients_is_insufficient_scope() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    let reply = app.post_long(&merge(assertion_grant(&assertion), json!({"scopes": ["admin"]}))).await;

    reply.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn a_replayed_assertion_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    issued(&app.post_long(&assertion_grant(&assertion)).await);
    let replay = app.post_long(&assertion_grant(&assertion)).await;

    replay.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn a_reused_jti_in_a_new_assertion_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let jti = "same-jti";

    issued(&post_assertion(&app, &client, &key, json!({"jti": jti})).await);
    let reply = post_assertion(&app, &client, &key, json!({"jti": jti, "exp": app.now() + 200})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_assertion_is_rejected_by_another_instance_on_the_same_database() {
    let app = crate::helpers::spawn_app_with(|s| s.issuer = Some("http://tokensmith.test".to_owned())).await;
    let sibling = app.spawn_sibling().await;
    let key = ClientKey::ed25519();
    let client = app.create_key_client("robot", "read", &key, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    issued(&app.post_long(&assertion_grant(&assertion)).await);
    let replay = sibling.post_long(&assertion_grant(&assertion)).await;

    replay.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_expired_assertion_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let now = app.now();

    let reply = post_assertion(&app, &client, &key, json!({"iat": now - 900, "exp": now - 600})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_that_expires_more_than_300_seconds_ahead_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    let reply = post_assertion(&app, &client, &key, json!({"exp": app.now() + 3600})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_may_expire_300_seconds_ahead_and_not_one_more() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    // The server's clock reads at least the test's, and within a second of it.
    let over = post_assertion(&app, &client, &key, json!({"exp": app.now() + 302})).await;
    let within = post_assertion(&app, &client, &key, json!({"exp": app.now() + 299})).await;

    over.assert_error(401, "invalid_grant");
    within.assert_status(201);
}

#[tokio::test]
async fn an_assertion_issued_in_the_future_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let now = app.now();

    let reply = post_assertion(&app, &client, &key, json!({"iat": now + 120, "exp": now + 240})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_without_exp_or_jti_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    for missing in ["exp", "jti"] {
        let reply = post_assertion(&app, &client, &key, json!({ missing: null })).await;
        reply.assert_error(401, "invalid_grant");
    }
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    for aud in [json!("https://api.example.com"), json!(format!("{}/v1/auth/tokens/short", app.issuer)), json!(null)] {
        let reply = post_assertion(&app, &client, &key, json!({ "aud": aud })).await;
        reply.assert_error(401, "invalid_grant");
    }
}

#[tokio::test]
async fn an_assertion_whose_iss_differs_from_sub_is_invalid_grant() {
    let app = spawn_app().await;
    let key = ClientKey::ed25519();
    let client = app.create_key_client("robot", "read", &key, KeyForm::Pem).await;
    let other = app.create_key_client("other", "read", &ClientKey::ed25519(), KeyForm::Pem).await;

    let reply = post_assertion(&app, &client, &key, json!({"sub": other.client_id})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_with_alg_none_is_invalid_grant() {
    let (app, client, _key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let assertion = unsecured_jwt(&app.assertion_claims(&client.client_id));

    let reply = app.post_long(&assertion_grant(&assertion)).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_hs256_assertion_keyed_with_the_public_key_is_invalid_grant() {
    for (kind, form) in [(KeyKind::Ed25519, KeyForm::Pem), (KeyKind::Rsa, KeyForm::Jwk)] {
        let (app, client, key) = app_with_key_client(kind, form).await;
        let claims = app.assertion_claims(&client.client_id);

        for secret in [key.public_pem(), key.public_jwk().to_string(), client.client_secret.clone()] {
            let reply = app.post_long(&assertion_grant(&hs256_jwt(secret.as_bytes(), &claims))).await;
            reply.assert_error(401, "invalid_grant");
        }
    }
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_invalid_grant() {
    let (app, client, _key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let impostor = ClientKey::ed25519();

    let reply = post_assertion(&app, &client, &impostor, json!({})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_whose_algorithm_does_not_match_the_registered_key_is_invalid_grant() {
    let (app, client, _key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    // A valid signature by some P-256 key, for a client that registered an Ed25519 key.
    let reply = post_assertion(&app, &client, &ClientKey::p256(), json!({})).await;
    reply.assert_error(401, "invalid_grant");

    // The registered type, but the header names another algorithm.
    let ec = ClientKey::p256();
    let ec_client = app.create_key_client("ec", "read", &ec, KeyForm::Pem).await;
    let claims = app.assertion_claims(&ec_client.client_id);
    let mut header = Header::new(Algorithm::ES256);
    header.alg = Algorithm::ES384;
    let forged = ec.sign_with_header(&Header::new(Algorithm::ES256), &claims);
    let mut parts: Vec<&str> = forged.split('.').collect();
    let es384_header = crate::keys::b64url(serde_json::to_string(&header).expect("header").as_bytes());
    parts[0] = &es384_header;
    let reply = app.post_long(&assertion_grant(&parts.join("."))).await;
    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_with_a_tampered_payload_is_invalid_grant() {
    let (app, client, key) = app_with_key_client(KeyKind::P256, KeyForm::Jwk).await;
    let signed = key.sign(&app.assertion_claims(&client.client_id));
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    let changed = merge(app.assertion_claims(&client.client_id), json!({"exp": app.now() + 250}));
    parts[1] = crate::keys::b64url(changed.to_string().as_bytes());

    let reply = app.post_long(&assertion_grant(&parts.join("."))).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_for_a_client_with_another_clients_key_is_invalid_grant() {
    let app = spawn_app().await;
    let key = ClientKey::ed25519();
    let _client = app.create_key_client("robot", "read", &key, KeyForm::Pem).await;
    let victim = app.create_key_client("victim", "read", &ClientKey::ed25519(), KeyForm::Pem).await;

    // Names the victim, signed with the attacker's own registered key.
    let reply = post_assertion(&app, &victim, &key, json!({})).await;

    reply.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_for_a_client_without_a_public_key_is_rejected() {
    let app = spawn_app().await;
    let client = app.create_client("no-key", "read").await;

    let reply = post_assertion(&app, &client, &ClientKey::ed25519(), json!({})).await;

    reply.assert_status(401);
    let error = reply.json()["error"].clone();
    assert!(error == "invalid_grant" || error == "invalid_client", "got {error}");
}

#[tokio::test]
async fn an_assertion_that_is_not_a_jwt_is_invalid_grant() {
    let (app, _client, _key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    for assertion in ["not-a-jwt", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        app.post_long(&assertion_grant(assertion)).await.assert_error(401, "invalid_grant");
    }
}

#[tokio::test]
async fn an_x_client_key_naming_the_assertions_client_is_accepted() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    let reply =
        app.send(app.post(LONG).header("X-Client-Key", &client.client_id).json(&assertion_grant(&assertion))).await;

    issued(&reply);
}

#[tokio::test]
async fn an_x_client_key_naming_another_client_than_the_assertion_is_a_bad_request() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let other = app.create_client("other", "read").await;
    let assertion = key.sign(&app.assertion_claims(&client.client_id));

    let reply =
        app.send(app.post(LONG).header("X-Client-Key", &other.client_id).json(&assertion_grant(&assertion))).await;

    reply.assert_invalid_request();
}

#[tokio::test]
async fn fields_of_other_grants_with_an_assertion_are_a_bad_request() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;

    for extra in [
        json!({"client_id": client.client_id}),
        json!({"client_secret": client.client_secret}),
        json!({"otp_code": "123456"}),
    ] {
        let assertion = key.sign(&app.assertion_claims(&client.client_id));
        let body = merge(assertion_grant(&assertion), extra);
        let reply = app.post_long(&body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn an_assertion_grant_without_an_assertion_is_a_bad_request() {
    let app = spawn_app().await;

    app.post_long(&json!({"grant_type": "assertion"})).await.assert_invalid_request();
    app.post_long(&json!({"grant_type": "assertion", "assertion": 5})).await.assert_invalid_request();
}

#[tokio::test]
async fn an_assertion_sent_twice_at_once_is_accepted_once() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let body = assertion_grant(&key.sign(&app.assertion_claims(&client.client_id)));

    let replies = crate::helpers::join_all((0..4).map(|_| app.post_long(&body))).await;

    let accepted = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(accepted, 1, "exactly one use of the jti wins");
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.assert_error(401, "invalid_grant");
    }
}

#[tokio::test]
async fn assertions_within_the_time_limits_are_accepted() {
    let (app, client, key) = app_with_key_client(KeyKind::Ed25519, KeyForm::Pem).await;
    let now = app.now();

    // Expiring just under 300 s ahead; issued a little in the future (within 30 s of skew);
    // and without the optional iat.
    issued(&post_assertion(&app, &client, &key, json!({"exp": now + 290})).await);
    issued(&post_assertion(&app, &client, &key, json!({"iat": now + 10, "exp": now + 100})).await);
    issued(&post_assertion(&app, &client, &key, json!({"iat": null})).await);
}
