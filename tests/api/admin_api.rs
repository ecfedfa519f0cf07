//! The admin API, black-box: its own listener, tokensmith's own tokens for its URL with
//! `admin:read` or `admin:write`, every endpoint's answer to wrong rights and bad input, the
//! console's sign-in, the audit of every request and change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Issued, Reply, TestApp, TestClient, assertion_grant, issued, merge, secret_grant, spawn_app_with,
};
use crate::keys::{ClientKey, KeyForm};

/// An app with an admin listener on a port of its own.
pub async fn spawn_admin_app() -> TestApp {
    spawn_app_with(|s| s.admin_listen = Some(([127, 0, 0, 1], 0).into())).await
}

/// Admin tokens of one client: read-only, read-write, and one minted for the public API.
pub struct Operator {
    pub client: TestClient,
    /// The client's private key: admin scopes need an assertion (or the console's two factors).
    pub key: ClientKey,
    pub read: String,
    pub write: String,
    pub public: String,
}

impl TestApp {
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin.as_deref().expect("the app has an admin listener"))
    }

    /// A request to the admin API with `token` (none: no Authorization header).
    pub async fn admin(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, self.admin_url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        self.send(request).await
    }

    /// A long-term token of `client` with `scopes`, by an assertion signed with `key`.
    pub async fn issue_long_by_key(&self, client: &TestClient, key: &ClientKey, scopes: &[&str]) -> Issued {
        let assertion = key.sign(&self.assertion_claims(&client.client_id));
        issued(&self.post_long(&merge(assertion_grant(&assertion), json!({"scopes": scopes}))).await)
    }

    /// A short-term token for the admin API's URL with `scopes`, through the public API: a
    /// long-term token by an assertion, then a short-term token for the admin audience.
    pub async fn admin_token(&self, client: &TestClient, key: &ClientKey, scopes: &[&str]) -> String {
        let long = self.issue_long_by_key(client, key, scopes).await;
        let audience = self.admin.clone().expect("an admin listener");
        self.issue_short_with(&long.access_token, json!({"audience": audience, "scopes": scopes})).await.access_token
    }

    /// An operator client (secret, OTP and a public key) with its three tokens.
    pub async fn operator(&self) -> Operator {
        let key = ClientKey::ed25519();
        let path = self.write_file("ops.pem", &key.public_file(KeyForm::Pem));
        let client = self.create_client_with("ops", "admin:read admin:write", &["--otp", "--public-key", &path]).await;
        let read = self.admin_token(&client, &key, &["admin:read"]).await;
        let write = self.admin_token(&client, &key, &["admin:read", "admin:write"]).await;
        let long = self.issue_long_by_key(&client, &key, &["admin:read", "admin:write"]).await;
        let public = self.issue_short(&long.access_token).await.access_token;
        Operator { client, key, read, write, public }
    }
}

#[tokio::test]
async fn the_admin_api_answers_only_on_its_own_listener() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    // The public listener knows nothing of it, and the admin listener serves no token operation.
    let on_public = app.send(app.http.get(app.url("/admin/v1/clients")).bearer_auth(&ops.write)).await;
    on_public.assert_error(404, "not_found");
    let long_on_admin =
        app.send(app.http.post(app.admin_url("/v1/auth/tokens/long")).json(&secret_grant(&ops.client))).await;
    long_on_admin.assert_error(404, "not_found");
    // Its document is served there, generated from the code.
    let doc = app.send(app.http.get(app.admin_url("/admin/openapi.json"))).await;
    doc.assert_status(200);
    let doc = doc.json();
    assert!(doc["paths"]["/admin/v1/clients"]["post"].is_object(), "{doc}");
    assert!(doc["components"]["securitySchemes"]["AdminToken"].is_object());
    // The console is the root page, under a policy that allows no inline script.
    let page = app.send(app.http.get(app.admin_url("/"))).await;
    page.assert_status(200);
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn only_short_term_tokens_for_the_admin_url_with_an_admin_scope_are_admitted() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let long = app.issue_long_by_key(&ops.client, &ops.key, &["admin:read"]).await;
    let other = app.create_client("other", "deploy").await;
    let other_long = app.issue_long(&other).await;
    let audience = app.admin.clone().unwrap();
    let not_admin = app.issue_short_with(&other_long.access_token, json!({"audience": audience})).await.access_token;

    app.admin(Method::GET, "/admin/v1/clients", Some(&ops.read), None).await.assert_status(200);
    app.admin(Method::GET, "/admin/v1/clients", Some(&ops.write), None).await.assert_status(200);
    for (token, why) in [
        (None, "no token"),
        (Some(ops.public.as_str()), "a token for the public API"),
        (Some(long.access_token.as_str()), "a long-term token"),
        (Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), "an unsigned JWT"),
        (Some("garbage"), "garbage"),
    ] {
        let r = app.admin(Method::GET, "/admin/v1/clients", token, None).await;
        assert_eq!(r.status, 401, "{why}: {}", r.text);
        assert_eq!(r.json()["error"], "invalid_token", "{why}");
    }
    let r = app.admin(Method::GET, "/admin/v1/clients", Some(&not_admin), None).await;
    r.assert_error(403, "insufficient_scope");
    // An admin token is no credential on the public API.
    let r = app.introspect(&ops.write, &ops.public).await;
    r.assert_error(401, "invalid_token");
    // Nor can it mint a long-term token there.
    let r = app.post_long_with_short(&ops.write, &json!({"grant_type": "short_token"})).await;
    assert!(r.status == 401 || r.status == 403, "{}", r.text);
}

/// Every operation, with a body that would be accepted.
fn operations(client_id: &str, token_id: &str) -> Vec<(Method, String, Option<Value>, bool)> {
    let c = |rest: &str| format!("/admin/v1/clients/{client_id}{rest}");
    vec![
        (Method::GET, "/admin/v1/clients".into(), None, false),
        (Method::POST, "/admin/v1/clients".into(), Some(json!({"name": "n", "scopes": ["a"]})), true),
        (Method::GET, c(""), None, false),
        (Method::POST, c("/disable"), None, true),
        (Method::POST, c("/enable"), Some(json!({})), true),
        (Method::POST, c("/rotate-secret"), Some(json!({"overlap_secs": 0})), true),
        (Method::POST, c("/unlock"), None, true),
        (Method::POST, c("/reset-otp"), Some(json!({"remove": false})), true),
        (Method::PUT, c("/public-key"), Some(json!({"public_key": "x"})), true),
        (Method::GET, "/admin/v1/tokens".into(), None, false),
        (Method::GET, format!("/admin/v1/tokens/{token_id}/cascade"), None, false),
        (Method::POST, format!("/admin/v1/tokens/{token_id}/revoke"), None, true),
        (Method::GET, "/admin/v1/keys".into(), None, false),
        (Method::POST, "/admin/v1/keys/rotate".into(), Some(json!({})), true),
        (Method::GET, "/admin/v1/audit".into(), None, false),
        (Method::GET, "/admin/v1/stats".into(), None, false),
        (Method::GET, "/admin/v1/issuers".into(), None, false),
        (Method::DELETE, "/admin/v1/issuers/nobody".into(), None, true),
        (Method::GET, "/admin/v1/federation-rules".into(), None, false),
        (Method::DELETE, "/admin/v1/federation-rules/fr_nothing".into(), None, true),
        (Method::GET, "/admin/v1/webhooks".into(), None, false),
        (Method::GET, "/admin/v1/webhooks/deliveries".into(), None, false),
        (Method::DELETE, "/admin/v1/session".into(), None, false),
    ]
}

/// What an operator could see change: clients, tokens, keys.
async fn state(app: &TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in ["/admin/v1/clients", "/admin/v1/tokens?status=all", "/admin/v1/keys"] {
        let r = app.admin(Method::GET, path, Some(token), None).await;
        r.assert_status(200);
        all.push(r.json());
    }
    all
}

#[tokio::test]
async fn every_operation_refuses_missing_and_wrong_rights_and_changes_nothing() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let target = app.create_otp_client("target", "deploy").await;
    let token = app.issue_long(&target).await;
    let before = state(&app, &ops.write).await;
    for (method, path, body, writes) in operations(&target.client_id, &token.token_id) {
        let what = format!("{method} {path}");
        let r = app.admin(method.clone(), &path, None, body.clone()).await;
        assert_eq!(r.status, 401, "{what} without a token: {}", r.text);
        let r = app.admin(method.clone(), &path, Some(&ops.public), body.clone()).await;
        assert_eq!(r.status, 401, "{what} with a public token: {}", r.text);
        if writes {
            let r = app.admin(method.clone(), &path, Some(&ops.read), body.clone()).await;
            r.assert_error(403, "insufficient_scope");
        }
    }
    assert_eq!(state(&app, &ops.write).await, before, "nothing changed");
}

#[tokio::test]
async fn malformed_requests_get_a_400_or_404_that_says_why_and_change_nothing() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let target = app.create_client("target", "deploy").await;
    let before = state(&app, &ops.write).await;
    let t = Some(ops.write.as_str());
    let c = |rest: &str| format!("/admin/v1/clients/{}{rest}", target.client_id);
    let bad_bodies: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x"})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x", "scopes": []})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x", "scopes": "a b"})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "", "scopes": ["a"]})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x", "scopes": ["a"], "admin": true})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x", "scopes": ["a b"]})),
        (Method::POST, "/admin/v1/clients".into(), json!({"name": "x", "scopes": ["a"], "public_key": "nope"})),
        (Method::POST, "/admin/v1/clients".into(), json!([1, 2])),
        (Method::POST, c("/rotate-secret"), json!({"overlap_secs": -1})),
        (Method::POST, c("/rotate-secret"), json!({"overlap_secs": "1d"})),
        (Method::POST, c("/rotate-secret"), json!({"overlap_secs": 99_999_999})),
        (Method::POST, c("/enable"), json!({"revive_tokens": "yes"})),
        (
            Method::PUT,
            c("/public-key"),
            json!({"public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}),
        ),
        (Method::POST, "/admin/v1/keys/rotate".into(), json!({"alg": "HS256"})),
        (Method::POST, "/admin/v1/keys/rotate".into(), json!({"publish_delay_secs": -5})),
    ];
    for (method, path, body) in bad_bodies {
        let r = app.admin(method.clone(), &path, t, Some(body.clone())).await;
        let err = r.assert_error(400, "invalid_request");
        assert!(!err["error_description"].as_str().unwrap_or("").is_empty(), "{method} {path} {body}");
    }
    // Not JSON at all, and oversize.
    let raw = app.http.post(app.admin_url("/admin/v1/clients")).bearer_auth(&ops.write);
    app.send(raw.header("content-type", "application/json").body("{not json"))
        .await
        .assert_error(400, "invalid_request");
    let big = format!("{{\"name\": \"{}\", \"scopes\": [\"a\"]}}", "x".repeat(200_000));
    let raw = app.http.post(app.admin_url("/admin/v1/clients")).bearer_auth(&ops.write);
    app.send(raw.header("content-type", "application/json").body(big)).await.assert_error(400, "invalid_request");
    let raw = app.http.post(app.admin_url("/admin/v1/clients")).bearer_auth(&ops.write);
    app.send(raw.header("content-type", "text/plain").body("{}")).await.assert_error(400, "invalid_request");
    // Bad query parameters.
    for q in [
        "status=bogus",
        "expiring_within_days=0",
        "expiring_within_days=x",
        "client_id=nope",
        "colour=red",
        "status=all&status=live",
    ] {
        let r = app.admin(Method::GET, &format!("/admin/v1/tokens?{q}"), t, None).await;
        assert!(r.status == 400 || r.status == 404, "{q}: {} {}", r.status, r.text);
    }
    for q in ["limit=0", "limit=501", "cursor=abc", "outcome=maybe", "since=yesterday"] {
        let r = app.admin(Method::GET, &format!("/admin/v1/audit?{q}"), t, None).await;
        r.assert_error(400, "invalid_request");
    }
    // Unknown ids.
    for path in [
        "/admin/v1/clients/cli_nobodynobodynobody1".to_owned(),
        "/admin/v1/clients/not-an-id".to_owned(),
        "/admin/v1/tokens/0190f0f0-0000-7000-8000-000000000000/cascade".to_owned(),
        "/admin/v1/tokens/nope/cascade".to_owned(),
    ] {
        app.admin(Method::GET, &path, t, None).await.assert_error(404, "not_found");
    }
    app.admin(Method::POST, "/admin/v1/clients/cli_nobodynobodynobody1/disable", t, None)
        .await
        .assert_error(404, "not_found");
    app.admin(Method::POST, "/admin/v1/tokens/0190f0f0-0000-7000-8000-000000000000/revoke", t, None)
        .await
        .assert_error(404, "not_found");
    app.admin(Method::POST, "/admin/v1/tokens/st_forged/revoke", t, None).await.assert_error(400, "invalid_request");
    app.admin(Method::PATCH, "/admin/v1/clients", t, None).await.assert_status(405);
    assert_eq!(state(&app, &ops.write).await, before, "nothing changed");
}

#[tokio::test]
async fn an_operator_manages_clients_and_each_change_names_the_operator() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let t = Some(ops.write.as_str());
    let created = app
        .admin(Method::POST, "/admin/v1/clients", t, Some(json!({"name": "ci", "scopes": ["deploy"], "otp": true})))
        .await;
    created.assert_status(201);
    let created = created.json();
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert!(created["client_secret"].as_str().unwrap().starts_with("tsc_"));
    assert!(
        created["otp_qr_svg"].as_str().unwrap().starts_with("<?xml")
            || created["otp_qr_svg"].as_str().unwrap().contains("<svg")
    );
    // The secret works on the public API.
    let client = TestClient {
        client_id: id.clone(),
        client_secret: created["client_secret"].as_str().unwrap().into(),
        otp_secret: created["otp_secret"].as_str().map(Into::into),
        json: created.clone(),
    };
    let long = app.issue_long(&client).await;
    // Disabled: its token stops working; enabled again: it stays dead.
    app.admin(Method::POST, &format!("/admin/v1/clients/{id}/disable"), t, None).await.assert_status(200);
    app.clock.advance_secs(2);
    app.post_short(Some(&long.access_token), None).await.assert_error(401, "invalid_token");
    let enabled = app.admin(Method::POST, &format!("/admin/v1/clients/{id}/enable"), t, None).await;
    assert_eq!(enabled.json()["revoked_tokens"], 1);
    // A rotated secret replaces the old one.
    let rotated =
        app.admin(Method::POST, &format!("/admin/v1/clients/{id}/rotate-secret"), t, Some(json!({}))).await.json();
    let old = app.post_long(&secret_grant(&client)).await;
    old.assert_error(401, "invalid_client");
    let renewed = TestClient { client_secret: rotated["client_secret"].as_str().unwrap().into(), ..client };
    app.issue_long(&renewed).await;
    let shown = app.admin(Method::GET, &format!("/admin/v1/clients/{id}"), t, None).await.json();
    assert_eq!((shown["long_tokens"]["live"].as_u64(), shown["disabled"].as_bool()), (Some(1), Some(false)));
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains("tsc_"));

    // The changes name the operator; every request is recorded with its token.
    let audit = app.admin(Method::GET, &format!("/admin/v1/audit?client_id={id}&limit=50"), t, None).await.json();
    let events: Vec<&Value> = audit["events"].as_array().unwrap().iter().collect();
    for kind in ["client.created", "client.disabled", "client.enabled", "client.secret_rotated"] {
        let e = events.iter().find(|e| e["event"] == kind).unwrap_or_else(|| panic!("{kind} in {audit}"));
        assert_eq!(e["detail"]["operator"]["client_id"], ops.client.client_id.as_str(), "{e}");
        assert_eq!(e["source"], "127.0.0.1");
    }
    let requests = app.admin(Method::GET, "/admin/v1/audit?event=admin.request&limit=500", t, None).await.json();
    let requests = requests["events"].as_array().unwrap().clone();
    assert!(
        requests.iter().any(|e| e["detail"]["operation"] == format!("POST /admin/v1/clients/{id}/disable")
            && e["client_id"] == ops.client.client_id.as_str()
            && e["token_id"].as_str().is_some_and(|t| t.starts_with("st_"))),
        "{requests:?}"
    );
    // A refused request is recorded too, with its status.
    app.admin(Method::POST, &format!("/admin/v1/clients/{id}/disable"), Some(&ops.read), None).await.assert_status(403);
    let refused = app.admin(Method::GET, "/admin/v1/audit?event=admin.request&outcome=failure", t, None).await.json();
    assert_eq!(refused["events"][0]["detail"]["status"], 403, "{refused}");
}

#[tokio::test]
async fn revoking_through_the_admin_api_shows_and_takes_the_cascade() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let t = Some(ops.write.as_str());
    let client = app.create_client("ci", "tokens:write deploy").await;
    let parent = app.issue_long(&client).await;
    let short = app.issue_short(&parent.access_token).await;
    let child = crate::helpers::issued(
        &app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await,
    );
    let preview =
        app.admin(Method::GET, &format!("/admin/v1/tokens/{}/cascade", parent.token_id), t, None).await.json();
    assert_eq!(preview["descendants"], json!([child.token_id]), "{preview}");
    let listed =
        app.admin(Method::GET, &format!("/admin/v1/tokens?client_id={}", client.client_id), t, None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let r = app.admin(Method::POST, &format!("/admin/v1/tokens/{}/revoke", parent.token_id), t, None).await.json();
    assert_eq!((r["outcome"].as_str(), r["cascade"].as_u64()), (Some("revoked"), Some(1)), "{r}");
    app.clock.advance_secs(2);
    app.post_short(Some(&child.access_token), None).await.assert_error(401, "invalid_token");
    app.post_short(Some(&parent.access_token), None).await.assert_error(401, "invalid_token");
    let again = app.admin(Method::POST, &format!("/admin/v1/tokens/{}/revoke", parent.token_id), t, None).await.json();
    assert_eq!(again["outcome"], "already_revoked");
    let revoked = app.admin(Method::GET, "/admin/v1/tokens?status=revoked", t, None).await.json();
    assert_eq!(revoked.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first_with_a_cursor() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let t = Some(ops.write.as_str());
    for n in 0..5 {
        app.create_client(&format!("c{n}"), "deploy").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page =
            app.admin(Method::GET, &format!("/admin/v1/audit?event=client.created&limit=2{q}"), t, None).await.json();
        let ids: Vec<i64> = page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.len() <= 2 && ids.windows(2).all(|w| w[0] > w[1]), "{page}");
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "the operator and five clients, each once: {seen:?}");
}

#[tokio::test]
async fn the_console_signs_in_with_the_secret_and_a_fresh_code_only() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    app.align_to_otp_step();
    let code = app.otp_code(&ops.client);
    let sign_in =
        |secret: &str, otp: &str| json!({"client_id": ops.client.client_id, "client_secret": secret, "otp": otp});
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app.admin(Method::POST, "/admin/v1/session", None, Some(sign_in(&ops.client.client_secret, wrong))).await;
    r.assert_error(401, "invalid_grant");
    let r = app.admin(Method::POST, "/admin/v1/session", None, Some(sign_in("tsc_wrong", &code))).await;
    r.assert_error(401, "invalid_client");
    let r = app.admin(Method::POST, "/admin/v1/session", None, Some(sign_in(&ops.client.client_secret, &code))).await;
    r.assert_status(200);
    let session = r.json();
    let token = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(session["scopes"], json!(["admin:read", "admin:write"]));
    // The code was used once.
    let r = app.admin(Method::POST, "/admin/v1/session", None, Some(sign_in(&ops.client.client_secret, &code))).await;
    r.assert_error(401, "invalid_grant");
    app.admin(Method::GET, "/admin/v1/keys", Some(&token), None).await.assert_status(200);
    // Signing out ends it.
    app.admin(Method::DELETE, "/admin/v1/session", Some(&token), None).await.assert_status(204);
    app.clock.advance_secs(2);
    app.admin(Method::GET, "/admin/v1/keys", Some(&token), None).await.assert_error(401, "invalid_token");
    // A client without admin scopes cannot sign in.
    let plain = app.create_otp_client("plain", "deploy").await;
    app.align_to_otp_step();
    let body = json!({"client_id": plain.client_id, "client_secret": plain.client_secret, "otp": app.otp_code(&plain)});
    app.admin(Method::POST, "/admin/v1/session", None, Some(body)).await.assert_error(403, "insufficient_scope");
    for bad in [
        json!({}),
        json!({"client_id": 5, "client_secret": "y", "otp": "1"}),
        json!({"client_id": "not an id", "client_secret": "y", "otp": "1"}),
        json!("text"),
    ] {
        app.admin(Method::POST, "/admin/v1/session", None, Some(bad)).await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn failed_admin_authentication_is_limited_like_any_other() {
    let app = spawn_app_with(|s| {
        s.admin_listen = Some(([127, 0, 0, 1], 0).into());
        s.failures_per_address = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses
            .push(app.admin(Method::GET, "/admin/v1/clients", Some("forged.jwt.token"), None).await.status.as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn an_admin_url_that_is_also_the_public_audience_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (admin_url, default_audience) in
        [("https://tokens.test/", None), ("https://api.test", Some("https://api.test"))]
    {
        let settings = tokensmith::config::Settings {
            listen: ([127, 0, 0, 1], 0).into(),
            admin_listen: Some(([127, 0, 0, 1], 0).into()),
            admin_url: Some(admin_url.into()),
            issuer: Some("https://tokens.test".into()),
            default_audience: default_audience.map(Into::into),
            database: crate::helpers::database_url_in(&dir),
            ..tokensmith::config::Settings::default()
        };
        let err = tokensmith::app::Application::build(settings).await.err().expect("refused");
        assert!(err.to_string().contains("admin_url"), "{err:#}");
    }
}
