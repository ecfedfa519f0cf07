//! Federation, black-box: a workload's external identity token (shaped like GitHub Actions'
//! or Kubernetes') gets a long-term token through `POST /v1/auth/tokens/long` with
//! `grant_type: assertion`, when a trusted issuer's key signed it and exactly one client's
//! rule matches it; everything else is the one `invalid_grant` answer. Against the loopback
//! issuer of `oidc_issuer`, on both backends.

use serde_json::{Value, json};

use crate::helpers::{LONG, Reply, TestApp, TestClient, assertion_grant, issued, spawn_app, spawn_app_with};
use crate::keys::{ClientKey, hs256_jwt, unsecured_jwt};
use crate::oidc_issuer::{OidcIssuer, now};

pub(crate) const AUD: &str = "https://tokensmith.example";
pub(crate) const MAIN: &str = "refs/heads/main";

/// An app trusting the loopback issuer (through discovery) as `github`, and a client bound to
/// `acme/deploy` on main with a 7-day cap and the `deploy` scope.
pub(crate) async fn federated() -> (TestApp, OidcIssuer, TestClient) {
    federated_with(spawn_app().await).await
}

pub(crate) async fn federated_with(app: TestApp) -> (TestApp, OidcIssuer, TestClient) {
    let issuer = OidcIssuer::start().await;
    app.cli_ok(&["issuer", "add", "--name", "github", "--issuer", &issuer.url(), "--discovery"]).await;
    let client = app.create_client("deployer", "deploy read").await;
    let rule = [
        "client",
        "add-federation",
        &client.client_id,
        "--issuer",
        "github",
        "--audience",
        AUD,
        "--match",
        "sub=repo:acme/deploy:ref:refs/heads/main",
        "--match",
        "repository_owner=acme",
        "--max-ttl-days",
        "7",
        "--scopes",
        "deploy",
    ];
    app.cli_ok(&rule).await;
    (app, issuer, client)
}

/// Asserts the one answer every refused external token gets, and returns its body.
#[track_caller]
pub(crate) fn refused(reply: &Reply) -> Value {
    let body = reply.assert_error(401, "invalid_grant");
    assert_eq!(body["error_description"], "assertion is not valid", "one answer for every refusal: {body}");
    body
}

#[tokio::test]
async fn a_github_actions_token_gets_a_long_term_token_capped_by_its_rule() {
    let (app, issuer, client) = federated().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));

    let reply = app.post_long(&json!({"grant_type": "assertion", "assertion": token, "ttl_days": 30})).await;
    let long = issued(&reply);
    assert_eq!(long.body["client_id"], client.client_id.as_str());
    assert_eq!(long.scopes(), ["deploy"], "the rule's scopes, not the client's");
    assert_eq!(long.body["expires_in"], 7 * 86_400, "capped to the rule's 7 days");
    // The long-term token works like any other.
    let short = app.post_short(Some(&long.access_token), None).await;
    short.assert_status(201);

    let events = app.audit(&["--client", &client.client_id]).await;
    let event = events.iter().find(|e| e["event"] == "long_token.issued").expect("an issuance event");
    let detail = &event["detail"];
    assert_eq!(detail["federation"]["issuer"], "github");
    assert_eq!(detail["federation"]["sub"], "repo:acme/deploy:ref:refs/heads/main");
    assert!(detail["federation"]["rule"].as_str().unwrap().starts_with("fed_"));
    assert!(!event.to_string().contains(&token), "the audit trail never holds the token");

    let replay = app.post_long(&assertion_grant(&token)).await;
    refused(&replay);
}

#[tokio::test]
async fn a_kubernetes_token_verified_with_keys_from_a_file_matches_nested_claims() {
    let app = spawn_app().await;
    let cluster = OidcIssuer::start().await;
    let jwks = app.dir.path().join("cluster.jwks");
    std::fs::write(&jwks, cluster.jwks().to_string()).unwrap();
    let add = ["issuer", "add", "--name", "prod-cluster", "--issuer", &cluster.url(), "--jwks-file"];
    app.cli_ok(&[&add[..], &[jwks.to_str().unwrap()]].concat()).await;
    cluster.set_down(true);
    let client = app.create_client("ns-prod", "deploy").await;
    let rule = [
        "client",
        "add-federation",
        &client.client_id,
        "--issuer",
        "prod-cluster",
        "--audience",
        AUD,
        "--match",
        "kubernetes.io/namespace=prod",
        "--match",
        "sub=system:serviceaccount:prod:*",
    ];
    app.cli_ok(&rule).await;

    let token = cluster.mint("k1", &cluster.kubernetes(AUD, "prod", "ci"));
    let long = issued(&app.post_long(&assertion_grant(&token)).await);
    assert_eq!(long.body["expires_in"], 86_400, "a rule gives one day unless told");
    assert_eq!(cluster.jwks_requests(), 0, "keys from a file are never fetched");
    let other_namespace = cluster.mint("k1", &cluster.kubernetes(AUD, "staging", "ci"));
    refused(&app.post_long(&assertion_grant(&other_namespace)).await);
    // A Kubernetes token has no jti: it may be used again while it lives.
    issued(&app.post_long(&assertion_grant(&token)).await);
}

#[tokio::test]
async fn tokens_that_are_not_exactly_right_all_get_the_same_refusal() {
    let (app, issuer, _client) = federated().await;
    let good = issuer.github(AUD, "acme/deploy", MAIN);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let attacker = ClientKey::ed25519();
    let mut jku = jsonwebtoken::Header::new(attacker.alg());
    jku.kid = Some("k1".into());
    jku.jku = Some("http://127.0.0.1:1/attacker-jwks".into());
    let public = crate::keys::b64url_decode(issuer.jwks()["keys"][0]["x"].as_str().unwrap());
    let cases: Vec<(&str, String)> = vec![
        ("wrong audience", issuer.mint("k1", &with(&|c| c["aud"] = json!("https://elsewhere.example")))),
        ("expired", issuer.mint("k1", &with(&|c| c["exp"] = json!(now() - 120)))),
        ("not yet valid", issuer.mint("k1", &with(&|c| c["nbf"] = json!(now() + 600)))),
        ("lives too long", issuer.mint("k1", &with(&|c| c["exp"] = json!(now() + 7200)))),
        ("a fork's repository", issuer.mint("k1", &issuer.github(AUD, "evil/deploy", MAIN))),
        ("another branch", issuer.mint("k1", &issuer.github(AUD, "acme/deploy", "refs/heads/evil"))),
        ("HS256 keyed with the public key", hs256_jwt(&public, &good)),
        ("alg none", unsecured_jwt(&good)),
        ("a jku pointing elsewhere", attacker.sign_with_header(&jku, &good)),
        ("signed by another key", {
            let mut h = jsonwebtoken::Header::new(attacker.alg());
            h.kid = Some("k1".into());
            attacker.sign_with_header(&h, &good)
        }),
        ("an unknown kid", {
            let mut h = jsonwebtoken::Header::new(attacker.alg());
            h.kid = Some("k9".into());
            attacker.sign_with_header(&h, &good)
        }),
    ];
    for (what, token) in cases {
        let reply = app.post_long(&assertion_grant(&token)).await;
        assert_eq!(reply.status.as_u16(), 401, "{what}: {}", reply.text);
        refused(&reply);
    }
    issued(&app.post_long(&assertion_grant(&issuer.mint("k1", &good))).await);
}

#[tokio::test]
async fn a_token_that_two_clients_rules_match_authenticates_nobody() {
    let (app, issuer, _client) = federated().await;
    let other = app.create_client("other", "deploy").await;
    let rule = [
        "client",
        "add-federation",
        &other.client_id,
        "--issuer",
        "github",
        "--audience",
        AUD,
        "--match",
        "repository=acme/*",
    ];
    app.cli_ok(&rule).await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    refused(&app.post_long(&assertion_grant(&token)).await);
    let named = app.send(app.post(LONG).header("X-Client-Key", &other.client_id).json(&assertion_grant(&token))).await;
    refused(&named);
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_known_keys_verify_while_the_issuer_is_down() {
    let (app, issuer, _client) = federated().await;
    issued(&app.post_long(&assertion_grant(&issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN)))).await);
    issuer.add_key("k2", ClientKey::p256());
    app.clock.advance_secs(6);
    issuer.advance_secs(6);
    issued(&app.post_long(&assertion_grant(&issuer.mint("k2", &issuer.github(AUD, "acme/deploy", MAIN)))).await);

    issuer.set_down(true);
    issuer.add_key("k3", ClientKey::rsa());
    // Past the keys' max-age: a refresh is due and fails; the keys held stay in use.
    app.clock.advance_secs(3600);
    issuer.advance_secs(3600);
    issued(&app.post_long(&assertion_grant(&issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN)))).await);
    let unfetchable =
        app.post_long(&assertion_grant(&issuer.mint("k3", &issuer.github(AUD, "acme/deploy", MAIN)))).await;
    refused(&unfetchable);
    app.get("/readyz").await.assert_status(200);
    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains("tokensmith_issuer_key_fetch_failures_total{issuer=\"github\"}"), "{metrics}");
}

#[tokio::test]
async fn an_issuer_removed_while_its_tokens_are_in_flight_authenticates_no_more() {
    let (app, issuer, _client) = federated().await;
    let first = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let second = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    issued(&app.post_long(&assertion_grant(&first)).await);
    app.cli_ok(&["issuer", "remove", "github"]).await;
    app.post_long(&assertion_grant(&second)).await.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn the_longest_external_token_accepted_is_configured() {
    let (app, issuer, _client) =
        federated_with(spawn_app_with(|s| s.federation_max_token_lifetime_secs = 600).await).await;
    let lasting = |secs: i64| {
        let mut claims = issuer.github(AUD, "acme/deploy", MAIN);
        claims["exp"] = json!(claims["iat"].as_i64().unwrap() + secs);
        issuer.mint("k1", &claims)
    };
    issued(&app.post_long(&assertion_grant(&lasting(600))).await);
    refused(&app.post_long(&assertion_grant(&lasting(601))).await);
}

#[tokio::test]
async fn an_external_token_is_single_use_across_instances() {
    let (app, issuer, _client) = federated().await;
    let sibling = app.spawn_sibling().await;
    let token = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let body = assertion_grant(&token);
    let (first, second) = tokio::join!(app.post_long(&body), sibling.post_long(&body));
    let statuses = [first.status.as_u16(), second.status.as_u16()];
    assert!(statuses.contains(&201) && statuses.contains(&401), "exactly one wins: {statuses:?}");
    refused(&sibling.post_long(&assertion_grant(&token)).await);
}
