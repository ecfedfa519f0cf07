//! Failures are uniform: an attacker who names a client learns nothing from the answer about
//! whether it exists, is disabled, has enrolled an OTP seed, or which key type it holds.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, TestClient, assertion_grant, merge, secret_grant, spawn_app_with};
use crate::keys::{ClientKey, KeyForm};

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.failures_per_client = 0;
        s.failures_per_address = 0;
    })
    .await
}

/// Status, `error`, `error_description` and `WWW-Authenticate`: everything a caller sees.
fn answer(reply: &Reply) -> (u16, Value, Option<String>) {
    (reply.status.as_u16(), reply.json(), reply.header("www-authenticate").map(str::to_owned))
}

#[tokio::test]
async fn unknown_disabled_and_wrong_secret_get_one_answer() {
    let app = app().await;
    let live = app.create_client("live", "deploy").await;
    let disabled = app.create_client("disabled", "deploy").await;
    assert!(app.cli(&["client", "disable", &disabled.client_id]).await.status.success());

    let wrong = merge(secret_grant(&live), json!({"client_secret": disabled.client_secret}));
    let unknown = merge(secret_grant(&live), json!({"client_id": crate::helpers::unknown_client_id()}));
    let answers = [
        answer(&app.post_long(&wrong).await),
        answer(&app.post_long(&unknown).await),
        answer(&app.post_long(&secret_grant(&disabled)).await),
    ];

    assert_eq!(answers[0].0, 401);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
}

fn otp_grant(client_id: &str, code: &str) -> Value {
    json!({"grant_type": "client_credentials", "client_id": client_id, "otp_code": code})
}

#[tokio::test]
async fn wrong_replayed_and_unenrolled_otp_codes_get_one_answer() {
    let app = app().await;
    let client = app.create_otp_client("otp", "deploy").await;
    let no_otp = app.create_client("no-otp", "deploy").await;
    app.align_to_otp_step();
    let code = app.otp_code(&client);
    app.post_long(&otp_grant(&client.client_id, &code)).await.assert_status(201);
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let answers = [
        answer(&app.post_long(&otp_grant(&client.client_id, &code)).await),
        answer(&app.post_long(&otp_grant(&client.client_id, wrong)).await),
        answer(&app.post_long(&otp_grant(&no_otp.client_id, &code)).await),
        answer(&app.post_long(&otp_grant(&crate::helpers::unknown_client_id(), &code)).await),
    ];

    assert_eq!(answers[0].0, 401);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
}

async fn key_client(app: &TestApp, name: &str, key: &ClientKey) -> TestClient {
    app.create_key_client(name, "deploy", key, KeyForm::Pem).await
}

#[tokio::test]
async fn assertions_for_unknown_keyless_and_foreign_keyed_clients_get_one_answer() {
    let app = app().await;
    let ed_key = ClientKey::ed25519();
    let ec_key = ClientKey::p256();
    let ed_client = key_client(&app, "ed", &ed_key).await;
    let ec_client = key_client(&app, "ec", &ec_key).await;
    let keyless = app.create_client("keyless", "deploy").await;
    let disabled = key_client(&app, "disabled", &ClientKey::ed25519()).await;
    assert!(app.cli(&["client", "disable", &disabled.client_id]).await.status.success());
    let attacker = ClientKey::ed25519();
    let signed = |key: &ClientKey, client_id: &str| key.sign(&app.assertion_claims(client_id));

    let answers = [
        // Signed by a foreign key of the right type.
        answer(&app.post_long(&assertion_grant(&signed(&attacker, &ed_client.client_id))).await),
        // Of another type than the client's key (whose type would be revealed).
        answer(&app.post_long(&assertion_grant(&signed(&attacker, &ec_client.client_id))).await),
        answer(&app.post_long(&assertion_grant(&signed(&ClientKey::rsa(), &ec_client.client_id))).await),
        // A client without a key, a disabled client, an unknown client.
        answer(&app.post_long(&assertion_grant(&signed(&attacker, &keyless.client_id))).await),
        answer(&app.post_long(&assertion_grant(&signed(&attacker, &disabled.client_id))).await),
        answer(&app.post_long(&assertion_grant(&signed(&attacker, &crate::helpers::unknown_client_id()))).await),
    ];

    assert_eq!(answers[0].0, 401);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    // The real keys still work.
    app.post_long(&assertion_grant(&signed(&ed_key, &ed_client.client_id))).await.assert_status(201);
    app.post_long(&assertion_grant(&signed(&ec_key, &ec_client.client_id))).await.assert_status(201);
}

#[tokio::test]
async fn a_failed_guessable_credential_is_answered_after_the_delay_whatever_the_client() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 0;
        s.failures_per_address = 0;
        s.failure_delay_ms = 1000;
    })
    .await;
    let live = app.create_client("live", "deploy").await;
    let long = app.issue_long(&live).await;
    let unknown = merge(secret_grant(&live), json!({"client_id": crate::helpers::unknown_client_id()}));
    let wrong = merge(secret_grant(&live), json!({"client_secret": "tsc_wrong"}));

    for body in [&unknown, &wrong] {
        let started = std::time::Instant::now();
        app.post_long(body).await.assert_status(401);
        assert!(started.elapsed() >= std::time::Duration::from_millis(1000), "answered after {:?}", started.elapsed());
    }
    // Only failures wait: a success and a bearer token are answered at once.
    let started = std::time::Instant::now();
    app.issue_short(&long.access_token).await;
    app.post_short(Some("tsl_forged"), None).await.assert_invalid_token();
    assert!(started.elapsed() < std::time::Duration::from_millis(1000), "{:?}", started.elapsed());
}
