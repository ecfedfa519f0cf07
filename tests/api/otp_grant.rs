//! issueLongTermToken with `client_credentials` + a one-time `otp_code` (RFC 6238: 6 digits,
//! 30 s steps, ±1 step of skew, each code accepted once per client).

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, issued, secret_grant, sorted, spawn_app};

fn otp_grant(client: &TestClient, code: &str) -> Value {
    json!({"grant_type": "client_credentials", "client_id": client.client_id, "otp_code": code})
}

/// A well-formed code that no step within the skew window produces.
fn wrong_code(app: &TestApp, client: &TestClient) -> String {
    let now = app.now();
    let valid: Vec<String> = [-30, 0, 30].iter().map(|d| app.otp_code_at(client, now + d)).collect();
    let mut n: u32 = valid[1].parse().expect("digits");
    loop {
        n = (n + 1) % 1_000_000;
        let candidate = format!("{n:06}");
        if !valid.contains(&candidate) {
            return candidate;
        }
    }
}

#[tokio::test]
async fn a_current_otp_code_issues_a_long_term_token() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "deploy read").await;
    app.align_to_otp_step();

    let reply = app.post_long(&otp_grant(&client, &app.otp_code(&client))).await;

    let token = issued(&reply);
    assert_eq!(token.body["client_id"], client.client_id.as_str());
    assert_eq!(token.scopes(), sorted(&["deploy", "read"]));
    app.issue_short(&token.access_token).await;
}

#[tokio::test]
async fn an_otp_code_is_accepted_only_once() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    let code = app.otp_code(&client);

    issued(&app.post_long(&otp_grant(&client, &code)).await);
    let replay = app.post_long(&otp_grant(&client, &code)).await;

    replay.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_otp_code_is_rejected_by_another_instance_on_the_same_database() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    let code = app.otp_code(&client);

    issued(&app.post_long(&otp_grant(&client, &code)).await);
    let replay = sibling.post_long(&otp_grant(&client, &code)).await;

    replay.assert_error(401, "invalid_grant");
}

#[tokio::test]
async fn the_code_of_the_next_step_is_accepted_after_one_was_used() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    issued(&app.post_long(&otp_grant(&client, &app.otp_code(&client))).await);

    app.clock.advance_secs(30);

    issued(&app.post_long(&otp_grant(&client, &app.otp_code(&client))).await);
}

#[tokio::test]
async fn a_wrong_otp_code_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();

    let reply = app.post_long(&otp_grant(&client, &wrong_code(&app, &client))).await;

    reply.assert_error(401, "invalid_grant");
    // A failure does not burn the current code.
    issued(&app.post_long(&otp_grant(&client, &app.otp_code(&client))).await);
}

#[tokio::test]
async fn a_code_one_step_old_is_accepted_for_clock_skew() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();

    let code = app.otp_code_at(&client, app.now() - 30);

    issued(&app.post_long(&otp_grant(&client, &code)).await);
}

#[tokio::test]
async fn a_code_one_step_ahead_is_accepted_for_clock_skew() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();

    let code = app.otp_code_at(&client, app.now() + 30);

    issued(&app.post_long(&otp_grant(&client, &code)).await);
}

#[tokio::test]
async fn codes_two_steps_away_are_rejected() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    let now = app.now();
    let current = app.otp_code_at(&client, now);

    for at in [now - 60, now + 60, now - 3600] {
        let code = app.otp_code_at(&client, at);
        if code == current {
            continue; // one chance in a million
        }
        app.post_long(&otp_grant(&client, &code)).await.assert_error(401, "invalid_grant");
    }
}

#[tokio::test]
async fn an_otp_code_for_a_client_without_otp_is_rejected() {
    let app = spawn_app().await;
    let otp_client = app.create_otp_client("with-otp", "read").await;
    let client = app.create_client("ci", "read").await;
    app.align_to_otp_step();
    // A code that would be valid for some client, presented for one that has no OTP.
    let code = app.otp_code(&otp_client);

    let reply = app.post_long(&otp_grant(&client, &code)).await;

    reply.assert_status(401);
    let error = reply.json()["error"].clone();
    assert!(error == "invalid_grant" || error == "invalid_client", "got {error}");
}

#[tokio::test]
async fn an_otp_client_can_still_use_its_client_secret() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;

    issued(&app.post_long(&secret_grant(&client)).await);
}

#[tokio::test]
async fn the_otp_uri_enrols_the_same_secret() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;

    let secret = client.otp_secret.as_deref().expect("otp_secret");
    let uri = client.json["otp_uri"].as_str().expect("otp_uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri} carries {secret}");
    assert!(secret.len() >= 26, "at least 128 bits of seed: {secret}");
}

#[tokio::test]
async fn an_otp_code_sent_twice_at_once_is_accepted_once() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.align_to_otp_step();
    let body = otp_grant(&client, &app.otp_code(&client));

    let replies = crate::helpers::join_all((0..4).map(|_| app.post_long(&body))).await;

    let accepted = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(accepted, 1, "exactly one use of the code wins");
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.assert_error(401, "invalid_grant");
    }
}
