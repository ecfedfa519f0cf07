//! Lock-out cannot be turned against a victim: anyone can name a client id, so guessing its
//! secret locks its guessable credentials (secret, OTP code, assertion) and never its valid
//! bearer tokens. Addresses come from the TCP peer unless it is a trusted proxy.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{LONG, SHORT, TestApp, TestClient, issued, merge, secret_grant, spawn_app_with};
use crate::keys::{ClientKey, KeyForm};

const ATTACKER: &str = "198.51.100.66";
const VICTIM: &str = "203.0.113.7";

/// Requests from the test come through 127.0.0.1, a trusted proxy: the address they count
/// against is the one each names in `X-Forwarded-For`.
async fn behind_a_proxy(per_client: u32) -> TestApp {
    behind_a_proxy_with(move |s| s.failures_per_client = per_client).await
}

async fn behind_a_proxy_with(configure: impl Fn(&mut tokensmith::config::Settings) + Send + Sync + 'static) -> TestApp {
    spawn_app_with(move |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        configure(s);
    })
    .await
}

async fn post_from(app: &TestApp, from: &str, path: &str, bearer: Option<&str>, body: &Value) -> crate::helpers::Reply {
    let mut request = app.post(path).header("X-Forwarded-For", from).json(body);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    app.send(request).await
}

fn wrong_secret(client: &TestClient) -> Value {
    merge(secret_grant(client), json!({"client_secret": "tsc_0000000000000000000000000000000000000000000000000"}))
}

#[tokio::test]
async fn guessing_a_clients_secret_never_locks_its_bearer_tokens() {
    let app = behind_a_proxy(5).await;
    let key = ClientKey::ed25519();
    let victim = app.create_key_client("victim", "deploy tokens:write tokens:introspect", &key, KeyForm::Pem).await;
    let long = app.issue_long(&victim).await;
    let short = app.issue_short(&long.access_token).await;

    for _ in 0..20 {
        let reply = post_from(&app, ATTACKER, LONG, None, &wrong_secret(&victim)).await;
        assert!(matches!(reply.status.as_u16(), 401 | 429), "{}", reply.text);
    }

    // The victim's tokens work, from the victim's address: short issuance, the short_token
    // grant, introspection and revocation.
    issued(&post_from(&app, VICTIM, SHORT, Some(&long.access_token), &json!({})).await);
    issued(&post_from(&app, VICTIM, LONG, Some(&short.access_token), &json!({"grant_type": "short_token"})).await);
    assert!(app.is_active(&long.access_token, &short.access_token).await);
    // Its guessable credentials are locked, wherever they come from.
    post_from(&app, VICTIM, LONG, None, &secret_grant(&victim)).await.assert_rate_limited();
    let assertion = key.sign(&app.assertion_claims(&victim.client_id));
    post_from(&app, VICTIM, LONG, None, &crate::helpers::assertion_grant(&assertion)).await.assert_rate_limited();
}

#[tokio::test]
async fn an_operator_unlocks_a_client_for_every_running_server() {
    let app = behind_a_proxy(3).await;
    let victim = app.create_client("victim", "deploy").await;
    for _ in 0..3 {
        post_from(&app, ATTACKER, LONG, None, &wrong_secret(&victim)).await.assert_status(401);
    }
    post_from(&app, VICTIM, LONG, None, &secret_grant(&victim)).await.assert_rate_limited();

    app.cli_ok(&["client", "unlock", &victim.client_id]).await;

    // The server learns it from the database within a second.
    let unlocked = Instant::now();
    loop {
        let reply = post_from(&app, VICTIM, LONG, None, &secret_grant(&victim)).await;
        if reply.status == 201 {
            break;
        }
        reply.assert_rate_limited();
        assert!(unlocked.elapsed() < Duration::from_secs(5), "still locked 5 s after the unlock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = app.audit(&["--client", &victim.client_id]).await;
    assert!(events.iter().any(|e| e["event"] == "client.unlocked"), "{events:#?}");
}

fn otp_grant(client: &TestClient, code: &str) -> Value {
    json!({"grant_type": "client_credentials", "client_id": client.client_id, "otp_code": code})
}

#[tokio::test]
async fn otp_codes_are_limited_per_day_so_six_digits_are_not_brute_forced_over_weeks() {
    let app = spawn_app_with(|s| {
        s.failures_per_client = 100;
        s.otp_failures_per_day = 3;
    })
    .await;
    let client = app.create_otp_client("otp", "deploy").await;
    for _ in 0..3 {
        app.align_to_otp_step();
        let wrong = if app.otp_code(&client) == "000000" { "000001" } else { "000000" };
        app.post_long(&otp_grant(&client, wrong)).await.assert_error(401, "invalid_grant");
        // Minutes apart: the per-minute limit is not what stops them.
        app.clock.advance_secs(120);
    }

    app.align_to_otp_step();
    let reply = app.post_long(&otp_grant(&client, &app.otp_code(&client))).await;
    reply.assert_rate_limited();
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 3600, "locked for most of the day, Retry-After {retry}");
    // The secret is not an OTP code: it still works.
    issued(&app.post_long(&secret_grant(&client)).await);
    app.clock.advance_secs(3600);
    app.align_to_otp_step();
    app.post_long(&otp_grant(&client, &app.otp_code(&client))).await.assert_rate_limited();

    // The day frees it.
    app.clock.advance_secs(86_400);
    app.align_to_otp_step();
    issued(&app.post_long(&otp_grant(&client, &app.otp_code(&client))).await);
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let app = spawn_app_with(|s| s.failures_per_address = 3).await;
    let client = app.create_client("ci", "deploy").await;
    let long = app.issue_long(&client).await;

    for i in 0..3 {
        let from = format!("198.51.100.{i}");
        post_from(&app, &from, SHORT, Some("tsl_forged"), &json!({})).await.assert_invalid_token();
    }

    // Every request came from 127.0.0.1, whatever it claimed: that address is locked.
    post_from(&app, VICTIM, SHORT, Some(&long.access_token), &json!({})).await.assert_rate_limited();
}

#[tokio::test]
async fn behind_trusted_proxies_each_client_address_has_its_own_limit() {
    let app = behind_a_proxy_with(|s| s.failures_per_address = 3).await;
    let client = app.create_client("ci", "deploy").await;
    let long = app.issue_long(&client).await;

    for _ in 0..3 {
        // A forged left part does not help: the right-most untrusted hop counts.
        let chain = format!("10.9.9.9, {ATTACKER}");
        post_from(&app, &chain, SHORT, Some("tsl_forged"), &json!({})).await.assert_invalid_token();
    }
    post_from(&app, ATTACKER, SHORT, Some(&long.access_token), &json!({})).await.assert_rate_limited();
    let forwarded = app.post(SHORT).header("Forwarded", format!("for={ATTACKER}")).bearer_auth(&long.access_token);
    app.send(forwarded).await.assert_rate_limited();

    issued(&post_from(&app, VICTIM, SHORT, Some(&long.access_token), &json!({})).await);
}

#[tokio::test]
async fn ipv6_addresses_are_limited_per_64() {
    let app = behind_a_proxy_with(|s| s.failures_per_address = 3).await;
    let client = app.create_client("ci", "deploy").await;
    let long = app.issue_long(&client).await;

    for i in 1..=3 {
        let from = format!("2001:db8:1:2::{i:x}");
        post_from(&app, &from, SHORT, Some("tsl_forged"), &json!({})).await.assert_invalid_token();
    }

    post_from(&app, "2001:db8:1:2:ffff::99", SHORT, Some(&long.access_token), &json!({})).await.assert_rate_limited();
    issued(&post_from(&app, "2001:db8:1:3::1", SHORT, Some(&long.access_token), &json!({})).await);
}

#[tokio::test]
async fn a_dual_stack_listener_trusts_its_ipv4_proxies_too() {
    let app = spawn_app_with(|s| {
        s.listen = "[::]:0".parse().unwrap();
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.failures_per_address = 3;
    })
    .await;
    let client = app.create_client("ci", "deploy").await;
    // Over IPv4 to the dual-stack socket: the peer is ::ffff:127.0.0.1, the proxy all the same.
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let short = format!("http://127.0.0.1:{port}{SHORT}");
    let long =
        issued(&app.send(app.http.post(format!("http://127.0.0.1:{port}{LONG}")).json(&secret_grant(&client))).await);
    let from =
        |who: &str, token: &str| app.http.post(&short).header("X-Forwarded-For", who).bearer_auth(token.to_owned());

    for _ in 0..3 {
        app.send(from(ATTACKER, "tsl_forged")).await.assert_invalid_token();
    }

    app.send(from(ATTACKER, &long.access_token)).await.assert_rate_limited();
    issued(&app.send(from(VICTIM, &long.access_token)).await);
    let events = app.audit(&[]).await;
    let failed: Vec<_> = events.iter().filter(|e| e["event"] == "auth.failed").collect();
    assert!(failed.iter().all(|e| e["source"] == ATTACKER), "{failed:#?}");
}
