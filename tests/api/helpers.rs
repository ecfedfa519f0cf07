//! The harness: `spawn_app()` runs the real application on port 0 with a fresh database and a
//! clock the test can move forward; clients are registered through the real `tokensmith`
//! binary; every request goes over HTTP like any client's would.
//!
//! The backend is chosen by `TOKENSMITH_TEST_BACKEND`: unset (or `sqlite`), a SQLite file in
//! the test's temp dir; `postgres`, a database of its own on the server at
//! `TOKENSMITH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), created
//! as `tokensmith_api_<unix time>_<random>` and dropped when the test's last instance is, with
//! a random master key given to the server in `Settings` and to the CLI in
//! `TOKENSMITH_MASTER_KEY`.

use std::io::Write;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use tokensmith::app::Application;
use tokensmith::clock::{Clock, OffsetClock};
use tokensmith::config::Settings;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::keys::{ClientKey, KeyForm};

pub const LONG: &str = "/v1/auth/tokens/long";
pub const SHORT: &str = "/v1/auth/tokens/short";
pub const INTROSPECT: &str = "/v1/auth/tokens/introspect";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a test waits for the server to come up or stop before it fails (never a sleep).
const PATIENCE: Duration = Duration::from_secs(30);

/// Selects the database backend of the black-box suite: `sqlite` (default) or `postgres`.
pub const BACKEND_VAR: &str = "TOKENSMITH_TEST_BACKEND";
/// The PostgreSQL server to create test databases on (with `TOKENSMITH_TEST_BACKEND=postgres`).
pub const PG_URL_VAR: &str = "TOKENSMITH_TEST_POSTGRES_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Test databases older than this (by the time in their name) are left over from an aborted
/// run and dropped by the next run.
const STALE_AFTER_SECS: u64 = 3600;
const PG_DB_PREFIX: &str = "tokensmith_api_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend this run tests, from `TOKENSMITH_TEST_BACKEND`.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
        Ok("postgres" | "postgresql") => Backend::Postgres,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// Says, on the real stderr (libtest does not capture it), that `test` did not run here.
pub fn report_skipped(why: &str, test: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED ({why}): {test}");
}

/// `false`, after reporting the test as skipped, unless the suite runs on SQLite.
pub fn sqlite_only(test: &str) -> bool {
    let run = backend() == Backend::Sqlite;
    if !run {
        report_skipped("sqlite only", test);
    }
    run
}

/// `false`, after reporting the test as skipped, unless the suite runs on PostgreSQL.
pub fn postgres_only(test: &str) -> bool {
    let run = backend() == Backend::Postgres;
    if !run {
        report_skipped(&format!("postgres only; run with {BACKEND_VAR}=postgres"), test);
    }
    run
}

/// The database of one test, shared by every instance the test starts on it (restarts,
/// siblings) and by the CLI. A PostgreSQL database is dropped when the last holder is.
pub struct TestDatabase {
    /// What `--database` is given: `sqlite://…/t.db` or `postgres://…/tokensmith_api_…`.
    pub url: String,
    /// The master key (base64) for a PostgreSQL database; SQLite uses the key file beside it.
    pub master_key: Option<String>,
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A new, empty database for one test on the selected backend (a SQLite file in `dir`).
    pub async fn fresh(dir: &TempDir) -> Arc<TestDatabase> {
        match backend() {
            Backend::Sqlite => Arc::new(TestDatabase { url: database_url_in(dir), master_key: None, pg: None }),
            Backend::Postgres => Arc::new(Self::fresh_postgres().await),
        }
    }

    async fn fresh_postgres() -> TestDatabase {
        let base = without_tls_unless_asked(std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned()));
        let admin_url = admin_url(&base).await;
        let mut admin = pg_connect(&admin_url).await;
        static CLEANED: AtomicBool = AtomicBool::new(false);
        if !CLEANED.swap(true, Ordering::SeqCst) {
            drop_stale_databases(&mut admin).await;
        }
        let mut random = [0u8; 8];
        tokensmith::crypto::random_bytes(&mut random);
        let name = format!("{PG_DB_PREFIX}{}_{}", unix_now(), hex(&random));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let mut key = [0u8; 32];
        tokensmith::crypto::random_bytes(&mut key);
        TestDatabase {
            url: with_database(&base, &name),
            master_key: Some(base64::engine::general_purpose::STANDARD.encode(key)),
            pg: Some(PgDatabase { admin_url, name }),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The PostgreSQL database's name.
    pub fn pg_name(&self) -> &str {
        &self.pg.as_ref().expect("a PostgreSQL test database").name
    }

    /// A connection to the server that is not to this database (to terminate, rename…).
    pub async fn pg_admin(&self) -> sqlx::PgConnection {
        pg_connect(&self.pg.as_ref().expect("a PostgreSQL test database").admin_url).await
    }

    /// A connection to this PostgreSQL database, to read what the server stored.
    pub async fn pg_connect(&self) -> sqlx::PgConnection {
        pg_connect(&self.url).await
    }

    /// Points `settings` at this database, with its master key.
    pub fn configure(&self, settings: &mut Settings) {
        settings.database = self.url.clone();
        if let Some(key) = &self.master_key {
            settings.master_key = Some(key.clone().into());
            settings.key_file = None;
        }
    }

    /// The `tokensmith` binary, with this database's master key in its environment.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"));
        command.env_remove("RUST_LOG").kill_on_drop(true);
        match &self.master_key {
            Some(key) => command.env("TOKENSMITH_MASTER_KEY", key),
            None => command.env_remove("TOKENSMITH_MASTER_KEY"),
        };
        command
    }

    /// Runs `tokensmith ARGS --database <this database>`.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let run = self.command().args(args).args(["--database", &self.url]).output();
        tokio::time::timeout(PATIENCE, run).await.expect("the command line finishes in time").expect("the binary runs")
    }

    /// Registers a client through `tokensmith client create` with `extra` flags.
    pub async fn create_client(&self, name: &str, scopes: &str, extra: &[&str]) -> TestClient {
        let mut args = vec!["client", "create", "--name", name, "--scopes", scopes, "--json"];
        args.extend_from_slice(extra);
        let out = self.cli(&args).await;
        assert!(out.status.success(), "client create fails: {}", String::from_utf8_lossy(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("client create --json prints one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout))
        });
        TestClient {
            client_id: json["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: json["client_secret"].as_str().expect("client_secret").to_owned(),
            otp_secret: json["otp_secret"].as_str().map(str::to_owned),
            json,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = &self.pg else { return };
        // Drop cannot await and the test's runtime may be single-threaded: use a thread with its
        // own runtime. FORCE ends the connections of servers still running (PostgreSQL 13+).
        // `<name>_away` is where the fault tests move the database while it is unreachable.
        let (admin_url, name) = (pg.admin_url.clone(), pg.name.clone());
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await else { return };
                for db in [name.clone(), format!("{name}_away")] {
                    drop_database(&mut admin, &db).await;
                }
                let _ = admin.close().await;
            });
        });
        let _ = dropper.join();
    }
}

async fn drop_database(admin: &mut sqlx::PgConnection, name: &str) {
    let force = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(force)).execute(&mut *admin).await {
        let _ = writeln!(std::io::stderr(), "warning: cannot drop test database {name}: {e}");
    }
}

/// Drops the test databases that an aborted run left behind (older than an hour, by the time
/// in their name, so a suite running at the same time elsewhere is never disturbed).
async fn drop_stale_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
        .bind(PG_DB_PREFIX)
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    let now = unix_now();
    for name in names {
        let created = name[PG_DB_PREFIX.len()..].split('_').next().and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t + STALE_AFTER_SECS < now) {
            drop_database(admin, &name).await;
        }
    }
}

async fn pg_connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        let url = tokensmith::store::redact_url(url);
        panic!("{BACKEND_VAR}=postgres, but PostgreSQL at {url} cannot be reached ({e}); set {PG_URL_VAR}")
    })
}

/// The URL to create test databases through: the given one, or the same server's `postgres`
/// database when the given database does not exist.
async fn admin_url(base: &str) -> String {
    match sqlx::PgConnection::connect(base).await {
        Ok(conn) => {
            let _ = conn.close().await;
            base.to_owned()
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => with_database(base, "postgres"),
        Err(e) => {
            let base = tokensmith::store::redact_url(base);
            panic!("{BACKEND_VAR}=postgres, but PostgreSQL at {base} cannot be reached ({e}); set {PG_URL_VAR}")
        }
    }
}

/// `url` with `sslmode=disable` when it names no `sslmode` (and `PGSSLMODE` is unset). Each
/// connection's TLS handshake costs about 0.1 s in a debug build, and every test opens several
/// (its servers' pools, each CLI run): that doubled the suite's time, and TLS is not what these
/// tests are about. Name an `sslmode` in the URL to run them over TLS.
fn without_tls_unless_asked(url: String) -> String {
    if url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some() {
        url
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// `url` with its database (the path) replaced by `db`, keeping any query parameters.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, None), |(m, q)| (m, Some(q)));
    let host_start = main.find("://").map_or(0, |i| i + 3);
    let server = match main[host_start..].find('/') {
        Some(slash) => &main[..host_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock after 1970").as_secs()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Configure = Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// A running application and everything a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The issuer the application announces (`Application::issuer`).
    pub issuer: String,
    /// The admin API's URL (`http://127.0.0.1:PORT` of the admin listener), when it has one.
    pub admin: Option<String>,
    /// The database URL that the CLI is pointed at too.
    pub database_url: String,
    /// The database, shared with instances started on it (restart, siblings).
    pub db: Arc<TestDatabase>,
    /// A temp dir for the test's files (and the SQLite database), shared like `db`.
    pub dir: Arc<TempDir>,
    /// The clock given to the application; advance it to expire tokens or free windows.
    pub clock: OffsetClock,
    pub http: reqwest::Client,
    /// The running service, to run its periodic cleanup now instead of waiting for it.
    service: Arc<tokensmith::domain::TokenService>,
    configure: Configure,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A registered client, as printed once by `tokensmith client create --json`.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: String,
    pub otp_secret: Option<String>,
    pub json: Value,
}

/// An issued token (long- or short-term), from a 201 response.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token_id: String,
    pub access_token: String,
    pub body: Value,
}

impl Issued {
    pub fn scopes(&self) -> Vec<String> {
        string_list(&self.body["scopes"])
    }
}

/// A captured response. Capturing asserts the one rule that holds for every request: no 5xx.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the application with settings changed by `configure` (applied again on restart).
pub async fn spawn_app_with(configure: impl Fn(&mut Settings) + Send + Sync + 'static) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let db = TestDatabase::fresh(&dir).await;
    start(db, dir, Arc::new(configure), OffsetClock::new()).await
}

/// Spawns the application with its clock `days` in the past (advance it to come back to the
/// present): for what the command line, which runs on the real clock, reads as old.
pub async fn spawn_app_in_the_past(days: i64) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let db = TestDatabase::fresh(&dir).await;
    let clock = OffsetClock::new();
    clock.advance_secs(-days * 86_400);
    start(db, dir, Arc::new(|_: &mut Settings| {}), clock).await
}

pub fn database_url_in(dir: &TempDir) -> String {
    format!("sqlite://{}/t.db", dir.path().display())
}

async fn start(db: Arc<TestDatabase>, dir: Arc<TempDir>, configure: Configure, clock: OffsetClock) -> TestApp {
    let database_url = db.url.clone();
    let mut settings = Settings { listen: ([127, 0, 0, 1], 0).into(), ..Settings::default() };
    db.configure(&mut settings);
    configure(&mut settings);
    let app = tokio::time::timeout(PATIENCE, Application::build_with_clock(settings, Arc::new(clock.clone())))
        .await
        .expect("the application builds in time")
        .expect("the application builds");
    let address = format!("http://{}", app.local_addr());
    let issuer = app.issuer().to_owned();
    let admin = app.admin_url().map(str::to_owned);
    let service = Arc::clone(app.service());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        issuer,
        admin,
        database_url,
        db,
        dir,
        clock,
        http: http_client(),
        service,
        configure,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("an http client")
}

impl TestApp {
    /// Stops this instance gracefully and starts a new one on the same database, key file,
    /// settings and clock.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        start(self.db.clone(), self.dir.clone(), self.configure.clone(), self.clock.clone()).await
    }

    /// Starts a second instance on the same database and clock, while this one keeps running.
    pub async fn spawn_sibling(&self) -> TestApp {
        start(self.db.clone(), self.dir.clone(), self.configure.clone(), self.clock.clone()).await
    }

    async fn stop(&mut self) {
        // Drop pooled keep-alive connections so the graceful shutdown has nothing to wait for.
        self.http = http_client();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(PATIENCE, server)
                .await
                .expect("the server stops in time")
                .expect("the server task does not panic")
                .expect("the server stops cleanly");
        }
    }

    /// Runs the cleanup pass that the server runs every `cleanup_interval_secs`.
    pub async fn purge(&self) {
        self.service.purge_expired().await.expect("the cleanup runs");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The application's time, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let reply = self.send_unchecked(request).await;
        assert!(
            !reply.status.is_server_error(),
            "the server never answers 5xx to client input, got {}: {}",
            reply.status,
            reply.text
        );
        reply
    }

    /// Sends without asserting the absence of 5xx (for tests that take the database away).
    pub async fn send_unchecked(&self, request: RequestBuilder) -> Reply {
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the server answers in time")
            .expect("the request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        Reply { status, headers, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    // ---- issueLongTermToken -------------------------------------------------------------

    pub async fn post_long(&self, body: &Value) -> Reply {
        self.send(self.post(LONG).json(body)).await
    }

    /// Issues a long-term token with the client-secret grant plus `extra` fields; asserts 201.
    pub async fn issue_long_with(&self, client: &TestClient, extra: Value) -> Issued {
        let body = merge(secret_grant(client), extra);
        let reply = self.post_long(&body).await;
        issued(&reply)
    }

    pub async fn issue_long(&self, client: &TestClient) -> Issued {
        self.issue_long_with(client, json!({})).await
    }

    /// A signed assertion for `client_id` that the server should accept.
    pub fn assertion_claims(&self, client_id: &str) -> Value {
        let now = self.now();
        json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + 120,
            "jti": uuid::Uuid::now_v7().to_string(),
        })
    }

    pub fn otp_code(&self, client: &TestClient) -> String {
        self.otp_code_at(client, self.now())
    }

    pub fn otp_code_at(&self, client: &TestClient, at: i64) -> String {
        let secret = client.otp_secret.as_deref().expect("the client has an OTP secret");
        let seed = otp_seed(secret);
        tokensmith::domain::otp::code_at(&seed, at).expect("a TOTP code")
    }

    /// Moves the clock to one second into a fresh 30 s TOTP step, so that a test has 29 s
    /// before the step changes under it.
    pub fn align_to_otp_step(&self) {
        let into_step = self.now().rem_euclid(30);
        self.clock.advance_secs(30 - into_step + 1);
    }

    // ---- issueShortTermToken ------------------------------------------------------------

    pub async fn post_short(&self, bearer: Option<&str>, body: Option<&Value>) -> Reply {
        let mut request = self.post(SHORT);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    pub async fn issue_short_with(&self, long_token: &str, body: Value) -> Issued {
        let reply = self.post_short(Some(long_token), Some(&body)).await;
        issued(&reply)
    }

    pub async fn issue_short(&self, long_token: &str) -> Issued {
        let reply = self.post_short(Some(long_token), None).await;
        issued(&reply)
    }

    /// The short_token grant: a long-term token minted with a short-term bearer token.
    pub async fn post_long_with_short(&self, short_token: &str, body: &Value) -> Reply {
        self.send(self.post(LONG).bearer_auth(short_token).json(body)).await
    }

    // ---- revokeToken and introspection --------------------------------------------------

    pub async fn revoke(&self, bearer: Option<&str>, token_id: &str) -> Reply {
        let mut request = self.post(&format!("/v1/auth/tokens/{token_id}/revoke"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        self.send(request).await
    }

    pub async fn introspect(&self, bearer: &str, token: &str) -> Reply {
        self.send(self.post(INTROSPECT).bearer_auth(bearer).json(&json!({"token": token}))).await
    }

    /// Whether introspection (by `caller`, which holds `tokens:introspect`) finds `token` active.
    pub async fn is_active(&self, caller: &str, token: &str) -> bool {
        let reply = self.introspect(caller, token).await;
        reply.assert_status(200);
        reply.json()["active"].as_bool().expect("`active` is a boolean")
    }

    pub async fn jwks(&self) -> Value {
        let reply = self.get("/.well-known/jwks.json").await;
        reply.assert_status(200);
        reply.json()
    }

    // ---- the command line ---------------------------------------------------------------

    /// Runs `tokensmith ARGS --database <this app's database>`.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.db.cli(args).await
    }

    /// Runs a command that must succeed and returns its stdout.
    pub async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        assert!(out.status.success(), "tokensmith {args:?} fails: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// `tokensmith audit --json` with `extra` arguments, one object per line.
    pub async fn audit(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["audit", "--json"];
        args.extend_from_slice(extra);
        self.cli_ok(&args)
            .await
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit --json prints JSON lines ({e}): {l}")))
            .collect()
    }

    /// Registers a client with `extra` flags for `client create`.
    pub async fn create_client_with(&self, name: &str, scopes: &str, extra: &[&str]) -> TestClient {
        self.db.create_client(name, scopes, extra).await
    }

    pub async fn create_client(&self, name: &str, scopes: &str) -> TestClient {
        self.create_client_with(name, scopes, &[]).await
    }

    pub async fn create_otp_client(&self, name: &str, scopes: &str) -> TestClient {
        self.create_client_with(name, scopes, &["--otp"]).await
    }

    /// Registers a client with `key`'s public half (written to a file in `form`).
    pub async fn create_key_client(&self, name: &str, scopes: &str, key: &ClientKey, form: KeyForm) -> TestClient {
        let path = self.write_file(&format!("{name}.key"), &key.public_file(form));
        self.create_client_with(name, scopes, &["--public-key", &path]).await
    }

    /// Writes a file in this app's temp dir and returns its path.
    pub fn write_file(&self, file_name: &str, content: &str) -> String {
        let path = self.dir.path().join(file_name);
        std::fs::write(&path, content).expect("a test file is written");
        path.display().to_string()
    }

    pub async fn list_clients(&self) -> Vec<Value> {
        let out = self.cli(&["client", "list", "--json"]).await;
        assert!(out.status.success(), "client list fails: {}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).expect("client list --json prints JSON");
        list.as_array().expect("client list --json prints an array").clone()
    }
}

/// The body of the client-secret grant for `client`.
pub fn secret_grant(client: &TestClient) -> Value {
    json!({
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
    })
}

pub fn assertion_grant(assertion: &str) -> Value {
    json!({"grant_type": "assertion", "assertion": assertion})
}

/// `base` with every field of `extra` set (a `null` in `extra` removes the field).
pub fn merge(mut base: Value, extra: Value) -> Value {
    let object = base.as_object_mut().expect("an object");
    for (k, v) in extra.as_object().expect("an object") {
        if v.is_null() {
            object.remove(k);
        } else {
            object.insert(k.clone(), v.clone());
        }
    }
    base
}

/// The raw TOTP seed from its base32 form.
pub fn otp_seed(base32: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(base32).expect("the OTP secret is base32").as_bytes().to_vec()
}

/// A client id that no client has (well-formed, so it must be answered like a wrong secret).
pub fn unknown_client_id() -> String {
    format!("cli_{}", uuid::Uuid::now_v7().simple())
}

pub fn string_list(value: &Value) -> Vec<String> {
    let mut list: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of strings, got {value}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect();
    list.sort();
    list
}

pub fn sorted(items: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    list.sort();
    list
}

/// The token from a 201 answer, after checking the fields both kinds of token share.
pub fn issued(reply: &Reply) -> Issued {
    reply.assert_status(201);
    reply.assert_json_content_type();
    let body = reply.json();
    let token_id = body["token_id"].as_str().expect("token_id").to_owned();
    let access_token = body["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(body["token_type"], "Bearer");
    // RFC 6749 §5.1: an answer carrying a token must not be cached.
    let cache_control = reply.header("cache-control").unwrap_or_default();
    assert!(cache_control.contains("no-store"), "Cache-Control: no-store, got {cache_control:?}");
    for field in ["issued_at", "expires_at"] {
        let at = body[field].as_str().unwrap_or_default();
        assert!(at.ends_with('Z') || at.ends_with("+00:00"), "{field} is RFC 3339 UTC, got {at:?}");
        rfc3339(&body[field]);
    }
    Issued { token_id, access_token, body }
}

/// Parses an RFC 3339 timestamp into Unix seconds.
pub fn rfc3339(value: &Value) -> i64 {
    let s = value.as_str().unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s} is not RFC 3339: {e}"))
        .unix_timestamp()
}

/// The claims of a JWT, without verifying it.
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&crate::keys::b64url_decode(payload)).expect("JWT claims are JSON")
}

/// The JOSE header of a JWT, without verifying it.
pub fn jwt_header(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&crate::keys::b64url_decode(header)).expect("a JWT header is JSON")
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("expected a JSON body ({e}), got {}: {:?}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) {
        assert_eq!(self.status.as_u16(), expected, "expected {expected}, got {}: {}", self.status, self.text);
    }

    #[track_caller]
    pub fn assert_json_content_type(&self) {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("application/json"), "expected application/json, got {content_type:?}");
    }

    /// Checks the error shape of every error answer: status, `Content-Type: application/json`, body
    /// `{"error": CODE, "error_description": TEXT}`. Returns the body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        self.assert_status(status);
        self.assert_json_content_type();
        let body = self.json();
        assert_eq!(body["error"], code, "error code of {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "error_description is a non-empty string: {body}");
        body
    }

    /// A 400 `invalid_request`.
    #[track_caller]
    pub fn assert_invalid_request(&self) -> Value {
        self.assert_error(400, "invalid_request")
    }

    /// A 401 `invalid_token` with `WWW-Authenticate: Bearer …error="invalid_token"`.
    #[track_caller]
    pub fn assert_invalid_token(&self) {
        self.assert_error(401, "invalid_token");
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "a Bearer challenge, got {challenge:?}");
        assert!(challenge.contains("error=\"invalid_token\""), "the challenge names invalid_token, got {challenge:?}");
    }

    /// A 401 for a missing bearer token: `WWW-Authenticate: Bearer` without an error.
    #[track_caller]
    pub fn assert_bearer_required(&self) {
        self.assert_status(401);
        self.assert_json_content_type();
        let body = self.json();
        assert!(body["error"].is_string(), "an error code: {body}");
        assert!(body["error_description"].is_string(), "an error description: {body}");
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "a Bearer challenge, got {challenge:?}");
        assert!(!challenge.contains("error="), "no error when no token was sent, got {challenge:?}");
    }

    /// A 429 `rate_limited` with an integer `Retry-After` of at least one second.
    #[track_caller]
    pub fn assert_rate_limited(&self) {
        self.assert_error(429, "rate_limited");
        let retry_after = self.header("retry-after").expect("a Retry-After header");
        let secs: u64 =
            retry_after.trim().parse().unwrap_or_else(|_| panic!("Retry-After is whole seconds, got {retry_after:?}"));
        assert!(secs >= 1, "Retry-After is at least one second, got {secs}");
    }
}

/// Verifies `jwt` with jsonwebtoken against the app's JWKS, for the given algorithm and
/// audience; returns the claims.
pub async fn verify_with_jwks(app: &TestApp, jwt: &str, alg: Algorithm, audience: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(app.jwks().await).expect("the JWKS parses as a JWK set");
    let header = jsonwebtoken::decode_header(jwt).expect("a JWT header");
    let kid = header.kid.expect("the JWT names its key");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} is in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).expect("a usable public key");
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("the JWT verifies against the JWKS: {e}"))
        .claims
}

/// Runs the futures concurrently on this task and returns their outputs in order.
pub async fn join_all<T, F: std::future::Future<Output = T>>(futures: impl Iterator<Item = F>) -> Vec<T> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut results: Vec<Option<T>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => results[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(|r| r.expect("every request finished")).collect()
}
