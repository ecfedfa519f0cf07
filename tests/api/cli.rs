//! The command line that registers clients, run against the same database as the server.

use crate::helpers::{TestApp, sorted, spawn_app, string_list};
use crate::keys::{ClientKey, KeyForm, KeyKind};

/// Asserts a failed command: non-zero exit and one line of error on stderr.
#[track_caller]
fn assert_fails_with_one_line(out: &std::process::Output) {
    assert!(!out.status.success(), "the command should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    assert!(!stderr.is_empty(), "an error on stderr");
    assert_eq!(stderr.lines().count(), 1, "a one-line error, got:\n{stderr}");
}

#[tokio::test]
async fn client_create_prints_the_new_client_once_as_json() {
    let app = spawn_app().await;

    let client = app.create_client("nightly build", "read deploy").await;

    let json = &client.json;
    assert!(client.client_id.len() >= 8, "{json}");
    assert!(client.client_secret.len() >= 32, "a secret of at least 192 bits: {json}");
    assert_eq!(json["name"], "nightly build");
    assert_eq!(string_list(&json["scopes"]), sorted(&["deploy", "read"]));
    assert!(json.get("otp_secret").is_none_or(|v| v.is_null()), "no OTP unless asked: {json}");

    let other = app.create_client("nightly build", "read").await;
    assert_ne!(client.client_id, other.client_id);
    assert_ne!(client.client_secret, other.client_secret);
}

#[tokio::test]
async fn client_list_shows_the_clients_but_never_their_secrets() {
    let app = spawn_app().await;
    let plain = app.create_client("plain", "read").await;
    let otp = app.create_otp_client("with-otp", "read deploy").await;

    let out = app.cli(&["client", "list", "--json"]).await;

    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in [&plain.client_secret, &otp.client_secret, otp.otp_secret.as_ref().expect("otp")] {
        assert!(!text.contains(secret.as_str()), "client list prints a secret");
    }
    let list = app.list_clients().await;
    assert_eq!(list.len(), 2);
    let entry = |id: &str| list.iter().find(|c| c["client_id"] == id).expect("listed").clone();
    let (plain_entry, otp_entry) = (entry(&plain.client_id), entry(&otp.client_id));
    assert_eq!(plain_entry["name"], "plain");
    assert_eq!(plain_entry["otp"], false);
    assert_eq!(plain_entry["disabled"], false);
    assert_eq!(otp_entry["otp"], true);
    assert_eq!(string_list(&otp_entry["scopes"]), sorted(&["deploy", "read"]));
    assert!(!otp_entry["created_at"].is_null());
}

#[tokio::test]
async fn client_create_registers_each_kind_of_public_key() {
    let app = spawn_app().await;
    let cases = [
        (KeyKind::Ed25519, KeyForm::Pem, "EdDSA"),
        (KeyKind::Ed25519, KeyForm::Jwk, "EdDSA"),
        (KeyKind::P256, KeyForm::Pem, "ES256"),
        (KeyKind::P256, KeyForm::Jwk, "ES256"),
        (KeyKind::Rsa, KeyForm::Jwk, "RS256"),
    ];

    let mut expected = Vec::new();
    for (i, (kind, form, alg)) in cases.into_iter().enumerate() {
        let key = ClientKey::generate(kind);
        assert_eq!(key.kind(), kind);
        let client = app.create_key_client(&format!("key-{i}"), "read", &key, form).await;
        expected.push((client.client_id, alg));
    }

    let list = app.list_clients().await;
    for (client_id, alg) in expected {
        let entry = list.iter().find(|c| c["client_id"] == client_id.as_str()).expect("listed");
        assert_eq!(entry["public_key_alg"], alg, "{entry}");
    }
}

async fn client_count(app: &TestApp) -> usize {
    app.list_clients().await.len()
}

#[tokio::test]
async fn a_bad_public_key_file_fails_with_a_one_line_error_and_stores_nothing() {
    let app = spawn_app().await;
    app.create_client("existing", "read").await;
    let garbage = app.write_file("garbage.pem", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n");
    let empty = app.write_file("empty.pem", "");
    let bad_jwk = app.write_file("bad.jwk", r#"{"kty":"OKP","crv":"Ed25519","x":"short"}"#);
    let symmetric = app.write_file("oct.jwk", r#"{"kty":"oct","k":"c2VjcmV0"}"#);
    let missing = app.dir.path().join("missing.pem").display().to_string();

    for file in [&garbage, &empty, &bad_jwk, &symmetric, &missing] {
        let out =
            app.cli(&["client", "create", "--name", "bad", "--scopes", "read", "--public-key", file, "--json"]).await;
        assert_fails_with_one_line(&out);
        assert!(out.stdout.is_empty(), "no client printed for {file}");
    }

    assert_eq!(client_count(&app).await, 1, "nothing was stored");
}

#[tokio::test]
async fn bad_flags_fail_with_an_error_and_store_nothing() {
    let app = spawn_app().await;

    for args in [
        vec!["client", "create", "--name", "x", "--scopes", "read", "--bogus"],
        vec!["client", "create", "--scopes", "read"],
        vec!["client", "create", "--name", "x", "--scopes", "bad\"scope"],
        vec!["client", "frobnicate"],
    ] {
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.trim().is_empty(), "{args:?} explains the error on stderr");
    }

    assert_eq!(client_count(&app).await, 0);
}

#[tokio::test]
async fn the_database_may_come_from_the_environment() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;

    let out = app
        .db
        .command()
        .args(["client", "list", "--json"])
        .env("TOKENSMITH_DATABASE", &app.database_url)
        .output()
        .await
        .expect("the binary runs");

    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list[0]["client_id"], client.client_id.as_str());
}

#[tokio::test]
async fn serve_with_a_bad_listen_address_fails_naming_the_flag() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["serve", "--listen", "not-an-address", "--database", &crate::helpers::database_url_in(&dir)])
        .kill_on_drop(true)
        .output();

    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("serve gives up at once")
        .expect("the binary runs");

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen"), "the error names what is wrong: {stderr}");
}
