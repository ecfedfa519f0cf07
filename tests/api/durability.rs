//! What is issued or revoked survives a restart and a crash; instances sharing a database agree.

use std::process::Stdio;

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::helpers::{
    TestClient, TestDatabase, assertion_grant, http_client, issued, secret_grant, spawn_app_with, verify_with_jwks,
};
use crate::keys::{ClientKey, KeyForm};

const FIXED_ISSUER: &str = "http://tokensmith.test";

#[tokio::test]
async fn tokens_and_revocations_survive_a_restart() {
    let app = spawn_app_with(|s| s.issuer = Some(FIXED_ISSUER.to_owned())).await;
    let client = app.create_client("ci", "read tokens:write").await;
    let kept = app.issue_long(&client).await;
    let revoked = app.issue_long(&client).await;
    app.revoke(Some(&revoked.access_token), &revoked.token_id).await.assert_status(204);
    let short = app.issue_short(&kept.access_token).await;
    let revoked_short = app.issue_short(&kept.access_token).await;
    app.revoke(Some(&kept.access_token), &revoked_short.token_id).await.assert_status(204);
    let in_grace = app.issue_long(&client).await;
    let replacement =
        app.issue_long_with(&client, json!({"rotate_token_id": in_grace.token_id, "grace_seconds": 600})).await;

    let app = app.restart().await;

    app.issue_short(&kept.access_token).await;
    app.post_short(Some(&revoked.access_token), None).await.assert_invalid_token();
    // The short-term token still verifies offline with the JWKS served now (the signing key
    // persisted), and is still accepted as a bearer: revoking an unknown id is 404, not 401.
    let claims = verify_with_jwks(&app, &short.access_token, Algorithm::EdDSA, FIXED_ISSUER).await;
    assert_eq!(claims["jti"], short.token_id.as_str());
    app.revoke(Some(&short.access_token), &uuid::Uuid::now_v7().to_string()).await.assert_error(404, "not_found");
    app.revoke(Some(&revoked_short.access_token), &revoked_short.token_id).await.assert_invalid_token();
    // The rotation's grace period is kept too.
    app.issue_short(&in_grace.access_token).await;
    app.issue_short(&replacement.access_token).await;
    app.clock.advance_secs(700);
    app.post_short(Some(&in_grace.access_token), None).await.assert_invalid_token();
    // And the client's secret still works.
    app.issue_long(&client).await;
}

#[tokio::test]
async fn new_short_term_tokens_are_signed_by_the_same_key_after_a_restart() {
    let app = spawn_app_with(|s| s.issuer = Some(FIXED_ISSUER.to_owned())).await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;
    let before = app.issue_short(&long.access_token).await;
    let jwks_before = app.jwks().await;

    let app = app.restart().await;

    let after = app.issue_short(&long.access_token).await;
    let kid = |jwt: &str| crate::helpers::jwt_header(jwt)["kid"].clone();
    assert_eq!(kid(&before.access_token), kid(&after.access_token));
    let jwks_after = app.jwks().await;
    for key in jwks_before["keys"].as_array().expect("keys") {
        assert!(jwks_after["keys"].as_array().expect("keys").contains(key), "{key} is still published");
    }
}

#[tokio::test]
async fn one_time_codes_and_assertions_stay_used_after_a_restart() {
    let app = spawn_app_with(|s| s.issuer = Some(FIXED_ISSUER.to_owned())).await;
    let otp_client = app.create_otp_client("otp", "read").await;
    let key = ClientKey::ed25519();
    let key_client = app.create_key_client("robot", "read", &key, KeyForm::Pem).await;
    app.align_to_otp_step();
    let code = app.otp_code(&otp_client);
    let otp_body = json!({"grant_type": "client_credentials", "client_id": otp_client.client_id, "otp_code": code});
    let assertion = key.sign(&app.assertion_claims(&key_client.client_id));
    issued(&app.post_long(&otp_body).await);
    issued(&app.post_long(&assertion_grant(&assertion)).await);

    let app = app.restart().await;

    app.post_long(&otp_body).await.assert_error(401, "invalid_grant");
    app.post_long(&assertion_grant(&assertion)).await.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn instances_sharing_a_database_see_each_others_tokens_and_revocations() {
    let app = spawn_app_with(|s| s.issuer = Some(FIXED_ISSUER.to_owned())).await;
    let sibling = app.spawn_sibling().await;
    let client = app.create_client("ci", "read tokens:introspect").await;
    let long = app.issue_long(&client).await;
    let auditor = sibling.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    assert!(sibling.is_active(&auditor.access_token, &short.access_token).await);
    sibling.issue_short(&long.access_token).await;

    app.revoke(Some(&long.access_token), &long.token_id).await.assert_status(204);
    // The revoking instance rejects at once; another instance may serve a long-term token
    // record from memory for at most its documented staleness bound (one second).
    app.post_short(Some(&long.access_token), None).await.assert_invalid_token();
    app.clock.advance_secs(2);

    sibling.post_short(Some(&long.access_token), None).await.assert_invalid_token();
    assert!(!sibling.is_active(&auditor.access_token, &short.access_token).await);
    sibling.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
}

/// `tokensmith serve` as a child process on `db` (with its master key), and the address it
/// announced.
async fn serve(db: &TestDatabase) -> (Child, String) {
    let mut child = db
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokensmith serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let find = async {
        while let Some(line) = lines.next_line().await.expect("readable stdout") {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                return rest.chars().take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'').collect::<String>();
            }
        }
        panic!("tokensmith serve exited without announcing its address");
    };
    let address = tokio::time::timeout(std::time::Duration::from_secs(30), find)
        .await
        .expect("tokensmith serve announces its address in time");
    // Keep draining stdout so that logging never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

async fn post(http: &reqwest::Client, url: String, bearer: Option<&str>, body: Option<&Value>) -> (StatusCode, Value) {
    let mut request = http.post(url);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn issue_long(http: &reqwest::Client, address: &str, client: &TestClient) -> (String, String) {
    let (status, body) = post(http, format!("{address}/v1/auth/tokens/long"), None, Some(&secret_grant(client))).await;
    assert_eq!(status, 201, "{body}");
    (
        body["token_id"].as_str().expect("token_id").to_owned(),
        body["access_token"].as_str().expect("access_token").to_owned(),
    )
}

#[tokio::test]
async fn issued_and_revoked_tokens_survive_kill_9() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let http = http_client();
    let (mut server, address) = serve(&db).await;
    let client = db.create_client("ci", "read", &[]).await;
    let (_kept_id, kept) = issue_long(&http, &address, &client).await;
    let (revoked_id, revoked) = issue_long(&http, &address, &client).await;
    let (status, _) = post(&http, format!("{address}/v1/auth/tokens/{revoked_id}/revoke"), Some(&revoked), None).await;
    assert_eq!(status, 204);

    server.kill().await.expect("SIGKILL");
    drop(http);

    let http = http_client();
    let (_server, address) = serve(&db).await;
    let (status, body) = post(&http, format!("{address}/v1/auth/tokens/short"), Some(&kept), None).await;
    assert_eq!(status, 201, "the token issued before the crash still works: {body}");
    let (status, body) = post(&http, format!("{address}/v1/auth/tokens/short"), Some(&revoked), None).await;
    assert_eq!(status, 401, "the token revoked before the crash stays revoked: {body}");
    issue_long(&http, &address, &client).await;
}
