//! HTTPS with `--tls-cert` and `--tls-key`: a self-signed certificate for localhost and
//! 127.0.0.1, a client that trusts only it does a real issuance, and clients that do not
//! trust it (or speak plain HTTP) get nothing. Bad files stop the server with their name.

use serde_json::{Value, json};

use crate::helpers::{TestDatabase, jwt_claims};
use crate::process::ServerProcess;

struct Cert {
    cert_pem: String,
    cert_file: String,
    key_file: String,
}

fn self_signed(dir: &tempfile::TempDir, name: &str) -> Cert {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let cert_file = dir.path().join(format!("{name}.crt"));
    let key_file = dir.path().join(format!("{name}.key"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("the certificate is written");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("the key is written");
    Cert {
        cert_pem: cert.cert.pem(),
        cert_file: cert_file.display().to_string(),
        key_file: key_file.display().to_string(),
    }
}

fn trusting(cert: &Cert) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).expect("a PEM certificate");
    reqwest::Client::builder().no_proxy().tls_certs_only([root]).build().expect("an https client")
}

#[tokio::test]
async fn https_serves_a_client_that_trusts_the_certificate_and_only_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let cert = self_signed(&dir, "server");
    let mut server = ServerProcess::start(&db, &["--tls-cert", &cert.cert_file, "--tls-key", &cert.key_file]).await;
    assert!(server.address.starts_with("https://127.0.0.1:"), "{}", server.address);
    let bot = db.create_client("bot", "deploy", &[]).await;
    let http = trusting(&cert);

    // The issuer follows the scheme.
    let metadata: Value = http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("the metadata over HTTPS")
        .json()
        .await
        .expect("JSON");
    assert_eq!(metadata["issuer"], server.address.as_str());

    // A real issuance, and a JWT whose `iss` is the https issuer, by name and by address.
    for base in [server.address.clone(), format!("https://localhost:{}", server.port)] {
        let body = json!({"grant_type": "client_credentials", "client_id": bot.client_id,
            "client_secret": bot.client_secret});
        let response = http.post(format!("{base}/v1/auth/tokens/long")).json(&body).send().await.expect("HTTPS");
        assert_eq!(response.status(), 201);
        let long: Value = response.json().await.expect("JSON");
        let response = http
            .post(format!("{base}/v1/auth/tokens/short"))
            .bearer_auth(long["access_token"].as_str().expect("a token"))
            .send()
            .await
            .expect("HTTPS");
        assert_eq!(response.status(), 201);
        let short: Value = response.json().await.expect("JSON");
        let claims = jwt_claims(short["access_token"].as_str().expect("a JWT"));
        assert_eq!(claims["iss"], server.address.as_str());
    }

    // A client with the usual roots does not trust a self-signed certificate.
    let default = reqwest::Client::builder().no_proxy().build().expect("a client");
    let err = default.get(server.url("/healthz")).send().await.expect_err("an untrusted certificate is refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Nor does a client that trusts another certificate.
    let other = self_signed(&dir, "other");
    let err = trusting(&other).get(server.url("/healthz")).send().await.expect_err("another certificate");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // Plain HTTP gets no answer.
    let plain = format!("http://127.0.0.1:{}/healthz", server.port);
    assert!(default.get(plain).send().await.is_err(), "no plain HTTP on the HTTPS port");

    // The server is still fine after those failed handshakes.
    assert_eq!(http.get(server.url("/healthz")).send().await.expect("HTTPS").status(), 200);
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn bad_tls_settings_stop_the_server_with_a_message_naming_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let cert = self_signed(&dir, "server");
    let other = self_signed(&dir, "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        .expect("a file");
    let garbage = garbage.display().to_string();
    let missing = dir.path().join("missing.pem").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tls-cert", &cert.cert_file], "tls_key"),
        (vec!["--tls-key", &cert.key_file], "tls_cert"),
        (vec!["--tls-cert", &missing, "--tls-key", &cert.key_file], "missing.pem"),
        (vec!["--tls-cert", &garbage, "--tls-key", &cert.key_file], "garbage.pem"),
        (vec!["--tls-cert", &cert.cert_file, "--tls-key", &garbage], "garbage.pem"),
        (vec!["--tls-cert", &cert.cert_file, "--tls-key", &other.key_file], "do not make a usable pair"),
    ];
    for (args, named) in cases {
        for command in [&["serve", "--listen", "127.0.0.1:0"][..], &["config", "check"][..]] {
            let out = db.cli(&[command, &args[..]].concat()).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} {args:?} fails");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(named), "{command:?} {args:?}: the error names {named}: {stderr}");
        }
    }
    // The good pair passes `config check`, which shows the files and the https issuer.
    let out = db.cli(&["config", "check", "--tls-cert", &cert.cert_file, "--tls-key", &cert.key_file]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(&cert.cert_file) && printed.contains("issuer = \"https://"), "{printed}");
}

#[tokio::test]
async fn the_admin_listener_speaks_https_with_the_same_certificate() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cert = self_signed(&dir, "server");
    let (cert_file, key_file) = (cert.cert_file.clone(), cert.key_file.clone());
    let app = crate::helpers::spawn_app_with(move |s| {
        s.admin_listen = Some(([127, 0, 0, 1], 0).into());
        s.tls_cert = Some(cert_file.clone().into());
        s.tls_key = Some(key_file.clone().into());
    })
    .await;
    let admin = app.admin.clone().expect("an admin listener");
    assert!(admin.starts_with("https://127.0.0.1:"), "{admin}");
    let doc = trusting(&cert).get(format!("{admin}/admin/openapi.json")).send().await.expect("HTTPS");
    assert_eq!(doc.status(), 200);
    let plain = admin.replacen("https://", "http://", 1);
    let refused = crate::helpers::http_client().get(format!("{plain}/admin/openapi.json")).send().await;
    assert!(refused.is_err() || !refused.unwrap().status().is_success(), "plain HTTP is not served");
}
