//! Signed webhooks with a durable outbox, black-box: receivers registered with `tokensmith
//! webhook add` get every subscribed event once it is committed, signed per Standard Webhooks
//! (verified here by the loopback receiver of `webhook_receiver`), with the same `webhook-id`
//! on every retry; failures are retried on the schedule and then marked failed; a crash or a
//! second instance never loses nor doubles a delivery; a hanging receiver never slows the
//! request path. On both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use tokensmith::domain::webhook::RetrySchedule;

use crate::federation_grant::{AUD, MAIN, federated_with};
use crate::helpers::{
    TestApp, TestClient, TestDatabase, http_client, issued, join_all, merge, rfc3339, secret_grant, spawn_app,
    spawn_app_with,
};
use crate::process::ServerProcess;
use crate::token_exchange::{exchange_of, exchanged, post_exchange};
use crate::webhook_receiver::{Behaviour, EndlessReceiver, Received, Receiver};

/// How long a test waits for a condition before it fails (polling, never a sleep).
const PATIENCE: Duration = Duration::from_secs(30);
/// A few of the server's 1 s polls: how long to keep watching for a duplicate.
const A_FEW_POLLS: Duration = Duration::from_secs(3);
const DAY: i64 = 86_400;

/// Polls `check` every 100 ms until it holds; fails after `patience`.
pub(crate) async fn eventually_within<F, Fut>(what: &str, patience: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, PATIENCE, check).await;
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("--json prints JSON ({e}): {text}"))
}

/// `webhook add --url <receiver> --events EVENTS --json`: checks what it prints, gives the
/// receiver its secret, and answers the receiver's id.
pub(crate) async fn add_webhook(db: &TestDatabase, receiver: &Receiver, events: &str) -> String {
    let out = db.cli(&["webhook", "add", "--url", &receiver.url, "--events", events, "--json"]).await;
    assert!(out.status.success(), "webhook add fails: {}", String::from_utf8_lossy(&out.stderr));
    let added = parse_json(&String::from_utf8_lossy(&out.stdout));
    let id = added["webhook_id"].as_str().unwrap_or_else(|| panic!("an id: {added}")).to_owned();
    assert!(id.starts_with("wh_"), "{added}");
    assert_eq!(added["url"], receiver.url.as_str());
    assert!(added["events"].is_array(), "{added}");
    rfc3339(&added["created_at"]);
    let secret = added["secret"].as_str().unwrap_or_else(|| panic!("a secret: {added}"));
    receiver.set_secret(secret);
    id
}

/// Runs `tokensmith ARGS --database <db>`, which must succeed, and returns its stdout.
async fn cli_ok(db: &TestDatabase, args: &[&str]) -> String {
    let out = db.cli(args).await;
    assert!(out.status.success(), "tokensmith {args:?} fails: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `webhook deliveries --json --limit 1000 EXTRA`.
pub(crate) async fn deliveries(db: &TestDatabase, extra: &[&str]) -> Vec<Value> {
    let args = [&["webhook", "deliveries", "--json", "--limit", "1000"][..], extra].concat();
    let out = db.cli(&args).await;
    assert!(out.status.success(), "webhook deliveries fails: {}", String::from_utf8_lossy(&out.stderr));
    parse_json(&String::from_utf8_lossy(&out.stdout)).as_array().expect("a JSON array").clone()
}

fn wrong_secret(client: &TestClient) -> Value {
    merge(secret_grant(client), json!({"client_secret": "tsc_not-the-secret"}))
}

/// The requests of `receiver` of type `kind`.
fn of_kind(receiver: &Receiver, kind: &str) -> Vec<Received> {
    receiver.received().into_iter().filter(|r| r.kind() == kind).collect()
}

/// The one request of type `kind` about `token_id` (`data.token_id`).
#[track_caller]
fn about_token(receiver: &Receiver, kind: &str, token_id: &str) -> Received {
    let found: Vec<Received> =
        of_kind(receiver, kind).into_iter().filter(|r| r.data()["token_id"] == token_id).collect();
    assert_eq!(found.len(), 1, "one {kind} about {token_id}: {found:?}");
    found.into_iter().next().unwrap()
}

#[track_caller]
fn assert_each_id_once(receiver: &Receiver) {
    let counts = receiver.count_by_id();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "each webhook-id arrives exactly once; more than once: {twice:?}");
}

// ---- 1. every event kind ------------------------------------------------------------------

#[tokio::test]
async fn every_event_kind_arrives_exactly_once_signed_with_its_documented_data() {
    let app = spawn_app_with(|s| s.failures_per_client = 3).await;
    let all = Receiver::start(Behaviour::Accept).await;
    let some = Receiver::start(Behaviour::Accept).await;
    add_webhook(&app.db, &all, "all").await;
    add_webhook(&app.db, &some, "token.revoked, key.rotated").await;
    let started = app.now();

    // issuer.added and client.federation_added; token.exchanged; then both removed.
    let (app, issuer, deployer) = federated_with(app).await;
    let subject = issuer.mint("k1", &issuer.github(AUD, "acme/deploy", MAIN));
    let exchange = exchanged(&post_exchange(&app, &exchange_of(&subject)).await);
    let rules = parse_json(&app.cli_ok(&["client", "list-federation", &deployer.client_id, "--json"]).await);
    let rule_id = rules[0]["rule_id"].as_str().expect("a rule id").to_owned();
    app.cli_ok(&["client", "remove-federation", &rule_id]).await;
    app.cli_ok(&["issuer", "remove", "github"]).await;

    // token.issued; token.revoked with the cascade to a descendant minted with a short-term
    // token holding tokens:write; an operator's revocation; a rotation's new token.
    let client = app.create_client("ci", "read tokens:write").await;
    let parent = app.issue_long(&client).await;
    let short = app.issue_short(&parent.access_token).await;
    let child = issued(&app.post_long_with_short(&short.access_token, &json!({"grant_type": "short_token"})).await);
    app.revoke(Some(&parent.access_token), &parent.token_id).await.assert_status(204);
    app.post_short(Some(&child.access_token), None).await.assert_invalid_token();
    let spare = app.issue_long(&client).await;
    app.cli_ok(&["token", "revoke", &spare.token_id]).await;
    let old = app.issue_long(&client).await;
    let new = app.issue_long_with(&client, json!({"rotate_token_id": old.token_id})).await;

    // client.locked, client.disabled, key.rotated.
    let victim = app.create_client("victim", "read").await;
    for _ in 0..3 {
        app.post_long(&wrong_secret(&victim)).await.assert_status(401);
    }
    app.post_long(&secret_grant(&victim)).await.assert_rate_limited();
    // More failures while it is locked lock nothing new.
    for _ in 0..2 {
        app.post_long(&wrong_secret(&victim)).await.assert_rate_limited();
    }
    let retired = app.create_client("retired", "read").await;
    app.cli_ok(&["client", "disable", &retired.client_id]).await;
    let rotated = parse_json(&app.cli_ok(&["keys", "rotate", "--json"]).await);
    let kid = rotated["kid"].as_str().expect("the new kid").to_owned();

    // token.expiring: a 10-day token, 3.5 days later, at the 7-day lead time.
    // Announced once, whichever of two instances runs its cleanup first.
    let ending = app.issue_long_with(&client, json!({"ttl_days": 10})).await;
    let sibling = app.spawn_sibling().await;
    // Nothing in flight when the clock jumps (a jump past a claim's lease makes it due again).
    eventually("everything so far is delivered", || async {
        deliveries(&app.db, &["--status", "pending"]).await.is_empty()
    })
    .await;
    app.clock.advance_secs(3 * DAY + DAY / 2);
    sibling.purge().await;
    app.purge().await;
    sibling.purge().await;

    let expected: BTreeMap<&str, usize> = [
        ("token.issued", 6),
        ("token.revoked", 2),
        ("token.expiring", 1),
        ("token.exchanged", 1),
        ("client.locked", 1),
        ("client.disabled", 1),
        ("key.rotated", 1),
        ("issuer.added", 1),
        ("issuer.removed", 1),
        ("client.federation_added", 1),
        ("client.federation_removed", 1),
    ]
    .into();
    eventually("every event reaches the receiver of all events", || async {
        expected.iter().all(|(kind, n)| of_kind(&all, kind).len() >= *n)
    })
    .await;
    let subscribed = |r: &Received| r.kind() == "token.revoked" || r.kind() == "key.rotated";
    eventually("the revocations and the key rotation reach the other receiver", || async {
        let wanted: BTreeSet<String> = all.received().into_iter().filter(subscribed).map(|r| r.id).collect();
        let got: BTreeSet<String> = some.received().into_iter().map(|r| r.id).collect();
        wanted == got
    })
    .await;
    tokio::time::sleep(A_FEW_POLLS).await;

    // Exactly once, signed, well-formed, and nothing else.
    for receiver in [&all, &some] {
        receiver.assert_all_well_formed();
        assert_each_id_once(receiver);
        for r in receiver.received() {
            assert_eq!(r.path, "/hook", "posted to the registered URL: {r:?}");
            let at: i64 = r.timestamp.parse().unwrap();
            assert!(at >= started && at <= app.now() + 1, "webhook-timestamp {at} is the attempt's time: {r:?}");
            let when = rfc3339(&r.body["timestamp"]);
            assert!(when >= started - 1 && when <= app.now() + 1, "the event's time: {r:?}");
            assert!(r.accepted(), "{r:?}");
        }
    }
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for r in all.received() {
        *counted.entry(r.kind().to_owned()).or_insert(0) += 1;
    }
    // A rotation may or may not announce the replaced token's revocation: nothing else varies.
    let revoked_extra = of_kind(&all, "token.revoked").iter().filter(|r| r.data()["token_id"] == old.token_id).count();
    let mut expected: BTreeMap<String, usize> = expected.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
    *expected.get_mut("token.revoked").unwrap() += revoked_extra;
    assert_eq!(counted, expected, "each event once, of the documented types");
    let some_kinds: BTreeSet<String> = some.received().iter().map(|r| r.kind().to_owned()).collect();
    assert_eq!(some_kinds, ["key.rotated".to_owned(), "token.revoked".to_owned()].into());

    // The data of each.
    let mut issued_ids: Vec<String> =
        of_kind(&all, "token.issued").iter().map(|r| r.data()["token_id"].as_str().unwrap().to_owned()).collect();
    issued_ids.sort();
    let mut want: Vec<String> =
        [&parent, &child, &spare, &old, &new, &ending].iter().map(|t| t.token_id.clone()).collect();
    want.sort();
    assert_eq!(issued_ids, want, "one token.issued per long-term token, the rotation's new one included");
    let first = about_token(&all, "token.issued", &parent.token_id);
    assert_eq!(first.data()["client_id"], client.client_id.as_str());
    assert_eq!(first.data()["mechanism"], "client_secret");
    assert_eq!(about_token(&all, "token.issued", &child.token_id).data()["client_id"], client.client_id.as_str());
    let rotation = about_token(&all, "token.issued", &new.token_id);
    assert_eq!(rotation.data()["rotated_token_id"], old.token_id.as_str(), "{rotation:?}");
    assert_eq!(rotation.data()["cascade"], 0, "no descendant of the rotated token: {rotation:?}");
    assert!(rotation.data()["old_valid_until"].is_i64(), "{rotation:?}");

    let revoked = about_token(&all, "token.revoked", &parent.token_id);
    assert_eq!(revoked.data()["cascade"], 1, "the descendant long-term token went with it: {revoked:?}");
    assert_eq!(revoked.data()["client_id"], client.client_id.as_str());
    assert_eq!(about_token(&all, "token.revoked", &spare.token_id).data()["cascade"], 0);
    assert_eq!(about_token(&some, "token.revoked", &parent.token_id).raw, revoked.raw, "the same message");

    let exchanged_msg = about_token(&all, "token.exchanged", exchange["token_id"].as_str().unwrap());
    assert_eq!(exchanged_msg.data()["client_id"], deployer.client_id.as_str());
    assert_eq!(exchanged_msg.data()["mechanism"], "token_exchange");

    let locked = &of_kind(&all, "client.locked")[0];
    assert_eq!(locked.data()["client_id"], victim.client_id.as_str());
    assert!(!locked.data()["locked"].is_null(), "what is locked: {locked:?}");
    let until = locked.data()["locked_until"].as_i64().unwrap_or_else(|| panic!("locked_until: {locked:?}"));
    assert!(until > started, "{locked:?}");

    assert_eq!(of_kind(&all, "client.disabled")[0].data()["client_id"], retired.client_id.as_str());
    assert_eq!(of_kind(&all, "key.rotated")[0].data()["kid"], kid.as_str());
    assert_eq!(of_kind(&some, "key.rotated")[0].data()["kid"], kid.as_str());

    assert_eq!(of_kind(&all, "issuer.added")[0].data()["issuer"], "github");
    assert_eq!(of_kind(&all, "issuer.removed")[0].data()["issuer"], "github");
    for kind in ["client.federation_added", "client.federation_removed"] {
        let rule = &of_kind(&all, kind)[0];
        assert_eq!(rule.data()["client_id"], deployer.client_id.as_str(), "{rule:?}");
        assert_eq!(rule.data()["rule"], rule_id.as_str(), "{rule:?}");
    }

    let expiring = about_token(&all, "token.expiring", &ending.token_id);
    assert_eq!(expiring.data()["within_days"], 7);
    assert_eq!(expiring.data()["client_id"], client.client_id.as_str());
    assert_eq!(expiring.data()["expires_at"].as_i64(), Some(rfc3339(&ending.body["expires_at"])), "{expiring:?}");

    // Nothing is left to deliver, and the outbox agrees with the receivers.
    let outbox = deliveries(&app.db, &[]).await;
    assert_eq!(outbox.len(), all.received().len() + some.received().len());
    assert!(outbox.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{outbox:?}");
}

// ---- 2. a receiver down for a while ---------------------------------------------------------

/// Whether the six deliveries to `webhook` are pending after `at_least` refused attempts.
async fn all_attempted(db: &TestDatabase, webhook: &str, at_least: u64) -> bool {
    let pending = deliveries(db, &["--status", "pending"]).await;
    pending.len() == 6
        && pending.iter().all(|d| {
            d["attempts"].as_u64() >= Some(at_least)
                && d["last_error"] == "cannot connect"
                && d["webhook_id"] == webhook
        })
}

#[tokio::test]
async fn deliveries_to_a_receiver_that_was_down_arrive_once_it_is_back() {
    let app = spawn_app().await;
    // Nothing listens on its port yet (connections are refused); once up, it answers 503 to
    // each message's first attempt, then 200.
    let receiver = Receiver::reserve(Behaviour::FailFirst(1, 503));
    let webhook = add_webhook(&app.db, &receiver, "token.issued,token.revoked").await;
    let client = app.create_client("ci", "read").await;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(app.issue_long(&client).await);
    }
    app.revoke(Some(&tokens[0].access_token), &tokens[0].token_id).await.assert_status(204);

    eventually("the first attempts fail: the receiver is down", || all_attempted(&app.db, &webhook, 1)).await;
    app.clock.advance_secs(10);
    eventually("the first retries fail too", || all_attempted(&app.db, &webhook, 2)).await;
    assert!(receiver.received().is_empty());

    receiver.listen().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let delivered = deliveries(&app.db, &["--status", "delivered"]).await;
        if delivered.len() == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "every delivery is delivered once the receiver is back: {delivered:?}");
        // Make the next retries due instead of waiting for them (5 min, then 30 min).
        app.clock.advance_secs(600);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    receiver.assert_all_well_formed();
    let outbox = deliveries(&app.db, &[]).await;
    let message_ids: BTreeSet<String> = outbox.iter().map(|d| d["message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(message_ids.len(), 6);
    for d in &outbox {
        assert_eq!(d["status"], "delivered", "{d}");
        assert!(d["attempts"].as_u64().unwrap() > 1, "delivered after failed attempts: {d}");
        assert!(!d["finished_at"].is_null(), "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
    }
    // Each message arrived under one id, the same on every attempt, with the same body.
    assert_eq!(receiver.accepted_ids(), message_ids, "each message accepted, under its outbox id");
    let received = receiver.received();
    for id in &message_ids {
        let attempts: Vec<&Received> = received.iter().filter(|r| &r.id == id).collect();
        assert!(attempts.len() >= 2, "the 503 attempt and the accepted one share the id {id}: {attempts:?}");
        assert!(attempts.iter().all(|r| r.raw == attempts[0].raw), "the same body on every attempt: {attempts:?}");
        assert!(attempts.iter().any(|r| r.accepted()), "accepted at last: {attempts:?}");
        // webhook-timestamp is each attempt's own time (the retry came at least 5 minutes later).
        let times: Vec<i64> = attempts.iter().map(|r| r.timestamp.parse().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "each attempt signed at its own time: {times:?}");
    }
    let issued_ids: BTreeSet<String> = received
        .iter()
        .filter(|r| r.kind() == "token.issued")
        .map(|r| r.data()["token_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(issued_ids, tokens.iter().map(|t| t.token_id.clone()).collect());
    assert!(received.iter().any(|r| r.kind() == "token.revoked" && r.data()["token_id"] == tokens[0].token_id));
}

// ---- 3. a receiver that keeps failing ---------------------------------------------------------

#[tokio::test]
async fn a_delivery_that_keeps_failing_ends_failed_and_redirects_are_never_followed() {
    let app = spawn_app_with(|s| s.webhook_retry_schedule = RetrySchedule::new(vec![1, 1]).unwrap()).await;
    let failing = Receiver::start(Behaviour::Status(500)).await;
    let target = Receiver::start(Behaviour::Accept).await;
    let redirecting = Receiver::start(Behaviour::Redirect(target.url.clone())).await;
    let failing_id = add_webhook(&app.db, &failing, "token.issued").await;
    let redirecting_id = add_webhook(&app.db, &redirecting, "token.issued").await;
    let client = app.create_client("ci", "read").await;
    let token = app.issue_long(&client).await;

    eventually("both deliveries end failed", || async {
        deliveries(&app.db, &["--status", "failed"]).await.len() == 2
    })
    .await;
    tokio::time::sleep(A_FEW_POLLS).await;

    let failed = deliveries(&app.db, &["--status", "failed"]).await;
    for (webhook, error) in [(&failing_id, "status 500"), (&redirecting_id, "status 302")] {
        let d = failed.iter().find(|d| d["webhook_id"] == webhook.as_str()).unwrap_or_else(|| panic!("{failed:?}"));
        assert_eq!(d["last_error"], error, "{d}");
        assert_eq!(d["attempts"], 3, "the first attempt and the two retries of the schedule: {d}");
        assert_eq!(d["event_type"], "token.issued");
        assert_eq!(d["payload"]["data"]["token_id"], token.token_id.as_str());
        assert!(!d["finished_at"].is_null() && d["next_attempt_at"].is_null(), "{d}");
        let only = deliveries(&app.db, &["--webhook", webhook, "--status", "failed"]).await;
        assert_eq!(only.len(), 1, "{only:?}");
    }
    assert!(deliveries(&app.db, &["--status", "pending"]).await.is_empty());
    assert!(deliveries(&app.db, &["--status", "delivered"]).await.is_empty());

    for receiver in [&failing, &redirecting] {
        receiver.assert_all_well_formed();
        let counts = receiver.count_by_id();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(counts.values().next(), Some(&3), "three attempts under one id, none after the last: {counts:?}");
    }
    assert_eq!(failing.count_by_id().keys().next(), redirecting.count_by_id().keys().next(), "one message id");
    assert!(target.received().is_empty(), "the redirect is not followed: {:?}", target.received());
}

// ---- 4. kill -9 mid-delivery ---------------------------------------------------------------

async fn issue_long_at(http: &reqwest::Client, address: &str, client: &TestClient) -> String {
    let response =
        http.post(format!("{address}/v1/auth/tokens/long")).json(&secret_grant(client)).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{body}");
    body["token_id"].as_str().expect("token_id").to_owned()
}

#[tokio::test]
async fn a_delivery_in_flight_when_the_server_is_killed_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    // A short attempt timeout: a claim's lease is the timeout and ten seconds.
    let flags = ["--webhook-timeout-secs", "3"];
    let mut server = ServerProcess::start(&db, &flags).await;
    let receiver = Receiver::start(Behaviour::Hang).await;
    add_webhook(&db, &receiver, "token.issued").await;
    let client = db.create_client("ci", "read", &[]).await;
    let http = http_client();
    let mut tokens = BTreeSet::new();
    for _ in 0..3 {
        tokens.insert(issue_long_at(&http, &server.address, &client).await);
    }
    let in_flight = |r: &Received| r.data()["token_id"].as_str().map(str::to_owned);
    eventually_within("every delivery is in flight to the hanging receiver", Duration::from_secs(10), || async {
        receiver.received().iter().filter_map(in_flight).collect::<BTreeSet<_>>() == tokens
    })
    .await;

    server.signal(libc::SIGKILL);
    server.wait_exit(PATIENCE).await;
    let interrupted: BTreeSet<String> = receiver.received().into_iter().map(|r| r.id).collect();
    assert_eq!(interrupted.len(), 3, "one message per token: {:?}", receiver.received());
    receiver.set_behaviour(Behaviour::Accept);
    let mut restarted = ServerProcess::start(&db, &flags).await;

    eventually_within("each interrupted delivery is delivered by the new server", Duration::from_secs(60), || async {
        receiver.accepted_ids() == interrupted
    })
    .await;
    receiver.assert_all_well_formed();
    let delivered = deliveries(&db, &["--status", "delivered"]).await;
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(delivered.iter().all(|d| d["attempts"].as_u64() >= Some(2)), "{delivered:?}");
    let outbox_ids: BTreeSet<String> = delivered.iter().map(|d| d["message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(outbox_ids, interrupted, "delivered under the ids of the interrupted attempts");
    let accepted_tokens: BTreeSet<String> =
        receiver.received().iter().filter(|r| r.accepted()).filter_map(in_flight).collect();
    assert_eq!(accepted_tokens, tokens);
    restarted.stop().await;
}

// ---- 5. two instances -----------------------------------------------------------------------

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_message_exactly_once() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    add_webhook(&app.db, &receiver, "token.issued").await;
    let client = app.create_client("ci", "read").await;
    let mut tokens = BTreeSet::new();
    for i in 0..30 {
        let instance: &TestApp = if i % 2 == 0 { &app } else { &sibling };
        tokens.insert(instance.issue_long(&client).await.token_id);
    }
    let delivered_tokens = || -> BTreeSet<String> {
        receiver.received().iter().map(|r| r.data()["token_id"].as_str().unwrap_or_default().to_owned()).collect()
    };
    eventually("every issuance is delivered", || async { delivered_tokens() == tokens }).await;
    tokio::time::sleep(A_FEW_POLLS).await;

    receiver.assert_all_well_formed();
    assert_each_id_once(&receiver);
    assert_eq!(receiver.received().len(), 30);
    let outbox = deliveries(&app.db, &[]).await;
    assert_eq!(outbox.len(), 30);
    assert!(outbox.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{outbox:?}");
}

// ---- 6. a hanging receiver does not slow issuance ------------------------------------------------

#[tokio::test]
async fn a_hanging_receiver_does_not_slow_issuance() {
    let app = spawn_app_with(|s| s.webhook_timeout_secs = 30).await;
    let receiver = Receiver::start(Behaviour::Hang).await;
    add_webhook(&app.db, &receiver, "token.issued").await;
    let client = app.create_client("ci", "read").await;
    for _ in 0..40 {
        app.issue_long(&client).await;
    }
    eventually("deliveries hang at the receiver", || async { !receiver.received().is_empty() }).await;
    // Two more polls: every delivery slot the server has is now taken by the hanging receiver.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hanging = receiver.received().len();

    let start = Instant::now();
    let longs = join_all((0..50).map(|_| app.issue_long(&client))).await;
    let shorts = join_all(longs.iter().map(|l| app.issue_short(&l.access_token))).await;
    let elapsed = start.elapsed();

    assert_eq!((longs.len(), shorts.len()), (50, 50));
    assert!(
        elapsed < Duration::from_secs(10),
        "100 issuances while {hanging} deliveries hang took {elapsed:?}, not bounded by the 30 s webhook timeout"
    );
    assert!(receiver.received().iter().all(|r| r.answered.is_none()));
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_another_receivers_deliveries() {
    let app = spawn_app_with(|s| s.webhook_timeout_secs = 30).await;
    let hanging = Receiver::start(Behaviour::Hang).await;
    let healthy = Receiver::start(Behaviour::Accept).await;
    add_webhook(&app.db, &hanging, "token.issued").await;
    add_webhook(&app.db, &healthy, "token.issued").await;
    let client = app.create_client("ci", "read").await;
    let start = Instant::now();
    join_all((0..40).map(|_| app.issue_long(&client))).await;
    // The healthy receiver gets all 40 while the hanging one holds its own slots (30 s each).
    eventually_within("every message reaches the healthy receiver", Duration::from_secs(15), || async {
        healthy.accepted_ids().len() == 40
    })
    .await;
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_each_id_once(&healthy);
    assert!(!hanging.received().is_empty(), "the hanging receiver was attempted too");
}

// ---- 7. hostile admin input, and secrets kept out of listings and logs ----------------------------

#[tokio::test]
async fn invalid_receivers_are_refused_and_secrets_never_leak() {
    // No server in this process: the only one to deliver is the real process started below.
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &["--webhook-retry-schedule", "1s,1s"]).await;
    let refused_add = [
        ("http://example.com/hook", "all", "https://"),
        ("http://127.0.0.1.example.com/hook", "all", "https://"),
        ("ftp://127.0.0.1/hook", "all", "https://"),
        ("https://user:password@example.com/hook", "all", "credentials"),
        ("not a url", "all", "not a URL"),
        ("https://example.com/hook", "token.issued,token.stolen", "unknown event"),
        ("https://example.com/hook", "", "unknown event"),
        ("https://example.com/hook", "all,token.issued", "unknown event"),
    ];
    for (url, events, reason) in refused_add {
        let out = db.cli(&["webhook", "add", "--url", url, "--events", events]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url} {events:?} is refused");
        assert!(err.contains(reason), "{url} {events:?}: {reason:?} in {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("whsec_"), "no secret printed for {url}");
    }
    assert_eq!(parse_json(&cli_ok(&db, &["webhook", "list", "--json"]).await), json!([]), "nothing registered");
    // http:// is fine on loopback.
    for url in ["http://localhost:9/hook", "http://[::1]:9/hook", "http://127.0.0.1:9/hook"] {
        let added =
            parse_json(&cli_ok(&db, &["webhook", "add", "--url", url, "--events", "key.rotated", "--json"]).await);
        cli_ok(&db, &["webhook", "remove", added["webhook_id"].as_str().unwrap()]).await;
    }
    assert_eq!(parse_json(&cli_ok(&db, &["webhook", "list", "--json"]).await), json!([]), "all removed");

    for id in ["wh_AAAAAAAAAAAAAAAA", "wh_", "nope", "'; DROP TABLE webhooks; --", ""] {
        let out = db.cli(&["webhook", "remove", id]).await;
        assert!(!out.status.success(), "removing {id:?} fails");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no webhook receiver"), "{id:?}: {out:?}");
    }
    for id in ["wh_AAAAAAAAAAAAAAAA", "nope"] {
        let out = db.cli(&["webhook", "test", id]).await;
        assert!(!out.status.success(), "testing {id:?} fails");
    }
    let out = db.cli(&["webhook", "deliveries", "--status", "lost"]).await;
    assert!(!out.status.success());

    // The real server delivers to a receiver that fails: neither the secret nor what the
    // receiver answered reaches its log.
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let out = db.cli(&["webhook", "add", "--url", &receiver.url, "--events", "all"]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let secret =
        text.split_whitespace().find(|w| w.starts_with("whsec_")).expect("the secret is shown once").to_owned();
    receiver.set_secret(&secret);
    let key = secret.trim_start_matches("whsec_").to_owned();
    let client = db.create_client("ci", "read", &[]).await;
    issue_long_at(&http_client(), &server.address, &client).await;
    eventually("the delivery ends failed", || async { deliveries(&db, &["--status", "failed"]).await.len() == 1 })
        .await;
    receiver.assert_all_well_formed();
    assert_eq!(receiver.received().len(), 3);
    server.stop().await;

    let stderr = server.stderr();
    assert!(stderr.contains("webhook"), "the server logs its webhook attempts: {stderr}");
    for shown in [
        cli_ok(&db, &["webhook", "list", "--json"]).await,
        cli_ok(&db, &["webhook", "list"]).await,
        cli_ok(&db, &["webhook", "deliveries", "--json"]).await,
        cli_ok(&db, &["webhook", "deliveries"]).await,
        cli_ok(&db, &["audit", "--json", "--limit", "1000"]).await,
        stderr,
        server.stdout(),
    ] {
        assert!(!shown.contains(&key), "the secret is never shown again: {shown}");
        assert!(!shown.contains(receiver.marker()), "the receiver's answer is never read: {shown}");
    }
    let listed = parse_json(&cli_ok(&db, &["webhook", "list", "--json"]).await);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(listed[0].get("secret").is_none(), "{listed}");
}

#[tokio::test]
async fn an_answer_whose_body_never_ends_is_never_read() {
    let app = spawn_app_with(|s| s.webhook_timeout_secs = 3).await;
    let marker = format!("ENDLESS-BODY-MARKER-{}", uuid::Uuid::now_v7().simple());
    let endless = EndlessReceiver::start(&marker).await;
    app.cli_ok(&["webhook", "add", "--url", &endless.url, "--events", "token.issued"]).await;
    let client = app.create_client("ci", "read").await;
    app.issue_long(&client).await;

    eventually("the delivery is delivered on the answer's status alone", || async {
        !deliveries(&app.db, &["--status", "delivered"]).await.is_empty()
    })
    .await;
    let outbox = deliveries(&app.db, &[]).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0]["attempts"], 1, "not timed out reading the body: {outbox:?}");
    assert!(outbox[0]["last_error"].is_null(), "{outbox:?}");
    assert_eq!(endless.requests().len(), 1);
    assert!(!outbox[0].to_string().contains(&marker));
}

// ---- 8. webhook test -----------------------------------------------------------------------

#[tokio::test]
async fn webhook_test_sends_a_signed_message_and_fails_unless_it_is_accepted() {
    let app = spawn_app().await;
    let accepting = Receiver::start(Behaviour::Accept).await;
    let failing = Receiver::start(Behaviour::Status(500)).await;
    let accepting_id = add_webhook(&app.db, &accepting, "token.revoked").await;
    let failing_id = add_webhook(&app.db, &failing, "token.revoked").await;

    let out = app.cli(&["webhook", "test", &accepting_id, "--json"]).await;
    assert!(out.status.success(), "an accepted test exits 0: {out:?}");
    let answer = parse_json(&String::from_utf8_lossy(&out.stdout));
    let received = accepting.received();
    assert_eq!(received.len(), 1, "{received:?}");
    accepting.assert_all_well_formed();
    let test = &received[0];
    assert_eq!(test.kind(), "webhook.test");
    assert_eq!(test.data()["webhook_id"], accepting_id.as_str());
    assert_eq!(answer["message_id"], test.id.as_str(), "{answer}");
    assert_eq!(answer["accepted"], true, "{answer}");

    let out = app.cli(&["webhook", "test", &failing_id, "--timeout-secs", "5"]).await;
    assert!(!out.status.success(), "a test answered 500 exits non-zero: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("500"), "the status is shown: {out:?}");
    assert_eq!(failing.received().len(), 1);
    failing.assert_all_well_formed();

    // A receiver that is down fails the test too.
    let down = Receiver::reserve(Behaviour::Accept);
    let down_id = add_webhook(&app.db, &down, "token.revoked").await;
    let out = app.cli(&["webhook", "test", &down_id, "--timeout-secs", "2"]).await;
    assert!(!out.status.success(), "{out:?}");
    // The test messages are sent outside the outbox: no event, nothing to retry.
    assert!(deliveries(&app.db, &[]).await.is_empty());
}
