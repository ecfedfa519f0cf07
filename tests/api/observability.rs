//! Logs and metrics of the real binary: a full run through every operation and grant, with
//! failures, then (a) every request has its one access-log line with the documented fields,
//! and no secret or token appears anywhere in the output; (b) `/metrics`, scraped over HTTP
//! before and after, moved by exactly what the requests did (the process is the test's own,
//! so its counters are too).

use std::collections::HashMap;

use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::helpers::{TestClient, TestDatabase, otp_seed};
use crate::keys::{ClientKey, KeyForm};
use crate::process::ServerProcess;

const LONG: &str = "/v1/auth/tokens/long";
const SHORT: &str = "/v1/auth/tokens/short";
const INTROSPECT: &str = "/v1/auth/tokens/introspect";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("an http client")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs() as i64
}

fn otp_code(client: &TestClient) -> String {
    let seed = otp_seed(client.otp_secret.as_deref().expect("an OTP client"));
    tokensmith::domain::otp::code_at(&seed, now()).expect("a TOTP code")
}

/// One request the test sent, and what its access-log line must say.
struct Sent {
    request_id: String,
    operation: &'static str,
    status: u16,
    client_id: Option<String>,
    token_id: Option<String>,
}

struct Answer {
    body: Value,
}

/// A run against one server process: sends requests with ids, remembers every secret seen.
struct Run<'a> {
    server: &'a ServerProcess,
    http: reqwest::Client,
    sent: Vec<Sent>,
    secrets: Vec<String>,
    otp_codes: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(server: &'a ServerProcess) -> Self {
        Run { server, http: client(), sent: Vec::new(), secrets: Vec::new(), otp_codes: Vec::new() }
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.server.url(path))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.server.url(path))
    }

    /// Sends `request` with a request id of ours and records it; `expect` is the status.
    async fn send(&mut self, operation: &'static str, request: RequestBuilder, expect: u16) -> Answer {
        let request_id = format!("obs-{}", self.sent.len() + 1);
        self.send_with_id(operation, request.header("x-request-id", &request_id), expect, Some(&request_id)).await
    }

    /// Sends `request` as it is; `ours` is the request id it carries, when the server must keep it.
    async fn send_with_id(
        &mut self,
        operation: &'static str,
        request: RequestBuilder,
        expect: u16,
        ours: Option<&str>,
    ) -> Answer {
        let response = request.send().await.expect("the request reaches the server");
        let status = response.status().as_u16();
        let echoed = response.headers().get("x-request-id").map(|v| v.to_str().expect("ASCII").to_owned());
        let echoed = echoed.expect("every response carries X-Request-Id");
        if let Some(ours) = ours {
            assert_eq!(echoed, ours, "the server keeps a sane X-Request-Id");
        }
        let text = response.text().await.expect("a body");
        assert_eq!(status, expect, "{operation}: {text}");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.sent.push(Sent { request_id: echoed, operation, status, client_id: None, token_id: None });
        Answer { body }
    }

    /// What the last request's log line must name.
    fn expect_ids(&mut self, client_id: &str, token_id: Option<&str>) {
        let last = self.sent.last_mut().expect("a request was sent");
        last.client_id = Some(client_id.to_owned());
        last.token_id = token_id.map(str::to_owned);
    }

    fn secret(&mut self, s: &str) {
        self.secrets.push(s.to_owned());
    }
}

fn field<'v>(body: &'v Value, name: &str) -> &'v str {
    body[name].as_str().unwrap_or_else(|| panic!("{name} in {body}"))
}

/// Everything: each grant, short issuance, the short_token grant, introspection, revocation
/// and its cascade, discovery, and failures that carry secrets in odd places.
async fn full_run(run: &mut Run<'_>, db: &TestDatabase, dir: &tempfile::TempDir) {
    let bot = db.create_client("bot", "tokens:write tokens:introspect deploy", &["--otp"]).await;
    let key = ClientKey::ed25519();
    let key_file = dir.path().join("keyed.pem");
    std::fs::write(&key_file, key.public_file(KeyForm::Pem)).expect("key file");
    let keyed = db.create_client("keyed", "deploy", &["--public-key", key_file.to_str().expect("utf-8")]).await;
    run.secret(&bot.client_secret);
    run.secret(bot.otp_secret.as_deref().expect("otp secret"));
    run.secret(&keyed.client_secret);

    // client_credentials with the secret.
    let body =
        json!({"grant_type": "client_credentials", "client_id": bot.client_id, "client_secret": bot.client_secret});
    let long = run.send("issueLongTermToken", run.post(LONG).json(&body), 201).await.body;
    let (long_id, long_token) = (field(&long, "token_id").to_owned(), field(&long, "access_token").to_owned());
    run.expect_ids(&bot.client_id, Some(&long_id));
    run.secret(&long_token);

    // client_credentials with a one-time code, the client named by X-Client-Key.
    let code = otp_code(&bot);
    run.otp_codes.push(code.clone());
    let body = json!({"grant_type": "client_credentials", "otp_code": code});
    let req = run.post(LONG).header("x-client-key", &bot.client_id).json(&body);
    let by_otp = run.send("issueLongTermToken", req, 201).await.body;
    run.expect_ids(&bot.client_id, Some(field(&by_otp, "token_id")));
    run.secret(field(&by_otp, "access_token"));

    // assertion.
    let t = now();
    let claims = json!({"iss": keyed.client_id, "sub": keyed.client_id, "aud": run.server.address,
        "iat": t, "exp": t + 120, "jti": uuid::Uuid::now_v7().to_string()});
    let assertion = key.sign(&claims);
    run.secret(&assertion);
    let req = run.post(LONG).json(&json!({"grant_type": "assertion", "assertion": assertion}));
    let by_assertion = run.send("issueLongTermToken", req, 201).await.body;
    run.expect_ids(&keyed.client_id, Some(field(&by_assertion, "token_id")));
    let keyed_long = field(&by_assertion, "access_token").to_owned();
    run.secret(&keyed_long);

    // A short-term token, then the short_token grant with it.
    let req = run.post(SHORT).bearer_auth(&long_token).json(&json!({"ttl_seconds": 300}));
    let short = run.send("issueShortTermToken", req, 201).await.body;
    let (short_id, jwt) = (field(&short, "token_id").to_owned(), field(&short, "access_token").to_owned());
    run.expect_ids(&bot.client_id, Some(&short_id));
    run.secret(&jwt);
    let req = run.post(LONG).bearer_auth(&jwt).json(&json!({"grant_type": "short_token", "ttl_days": 1}));
    let by_short = run.send("issueLongTermToken", req, 201).await.body;
    run.expect_ids(&bot.client_id, Some(field(&by_short, "token_id")));
    run.secret(field(&by_short, "access_token"));

    // Introspection, by a caller that may and one that may not.
    let req = run.post(INTROSPECT).bearer_auth(&long_token).json(&json!({"token": jwt}));
    let found = run.send("introspect", req, 200).await.body;
    assert_eq!(found["active"], true);
    run.expect_ids(&bot.client_id, Some(&short_id));
    let req = run.post(INTROSPECT).bearer_auth(&keyed_long).json(&json!({"token": long_token}));
    run.send("introspect", req, 403).await;
    run.expect_ids(&keyed.client_id, None);

    // Failures that carry secrets: a wrong secret (another client's), a wrong code, an assertion
    // signed by another key, a mistyped bearer token, a token where an id belongs, in the query
    // string, as a method and as a request id; both credentials at once.
    let body =
        json!({"grant_type": "client_credentials", "client_id": bot.client_id, "client_secret": keyed.client_secret});
    run.send("issueLongTermToken", run.post(LONG).json(&body), 401).await;
    let wrong_code = if code == "000000" { "000001" } else { "000000" };
    let body = json!({"grant_type": "client_credentials", "client_id": bot.client_id, "otp_code": wrong_code});
    run.send("issueLongTermToken", run.post(LONG).json(&body), 401).await;
    let forged = ClientKey::ed25519().sign(&claims);
    run.secret(&forged);
    let req = run.post(LONG).json(&json!({"grant_type": "assertion", "assertion": forged}));
    run.send("issueLongTermToken", req, 401).await;
    let mut mistyped = long_token.clone();
    let last = mistyped.pop().expect("a character");
    mistyped.push(if last == 'A' { 'B' } else { 'A' });
    run.secret(&mistyped);
    run.send("issueShortTermToken", run.post(SHORT).bearer_auth(&mistyped), 401).await;
    let req = run.post(&format!("/v1/auth/tokens/{long_token}/revoke")).bearer_auth(&long_token);
    run.send("revokeToken", req, 404).await;
    run.expect_ids(&bot.client_id, None);
    run.send("healthz", run.get(&format!("/healthz?access_token={long_token}")), 200).await;
    run.send("unknown", run.get(&format!("/v1/auth/tokens/{jwt}")), 404).await;
    let method = reqwest::Method::from_bytes(long_token.as_bytes()).expect("a token is a valid method");
    run.send("healthz", run.http.request(method, run.server.url("/healthz")), 405).await;
    let req = run.get("/healthz").header("x-request-id", &long_token);
    run.send_with_id("healthz", req, 200, None).await;
    assert_ne!(run.sent.last().map(|s| s.request_id.as_str()), Some(long_token.as_str()));
    let body = json!({"grant_type": "client_credentials", "client_id": bot.client_id,
        "client_secret": bot.client_secret, "otp_code": code});
    run.send("issueLongTermToken", run.post(LONG).json(&body), 400).await;

    // Revocation: the short-term token, then the long-term one, which takes the rest along.
    let req = run.post(&format!("/v1/auth/tokens/{short_id}/revoke")).bearer_auth(&long_token);
    run.send("revokeToken", req, 204).await;
    run.expect_ids(&bot.client_id, Some(&short_id));
    let req = run.post(&format!("/v1/auth/tokens/{long_id}/revoke")).bearer_auth(&long_token);
    run.send("revokeToken", req, 204).await;
    run.expect_ids(&bot.client_id, Some(&long_id));
    run.send("issueShortTermToken", run.post(SHORT).bearer_auth(&long_token), 401).await;

    for (op, path) in [
        ("jwks", "/.well-known/jwks.json"),
        ("metadata", "/.well-known/oauth-authorization-server"),
        ("readyz", "/readyz"),
        ("openapi", "/openapi.json"),
    ] {
        run.send(op, run.get(path), 200).await;
    }
}

/// Whether `code` occurs in `text` as a number of its own (not inside a timestamp, a
/// fraction or an identifier, where six digits in a row occur by chance).
fn contains_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[tokio::test]
async fn a_full_run_logs_one_json_line_per_request_with_its_ids_and_never_a_secret() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &["--log-format", "json"]).await;
    let mut run = Run::new(&server);
    full_run(&mut run, &db, &dir).await;
    let Run { sent, secrets, otp_codes, .. } = run;
    assert!(server.stop().await.success(), "the server exits 0 on SIGTERM");
    let stderr = server.stderr();

    let mut access: HashMap<String, Vec<Value>> = HashMap::new();
    for line in stderr.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a JSON log line ({e}): {line}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{line}");
        if event["target"] == "tokensmith::access" {
            let id = event["request_id"].as_str().unwrap_or_else(|| panic!("a request id: {line}")).to_owned();
            access.entry(id).or_default().push(event);
        }
    }
    assert_eq!(access.values().map(Vec::len).sum::<usize>(), sent.len(), "one access line per request, no more");
    for s in &sent {
        let lines = access.get(&s.request_id).unwrap_or_else(|| panic!("a line for request {}", s.request_id));
        assert_eq!(lines.len(), 1, "exactly one line for {}", s.request_id);
        let line = &lines[0];
        assert_eq!(line["operation"], s.operation, "{line}");
        assert_eq!(line["status"], s.status, "{line}");
        assert!(line["method"].is_string(), "{line}");
        assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "latency in ms: {line}");
        if let Some(client_id) = &s.client_id {
            assert_eq!(line["client_id"], client_id.as_str(), "{line}");
        }
        match &s.token_id {
            Some(token_id) => assert_eq!(line["token_id"], token_id.as_str(), "{line}"),
            None => assert!(line.get("token_id").is_none(), "no token id when none applies: {line}"),
        }
    }

    let output = format!("{stderr}\n{}", server.stdout());
    assert!(secrets.len() >= 11 && !otp_codes.is_empty(), "the run saw every kind of secret");
    for secret in &secrets {
        assert!(!output.contains(secret.as_str()), "a secret is in the output: {secret}");
        // Nor any sizeable piece of one (a token cut short is still a leak).
        let chars: Vec<char> = secret.chars().collect();
        for piece in chars.chunks(20).filter(|c| c.len() == 20) {
            let piece: String = piece.iter().collect();
            assert!(!output.contains(&piece), "a piece of a secret is in the output: {piece}");
        }
    }
    for code in &otp_codes {
        assert!(!contains_code(&output, code), "an OTP code is in the output: {code}");
    }
}

/// The exposition format's samples: `name{labels}` → value.
fn scrape_text(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l}"));
            (key.to_owned(), value.parse().unwrap_or_else(|_| panic!("a number: {l}")))
        })
        .collect()
}

async fn scrape(server: &ServerProcess) -> (HashMap<String, f64>, String) {
    let response = client().get(server.url("/metrics")).send().await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ASCII").to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("a body");
    (scrape_text(&text), text)
}

#[tokio::test]
async fn metrics_count_requests_issuances_failures_limits_and_revocations() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &["--failures-per-client", "2"]).await;
    let bot = db.create_client("bot", "tokens:write deploy", &[]).await;
    let other = db.create_client("other", "deploy", &[]).await;
    let (before, _) = scrape(&server).await;

    let mut run = Run::new(&server);
    let good =
        json!({"grant_type": "client_credentials", "client_id": bot.client_id, "client_secret": bot.client_secret});
    let long = run.send("issueLongTermToken", run.post(LONG).json(&good), 201).await.body;
    run.send("issueLongTermToken", run.post(LONG).json(&good), 201).await;
    let long_token = field(&long, "access_token").to_owned();
    let short = run.send("issueShortTermToken", run.post(SHORT).bearer_auth(&long_token), 201).await.body;
    let req = run.post(&format!("/v1/auth/tokens/{}/revoke", field(&short, "token_id"))).bearer_auth(&long_token);
    run.send("revokeToken", req, 204).await;
    let both = json!({"grant_type": "client_credentials", "client_id": other.client_id,
        "client_secret": other.client_secret, "otp_code": "123456"});
    run.send("issueLongTermToken", run.post(LONG).json(&both), 400).await;
    let wrong =
        json!({"grant_type": "client_credentials", "client_id": other.client_id, "client_secret": bot.client_secret});
    for expect in [401, 401, 429] {
        run.send("issueLongTermToken", run.post(LONG).json(&wrong), expect).await;
    }
    let req = run.post(&format!("/v1/auth/tokens/{}/revoke", field(&long, "token_id"))).bearer_auth(&long_token);
    run.send("revokeToken", req, 204).await;
    assert_eq!(run.sent.iter().filter(|s| s.status == 204).count(), 2);

    let (after, text) = scrape(&server).await;
    let delta = |key: &str| after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    let expectations: &[(&str, f64)] = &[
        (r#"tokensmith_http_requests_total{operation="issueLongTermToken",status="201"}"#, 2.0),
        (r#"tokensmith_http_requests_total{operation="issueLongTermToken",status="400"}"#, 1.0),
        (r#"tokensmith_http_requests_total{operation="issueLongTermToken",status="401"}"#, 2.0),
        (r#"tokensmith_http_requests_total{operation="issueLongTermToken",status="429"}"#, 1.0),
        (r#"tokensmith_http_requests_total{operation="issueShortTermToken",status="201"}"#, 1.0),
        (r#"tokensmith_http_requests_total{operation="revokeToken",status="204"}"#, 2.0),
        (r#"tokensmith_http_request_duration_seconds_count{operation="issueLongTermToken"}"#, 6.0),
        (r#"tokensmith_token_issuance_total{token="long",grant="client_secret",outcome="issued"}"#, 2.0),
        (r#"tokensmith_token_issuance_total{token="long",grant="client_secret",outcome="unauthenticated"}"#, 2.0),
        (r#"tokensmith_token_issuance_total{token="long",grant="client_secret",outcome="rate_limited"}"#, 1.0),
        (r#"tokensmith_token_issuance_total{token="long",grant="none",outcome="invalid_request"}"#, 1.0),
        (r#"tokensmith_token_issuance_total{token="short",grant="long_token",outcome="issued"}"#, 1.0),
        (r#"tokensmith_rate_limited_total{operation="issueLongTermToken"}"#, 1.0),
        (r#"tokensmith_revocations_total{kind="short"}"#, 1.0),
        (r#"tokensmith_revocations_total{kind="long"}"#, 1.0),
        (r#"tokensmith_auth_failures_total{mechanism="client_secret"}"#, 2.0),
    ];
    for (key, expected) in expectations {
        assert_eq!(delta(key), *expected, "{key} moved by {expected}\n{text}");
    }
    // Latency is a histogram with buckets; the gauges and the error counters exist from the start.
    assert!(text.contains("# TYPE tokensmith_http_request_duration_seconds histogram"), "{text}");
    assert!(after.keys().any(|k| k.starts_with("tokensmith_http_request_duration_seconds_bucket{")));
    assert_eq!(after.get("tokensmith_signing_keys"), Some(&1.0), "a fresh database has one signing key\n{text}");
    for kind in ["unavailable", "backend"] {
        let key = format!(r#"tokensmith_database_errors_total{{kind="{kind}"}}"#);
        assert_eq!(after.get(&key), Some(&0.0), "{key} is exported, and no database error happened\n{text}");
    }
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn database_errors_are_counted_by_kind() {
    if !crate::helpers::postgres_only("database_errors_are_counted_by_kind") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &[]).await;
    let key = r#"tokensmith_database_errors_total{kind="unavailable"}"#;
    let (before, _) = scrape(&server).await;

    // The database refuses new connections and the server's are cut.
    let mut admin = db.pg_admin().await;
    let name = db.pg_name().to_owned();
    let exec = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    exec(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut admin).await.expect("disallow");
    exec(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .await
    .expect("terminate");
    let ready = client().get(server.url("/readyz")).send().await.expect("/readyz answers");
    assert_eq!(ready.status(), 503);

    let (after, text) = scrape(&server).await;
    let moved = after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    assert!(moved >= 1.0, "{key} counts the failed readiness check\n{text}");
    exec(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).execute(&mut admin).await.expect("allow");
    assert!(server.stop().await.success());
}
