//! No fixed value authenticates anyone: not the string the service once used to equalise
//! timing, not an empty or blank secret, not another client's secret, not a near miss.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, merge, secret_grant, spawn_app_with};

/// The literal that authenticated as any client before: the text of the old timing dummy.
const OLD_DUMMY: &str = "tokensmith/dummy-secret-that-nothing-matches";

async fn app() -> TestApp {
    // Many failures on purpose: the limits are not what these tests are about.
    spawn_app_with(|s| {
        s.failures_per_client = 0;
        s.failures_per_address = 0;
    })
    .await
}

fn with_secret(client: &TestClient, secret: &str) -> Value {
    merge(secret_grant(client), json!({"client_secret": secret}))
}

async fn rotate_secret(app: &TestApp, client: &TestClient, overlap: &str) -> String {
    let out = app.cli(&["client", "rotate-secret", &client.client_id, "--overlap", overlap, "--json"]).await;
    assert!(out.status.success(), "rotate-secret: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("rotate-secret --json prints JSON");
    v["client_secret"].as_str().expect("the new secret").to_owned()
}

/// Every candidate is refused with the one `invalid_client` answer.
async fn assert_refused(app: &TestApp, client: &TestClient, candidates: &[String]) {
    for candidate in candidates {
        let reply = app.post_long(&with_secret(client, candidate)).await;
        let body = reply.assert_error(401, "invalid_client");
        assert_eq!(body["error_description"], "client authentication failed", "{candidate:?}");
    }
}

/// One character of `secret` changed at `index` (to the next base62 character).
fn near_miss(secret: &str, index: usize) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    chars[index] = match chars[index] {
        'z' => '0',
        '9' => 'A',
        'Z' => 'a',
        c => char::from(c as u8 + 1),
    };
    chars.into_iter().collect()
}

fn fixed_candidates(client: &TestClient, other: &TestClient) -> Vec<String> {
    let real = &client.client_secret;
    vec![
        OLD_DUMMY.to_owned(),
        String::new(),
        " ".to_owned(),
        "\t\n".to_owned(),
        "tsc_".to_owned(),
        other.client_secret.clone(),
        near_miss(real, 4),
        near_miss(real, real.len() / 2),
        near_miss(real, real.len() - 1),
        real.to_uppercase(),
        format!("{real} "),
        format!(" {real}"),
        real[..real.len() - 1].to_owned(),
        format!("{real}0"),
        client.client_id.clone(),
    ]
}

#[tokio::test]
async fn the_old_timing_dummy_authenticates_no_client_with_or_without_a_rotation() {
    let app = app().await;
    let plain = app.create_client("plain", "deploy tokens:write").await;
    let rotating = app.create_client("rotating", "deploy").await;
    let rotated = app.create_client("rotated", "deploy").await;
    rotate_secret(&app, &rotating, "1h").await;
    rotate_secret(&app, &rotated, "0s").await;

    for client in [&plain, &rotating, &rotated] {
        let reply = app.post_long(&merge(with_secret(client, OLD_DUMMY), json!({"ttl_days": 90}))).await;
        reply.assert_error(401, "invalid_client");
    }
}

#[tokio::test]
async fn empty_blank_foreign_and_near_miss_secrets_are_refused() {
    let app = app().await;
    let client = app.create_client("victim", "deploy").await;
    let other = app.create_client("other", "deploy").await;

    assert_refused(&app, &client, &fixed_candidates(&client, &other)).await;

    // The real secret still works: the refusals above were about the candidates.
    app.post_long(&secret_grant(&client)).await.assert_status(201);
}

#[tokio::test]
async fn a_previous_secret_works_only_while_its_overlap_runs() {
    let app = app().await;
    let client = app.create_client("victim", "deploy").await;
    let other = app.create_client("other", "deploy").await;
    let new = rotate_secret(&app, &client, "1h").await;
    let mut rotated = client.clone();
    rotated.client_secret = new.clone();

    app.post_long(&with_secret(&client, &client.client_secret)).await.assert_status(201);
    assert_refused(&app, &rotated, &fixed_candidates(&rotated, &other)).await;

    app.clock.advance_secs(3601);
    let mut candidates = fixed_candidates(&rotated, &other);
    candidates.push(client.client_secret.clone());
    assert_refused(&app, &rotated, &candidates).await;
    app.post_long(&with_secret(&client, &new)).await.assert_status(201);
}

#[tokio::test]
async fn an_unknown_client_id_gets_the_same_answer_whatever_the_secret() {
    let app = app().await;
    let client = app.create_client("victim", "deploy").await;
    let mut ghost = client.clone();
    ghost.client_id = crate::helpers::unknown_client_id();

    for secret in [OLD_DUMMY, "", &client.client_secret] {
        let reply = app.post_long(&with_secret(&ghost, secret)).await;
        let body = reply.assert_error(401, "invalid_client");
        assert_eq!(body["error_description"], "client authentication failed");
    }
}
