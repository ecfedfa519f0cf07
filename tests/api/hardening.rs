//! Issue 6: the audit trail, the signing-key lifecycle and client-secret rotation, through the
//! real binary's `audit`, `keys` and `client rotate-secret` commands and the HTTP API.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClient, jwt_header, merge, secret_grant, spawn_app, spawn_app_with, unknown_client_id,
};

async fn cli_ok(app: &TestApp, args: &[&str]) -> String {
    app.cli_ok(args).await
}

async fn audit(app: &TestApp, extra: &[&str]) -> Vec<Value> {
    app.audit(extra).await
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Polls `check` until it holds (the server reloads keys and flushes counts on its cleanup tick).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within 10 s");
}

#[tokio::test]
async fn the_audit_trail_records_who_did_what_from_where_and_never_a_secret() {
    let app = spawn_app_with(|s| s.cleanup_interval_secs = 1).await;
    let client = app.create_client("audited", "tokens:write deploy").await;
    let first = app.issue_long(&client).await;
    let rotated = app.issue_long_with(&client, json!({"rotate_token_id": first.token_id, "grace_seconds": 60})).await;
    let short = app.issue_short(&rotated.access_token).await;
    app.issue_short(&rotated.access_token).await;
    app.post_long(&merge(secret_grant(&client), json!({"client_secret": "tsc_wrong"}))).await.assert_status(401);
    app.post_long(&json!({"grant_type": "client_credentials", "client_id": unknown_client_id(), "client_secret": "x"}))
        .await
        .assert_status(401);
    app.revoke(Some(&rotated.access_token), &short.token_id).await.assert_status(204);
    app.revoke(Some("tsl_not-a-token"), &short.token_id).await.assert_status(401);
    app.revoke(Some(&rotated.access_token), &rotated.token_id).await.assert_status(204);

    eventually("the short-term issuances are counted in the trail", || async {
        !events_named(&audit(&app, &[]).await, "short_tokens.issued").is_empty()
    })
    .await;
    let events = audit(&app, &[]).await;

    let created = events_named(&events, "client.created");
    assert_eq!(created.len(), 1);
    assert_eq!((&created[0]["client_id"], &created[0]["source"]), (&json!(client.client_id), &json!("cli")));

    let issued = events_named(&events, "long_token.issued");
    assert_eq!(issued.len(), 1, "{events:#?}");
    let e = issued[0];
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["token_id"], first.token_id.as_str());
    assert_eq!(e["client_id"], client.client_id.as_str());
    assert_eq!(e["mechanism"], "client_secret");
    assert_eq!(e["source"], "127.0.0.1");
    assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "times are RFC 3339 UTC: {e}");

    let rot = events_named(&events, "long_token.rotated");
    assert_eq!(rot.len(), 1);
    assert_eq!(rot[0]["token_id"], rotated.token_id.as_str());
    assert_eq!(rot[0]["detail"]["rotated_token_id"], first.token_id.as_str());

    let counted = events_named(&events, "short_tokens.issued");
    let total: u64 = counted.iter().map(|e| e["detail"]["count"].as_u64().expect("a count")).sum();
    assert_eq!(total, 2, "short-term issuance is counted, not recorded one by one: {counted:#?}");
    assert!(events_named(&events, "short_token.issued").is_empty());

    let failed = events_named(&events, "auth.failed");
    let reasons: Vec<(&str, &str)> =
        failed.iter().map(|e| (e["mechanism"].as_str().unwrap_or("-"), e["reason"].as_str().unwrap_or("-"))).collect();
    assert_eq!(
        reasons,
        [("client_secret", "wrong_secret"), ("client_secret", "unknown_client"), ("long_token", "token_malformed")]
    );
    assert!(failed.iter().all(|e| e["outcome"] == "failure" && e["source"] == "127.0.0.1"));
    assert_eq!(failed[0]["client_id"], client.client_id.as_str());

    let revoked = events_named(&events, "token.revoked");
    let ids: Vec<&str> = revoked.iter().map(|e| e["token_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [short.token_id.as_str(), rotated.token_id.as_str()]);
    assert_eq!(revoked[0]["detail"]["kind"], "short");
    assert_eq!(revoked[1]["detail"]["kind"], "long");

    // Filters: by client, and by time.
    let mine = audit(&app, &["--client", &client.client_id]).await;
    let mut names: Vec<&str> = mine.iter().map(|e| e["event"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auth.failed",
            "client.created",
            "long_token.issued",
            "long_token.rotated",
            "short_tokens.issued",
            "token.revoked",
            "token.revoked"
        ]
    );
    assert!(mine.iter().all(|e| e["client_id"] == client.client_id.as_str()));
    assert!(audit(&app, &["--since", "2999-01-01T00:00:00Z"]).await.is_empty());
    assert_eq!(audit(&app, &["--since", "1h"]).await.len(), events.len());
    assert_eq!(audit(&app, &["--limit", "2"]).await, events[events.len() - 2..].to_vec());

    // Never a secret or a token, in either output form.
    let table = cli_ok(&app, &["audit"]).await;
    assert!(table.contains("long_token.issued") && table.contains(&first.token_id));
    let all = format!("{table}\n{}", serde_json::to_string(&events).unwrap());
    for secret in [&client.client_secret, &first.access_token, &rotated.access_token, &short.access_token] {
        assert!(!all.contains(secret.as_str()), "the audit trail shows a secret");
    }
}

#[tokio::test]
async fn short_term_issuance_can_be_recorded_one_by_one() {
    let app = spawn_app_with(|s| s.audit_short_tokens = true).await;
    let client = app.create_client("every-short", "tokens:write").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let events = audit(&app, &["--client", &client.client_id]).await;
    let recorded = events_named(&events, "short_token.issued");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["token_id"], short.token_id.as_str());
    assert_eq!(recorded[0]["detail"]["parent_token_id"], long.token_id.as_str());
}

#[tokio::test]
async fn audit_refuses_bad_filters_with_a_clear_message() {
    let app = spawn_app().await;
    for (args, says) in [
        (vec!["audit", "--since", "yesterday"], "--since"),
        (vec!["audit", "--client", "bob smith"], "is not a client id"),
        (vec!["audit", "--limit", "many"], "--limit"),
    ] {
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{args:?} succeeds");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn client_administration_is_audited() {
    let app = spawn_app().await;
    let client = app.create_client("admin", "deploy").await;
    cli_ok(&app, &["client", "disable", &client.client_id]).await;
    cli_ok(&app, &["client", "enable", &client.client_id]).await;
    cli_ok(&app, &["client", "rotate-secret", &client.client_id, "--overlap", "1h"]).await;
    let events = audit(&app, &["--client", &client.client_id]).await;
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["client.created", "client.disabled", "client.enabled", "client.secret_rotated"]);
    assert_eq!(events[3]["detail"]["overlap_seconds"], 3600);
}

async fn rotate_secret(app: &TestApp, client: &TestClient, overlap: &str) -> String {
    let out = cli_ok(app, &["client", "rotate-secret", &client.client_id, "--overlap", overlap, "--json"]).await;
    let v: Value = serde_json::from_str(&out).expect("rotate-secret --json prints JSON");
    assert_eq!(v["client_id"], client.client_id.as_str());
    let secret = v["client_secret"].as_str().expect("the new secret").to_owned();
    assert!(secret.starts_with("tsc_") && secret != client.client_secret);
    secret
}

fn with_secret(client: &TestClient, secret: &str) -> Value {
    merge(secret_grant(client), json!({"client_secret": secret}))
}

#[tokio::test]
async fn a_rotated_secret_overlaps_with_the_old_one_then_the_old_one_stops() {
    let app = spawn_app().await;
    let client = app.create_client("rotating", "deploy").await;
    let new = rotate_secret(&app, &client, "1h").await;
    app.post_long(&with_secret(&client, &client.client_secret)).await.assert_status(201);
    app.post_long(&with_secret(&client, &new)).await.assert_status(201);

    app.clock.advance_secs(3601);
    app.post_long(&with_secret(&client, &client.client_secret)).await.assert_error(401, "invalid_client");
    app.post_long(&with_secret(&client, &new)).await.assert_status(201);

    // Without overlap the previous secret stops at once.
    let newer = rotate_secret(&app, &client, "0s").await;
    app.post_long(&with_secret(&client, &new)).await.assert_error(401, "invalid_client");
    app.post_long(&with_secret(&client, &newer)).await.assert_status(201);
}

#[tokio::test]
async fn rotate_secret_says_what_is_wrong() {
    let app = spawn_app().await;
    let client = app.create_client("x", "deploy").await;
    for (args, says) in [
        (vec!["client", "rotate-secret", &client.client_id, "--overlap", "31d"], "--overlap"),
        (vec!["client", "rotate-secret", &client.client_id, "--overlap", "soon"], "is not a duration"),
        (vec!["client", "rotate-secret", "cli_00000000000000000000"], "no client"),
        (vec!["client", "rotate-secret", "no/pe"], "is not a client id"),
    ] {
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{args:?} succeeds");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("tsc_"), "an error shows a secret");
    }
    app.post_long(&secret_grant(&client)).await.assert_status(201);
}

fn jwks_kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> =
        jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid").to_owned()).collect();
    kids.sort();
    kids
}

async fn keys_list(app: &TestApp) -> Vec<Value> {
    let out = cli_ok(app, &["keys", "list", "--json"]).await;
    serde_json::from_str::<Value>(&out).expect("keys list --json prints JSON").as_array().expect("an array").clone()
}

#[tokio::test]
async fn a_key_rotation_publishes_first_signs_later_and_keeps_old_tokens_verifiable() {
    let app = spawn_app_with(|s| s.cleanup_interval_secs = 1).await;
    let client = app.create_client("verifier", "tokens:write tokens:introspect").await;
    let long = app.issue_long(&client).await;
    let before = app.issue_short(&long.access_token).await;
    let old_kid = jwt_header(&before.access_token)["kid"].as_str().expect("a kid").to_owned();
    assert_eq!(jwks_kids(&app.jwks().await), [old_kid.as_str()]);

    let out = cli_ok(&app, &["keys", "rotate", "--publish-delay", "10m", "--json"]).await;
    let rotated: Value = serde_json::from_str(&out).expect("keys rotate --json prints JSON");
    let new_kid = rotated["kid"].as_str().expect("the new kid").to_owned();
    assert_eq!(rotated["state"], "pending");
    assert_ne!(new_kid, old_kid);

    // Published before it signs: the running server picks it up at its next reload.
    eventually("the new key is in the JWKS", || async { jwks_kids(&app.jwks().await).contains(&new_kid) }).await;
    let still = app.issue_short(&long.access_token).await;
    assert_eq!(jwt_header(&still.access_token)["kid"], old_kid.as_str(), "the new key does not sign yet");
    let states: Vec<(String, String)> = keys_list(&app)
        .await
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["state"].as_str().unwrap().to_owned()))
        .collect();
    assert!(
        states.contains(&(old_kid.clone(), "active".into())) && states.contains(&(new_kid.clone(), "pending".into()))
    );

    // After the delay the new key signs, at once, and tokens of the old key still verify.
    app.clock.advance_secs(601);
    let after = app.issue_short(&long.access_token).await;
    assert_eq!(jwt_header(&after.access_token)["kid"], new_kid.as_str());
    assert_eq!(jwks_kids(&app.jwks().await), sorted2(&old_kid, &new_kid));
    assert!(app.is_active(&after.access_token, &before.access_token).await, "a token signed before the rotation");
    crate::helpers::verify_with_jwks(&app, &before.access_token, jsonwebtoken::Algorithm::EdDSA, &app.issuer).await;

    // Once every token the old key signed has expired, it leaves the JWKS.
    app.clock.advance_secs(900 + 61);
    assert_eq!(jwks_kids(&app.jwks().await), [new_kid.as_str()]);
    let fresh = app.issue_short(&long.access_token).await;
    assert_eq!(jwt_header(&fresh.access_token)["kid"], new_kid.as_str());

    // And a restarted server agrees.
    let app = app.restart().await;
    assert_eq!(jwks_kids(&app.jwks().await), [new_kid.as_str()]);
    let events = audit(&app, &[]).await;
    assert_eq!(events_named(&events, "signing_key.rotated").len(), 1);
    assert_eq!(events_named(&events, "signing_key.created").len(), 1);
}

fn sorted2(a: &str, b: &str) -> Vec<String> {
    let mut v = vec![a.to_owned(), b.to_owned()];
    v.sort();
    v
}

#[tokio::test]
async fn keys_rotate_refuses_bad_flags() {
    let app = spawn_app().await;
    for (args, says) in [
        (vec!["keys", "rotate", "--alg", "HS256"], "not supported"),
        (vec!["keys", "rotate", "--publish-delay", "later"], "is not a duration"),
    ] {
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{args:?} succeeds");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(keys_list(&app).await.len(), 1, "nothing was created");
}
