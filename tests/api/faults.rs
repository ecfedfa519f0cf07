//! Faults of the database, PostgreSQL only (with SQLite each test reports itself SKIPPED): the
//! server's connections terminated (`pg_terminate_backend`), and the database gone. Meanwhile
//! requests get 503 `temporarily_unavailable` (never another 5xx, never a panic) and nothing is
//! half-written; `/readyz` reports the database; the service recovers by itself once the
//! database is back, without a restart.
//!
//! The shared PostgreSQL server cannot be stopped (other tests use it), so "unreachable" is made
//! by taking this test's own database away: no new connections, the server's ones terminated,
//! then renamed, so that connecting fails as for a dropped database. It is renamed back after.

use std::time::{Duration, Instant};

use reqwest::RequestBuilder;
use serde_json::json;

use crate::helpers::{
    INTROSPECT, Issued, LONG, Reply, SHORT, TestApp, TestClient, TestDatabase, issued, join_all, postgres_only,
    secret_grant, spawn_app,
};

/// How long the service may take to recover once the database is back (it retries by itself).
const RECOVERY: Duration = Duration::from_secs(15);

/// Terminates every connection to the test's database from a separate connection; returns how
/// many there were.
async fn terminate_connections(db: &TestDatabase) -> i64 {
    let mut admin = db.pg_admin().await;
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db.pg_name())
    .fetch_one(&mut admin)
    .await
    .expect("pg_terminate_backend runs")
}

async fn admin_exec(admin: &mut sqlx::PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *admin).await.map(|_| ())
}

/// Makes the test's database unreachable: it refuses new connections, its connections are
/// terminated, and it is renamed to `<name>_away` (dropped with the test if it is not renamed back).
async fn take_database_away(db: &TestDatabase) {
    let name = db.pg_name();
    let mut admin = db.pg_admin().await;
    admin_exec(&mut admin, format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await.expect("disallow");
    let mut attempts = 0;
    loop {
        terminate_connections(db).await;
        // RENAME waits a few seconds for terminated sessions to end, and fails if they do not.
        match admin_exec(&mut admin, format!("ALTER DATABASE {name} RENAME TO {name}_away")).await {
            Ok(()) => return,
            Err(e) if attempts < 5 => {
                attempts += 1;
                eprintln!("rename not yet possible ({e}); retrying");
            }
            Err(e) => panic!("the test database cannot be renamed: {e}"),
        }
    }
}

async fn bring_database_back(db: &TestDatabase) {
    let name = db.pg_name();
    let mut admin = db.pg_admin().await;
    admin_exec(&mut admin, format!("ALTER DATABASE {name}_away RENAME TO {name}")).await.expect("rename back");
    admin_exec(&mut admin, format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await.expect("allow");
}

/// The long-term tokens stored for `client`, counted in the database itself.
async fn stored_long_tokens(db: &TestDatabase, client: &TestClient) -> i64 {
    let mut conn = db.pg_connect().await;
    sqlx::query_scalar("SELECT count(*) FROM long_tokens WHERE client_id = $1")
        .bind(&client.client_id)
        .fetch_one(&mut conn)
        .await
        .expect("the tokens are counted")
}

/// One request of each kind that needs the database, with the status it gets when it has one.
/// (`bearer` is a live long-term token holding `tokens:introspect`.)
fn one_of_each(app: &TestApp, client: &TestClient, bearer: &Issued) -> Vec<(&'static str, RequestBuilder, u16)> {
    let token = &bearer.access_token;
    let unknown = uuid::Uuid::now_v7();
    vec![
        ("GET /readyz", app.http.get(app.url("/readyz")), 200),
        ("issue a long-term token", app.post(LONG).json(&secret_grant(client)), 201),
        ("issue a short-term token", app.post(SHORT).bearer_auth(token), 201),
        ("introspect", app.post(INTROSPECT).bearer_auth(token).json(&json!({"token": token})), 200),
        ("revoke an unknown id", app.post(&format!("/v1/auth/tokens/{unknown}/revoke")).bearer_auth(token), 404),
    ]
}

/// Sends the requests at once; returns each with its reply and expected status.
async fn send_all(
    app: &TestApp,
    requests: Vec<(&'static str, RequestBuilder, u16)>,
) -> Vec<(&'static str, Reply, u16)> {
    join_all(
        requests.into_iter().map(|(what, request, ok)| async move { (what, app.send_unchecked(request).await, ok) }),
    )
    .await
}

/// Whether `reply` is the success `ok`; otherwise it must be the database's 503: for `/readyz`
/// `{"database": "unreachable"}`, else the error `temporarily_unavailable` with no token.
#[track_caller]
fn ok_or_unavailable(what: &str, reply: &Reply, ok: u16) -> bool {
    if reply.status == ok {
        return true;
    }
    assert_eq!(
        reply.status, 503,
        "{what}: {ok} or 503 while the database is away, got {}: {}",
        reply.status, reply.text
    );
    if what == "GET /readyz" {
        let body = reply.json();
        assert_eq!(body["database"], "unreachable", "{what}: {body}");
    } else {
        let body = reply.assert_error(503, "temporarily_unavailable");
        assert!(body.get("access_token").is_none(), "{what}: a 503 carries no token: {body}");
    }
    false
}

/// Retries (real time, bounded) until every kind of request succeeds again; returns how many
/// long-term tokens were answered 201 meanwhile.
async fn wait_for_recovery(app: &TestApp, client: &TestClient, bearer: &Issued) -> usize {
    let start = Instant::now();
    let mut issued_long = 0;
    loop {
        let replies = send_all(app, one_of_each(app, client, bearer)).await;
        let mut all_ok = true;
        for (what, reply, ok) in &replies {
            let this_ok = ok_or_unavailable(what, reply, *ok);
            all_ok &= this_ok;
            if this_ok && *what == "issue a long-term token" {
                issued(reply);
                issued_long += 1;
            }
        }
        if all_ok {
            return issued_long;
        }
        assert!(start.elapsed() < RECOVERY, "the service recovers by itself within {RECOVERY:?}: {replies:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_replaced_by_themselves_and_never_cause_a_500() {
    if !postgres_only("terminated_connections_are_replaced_by_themselves_and_never_cause_a_500") {
        return;
    }
    let app = spawn_app().await;
    let client = app.create_client("ci", "read tokens:introspect").await;
    let bearer = app.issue_long(&client).await;
    let mut expected_tokens = 1;
    let mut terminated = 0;

    for _round in 0..3 {
        // Past the in-memory caches' bound, so that every request below needs the database.
        app.clock.advance_secs(2);
        terminated += terminate_connections(&app.db).await;

        // Right after, one request of each kind at once: each succeeds or gets a clean 503.
        for (what, reply, ok) in send_all(&app, one_of_each(&app, &client, &bearer)).await {
            if ok_or_unavailable(what, &reply, ok) && what == "issue a long-term token" {
                issued(&reply);
                expected_tokens += 1;
            }
        }
        // And soon every kind succeeds again, without a restart.
        expected_tokens += wait_for_recovery(&app, &client, &bearer).await as i64;
    }

    assert!(terminated > 0, "the server held connections that were terminated");
    assert_eq!(stored_long_tokens(&app.db, &client).await, expected_tokens, "exactly the tokens answered 201");
    let ready = app.get("/readyz").await;
    ready.assert_status(200);
    assert_eq!(ready.json()["database"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_while_connections_are_terminated_get_503_at_worst() {
    if !postgres_only("requests_in_flight_while_connections_are_terminated_get_503_at_worst") {
        return;
    }
    let app = spawn_app().await;
    let client = app.create_client("ci", "read tokens:introspect").await;
    let bearer = app.issue_long(&client).await;
    let mut tokens = vec![bearer.clone()];

    // Connections are terminated every few milliseconds while requests keep coming.
    let db = app.db.clone();
    let killer = tokio::spawn(async move {
        let mut terminated = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            terminated += terminate_connections(&db).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        terminated
    });
    while !killer.is_finished() {
        app.clock.advance_secs(2);
        for (what, reply, ok) in send_all(&app, one_of_each(&app, &client, &bearer)).await {
            if ok_or_unavailable(what, &reply, ok) && what == "issue a long-term token" {
                tokens.push(issued(&reply));
            }
        }
    }
    let terminated = killer.await.expect("the killer task ends");
    let issued_after = wait_for_recovery(&app, &client, &bearer).await;

    assert!(terminated > 0, "connections were terminated");
    // A 503 may hide a commit whose acknowledgement was lost (that token reached nobody), so
    // the database may hold more tokens than were answered 201, never fewer; each one answered
    // 201 works.
    let stored = stored_long_tokens(&app.db, &client).await;
    assert!(stored >= (tokens.len() + issued_after) as i64, "{stored} stored, {} issued", tokens.len() + issued_after);
    for token in &tokens {
        app.issue_short(&token.access_token).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_gives_503_and_the_service_recovers_when_it_is_back() {
    if !postgres_only("an_unreachable_database_gives_503_and_the_service_recovers_when_it_is_back") {
        return;
    }
    let app = spawn_app().await;
    let client = app.create_client("ci", "read tokens:introspect").await;
    let bearer = app.issue_long(&client).await;
    let stored_before = stored_long_tokens(&app.db, &client).await;
    let ready = app.get("/readyz").await;
    ready.assert_status(200);
    assert_eq!(ready.json(), json!({"status": "ready", "database": "ok"}));

    take_database_away(&app.db).await;
    // Past the in-memory caches' bound: from now on everything needs the database.
    app.clock.advance_secs(2);

    let ready = app.send_unchecked(app.http.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, 503, "/readyz reports the database: {}", ready.text);
    assert_eq!(ready.json(), json!({"status": "unavailable", "database": "unreachable"}));
    for (what, reply, ok) in send_all(&app, one_of_each(&app, &client, &bearer)).await {
        assert!(!ok_or_unavailable(what, &reply, ok), "{what} cannot succeed without the database: {}", reply.text);
    }
    // A revocation that got 503 did not happen (checked below, once the database is back).
    let revoke = app
        .send_unchecked(
            app.post(&format!("/v1/auth/tokens/{}/revoke", bearer.token_id)).bearer_auth(&bearer.access_token),
        )
        .await;
    assert!(!ok_or_unavailable("revoke", &revoke, 204));
    // The command line fails with a one-line error, not a panic.
    let out = app.cli(&["client", "list", "--json"]).await;
    assert!(!out.status.success(), "client list cannot succeed without the database");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "a one-line error, got:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    bring_database_back(&app.db).await;

    let issued_after = wait_for_recovery(&app, &client, &bearer).await as i64;
    // Nothing half-written: the issuance and the revocation that got 503 left nothing behind.
    assert_eq!(
        stored_long_tokens(&app.db, &client).await,
        stored_before + issued_after,
        "only the tokens issued after"
    );
    app.issue_short(&bearer.access_token).await;
    assert!(app.is_active(&bearer.access_token, &bearer.access_token).await);
}
