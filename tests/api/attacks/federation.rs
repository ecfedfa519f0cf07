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
