//! Hostile input gets a clear 4xx and changes nothing: text the database cannot hold, encodings
//! the server does not speak, declared sizes it will not read, two `Authorization` headers,
//! characters that disguise what an operator reads.

use serde_json::json;

use crate::helpers::{LONG, SHORT, assertion_grant, issued, secret_grant, spawn_app};
use crate::keys::{ClientKey, KeyForm};

#[tokio::test]
async fn a_signed_assertion_whose_jti_holds_a_nul_byte_is_refused_not_a_500() {
    let app = spawn_app().await;
    let key = ClientKey::ed25519();
    let client = app.create_key_client("robot", "deploy", &key, KeyForm::Pem).await;
    for jti in ["nul\u{0}jti", "line\nbreak", "\u{7f}"] {
        let mut claims = app.assertion_claims(&client.client_id);
        claims["jti"] = jti.into();

        let reply = app.post_long(&assertion_grant(&key.sign(&claims))).await;

        let body = reply.assert_error(401, "invalid_grant");
        assert!(body["error_description"].as_str().unwrap().contains("jti"), "{body}");
    }
}

#[tokio::test]
async fn a_compressed_body_is_refused_rather_than_misread() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy").await;
    for encoding in ["gzip", "br", "deflate, gzip"] {
        let request = app.post(LONG).header("Content-Encoding", encoding).json(&secret_grant(&client));
        let body = app.send(request).await.assert_invalid_request();
        assert!(body["error_description"].as_str().unwrap().contains("Content-Encoding"), "{body}");
    }
    let identity = app.post(LONG).header("Content-Encoding", "identity").json(&secret_grant(&client));
    issued(&app.send(identity).await);
}

#[tokio::test]
async fn a_declared_body_larger_than_the_limit_is_refused_at_once() {
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = "POST /v1/auth/tokens/long HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000000000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();

    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered at once")
        .unwrap();

    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("at most 65536 bytes"), "{answer}");
}

#[tokio::test]
async fn two_authorization_headers_are_a_failed_authentication() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy").await;
    let long = app.issue_long(&client).await;

    let request = app
        .post(SHORT)
        .header("Authorization", format!("Bearer {}", long.access_token))
        .header("Authorization", "Bearer tsl_other");

    app.send(request).await.assert_invalid_token();
}

#[tokio::test]
async fn two_client_key_headers_are_refused() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy").await;
    let other = app.create_client("other", "deploy").await;

    for (first, second) in [(&client, &other), (&client, &client)] {
        let request = app
            .post(LONG)
            .header("X-Client-Key", &first.client_id)
            .header("X-Client-Key", &second.client_id)
            .json(&secret_grant(&client));
        app.send(request).await.assert_invalid_request();
    }
}

#[tokio::test]
async fn names_that_would_disguise_what_an_operator_reads_are_refused() {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy").await;
    for name in [
        "evil\u{202e}txt.exe",
        "zero\u{200b}width",
        "line\u{2028}separator",
        "bom\u{feff}",
        "no\u{a0}break",
        "ideographic\u{3000}space",
        "filler\u{3164}",
        "braille\u{2800}blank",
        "joiner\u{34f}",
    ] {
        let reply = app.post_long(&crate::helpers::merge(secret_grant(&client), json!({"name": name}))).await;
        reply.assert_invalid_request();
        let out = app.cli(&["client", "create", "--name", name, "--scopes", "deploy"]).await;
        assert!(!out.status.success(), "client create --name {name:?}");
    }
    app.issue_long_with(&client, json!({"name": "ordinary name — with ünïcode"})).await;
}
