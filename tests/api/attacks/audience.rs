//! A short-term token minted for another service is that service's credential, not
//! tokensmith's: a resource server that receives one cannot use it to mint long-term tokens,
//! introspect, or revoke anything but that token itself.

use serde_json::json;

use crate::helpers::{TestApp, TestClient, issued, spawn_app};

const ELSEWHERE: &str = "https://deploy.example";

async fn setup() -> (TestApp, TestClient, crate::helpers::Issued) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy tokens:write tokens:introspect").await;
    let long = app.issue_long(&client).await;
    (app, client, long)
}

#[tokio::test]
async fn a_token_for_another_audience_cannot_mint_long_term_tokens() {
    let (app, _client, long) = setup().await;
    let foreign = app.issue_short_with(&long.access_token, json!({"audience": ELSEWHERE})).await;

    for body in [json!({"grant_type": "short_token", "ttl_days": 90}), json!({})] {
        app.post_long_with_short(&foreign.access_token, &body).await.assert_invalid_token();
    }
}

#[tokio::test]
async fn a_token_for_another_audience_cannot_introspect() {
    let (app, _client, long) = setup().await;
    let foreign = app.issue_short_with(&long.access_token, json!({"audience": ELSEWHERE})).await;

    app.introspect(&foreign.access_token, &long.access_token).await.assert_invalid_token();
}

#[tokio::test]
async fn a_token_for_another_audience_may_revoke_itself_and_nothing_else() {
    let (app, _client, long) = setup().await;
    let foreign = app.issue_short_with(&long.access_token, json!({"audience": ELSEWHERE})).await;
    let sibling = app.issue_short(&long.access_token).await;

    app.revoke(Some(&foreign.access_token), &long.token_id).await.assert_invalid_token();
    app.revoke(Some(&foreign.access_token), &sibling.token_id).await.assert_invalid_token();
    app.revoke(Some(&foreign.access_token), "not-a-token-id").await.assert_invalid_token();
    assert!(app.is_active(&long.access_token, &sibling.access_token).await, "nothing was revoked");

    app.revoke(Some(&foreign.access_token), &foreign.token_id).await.assert_status(204);
    assert!(!app.is_active(&long.access_token, &foreign.access_token).await);
}

#[tokio::test]
async fn the_service_it_was_minted_for_can_still_introspect_it_and_sees_its_audience() {
    let (app, _client, long) = setup().await;
    let foreign = app.issue_short_with(&long.access_token, json!({"audience": ELSEWHERE})).await;

    let reply = app.introspect(&long.access_token, &foreign.access_token).await;

    reply.assert_status(200);
    assert_eq!(reply.json()["active"], true);
    assert_eq!(reply.json()["aud"], ELSEWHERE, "a resource server checks that it names itself");
}

#[tokio::test]
async fn only_the_issuer_itself_is_tokensmiths_audience() {
    let (app, _client, long) = setup().await;
    for audience in [format!("{}//", app.issuer), format!("{}/x", app.issuer), app.issuer.to_uppercase()] {
        let token = app.issue_short_with(&long.access_token, json!({"audience": audience})).await;
        app.post_long_with_short(&token.access_token, &json!({"grant_type": "short_token"}))
            .await
            .assert_invalid_token();
    }
    let slash = app.issue_short_with(&long.access_token, json!({"audience": format!("{}/", app.issuer)})).await;
    issued(&app.post_long_with_short(&slash.access_token, &json!({"grant_type": "short_token"})).await);
}

#[tokio::test]
async fn a_token_for_tokensmith_itself_is_a_credential_by_default_and_when_named() {
    let (app, _client, long) = setup().await;
    let default = app.issue_short(&long.access_token).await;
    let named = app.issue_short_with(&long.access_token, json!({"audience": app.issuer})).await;

    for short in [&default, &named] {
        issued(&app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await);
        assert!(app.is_active(&short.access_token, &long.access_token).await);
    }
}
