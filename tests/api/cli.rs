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
        vec!["client", "create", "--name", "x", "--scopes", " "],
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

// ----- the friendly admin command line: show, add-key, token list|revoke, output, errors ------

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
async fn ok(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(args).await;
    assert!(out.status.success(), "{args:?} fails: {}", stderr(&out));
    assert!(out.stderr.is_empty(), "{args:?} writes nothing on stderr: {}", stderr(&out));
    stdout(&out)
}

/// Runs a `--json` command that must succeed and returns its JSON.
async fn ok_json(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let text = ok(app, args).await;
    assert_eq!(text.trim_end().lines().count(), 1, "{args:?} prints one line of JSON: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} prints JSON ({e}): {text}"))
}

/// Runs a command that must fail with a one-line error containing `expected`; returns it.
async fn fails(app: &TestApp, args: &[&str], expected: &str) -> String {
    let out = app.cli(args).await;
    assert_fails_with_one_line(&out);
    assert!(out.stdout.is_empty(), "{args:?} prints nothing on stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(expected), "{args:?}: the error should contain {expected:?}: {err}");
    err
}

/// Reads the half-block QR code out of `text` (the lines made of blocks only) and decodes it.
fn decode_qr(text: &str) -> Option<String> {
    let is_qr = |l: &&str| !l.trim().is_empty() && l.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄'));
    let lines: Vec<Vec<char>> = text.lines().filter(is_qr).map(|l| l.chars().collect()).collect();
    let width = lines.iter().map(Vec::len).max()?;
    const SCALE: usize = 4;
    // A drawn half is a light module (the code is drawn light on a dark terminal).
    let light = |x: usize, y: usize| -> bool {
        let c = lines[y / 2].get(x).copied().unwrap_or(' ');
        matches!((c, y.is_multiple_of(2)), ('█', _) | ('▀', true) | ('▄', false))
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(width * SCALE, lines.len() * 2 * SCALE, |x, y| {
        if light(x / SCALE, y / SCALE) { 255 } else { 0 }
    });
    let grids = img.detect_grids();
    grids.first()?.decode().ok().map(|(_, content)| content)
}

#[tokio::test]
async fn client_create_otp_draws_the_otpauth_uri_as_a_qr_code_that_scans() {
    let app = spawn_app().await;

    let text = ok(&app, &["client", "create", "--name", "phone enrol", "--scopes", "read", "--otp"]).await;

    let uri = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("otp_uri:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("otp_uri is printed: {text}"));
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert_eq!(decode_qr(&text).as_deref(), Some(uri), "the QR code holds exactly the printed URI:\n{text}");
    assert!(!text.contains("\u{1b}["), "no colours when stdout is not a terminal");
    // The URI's secret is the printed one, so an app that scans it makes the server's codes.
    let secret = text.lines().find_map(|l| l.trim().strip_prefix("otp_secret:")).expect("otp_secret").trim();
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");

    // Without --otp there is no code; with --json there is one JSON object and no drawing.
    let plain = ok(&app, &["client", "create", "--name", "plain", "--scopes", "read"]).await;
    assert!(decode_qr(&plain).is_none() && !plain.contains('█'), "{plain}");
    let json = ok_json(&app, &["client", "create", "--name", "scripted", "--scopes", "read", "--otp", "--json"]).await;
    assert!(json["otp_uri"].as_str().is_some_and(|u| u.starts_with("otpauth://totp/")), "{json}");
}

#[tokio::test]
async fn client_show_prints_every_field_but_the_secrets_in_both_modes() {
    let app = spawn_app().await;
    let key = ClientKey::generate(KeyKind::Ed25519);
    let client = app.create_client_with("show me", "read deploy", &["--otp"]).await;
    let pem = app.write_file("show.pem", &key.public_file(KeyForm::Pem));
    ok(&app, &["client", "add-key", &client.client_id, "--public-key", &pem]).await;
    // One live token, one in its rotation's grace, one revoked (not counted).
    let old = app.issue_long(&client).await;
    app.issue_long_with(&client, serde_json::json!({"rotate_token_id": old.token_id, "grace_seconds": 300})).await;
    let gone = app.issue_long(&client).await;
    ok(&app, &["token", "revoke", &gone.token_id]).await;

    let json = ok_json(&app, &["client", "show", &client.client_id, "--json"]).await;

    assert_eq!(json["client_id"], client.client_id.as_str());
    assert_eq!(json["name"], "show me");
    assert_eq!(string_list(&json["scopes"]), sorted(&["deploy", "read"]));
    assert_eq!(json["otp"], true);
    assert_eq!(json["disabled"], false);
    assert_eq!(json["public_key_alg"], "EdDSA");
    assert_eq!(json["public_key"].as_str().map(str::trim), Some(key.public_pem().trim()));
    assert!(crate::helpers::rfc3339(&json["created_at"]) > 0);
    assert_eq!(json["long_tokens"], serde_json::json!({"live": 1, "rotating": 1, "suspended": 0}));
    // The thumbprint is the key's (RFC 7638): the same for its JWK form on another client.
    let thumbprint = json["public_key_thumbprint"].as_str().expect("a thumbprint").to_owned();
    let twin = app.create_key_client("twin", "read", &key, KeyForm::Jwk).await;
    let twin_json = ok_json(&app, &["client", "show", &twin.client_id, "--json"]).await;
    assert_eq!(twin_json["public_key_thumbprint"], thumbprint.as_str());
    assert_eq!(twin.json["public_key_thumbprint"], thumbprint.as_str(), "client create prints it too");

    let text = ok(&app, &["client", "show", &client.client_id]).await;
    for expected in [client.client_id.as_str(), "show me", "deploy read", "EdDSA", &thumbprint, "1 live, 1 rotating"] {
        assert!(text.contains(expected), "client show mentions {expected:?}:\n{text}");
    }
    for out in [&text, &json.to_string()] {
        assert!(!out.contains(&client.client_secret), "client show prints the secret");
        assert!(!out.contains(client.otp_secret.as_deref().expect("otp")), "client show prints the OTP secret");
        assert!(!out.contains(&old.access_token), "client show prints a token");
    }

    // A disabled client's tokens are suspended, not live.
    ok(&app, &["client", "disable", &client.client_id]).await;
    let json = ok_json(&app, &["client", "show", &client.client_id, "--json"]).await;
    assert_eq!(json["disabled"], true);
    assert_eq!(json["long_tokens"], serde_json::json!({"live": 0, "rotating": 0, "suspended": 2}));
}

/// The status of an assertion grant for `client` signed with `key`.
async fn assertion_status(app: &TestApp, client: &crate::helpers::TestClient, key: &ClientKey) -> u16 {
    let claims = app.assertion_claims(&client.client_id);
    app.post_long(&crate::helpers::assertion_grant(&key.sign(&claims))).await.status.as_u16()
}

#[tokio::test]
async fn client_add_key_sets_a_key_once_and_replaces_it_only_when_asked() {
    let app = spawn_app().await;
    let client = app.create_client("signer", "read").await;
    let (first, second) = (ClientKey::generate(KeyKind::P256), ClientKey::generate(KeyKind::Ed25519));
    let first_file = app.write_file("first.pem", &first.public_file(KeyForm::Pem));
    let second_file = app.write_file("second.jwk", &second.public_file(KeyForm::Jwk));
    let assertion_status = |key| assertion_status(&app, &client, key);
    assert_eq!(assertion_status(&first).await, 401, "no key registered yet");

    let added = ok_json(&app, &["client", "add-key", &client.client_id, "--public-key", &first_file, "--json"]).await;
    assert_eq!(added["client_id"], client.client_id.as_str());
    assert_eq!(added["public_key_alg"], "ES256");
    assert_eq!(added["replaced"], false);
    assert_eq!(assertion_status(&first).await, 201, "the registered key signs assertions at once");

    // A second key is refused without --replace, and the first one stays.
    let err = fails(&app, &["client", "add-key", &client.client_id, "--public-key", &second_file], "--replace").await;
    assert!(err.contains("already has a public key (ES256)"), "{err}");
    assert_eq!(app.list_clients().await[0]["public_key_alg"], "ES256");
    assert_eq!(assertion_status(&first).await, 201);

    let text = ok(&app, &["client", "add-key", &client.client_id, "--public-key", &second_file, "--replace"]).await;
    assert!(text.contains("replaced") && text.contains("EdDSA"), "{text}");
    assert_eq!(app.list_clients().await[0]["public_key_alg"], "EdDSA");
    assert_eq!(assertion_status(&second).await, 201);
    assert_eq!(assertion_status(&first).await, 401, "the replaced key no longer signs");
}

#[tokio::test]
async fn client_add_key_refuses_bad_input_and_changes_nothing() {
    let app = spawn_app().await;
    let key = ClientKey::generate(KeyKind::Ed25519);
    let client = app.create_key_client("keyed", "read", &key, KeyForm::Pem).await;
    let good = app.write_file("good.pem", &ClientKey::generate(KeyKind::P256).public_file(KeyForm::Pem));
    let garbage = app.write_file("garbage.pem", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n");
    let private = app.write_file("private.jwk", r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"AAAA"}"#);
    let missing = app.dir.path().join("missing.pem").display().to_string();
    let unknown = crate::helpers::unknown_client_id();
    let id = client.client_id.as_str();

    fails(&app, &["client", "add-key", id, "--public-key", &garbage, "--replace"], "--public-key").await;
    fails(&app, &["client", "add-key", id, "--public-key", &private, "--replace"], "private key").await;
    fails(&app, &["client", "add-key", id, "--public-key", &missing, "--replace"], "cannot read --public-key").await;
    let err = fails(&app, &["client", "add-key", &unknown, "--public-key", &good], "client list").await;
    assert!(err.contains(&format!("no client {unknown}")), "{err}");
    fails(&app, &["client", "add-key", "not a client!", "--public-key", &good], "is not a client id").await;
    fails(&app, &["client", "add-key", id], "--public-key").await;

    let list = app.list_clients().await;
    assert_eq!(list.len(), 1, "nothing was created");
    assert_eq!(list[0]["public_key_alg"], "EdDSA", "the key is unchanged");
}

#[tokio::test]
async fn token_list_shows_each_tokens_status_but_never_a_secret() {
    let app = spawn_app().await;
    let client = app.create_client("lister", "read").await;
    let other = app.create_client("other", "read").await;
    let live = app.issue_long_with(&client, serde_json::json!({"name": "nightly ci"})).await;
    let rotated = app.issue_long(&client).await;
    let successor = app
        .issue_long_with(&client, serde_json::json!({"rotate_token_id": rotated.token_id, "grace_seconds": 600}))
        .await;
    let revoked = app.issue_long(&client).await;
    ok(&app, &["token", "revoke", &revoked.token_id]).await;
    let others = app.issue_long(&other).await;

    let list = ok_json(&app, &["token", "list", "--client", &client.client_id, "--json"]).await;

    let list = list.as_array().expect("an array").clone();
    let status = |list: &[serde_json::Value], id: &str| {
        list.iter().find(|t| t["token_id"] == id).map(|t| t["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(list.len(), 3, "live and rotating tokens of this client only: {list:?}");
    assert_eq!(status(&list, &live.token_id).as_deref(), Some("live"));
    assert_eq!(status(&list, &rotated.token_id).as_deref(), Some("rotating"));
    assert_eq!(status(&list, &successor.token_id).as_deref(), Some("live"));
    let entry = list.iter().find(|t| t["token_id"] == live.token_id.as_str()).expect("listed");
    assert_eq!(entry["client_id"], client.client_id.as_str());
    assert_eq!(entry["name"], "nightly ci");
    assert_eq!(string_list(&entry["scopes"]), sorted(&["read"]));
    assert_eq!(entry["issued_at"], live.body["issued_at"]);
    assert_eq!(entry["expires_at"], live.body["expires_at"]);
    assert!(entry["revoked_at"].is_null());
    let rotating = list.iter().find(|t| t["token_id"] == rotated.token_id.as_str()).expect("listed");
    assert!(crate::helpers::rfc3339(&rotating["revoked_at"]) > app.now(), "the grace ends in the future");

    let all = ok_json(&app, &["token", "list", "--all", "--json"]).await;
    let all = all.as_array().expect("an array").clone();
    assert_eq!(all.len(), 5, "every client's tokens, revoked ones included");
    assert_eq!(status(&all, &revoked.token_id).as_deref(), Some("revoked"));
    assert_eq!(status(&all, &others.token_id).as_deref(), Some("live"));

    let text = ok(&app, &["token", "list"]).await;
    let header = text.lines().next().expect("a header");
    for column in ["TOKEN_ID", "CLIENT_ID", "NAME", "STATUS", "ISSUED", "VALID_UNTIL", "SCOPES"] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(text.lines().count(), 1 + 4, "a header and the four valid tokens:\n{text}");
    assert!(text.contains(&live.token_id) && text.contains("nightly ci") && text.contains("rotating"), "{text}");
    assert!(!text.contains(&revoked.token_id), "revoked tokens only with --all:\n{text}");
    // Columns line up: every id starts each line, and the client ids sit in one column.
    let column = header.find("CLIENT_ID").expect("CLIENT_ID");
    for line in text.lines().skip(1) {
        assert_eq!(line.get(column..column + 4), Some("cli_"), "aligned:\n{text}");
    }

    for out in [text, all.iter().map(ToString::to_string).collect::<String>()] {
        for token in [&live, &rotated, &successor, &revoked, &others] {
            assert!(!out.contains(&token.access_token), "token list prints a token");
        }
        assert!(!out.contains(&client.client_secret));
    }
    // The disabled client's tokens are listed as such.
    ok(&app, &["client", "disable", &other.client_id]).await;
    let list = ok_json(&app, &["token", "list", "--client", &other.client_id, "--json"]).await;
    assert_eq!(list[0]["status"], "disabled");
    // An unknown or malformed client is an error, not an empty list.
    let unknown = crate::helpers::unknown_client_id();
    fails(&app, &["token", "list", "--client", &unknown], "no client").await;
    fails(&app, &["token", "list", "--client", "bad id"], "is not a client id").await;
    fails(&app, &["token", "list", "--all", "--bogus"], "tokensmith token list --help").await;
}

#[tokio::test]
async fn token_revoke_stops_a_long_term_token_and_its_short_term_tokens() {
    let app = spawn_app().await;
    let client = app.create_client("revoker", "read tokens:introspect").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let bystander = app.issue_long(&client).await;

    let text = ok(&app, &["token", "revoke", &long.token_id]).await;

    assert!(text.contains(&format!("revoked long-term token {}", long.token_id)), "{text}");
    // Past the servers' one-second cache bound, the token and its short-term token are refused.
    app.clock.advance_secs(2);
    assert_eq!(app.post_short(Some(&long.access_token), None).await.status, 401);
    assert!(!app.is_active(&bystander.access_token, &short.access_token).await, "the cascade");
    assert_eq!(app.post_short(Some(&bystander.access_token), None).await.status, 201, "others are untouched");
    // Idempotent: again is a success that says so.
    let again = ok_json(&app, &["token", "revoke", &long.token_id, "--json"]).await;
    assert_eq!(
        again,
        serde_json::json!({"token_id": long.token_id, "token_type": "long", "client_id": client.client_id,
                           "outcome": "already_revoked", "cascade": 0})
    );
    let listed = ok_json(&app, &["token", "list", "--all", "--json"]).await;
    let entry = listed.as_array().expect("array").iter().find(|t| t["token_id"] == long.token_id.as_str()).cloned();
    assert_eq!(entry.expect("listed")["status"], "revoked");
}

#[tokio::test]
async fn token_revoke_stops_a_short_term_token_by_id() {
    let app = spawn_app().await;
    let client = app.create_client("short", "read tokens:introspect").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    assert!(short.token_id.starts_with("st_"));

    let json = ok_json(&app, &["token", "revoke", &short.token_id, "--json"]).await;

    assert_eq!(
        json,
        serde_json::json!({"token_id": short.token_id, "token_type": "short", "client_id": client.client_id,
                           "outcome": "revoked", "cascade": 0})
    );
    app.clock.advance_secs(2);
    assert!(!app.is_active(&long.access_token, &short.access_token).await);
    assert!(app.is_active(&long.access_token, &long.access_token).await, "its long-term token is untouched");
    let again = ok(&app, &["token", "revoke", &short.token_id]).await;
    assert!(again.contains("revoked short-term token"), "idempotent: {again}");
}

#[tokio::test]
async fn token_revoke_explains_unknown_and_malformed_ids_and_changes_nothing() {
    let app = spawn_app().await;
    let client = app.create_client("careful", "read tokens:introspect").await;
    let long = app.issue_long(&client).await;
    let short = app.issue_short(&long.access_token).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    // A short-term id with one character changed: its MAC no longer matches.
    let mut forged = short.token_id.clone();
    let last = if forged.ends_with('A') { "B" } else { "A" };
    forged.replace_range(forged.len() - 1.., last);

    let err = fails(&app, &["token", "revoke", &unknown], "token list --all").await;
    assert!(err.contains(&format!("no long-term token {unknown}")), "{err}");
    fails(&app, &["token", "revoke", "not-a-token"], "is not a token id").await;
    fails(&app, &["token", "revoke", &forged], "not a short-term token id issued with this database").await;
    fails(&app, &["token", "revoke", &long.access_token], "is not a token id").await;
    fails(&app, &["token", "revoke"], "TOKEN_ID").await;

    app.clock.advance_secs(2);
    assert!(app.is_active(&long.access_token, &long.access_token).await);
    assert!(app.is_active(&long.access_token, &short.access_token).await);
}

#[tokio::test]
async fn disable_enable_and_list_print_json_and_tables() {
    let app = spawn_app().await;
    let long_name = "a rather long client name that does not fit in the table";
    let client = app.create_client(long_name, "read deploy").await;

    let json = ok_json(&app, &["client", "disable", &client.client_id, "--json"]).await;
    assert_eq!(json, serde_json::json!({"client_id": client.client_id, "disabled": true}));
    assert!(ok(&app, &["client", "enable", &client.client_id]).await.contains("enabled"));
    let json = ok_json(&app, &["client", "enable", &client.client_id, "--json"]).await;
    assert_eq!(json, serde_json::json!({"client_id": client.client_id, "disabled": false, "revoked_tokens": 0}));

    let text = ok(&app, &["client", "list"]).await;
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let row = lines.next().expect("a row");
    assert!(header.starts_with("CLIENT_ID") && header.contains("SCOPES"), "{header}");
    assert!(row.starts_with(&client.client_id), "{row}");
    assert!(row.contains("a rather long client na…") && !row.contains(long_name), "long names are cut: {row}");
    assert_eq!(header.find("NAME"), row.find("a rather"), "aligned:\n{text}");
    assert_eq!(app.list_clients().await[0]["name"], long_name, "JSON keeps the whole name");

    let unknown = crate::helpers::unknown_client_id();
    for verb in ["disable", "enable", "show", "unlock", "reset-otp"] {
        let err = fails(&app, &["client", verb, &unknown], "(see tokensmith client list)").await;
        assert!(err.contains(&format!("no client {unknown} in ")), "{err}");
    }
}

#[tokio::test]
async fn enabling_a_client_keeps_its_earlier_tokens_dead_unless_asked() {
    let app = spawn_app().await;
    let client = app.create_client("incident", "read tokens:write").await;
    let before = app.issue_long(&client).await;
    let short = app.issue_short(&before.access_token).await;
    ok(&app, &["client", "disable", &client.client_id]).await;
    // Past the server's one-second cache of the token's record (on the injected clock).
    app.clock.advance_secs(2);
    app.post_short(Some(&before.access_token), None).await.assert_invalid_token();

    let json = ok_json(&app, &["client", "enable", &client.client_id, "--json"]).await;

    assert_eq!(json["revoked_tokens"], 1);
    app.clock.advance_secs(2);
    app.post_short(Some(&before.access_token), None).await.assert_invalid_token();
    app.revoke(Some(&short.access_token), &short.token_id).await.assert_invalid_token();
    let after = app.issue_long(&client).await;
    app.issue_short(&after.access_token).await;

    // With --revive-tokens, the tokens of before the incident work again.
    ok(&app, &["client", "disable", &client.client_id]).await;
    let text = ok(&app, &["client", "enable", &client.client_id, "--revive-tokens"]).await;
    assert!(text.contains("work again"), "{text}");
    app.clock.advance_secs(2);
    app.issue_short(&after.access_token).await;
}

#[tokio::test]
async fn reset_otp_replaces_the_seed_and_the_old_codes_stop_working() {
    let app = spawn_app().await;
    let client = app.create_otp_client("otp", "read").await;
    app.align_to_otp_step();
    let old_code = app.otp_code(&client);

    let json = ok_json(&app, &["client", "reset-otp", &client.client_id, "--json"]).await;

    let new_secret = json["otp_secret"].as_str().expect("a new OTP secret").to_owned();
    assert_ne!(Some(new_secret.as_str()), client.otp_secret.as_deref());
    assert!(json["otp_uri"].as_str().is_some_and(|u| u.starts_with("otpauth://totp/")));
    let grant = |code: &str| serde_json::json!({"grant_type": "client_credentials", "client_id": client.client_id, "otp_code": code});
    let mut renewed = client.clone();
    renewed.otp_secret = Some(new_secret);
    let new_code = app.otp_code(&renewed);
    if new_code != old_code {
        app.post_long(&grant(&old_code)).await.assert_error(401, "invalid_grant");
    }
    app.post_long(&grant(&new_code)).await.assert_status(201);

    let json = ok_json(&app, &["client", "reset-otp", &client.client_id, "--remove", "--json"]).await;
    assert_eq!(json["otp"], false);
    app.clock.advance_secs(30);
    app.post_long(&grant(&app.otp_code(&renewed))).await.assert_error(401, "invalid_grant");
    let shown = ok_json(&app, &["client", "show", &client.client_id, "--json"]).await;
    assert_eq!(shown["otp"], false);
}

#[tokio::test]
async fn admin_commands_refuse_a_missing_database_and_create_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("typo.db");
    let url = format!("sqlite://{}", path.display());
    let uuid = uuid::Uuid::now_v7().to_string();
    let key = dir.path().join("k.pem");
    std::fs::write(&key, ClientKey::generate(KeyKind::Ed25519).public_file(KeyForm::Pem)).expect("written");
    let key = key.display().to_string();

    for args in [
        vec!["client", "list"],
        vec!["client", "show", "cli_abc"],
        vec!["client", "disable", "cli_abc"],
        vec!["client", "enable", "cli_abc"],
        vec!["client", "add-key", "cli_abc", "--public-key", &key],
        vec!["token", "list"],
        vec!["token", "revoke", &uuid],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .args(&args)
            .args(["--database", &url])
            .env_remove("TOKENSMITH_MASTER_KEY")
            .env_remove("TOKENSMITH_DATABASE")
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("the binary runs");
        assert_fails_with_one_line(&out);
        let err = stderr(&out);
        assert!(err.contains(&format!("no database at {}", path.display())), "{args:?}: {err}");
        assert!(err.contains("start the server once") && err.contains("--database"), "says what to do: {err}");
        assert!(!path.exists(), "{args:?} created the database");
        assert!(!dir.path().join("typo.db.key").exists(), "{args:?} created a key file");
    }

    // client create may come first: it creates the database, and says so on stderr.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["client", "create", "--name", "first", "--scopes", "read", "--json", "--database", &url])
        .env_remove("TOKENSMITH_MASTER_KEY")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the binary runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("created a new database"), "{}", stderr(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("stdout is only the JSON");
    assert!(path.exists());

    // A database without its key file (copied alone) is refused, and no new key is made.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).expect("copied");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["client", "list", "--database", &format!("sqlite://{}", copy.display())])
        .env_remove("TOKENSMITH_MASTER_KEY")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the binary runs");
    assert_fails_with_one_line(&out);
    assert!(stderr(&out).contains("no master key file at") && stderr(&out).contains("--key-file"), "{}", stderr(&out));
    assert!(!dir.path().join("copy.db.key").exists(), "no new key beside the copy");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args([
            "client",
            "create",
            "--name",
            "x",
            "--scopes",
            "read",
            "--database",
            &format!("sqlite://{}", copy.display()),
        ])
        .env_remove("TOKENSMITH_MASTER_KEY")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the binary runs");
    assert_fails_with_one_line(&out);
    assert!(stderr(&out).contains("no master key file at"), "{}", stderr(&out));
    assert!(!dir.path().join("copy.db.key").exists(), "client create makes no new key for an existing database");
    // A file that is no database says which --database to check.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database at all, just some text that is long enough").expect("written");
    std::fs::copy(dir.path().join("typo.db.key"), dir.path().join("junk.db.key")).expect("a key");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["token", "list", "--database", &format!("sqlite://{}", junk.display())])
        .env_remove("TOKENSMITH_MASTER_KEY")
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("the binary runs");
    assert_fails_with_one_line(&out);
    assert!(stderr(&out).contains("check that --database"), "{}", stderr(&out));
}

#[tokio::test]
async fn completions_and_the_man_page_come_from_the_command_definitions() {
    let run = |args: &'static [&'static str]| async move {
        let out =
            tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith")).args(args).output().await.expect("runs");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let args: &'static [&'static str] = Box::leak(Box::new(["completions", shell]));
        let script = run(args).await;
        for word in ["client", "token", "add-key", "revoke", "json", "completions"] {
            assert!(script.contains(word), "{shell} completion knows {word:?}");
        }
    }
    // The bash script is valid bash.
    let script = run(&["completions", "bash"]).await;
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    std::fs::write(file.path(), &script).expect("written");
    let check = std::process::Command::new("bash").arg("-n").arg(file.path()).output().expect("bash runs");
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));

    let page = run(&["man"]).await;
    assert!(page.starts_with(".ie") || page.contains(".TH tokensmith 1"), "{page}");
    assert!(page.contains(".TH tokensmith 1"), "roff with a title: {page}");
    for sub in ["serve", "client", "token", "completions", "man"] {
        assert!(page.contains(sub), "the page lists {sub}");
    }
    let page = run(&["man", "client", "add-key"]).await;
    assert!(page.contains(".TH tokensmith-client-add-key 1"), "{page}");
    assert!(page.contains("replace"), "the page documents the flags: {page}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["man", "client", "nope"])
        .output()
        .await
        .expect("runs");
    assert_fails_with_one_line(&out);
    assert!(stderr(&out).contains("known: create"), "{}", stderr(&out));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(["completions", "tcsh"])
        .output()
        .await
        .expect("runs");
    assert_fails_with_one_line(&out);
    assert!(stderr(&out).contains("possible values: bash"), "{}", stderr(&out));
}
