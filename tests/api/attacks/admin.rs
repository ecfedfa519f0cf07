//! Attacks on the admin API and its tokens (adversarial pass 9): one guessable factor turned
//! into administration, a revoked admin token used in the second before it is seen, options
//! slipped into a query and ignored, audiences spelt otherwise, another site's name pointed at
//! the admin listener, malformed paths.

use reqwest::Method;
use serde_json::json;

use crate::admin_api::spawn_admin_app;
use crate::helpers::{issued, merge, secret_grant};

#[tokio::test]
async fn a_secret_or_a_code_alone_never_gets_an_admin_scope() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let both = app.create_otp_client("both", "admin:read deploy").await;
    // The secret alone: refused, whether the admin scope is asked for or comes by default.
    for extra in [json!({}), json!({"scopes": ["admin:read"]}), json!({"scopes": ["admin:read", "admin:write"]})] {
        let r = app.post_long(&merge(secret_grant(&ops.client), extra.clone())).await;
        r.assert_error(403, "insufficient_scope");
    }
    app.post_long(&secret_grant(&both)).await.assert_error(403, "insufficient_scope");
    // Without the admin scope, the same client's secret still works.
    app.issue_long_with(&both, json!({"scopes": ["deploy"]})).await;
    // A code alone: refused before the code is spent when the scope is asked for.
    app.align_to_otp_step();
    let code = app.otp_code(&ops.client);
    let by_code = |scopes: serde_json::Value| json!({"grant_type": "client_credentials", "client_id": ops.client.client_id, "otp_code": code, "scopes": scopes});
    app.post_long(&by_code(json!(["admin:write"]))).await.assert_error(403, "insufficient_scope");
    let r = app
        .post_long(&json!({"grant_type": "client_credentials", "client_id": ops.client.client_id, "otp_code": code}))
        .await;
    r.assert_error(403, "insufficient_scope");
    // Nor can a token without it mint one that has it.
    let plain = app.issue_long_with(&both, json!({"scopes": ["deploy"]})).await;
    let admin_audience = app.admin.clone().unwrap();
    let r = app
        .post_short(Some(&plain.access_token), Some(&json!({"audience": admin_audience, "scopes": ["admin:read"]})))
        .await;
    r.assert_error(400, "invalid_scope");
    // The private key does get one.
    let long = app.issue_long_by_key(&ops.client, &ops.key, &["admin:read"]).await;
    assert_eq!(long.scopes(), vec!["admin:read"]);
}

#[tokio::test]
async fn a_revocation_through_the_admin_api_holds_on_this_instance_at_once() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let victim = app.issue_long_by_key(&ops.client, &ops.key, &["admin:read", "admin:write"]).await;
    let audience = app.admin.clone().unwrap();
    let body = json!({"audience": audience, "scopes": ["admin:read"]});
    let stolen = app.issue_short_with(&victim.access_token, body).await.access_token;
    // Used once, so every cache holds it as live.
    app.admin(Method::GET, "/admin/v1/keys", Some(&stolen), None).await.assert_status(200);
    app.post_short(Some(&victim.access_token), None).await.assert_status(201);
    let path = format!("/admin/v1/tokens/{}/revoke", victim.token_id);
    app.admin(Method::POST, &path, Some(&ops.write), None).await.assert_status(200);
    // No clock moves: the very next requests are refused.
    app.admin(Method::GET, "/admin/v1/keys", Some(&stolen), None).await.assert_error(401, "invalid_token");
    app.post_short(Some(&victim.access_token), None).await.assert_error(401, "invalid_token");
    // Disabling a client too.
    let other = app.create_client("other", "deploy").await;
    let other_long = app.issue_long(&other).await;
    app.post_short(Some(&other_long.access_token), None).await.assert_status(201);
    let path = format!("/admin/v1/clients/{}/disable", other.client_id);
    app.admin(Method::POST, &path, Some(&ops.write), None).await.assert_status(200);
    app.post_short(Some(&other_long.access_token), None).await.assert_error(401, "invalid_token");
}

#[tokio::test]
async fn options_in_a_query_string_are_refused_not_ignored() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let target = app.create_client("target", "deploy").await;
    let t = Some(ops.write.as_str());
    let c = |rest: &str| format!("/admin/v1/clients/{}{rest}", target.client_id);
    for (method, path) in [
        (Method::POST, c("/rotate-secret?overlap_secs=86400")),
        (Method::POST, c("/disable?x=1")),
        (Method::POST, "/admin/v1/keys/rotate?alg=ES256".to_owned()),
        (Method::POST, "/admin/v1/clients?name=x".to_owned()),
        (Method::GET, "/admin/v1/clients?x=1".to_owned()),
        (Method::GET, c("?x=1")),
    ] {
        let r = app.admin(method.clone(), &path, t, Some(json!({}))).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
    }
    // Nothing changed: the old secret still works, the client is enabled, one key.
    app.issue_long(&target).await;
    let keys = app.admin(Method::GET, "/admin/v1/keys", t, None).await.json();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
}

#[tokio::test]
async fn an_admin_audience_spelt_with_more_slashes_is_another_audience() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let long = app.issue_long_by_key(&ops.client, &ops.key, &["admin:read"]).await;
    let admin = app.admin.clone().unwrap();
    for (audience, admitted) in
        [(format!("{admin}/"), true), (format!("{admin}//"), false), (format!("{admin}/x"), false)]
    {
        let token = app.issue_short_with(&long.access_token, json!({"audience": audience})).await.access_token;
        let r = app.admin(Method::GET, "/admin/v1/keys", Some(&token), None).await;
        assert_eq!(r.status == 200, admitted, "{audience}: {} {}", r.status, r.text);
    }
}

#[tokio::test]
async fn another_sites_name_pointed_at_the_admin_listener_is_refused() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let port = reqwest::Url::parse(app.admin.as_deref().unwrap()).unwrap().port().unwrap();
    for (host, admitted) in [
        (format!("127.0.0.1:{port}"), true),
        (format!("localhost:{port}"), true),
        (format!("evil.example:{port}"), false),
        ("evil.example".to_owned(), false),
        (format!("127.0.0.1:{}", port.wrapping_add(1)), false),
    ] {
        for path in ["/", "/admin/v1/keys"] {
            let request = app.http.get(app.admin_url(path)).bearer_auth(&ops.read).header("host", &host);
            let r = app.send(request).await;
            assert_eq!(r.status == 200, admitted, "{host} {path}: {} {}", r.status, r.text);
            if !admitted {
                r.assert_error(421, "invalid_request");
            }
        }
    }
}

#[tokio::test]
async fn malformed_path_segments_get_the_json_error_body() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    for path in ["/admin/v1/clients/cli_%ff", "/admin/v1/tokens/%c3%28/cascade", "/admin/v1/issuers/%80"] {
        let method = if path.starts_with("/admin/v1/issuers") { Method::DELETE } else { Method::GET };
        let r = app.admin(method, path, Some(&ops.write), None).await;
        r.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn a_client_that_may_not_sign_in_to_the_console_keeps_its_code() {
    let app = spawn_admin_app().await;
    let plain = app.create_otp_client("plain", "deploy").await;
    app.align_to_otp_step();
    let code = app.otp_code(&plain);
    let body = json!({"client_id": plain.client_id, "client_secret": plain.client_secret, "otp": code});
    app.admin(Method::POST, "/admin/v1/session", None, Some(body)).await.assert_error(403, "insufficient_scope");
    let by_code = json!({"grant_type": "client_credentials", "client_id": plain.client_id, "otp_code": code});
    issued(&app.post_long(&by_code).await);
}

#[tokio::test]
async fn the_command_line_never_echoes_credentials_in_a_server_url() {
    let app = spawn_admin_app().await;
    let mut command = app.db.command();
    command.args(["client", "list", "--server", "http://admin:hunter2@127.0.0.1:1"]);
    let out = command.env("TOKENSMITH_ADMIN_TOKEN", "x").output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("credentials"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("admin:"), "{err}");
}

#[tokio::test]
async fn enabling_a_client_that_is_not_disabled_revokes_nothing() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let path = format!("/admin/v1/clients/{}/enable", ops.client.client_id);
    let r = app.admin(Method::POST, &path, Some(&ops.write), Some(json!({}))).await.json();
    assert_eq!(r["revoked_tokens"], 0, "{r}");
    app.admin(Method::GET, "/admin/v1/keys", Some(&ops.write), None).await.assert_status(200);
}

#[tokio::test]
async fn tokensmiths_own_tokens_are_never_external_identities() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let mixed = app.create_client("mixed", "admin:read admin:write deploy").await;
    // The admin API refuses to trust its own issuer; the command line cannot tell, so trust it there.
    let body = json!({"name": "self", "issuer": app.issuer, "jwks_uri": app.url("/.well-known/jwks.json")});
    let r = app.admin(Method::POST, "/admin/v1/issuers", Some(&ops.write), Some(body)).await;
    r.assert_error(400, "invalid_request");
    let jwks = app.url("/.well-known/jwks.json");
    app.cli_ok(&["issuer", "add", "--name", "self", "--issuer", &app.issuer, "--jwks-uri", &jwks]).await;
    let sub = format!("sub={}", mixed.client_id);
    let rule = [
        "client",
        "add-federation",
        &mixed.client_id,
        "--issuer",
        "self",
        "--audience",
        "https://fed.example",
        "--match",
        &sub,
    ];
    app.cli_ok(&rule).await;
    // A token minted with the secret alone does not come back as an identity holding more.
    let long = app.issue_long_with(&mixed, json!({"scopes": ["deploy"]})).await;
    let short = app.issue_short_with(&long.access_token, json!({"audience": "https://fed.example"})).await;
    let as_identity = json!({"grant_type": "assertion", "assertion": short.access_token, "scopes": ["admin:read"]});
    app.post_long(&as_identity).await.assert_error(401, "invalid_grant");
    let exchange = json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": short.access_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "audience": app.admin.clone().unwrap(),
        "scope": "admin:read",
    });
    let r = app.send(app.post("/v1/auth/tokens/exchange").json(&exchange)).await;
    assert!(r.status == 400 || r.status == 401, "{} {}", r.status, r.text);
}

#[tokio::test]
async fn a_body_on_an_operation_that_takes_none_is_refused_not_ignored() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let client = app.create_client("ci", "tokens:write deploy").await;
    let parent = app.issue_long(&client).await;
    let t = Some(ops.write.as_str());
    for path in [
        format!("/admin/v1/tokens/{}/revoke", parent.token_id),
        format!("/admin/v1/clients/{}/disable", client.client_id),
        format!("/admin/v1/clients/{}/unlock", client.client_id),
    ] {
        let r = app.admin(Method::POST, &path, t, Some(json!({"cascade": false}))).await;
        r.assert_error(400, "invalid_request");
    }
    app.admin(Method::DELETE, "/admin/v1/session", t, Some(json!({"x": 1}))).await.assert_error(400, "invalid_request");
    // Nothing happened: the token, the client and the admin token all still work.
    app.post_short(Some(&parent.access_token), None).await.assert_status(201);
    app.admin(Method::GET, "/admin/v1/keys", t, None).await.assert_status(200);
}

#[tokio::test]
async fn a_secret_alone_cannot_rotate_away_an_admin_token() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let automation = app.issue_long_by_key(&ops.client, &ops.key, &["admin:read"]).await;
    let rotate = merge(secret_grant(&ops.client), json!({"scopes": [], "rotate_token_id": automation.token_id}));
    let r = app.post_long(&rotate).await;
    assert_eq!(r.status, 403, "{}", r.text);
    app.post_short(Some(&automation.access_token), None).await.assert_status(201);
}

#[tokio::test]
async fn two_host_headers_are_refused() {
    let app = spawn_admin_app().await;
    let port = reqwest::Url::parse(app.admin.as_deref().unwrap()).unwrap().port().unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head =
        format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
