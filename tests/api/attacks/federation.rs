//! Federation as an attacker would use it (adversarial pass 3): failing in a federated
//! client's name never locks out its workloads, whose identity tokens nobody can guess; a
//! replayed or odd external token is the one refusal and counts against its address only, at
//! the assertion grant and at the token exchange alike.

use serde_json::json;

use crate::federation_grant::{AUD, MAIN, federated, federated_with, refused};
use crate::helpers::{LONG, assertion_grant, issued, merge, secret_grant, spawn_app_with};
use crate::token_exchange::{exchange_of, exchanged, post_exchange};

#[tokio::test]
async fn guessing_a_federated_clients_secret_never_locks_its_workloads_out() {
    let (app, issuer, client) = federated().await;
    let wrong =
        merge(secret_grant(&client), json!({"client_secret": "tsc_0000000000000000000000000000000000000000000000000"}));
    for _ in 0..11 {
        let reply = app.post_long(&wrong).await;
        assert!(matches!(reply.status.as_u16(), 401 | 429), "{}", reply.text);
    }
    app.post_long(&secret_grant(&client)).await.assert_rate_limited();

    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    issued(&app.post_long(&assertion_grant(&token)).await);
    let named = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    issued(&app.send(app.post(LONG).header("X-Client-Key", &client.client_id).json(&assertion_grant(&named))).await);
}

#[tokio::test]
async fn replaying_a_used_token_never_locks_the_client_it_stands_for() {
    let (app, issuer, client) = federated().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    issued(&app.post_long(&assertion_grant(&token)).await);
    for _ in 0..12 {
        refused(&app.post_long(&assertion_grant(&token)).await);
    }
    issued(&app.post_long(&secret_grant(&client)).await);
}

#[tokio::test]
async fn naming_another_client_with_a_valid_token_is_a_bad_request_that_burns_nothing() {
    let (app, issuer, _client) = federated().await;
    let other = app.create_client("other", "deploy").await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let named = app.send(app.post(LONG).header("X-Client-Key", &other.client_id).json(&assertion_grant(&token))).await;
    named.assert_invalid_request();
    issued(&app.post_long(&assertion_grant(&token)).await);
}

#[tokio::test]
async fn claims_of_the_wrong_type_get_the_one_refusal() {
    let (app, issuer, _client) = federated().await;
    for change in [json!({"exp": 1.5e9}), json!({"exp": "tomorrow"}), json!({"iat": [1]}), json!({"nbf": null})] {
        let mut claims = issuer.github(AUD, "acme/deploy", MAIN);
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        refused(&app.post_long(&assertion_grant(&issuer.mint("k1", &claims))).await);
    }
}

#[tokio::test]
async fn replaying_an_exchanged_token_never_locks_the_client_it_stands_for() {
    let (app, issuer, client) = federated().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    exchanged(&post_exchange(&app, &exchange_of(&token)).await);
    for _ in 0..12 {
        refused(&post_exchange(&app, &exchange_of(&token)).await);
    }
    issued(&app.post_long(&secret_grant(&client)).await);
}

#[tokio::test]
async fn failed_exchanges_count_against_their_address() {
    let (app, issuer, _client) = federated_with(spawn_app_with(|s| s.failures_per_address = 3).await).await;
    let forged = crate::keys::unsecured_jwt(&issuer.github(AUD, "acme/deploy", MAIN));
    for _ in 0..3 {
        refused(&post_exchange(&app, &exchange_of(&forged)).await);
    }
    let valid = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    post_exchange(&app, &exchange_of(&valid)).await.assert_rate_limited();
}

#[tokio::test]
async fn an_exchanged_token_cannot_mint_a_long_term_token_that_outlives_it() {
    let (app, issuer, _client) = federated().await;
    let tools = app.create_client("toolsmith", "deploy tokens:write tokens:introspect").await;
    let rule = ["client", "add-federation", &tools.client_id, "--issuer", "github", "--audience", AUD];
    app.cli_ok(&[&rule[..], &["--match", "repository=acme/tools", "--scopes", "tokens:write deploy"]].concat()).await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/tools", MAIN));
    let short = exchanged(&post_exchange(&app, &exchange_of(&token)).await);

    let reply = app.post_long_with_short(short["access_token"].as_str().unwrap(), &json!({"ttl_days": 90})).await;
    let child = issued(&reply);
    let expires_in = child.body["expires_in"].as_i64().unwrap();
    assert!(expires_in <= short["expires_in"].as_i64().unwrap(), "a child ends with its exchange grant: {expires_in}");
    assert_eq!(child.scopes(), ["deploy", "tokens:write"], "no more than the rule grants");

    // Revoking the exchange grant ends the short-term token and the child.
    let events = app.audit(&["--client", &tools.client_id]).await;
    let exchange = events.iter().find(|e| e["event"] == "token.exchanged").expect("an exchange event");
    app.cli_ok(&["token", "revoke", exchange["detail"]["grant_token_id"].as_str().unwrap()]).await;
    // The operator's command is another process: the server sees it within its cache's bound.
    app.clock.advance_secs(2);
    let auditor = app.issue_long(&tools).await.access_token;
    assert!(!app.is_active(&auditor, &child.access_token).await);
    assert!(!app.is_active(&auditor, short["access_token"].as_str().unwrap()).await);
}

/// A client whose rule gives `tokens:write` (the client's scopes, by default) and two days.
async fn writer(app: &crate::helpers::TestApp) -> crate::helpers::TestClient {
    let tools = app.create_client("toolsmith", "deploy tokens:write tokens:introspect").await;
    let rule = ["client", "add-federation", &tools.client_id, "--issuer", "github", "--audience", AUD];
    app.cli_ok(&[&rule[..], &["--match", "repository=acme/tools", "--max-ttl-days", "2"]].concat()).await;
    tools
}

#[tokio::test]
async fn a_federated_token_cannot_renew_itself_past_its_rule() {
    let (app, issuer, _client) = federated().await;
    let tools = writer(&app).await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/tools", MAIN));
    let long = issued(&app.post_long(&assertion_grant(&token)).await);
    assert_eq!(long.body["expires_in"], 2 * 86_400);
    let short = app.issue_short(&long.access_token).await.access_token;

    let renew = json!({"ttl_days": 90, "rotate_token_id": long.token_id});
    app.post_long_with_short(&short, &renew).await.assert_error(403, "insufficient_scope");
    // A child is capped by it, and cannot be renewed either.
    let child = issued(&app.post_long_with_short(&short, &json!({"ttl_days": 90})).await);
    assert!(child.body["expires_in"].as_i64().unwrap() <= 2 * 86_400);
    let child_short = app.issue_short(&child.access_token).await.access_token;
    let renew_child = json!({"ttl_days": 90, "rotate_token_id": child.token_id});
    app.post_long_with_short(&child_short, &renew_child).await.assert_error(403, "insufficient_scope");
    // A fresh identity token renews it, capped by the rule again; so does the client's secret.
    let fresh = issuer.mint("k1", &issuer.github(AUD, "acme/tools", MAIN));
    let renewed = merge(assertion_grant(&fresh), json!({"ttl_days": 90, "rotate_token_id": long.token_id}));
    let renewed = issued(&app.post_long(&renewed).await);
    assert_eq!(renewed.body["expires_in"], 2 * 86_400);
    let by_secret = merge(secret_grant(&tools), json!({"rotate_token_id": renewed.token_id, "ttl_days": 30}));
    assert_eq!(issued(&app.post_long(&by_secret).await).body["expires_in"], 30 * 86_400);
}

#[tokio::test]
async fn an_exchange_grant_cannot_be_renewed_with_its_own_short_term_token() {
    let (app, issuer, _client) = federated().await;
    let tools = writer(&app).await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/tools", MAIN));
    let short = exchanged(&post_exchange(&app, &exchange_of(&token)).await);
    let events = app.audit(&["--client", &tools.client_id]).await;
    let grant = events.iter().find(|e| e["event"] == "token.exchanged").unwrap()["detail"]["grant_token_id"].clone();

    let renew = json!({"ttl_days": 90, "rotate_token_id": grant});
    let reply = app.post_long_with_short(short["access_token"].as_str().unwrap(), &renew).await;
    reply.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn without_a_kid_no_key_is_guessed_among_several_of_its_type() {
    let (app, issuer, _client) = federated().await;
    let claims = || issuer.github(AUD, "acme/deploy", MAIN);
    issued(&app.post_long(&assertion_grant(&issuer.mint_without_kid("k1", &claims()))).await);
    issuer.add_key("k2", crate::keys::ClientKey::ed25519());
    app.clock.advance_secs(6);
    issuer.advance_secs(6);
    // Fetched again for the new kid: now two Ed25519 keys are held.
    issued(&app.post_long(&assertion_grant(&issuer.mint("k2", &claims()))).await);
    for kid in ["k1", "k2"] {
        refused(&app.post_long(&assertion_grant(&issuer.mint_without_kid(kid, &claims()))).await);
        refused(&post_exchange(&app, &exchange_of(&issuer.mint_without_kid(kid, &claims()))).await);
    }
}

#[tokio::test]
async fn a_jti_that_is_not_a_string_cannot_make_a_token_reusable() {
    let (app, issuer, _client) = federated().await;
    for jti in [json!(424242), json!(true), json!(1.5), json!(["a"]), json!({"a": 1})] {
        let mut claims = issuer.github(AUD, "acme/deploy", MAIN);
        claims["jti"] = jti;
        let token = issuer.mint("k1", &claims);
        refused(&app.post_long(&assertion_grant(&token)).await);
        refused(&post_exchange(&app, &exchange_of(&token)).await);
    }
}

#[tokio::test]
async fn an_exchange_naming_another_client_is_a_bad_request_that_burns_nothing() {
    let (app, issuer, client) = federated().await;
    let other = app.create_client("other", "deploy").await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let named = |who: &str| app.post(crate::token_exchange::EXCHANGE).header("X-Client-Key", who);
    app.send(named(&other.client_id).json(&exchange_of(&token))).await.assert_invalid_request();
    exchanged(&app.send(named(&client.client_id).json(&exchange_of(&token))).await);
}

#[tokio::test]
async fn a_token_naming_a_trusted_issuer_gets_the_one_refusal_whatever_its_shape() {
    let (app, issuer, _client) = federated().await;
    let mut array_sub = issuer.github(AUD, "acme/deploy", MAIN);
    array_sub["sub"] = json!(["repo:acme/deploy:ref:refs/heads/main"]);
    let mut huge = issuer.github(AUD, "acme/deploy", MAIN);
    huge["padding"] = json!("x".repeat(20_000));
    for claims in [array_sub, huge] {
        let token = issuer.mint("k1", &claims);
        refused(&app.post_long(&assertion_grant(&token)).await);
        refused(&post_exchange(&app, &exchange_of(&token)).await);
    }
}

#[tokio::test]
async fn a_form_exchange_with_bytes_it_cannot_read_is_refused_not_repaired() {
    use crate::token_exchange::{GRANT, JWT_TYPE, post_form};
    let (app, issuer, _client) = federated().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let base = format!("grant_type={GRANT}&subject_token_type={JWT_TYPE}&subject_token={token}");
    for extra in ["&audience=https%3A%2F%2Fdeploy.example%FF", "&audience=%zz", "&actor_token=", "&resource="] {
        let body = format!("{base}{extra}");
        let reply = app
            .send(
                app.post(crate::token_exchange::EXCHANGE)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{extra}: {}", reply.text);
    }
    // None of them used the token up.
    let form = [("grant_type", GRANT), ("subject_token", token.as_str()), ("subject_token_type", JWT_TYPE)];
    exchanged(&post_form(&app, &form).await);
}

#[tokio::test]
async fn a_workloads_identity_token_cannot_rotate_away_the_clients_own_tokens() {
    let (app, issuer, client) = federated().await;
    let own = app.issue_long_with(&client, json!({"ttl_days": 90})).await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let rotate = merge(assertion_grant(&token), json!({"rotate_token_id": own.token_id}));
    app.post_long(&rotate).await.assert_error(403, "insufficient_scope");
    // The client's token still works; a workload's own tokens are its to rotate.
    app.issue_short(&own.access_token).await;
    let first =
        issued(&app.post_long(&assertion_grant(&issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN)))).await);
    let fresh = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    issued(&app.post_long(&merge(assertion_grant(&fresh), json!({"rotate_token_id": first.token_id}))).await);
}

#[tokio::test]
async fn one_workload_cannot_rotate_away_another_workloads_tokens() {
    let (app, issuer, client) = federated().await;
    let rule = ["client", "add-federation", &client.client_id, "--issuer", "github", "--audience", AUD];
    app.cli_ok(&[&rule[..], &["--match", "repository=acme/tools"]].concat()).await;
    let deploy =
        issued(&app.post_long(&assertion_grant(&issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN)))).await);
    let tools = issuer.mint("k1", &issuer.github(AUD, "acme/tools", MAIN));
    let rotate = merge(assertion_grant(&tools), json!({"rotate_token_id": deploy.token_id}));
    app.post_long(&rotate).await.assert_error(403, "insufficient_scope");
    app.issue_short(&deploy.access_token).await;
}

#[tokio::test]
async fn an_exchange_grant_is_never_rotated_not_even_with_the_clients_secret() {
    let (app, issuer, client) = federated().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let short = exchanged(&post_exchange(&app, &exchange_of(&token)).await);
    let events = app.audit(&["--client", &client.client_id]).await;
    let grant = events.iter().find(|e| e["event"] == "token.exchanged").unwrap()["detail"]["grant_token_id"].clone();
    let rotate = merge(secret_grant(&client), json!({"rotate_token_id": grant}));
    app.post_long(&rotate).await.assert_error(403, "insufficient_scope");
    let auditor = app.create_client("auditor", "tokens:introspect").await;
    let auditor = app.issue_long(&auditor).await.access_token;
    assert!(app.is_active(&auditor, short["access_token"].as_str().unwrap()).await);
}
