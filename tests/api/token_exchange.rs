//! Token exchange (RFC 8693), black-box: an external identity token from the loopback issuer
//! of `oidc_issuer` goes straight to a short-term token at `POST /v1/auth/tokens/exchange`, as
//! JSON or as a form; the token is an ordinary short-term token (JWKS-verifiable, revocable,
//! ended by its client's disabling or the operator's revocation); every refused subject token
//! is the one `invalid_grant`. On both backends.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::federation_grant::{AUD, MAIN, federated, refused};
use crate::helpers::{Reply, TestApp, jwt_claims, rfc3339, spawn_app, verify_with_jwks};
use crate::oidc_issuer::OidcIssuer;

pub(crate) const EXCHANGE: &str = "/v1/auth/tokens/exchange";
pub(crate) const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub(crate) const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The JSON body of an exchange of `token`.
pub(crate) fn exchange_of(token: &str) -> Value {
    json!({"grant_type": GRANT, "subject_token": token, "subject_token_type": JWT_TYPE})
}

pub(crate) async fn post_exchange(app: &TestApp, body: &Value) -> Reply {
    app.send(app.post(EXCHANGE).json(body)).await
}

/// Posts `pairs` as `application/x-www-form-urlencoded`, as RFC 8693 writes the request.
pub(crate) async fn post_form(app: &TestApp, pairs: &[(&str, &str)]) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    app.send(app.post(EXCHANGE).header("Content-Type", "application/x-www-form-urlencoded").body(body)).await
}

/// The body of a 200 exchange, after checking what every one has.
#[track_caller]
pub(crate) fn exchanged(reply: &Reply) -> Value {
    reply.assert_status(200);
    reply.assert_json_content_type();
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["token_id"].as_str().unwrap().starts_with("st_"), "{body}");
    assert!(reply.header("cache-control").unwrap_or_default().contains("no-store"));
    assert_eq!(body["expires_in"], rfc3339(&body["expires_at"]) - rfc3339(&body["issued_at"]));
    let scopes: Vec<&str> = body["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(body["scope"], scopes.join(" "));
    body
}

fn github_token(issuer: &OidcIssuer) -> String {
    issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN))
}

#[tokio::test]
async fn a_github_actions_token_becomes_a_short_term_token_in_one_step() {
    let (app, issuer, client) = federated().await;
    let token = github_token(&issuer);

    let body = exchanged(&post_exchange(&app, &exchange_of(&token)).await);

    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["scopes"], json!(["deploy"]), "the rule's scopes");
    assert_eq!(body["expires_in"], 900, "a short-term token's default lifetime");
    let jwt = body["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(&app, jwt, Algorithm::EdDSA, &app.issuer).await;
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["jti"], body["token_id"]);
    assert_eq!(claims["scope"], "deploy");
    // No long-term token was handed out: the client has only the exchange's own grant.
    let events = app.audit(&["--client", &client.client_id]).await;
    assert!(!events.iter().any(|e| e["event"] == "long_token.issued"), "{events:?}");
    let event = events.iter().find(|e| e["event"] == "token.exchanged").expect("an exchange event");
    assert_eq!(event["token_id"], body["token_id"]);
    assert_eq!(event["mechanism"], "token_exchange");
    assert_eq!(event["detail"]["federation"]["issuer"], "github");
    assert_eq!(event["detail"]["federation"]["sub"], "repo:acme/deploy:ref:refs/heads/main");
    assert_eq!(event["detail"]["federation"]["jti"], jwt_claims(&token)["jti"]);
    assert!(!event.to_string().contains(&token), "the audit trail never holds the token");
    // Single-use by its jti, like the assertion grant.
    refused(&post_exchange(&app, &exchange_of(&token)).await);
}

#[tokio::test]
async fn a_form_as_rfc_8693_writes_it_is_accepted_with_audience_scope_and_token_type() {
    let (app, issuer, _client) = federated().await;
    let token = github_token(&issuer);
    let reply = post_form(
        &app,
        &[
            ("grant_type", GRANT),
            ("subject_token", &token),
            ("subject_token_type", JWT_TYPE),
            ("audience", "https://deploy.example"),
            ("scope", "deploy"),
            ("requested_token_type", JWT_TYPE),
            // RFC 6749 §3.2: parameters the server does not know are ignored; empty ones omitted.
            ("client_id", "whatever"),
            ("options", "%FF"),
            ("scope", ""),
        ],
    )
    .await;
    let body = exchanged(&reply);
    assert_eq!(body["issued_token_type"], JWT_TYPE);
    let jwt = body["access_token"].as_str().unwrap();
    verify_with_jwks(&app, jwt, Algorithm::EdDSA, "https://deploy.example").await;
}

#[tokio::test]
async fn a_kubernetes_token_without_jti_may_be_exchanged_while_it_lives() {
    let app = spawn_app().await;
    let cluster = OidcIssuer::start().await;
    app.cli_ok(&["issuer", "add", "--name", "prod", "--issuer", &cluster.url(), "--discovery"]).await;
    let client = app.create_client("ns-prod", "deploy").await;
    let rule = ["client", "add-federation", &client.client_id, "--issuer", "prod", "--audience", AUD];
    app.cli_ok(&[&rule[..], &["--match", "kubernetes.io/namespace=prod"]].concat()).await;
    let token = cluster.mint("k1", &cluster.kubernetes(AUD, "prod", "ci"));
    let form = [("grant_type", GRANT), ("subject_token", token.as_str()), ("subject_token_type", JWT_TYPE)];

    let first = exchanged(&post_form(&app, &form).await);
    let second = exchanged(&post_form(&app, &form).await);
    assert_ne!(first["token_id"], second["token_id"]);
    let other_namespace = cluster.mint("k1", &cluster.kubernetes(AUD, "staging", "ci"));
    refused(&post_exchange(&app, &exchange_of(&other_namespace)).await);
}

#[tokio::test]
async fn an_exchanged_token_is_revocable_and_ends_with_its_client() {
    let (app, issuer, client) = federated().await;
    let auditor = app.create_client("auditor", "tokens:introspect").await;
    let auditor = app.issue_long(&auditor).await.access_token;
    let exchange = || async { exchanged(&post_exchange(&app, &exchange_of(&github_token(&issuer))).await) };

    // Revoked by itself, as any short-term token may be.
    let own = exchange().await;
    let jwt = own["access_token"].as_str().unwrap();
    assert!(app.is_active(&auditor, jwt).await);
    app.revoke(Some(jwt), own["token_id"].as_str().unwrap()).await.assert_status(204);
    assert!(!app.is_active(&auditor, jwt).await);

    // Revoked by the operator, by the short-term token's id.
    let operated = exchange().await;
    app.cli_ok(&["token", "revoke", operated["token_id"].as_str().unwrap()]).await;
    assert!(!app.is_active(&auditor, operated["access_token"].as_str().unwrap()).await);

    // Ended by disabling its client.
    let disabled = exchange().await;
    app.cli_ok(&["client", "disable", &client.client_id]).await;
    assert!(!app.is_active(&auditor, disabled["access_token"].as_str().unwrap()).await);
    refused(&post_exchange(&app, &exchange_of(&github_token(&issuer))).await);
}

#[tokio::test]
async fn scopes_beyond_the_rule_are_refused_and_the_metadata_names_the_grant() {
    let (app, issuer, _client) = federated().await;
    let mut body = exchange_of(&github_token(&issuer));
    body["scope"] = json!("deploy read");
    post_exchange(&app, &body).await.assert_error(400, "invalid_scope");

    let metadata = app.get("/.well-known/oauth-authorization-server").await.json();
    assert_eq!(metadata["token_exchange_endpoint"], format!("{}{EXCHANGE}", app.issuer));
    assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(GRANT)), "{metadata}");
    let doc = app.get("/openapi.json").await.json();
    assert_eq!(doc["paths"]["/auth/tokens/exchange"]["post"]["tags"], json!(["TokenExchange"]));
}

#[tokio::test]
async fn requests_this_server_does_not_offer_are_bad_requests_that_burn_nothing() {
    let (app, issuer, _client) = federated().await;
    let token = github_token(&issuer);
    let with = |field: &str, value: Value| {
        let mut body = exchange_of(&token);
        body[field] = value;
        body
    };
    let cases = [
        ("another grant", with("grant_type", json!("client_credentials")), "unsupported_grant_type"),
        ("another token type", with("subject_token_type", json!(ACCESS_TOKEN_TYPE)), "invalid_request"),
        ("delegation", with("actor_token", json!(token)), "invalid_request"),
        ("a resource", with("resource", json!("https://deploy.example")), "invalid_request"),
        ("an unknown token type asked for", with("requested_token_type", json!("saml")), "invalid_request"),
        ("an unknown field", with("subject", json!("x")), "invalid_request"),
        ("a number for a string", with("scope", json!(7)), "invalid_request"),
        ("no scope at all", with("scope", json!(" ")), "invalid_scope"),
        ("a control character in the audience", with("audience", json!("a\u{7}b")), "invalid_request"),
        ("no subject token", json!({"grant_type": GRANT, "subject_token_type": JWT_TYPE}), "invalid_request"),
    ];
    for (what, body, code) in cases {
        let reply = post_exchange(&app, &body).await;
        assert_eq!(reply.status.as_u16(), 400, "{what}: {}", reply.text);
        reply.assert_error(400, code);
    }
    let twice = [("grant_type", GRANT), ("subject_token", &token), ("subject_token", &token)];
    post_form(&app, &[&twice[..], &[("subject_token_type", JWT_TYPE)]].concat())
        .await
        .assert_error(400, "invalid_request");
    let text = app.send(app.post(EXCHANGE).header("Content-Type", "text/plain").body(exchange_of(&token).to_string()));
    text.await.assert_error(400, "invalid_request");
    app.send(app.post(EXCHANGE)).await.assert_error(400, "invalid_request");
    // None of them used the token up.
    exchanged(&post_exchange(&app, &exchange_of(&token)).await);
}

#[tokio::test]
async fn a_clients_own_assertion_or_a_tokensmith_token_is_no_subject_token() {
    let (app, _issuer, client) = federated().await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    for token in [long.access_token.as_str(), short.access_token.as_str(), "not.a.jwt", "x"] {
        refused(&post_exchange(&app, &exchange_of(token)).await);
    }
}
