//! The admin command line through `--server`: the same commands, run against the database and
//! against the admin API, print the same; changes made through the server take effect; a
//! read-only, wrong or missing admin token is refused with a line that says what to do; the
//! token is never printed and no database is opened.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::admin_api::spawn_admin_app;
use crate::helpers::TestApp;
use crate::keys::{ClientKey, KeyForm};
use crate::webhook_receiver::{Behaviour, Receiver};
use crate::webhooks::eventually;

/// A public key for a trusted issuer's inline JWK Set.
const ED25519: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}"#;

/// Runs `tokensmith ARGS --server <admin URL>` with `token` in `TOKENSMITH_ADMIN_TOKEN` (none:
/// unset), pointed at a database that does not exist, which it must never open or create.
async fn remote_with(app: &TestApp, token: Option<&str>, args: &[&str]) -> Output {
    let absent = app.dir.path().join("absent.db");
    let mut command = app.db.command();
    command.args(args).args(["--server", app.admin.as_deref().expect("an admin listener")]);
    command.args(["--database", &format!("sqlite://{}", absent.display())]);
    command.env_remove("TOKENSMITH_SERVER").env_remove("TOKENSMITH_DATABASE");
    match token {
        Some(t) => command.env("TOKENSMITH_ADMIN_TOKEN", t),
        None => command.env_remove("TOKENSMITH_ADMIN_TOKEN"),
    };
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command line finishes in time")
        .expect("the binary runs");
    assert!(!absent.exists(), "tokensmith {args:?} --server opened a database");
    if let Some(t) = token.filter(|t| t.len() > 8) {
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!stdout.contains(t) && !stderr.contains(t), "tokensmith {args:?} printed the token");
    }
    out
}

#[track_caller]
fn ok(args: &[&str], out: &Output) -> String {
    assert!(out.status.success(), "tokensmith {args:?} fails: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

#[track_caller]
fn failed(args: &[&str], out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "tokensmith {args:?} succeeds");
    assert!(err.contains(says), "tokensmith {args:?}: {says:?} in {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Runs `args` on the database, through the server, and on the database again, and checks
/// that the server's output is the database's (before or after, should something the server
/// records, such as the operator's last use, land in between).
async fn same(app: &TestApp, token: &str, args: &[&str]) -> String {
    let before = ok(args, &app.cli(args).await);
    let through = ok(args, &remote_with(app, Some(token), args).await);
    let after = ok(args, &app.cli(args).await);
    assert!(through == before || through == after, "tokensmith {args:?}:\nlocal:  {before}\nserver: {through}");
    through
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("--json prints JSON ({e}): {text}"))
}

#[tokio::test]
async fn reads_print_the_same_from_the_database_and_through_the_server() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    crate::webhooks::add_webhook(&app.db, &receiver, "client.disabled").await;
    let ci = app.create_otp_client("ci", "deploy tokens:write").await;
    let key = app.write_file("ci.pem", &ClientKey::ed25519().public_file(KeyForm::Pem));
    app.cli_ok(&["client", "add-key", &ci.client_id, "--public-key", &key]).await;
    let gone = app.create_client("gone", "read").await;
    app.issue_long(&ci).await;
    let revoked = app.issue_long(&ci).await;
    app.cli_ok(&["token", "revoke", &revoked.token_id]).await;
    app.cli_ok(&["client", "disable", &gone.client_id]).await;
    let jwks = app.write_file("k8s.jwks", &format!(r#"{{"keys":[{}]}}"#, ED25519));
    app.cli_ok(&["issuer", "add", "--name", "github", "--issuer", "https://gh.example", "--discovery"]).await;
    app.cli_ok(&["issuer", "add", "--name", "k8s", "--issuer", "https://k8s.example", "--jwks-file", &jwks]).await;
    let rule = ["client", "add-federation", &ci.client_id, "--issuer", "github", "--audience", "https://t.example"];
    app.cli_ok(&[&rule[..], &["--match", "sub=repo:acme/*", "--scopes", "deploy"]].concat()).await;
    eventually("the delivery is made", || async {
        app.cli_ok(&["webhook", "deliveries", "--status", "delivered", "--json"]).await.contains("client.disabled")
    })
    .await;

    let id = ci.client_id.as_str();
    let reads: Vec<Vec<&str>> = vec![
        vec!["client", "list"],
        vec!["client", "show", id],
        vec!["client", "show", &gone.client_id],
        vec!["token", "list"],
        vec!["token", "list", "--all"],
        vec!["token", "list", "--client", id, "--all"],
        vec!["token", "list", "--expiring-within", "31d"],
        vec!["token", "list", "--unused-for", "1d"],
        vec!["keys", "list"],
        vec!["issuer", "list"],
        vec!["client", "list-federation"],
        vec!["client", "list-federation", id],
        vec!["webhook", "list"],
        vec!["webhook", "deliveries"],
        vec!["webhook", "deliveries", "--status", "delivered", "--limit", "1"],
        vec!["audit", "--client", id],
        vec!["audit", "--client", id, "--limit", "2"],
        vec!["audit", "--client", id, "--since", "1h"],
    ];
    for args in &reads {
        let table = same(&app, &ops.read, args).await;
        assert!(!table.is_empty(), "{args:?}");
        let with_json = [&args[..], &["--json"]].concat();
        let printed = same(&app, &ops.read, &with_json).await;
        assert!(printed.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{args:?}: {printed}");
    }
    // `client list --json` is the admin API's answer.
    let listed = json(&same(&app, &ops.read, &["client", "list", "--json"]).await);
    let r = app.admin(reqwest::Method::GET, "/admin/v1/clients", Some(&ops.read), None).await;
    assert_eq!(listed.as_array().map(Vec::len), r.json().as_array().map(Vec::len));
    let last = json(&same(&app, &ops.read, &["audit", "--client", id, "--json", "--limit", "1"]).await);
    assert!(last["event"].is_string(), "{last}");
}

/// Runs a change through the server on `a` and on the database on `b`, and checks that both
/// print the same but for the client's id.
async fn twin(app: &TestApp, token: &str, args: &[&str], a: &str, b: &str) -> String {
    let on_a: Vec<&str> = args.iter().map(|x| if *x == "ID" { a } else { x }).collect();
    let on_b: Vec<&str> = args.iter().map(|x| if *x == "ID" { b } else { x }).collect();
    let through = ok(&on_a, &remote_with(app, Some(token), &on_a).await);
    let local = ok(&on_b, &app.cli(&on_b).await);
    assert_eq!(through.replace(a, b), local, "tokensmith {args:?}");
    through
}

#[tokio::test]
async fn changes_through_the_server_take_effect_and_print_as_on_the_database() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let w = ops.write.as_str();
    let a = app.create_otp_client("a", "deploy").await;
    let b = app.create_otp_client("b", "deploy").await;
    let (ia, ib) = (a.client_id.as_str(), b.client_id.as_str());

    for json_flag in [&["--json"][..], &[]] {
        twin(&app, w, &[&["client", "disable", "ID"][..], json_flag].concat(), ia, ib).await;
        assert_eq!(show(&app, ia).await["disabled"], true);
        twin(&app, w, &[&["client", "enable", "ID"][..], json_flag].concat(), ia, ib).await;
        assert_eq!(show(&app, ia).await["disabled"], false);
        twin(&app, w, &[&["client", "unlock", "ID"][..], json_flag].concat(), ia, ib).await;
    }
    twin(&app, w, &["client", "reset-otp", "ID", "--remove", "--json"], ia, ib).await;
    assert_eq!(show(&app, ia).await["otp"], false);
    let key = app.write_file("a.pem", &ClientKey::ed25519().public_file(KeyForm::Pem));
    let added = ok(&[], &remote_with(&app, Some(w), &["client", "add-key", ia, "--public-key", &key, "--json"]).await);
    assert_eq!(json(&added)["replaced"], false);
    assert_eq!(show(&app, ia).await["public_key_alg"], "EdDSA");
    let again = remote_with(&app, Some(w), &["client", "add-key", ia, "--public-key", &key]).await;
    failed(&[], &again, "pass --replace");

    // What holds a secret prints the same fields, and the secret works.
    let rotated = json(&ok(&[], &remote_with(&app, Some(w), &["client", "rotate-secret", ia, "--json"]).await));
    let local = json(&app.cli_ok(&["client", "rotate-secret", ib, "--json"]).await);
    assert_eq!(keys_of(&rotated), keys_of(&local));
    let renewed = crate::helpers::TestClient {
        client_secret: rotated["client_secret"].as_str().unwrap().to_owned(),
        ..a.clone()
    };
    let token = app.issue_long(&renewed).await;
    let created = ["client", "create", "--name", "new", "--scopes", "deploy", "--otp", "--json"];
    let through = json(&ok(&created, &remote_with(&app, Some(w), &created).await));
    assert_eq!(keys_of(&through), keys_of(&json(&app.cli_ok(&created).await)));
    assert!(show(&app, through["client_id"].as_str().unwrap()).await["otp"] == true);
    let reset = json(&ok(&[], &remote_with(&app, Some(w), &["client", "reset-otp", ib, "--json"]).await));
    assert_eq!(keys_of(&reset), keys_of(&json(&app.cli_ok(&["client", "reset-otp", ia, "--json"]).await)));

    // Tokens, keys, federation.
    let revoked = json(&ok(&[], &remote_with(&app, Some(w), &["token", "revoke", &token.token_id, "--json"]).await));
    assert_eq!(revoked["outcome"], "revoked");
    let listed = json(&app.cli_ok(&["token", "list", "--client", ia, "--all", "--json"]).await);
    assert_eq!(listed[0]["status"], "revoked", "{listed}");
    let again = ok(&[], &remote_with(&app, Some(w), &["token", "revoke", &token.token_id, "--json"]).await);
    assert_eq!(json(&again), json(&app.cli_ok(&["token", "revoke", &token.token_id, "--json"]).await));
    let rotated = json(&ok(&[], &remote_with(&app, Some(w), &["keys", "rotate", "--json"]).await));
    assert!(app.cli_ok(&["keys", "list"]).await.contains(rotated["kid"].as_str().unwrap()));
    assert_eq!(keys_of(&rotated), keys_of(&json(&app.cli_ok(&["keys", "rotate", "--json"]).await)));
    for name in ["one", "two"] {
        app.cli_ok(&["issuer", "add", "--name", name, "--issuer", &format!("https://{name}.example"), "--discovery"])
            .await;
        let rule = ["client", "add-federation", ia, "--issuer", name, "--audience", "https://t.example"];
        app.cli_ok(&[&rule[..], &["--match", "sub=x"]].concat()).await;
    }
    let rules = json(&app.cli_ok(&["client", "list-federation", "--json"]).await);
    let (r1, r2) = (rules[0]["rule_id"].as_str().unwrap(), rules[1]["rule_id"].as_str().unwrap());
    twin(&app, w, &["client", "remove-federation", "ID", "--json"], r1, r2).await;
    assert!(app.cli_ok(&["client", "list-federation"]).await.contains("no federation rules"));
    twin(&app, w, &["issuer", "remove", "ID", "--json"], "one", "two").await;
    assert!(app.cli_ok(&["issuer", "list"]).await.contains("no trusted issuers"));
}

async fn show(app: &TestApp, id: &str) -> Value {
    json(&app.cli_ok(&["client", "show", id, "--json"]).await)
}

fn keys_of(v: &Value) -> Vec<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_read_only_token_reads_but_its_changes_are_refused_and_change_nothing() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let target = app.create_client("target", "deploy").await;
    let token = app.issue_long(&target).await;
    let before = app.cli_ok(&["token", "list", "--all", "--json"]).await;
    ok(&[], &remote_with(&app, Some(&ops.read), &["client", "list"]).await);
    for args in [
        vec!["client", "disable", target.client_id.as_str()],
        vec!["client", "rotate-secret", target.client_id.as_str()],
        vec!["token", "revoke", token.token_id.as_str()],
        vec!["keys", "rotate"],
        vec!["client", "create", "--name", "x", "--scopes", "deploy"],
    ] {
        failed(&args, &remote_with(&app, Some(&ops.read), &args).await, "does not hold admin:write");
    }
    assert_eq!(app.cli_ok(&["token", "list", "--all", "--json"]).await, before, "nothing changed");
    assert_eq!(json(&app.cli_ok(&["client", "show", &target.client_id, "--json"]).await)["disabled"], false);
    assert_eq!(app.list_clients().await.len(), 2);
}

#[tokio::test]
async fn a_missing_or_wrong_token_or_server_is_a_clear_error() {
    let app = spawn_admin_app().await;
    let ops = app.operator().await;
    let list = ["client", "list"];
    failed(&list, &remote_with(&app, None, &list).await, "no admin token for --server");
    for wrong in ["garbage-token-garbage", ops.public.as_str()] {
        failed(&list, &remote_with(&app, Some(wrong), &list).await, "missing, expired or not for this server");
    }
    // A token file, trimmed.
    let file = app.write_file("admin.token", &format!("\n  {}\n", ops.read));
    let args = ["client", "list", "--json", "--token-file", &file];
    assert_eq!(
        ok(&args, &remote_with(&app, Some("ignored-when-a-file-is-given"), &args).await),
        app.cli_ok(&["client", "list", "--json"]).await
    );
    // The server named in the error; plain http only to loopback.
    let mut refused = app.db.command();
    refused.args(["client", "list", "--server", "http://127.0.0.1:1"]).env("TOKENSMITH_ADMIN_TOKEN", &ops.read);
    let out = refused.output().await.unwrap();
    failed(&list, &out, "cannot connect to http://127.0.0.1:1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("connection refused"));
    let mut far = app.db.command();
    far.args(["client", "list", "--server", "http://admin.example"]).env("TOKENSMITH_ADMIN_TOKEN", &ops.read);
    failed(&list, &far.output().await.unwrap(), "use https://");
    // Whole days only for the API's filters; unknown ids are named.
    let args = ["token", "list", "--unused-for", "36h"];
    failed(&args, &remote_with(&app, Some(&ops.read), &args).await, "whole days");
    let args = ["client", "show", "cli_nobodynobodynobody1"];
    failed(&args, &remote_with(&app, Some(&ops.read), &args).await, "no client cli_nobodynobodynobody1");
    // Commands that need the database say so.
    let jwks = app.write_file("k.jwks", r#"{"keys":[]}"#);
    for args in [
        vec!["issuer", "add", "--name", "x", "--issuer", "https://x.example", "--jwks-file", jwks.as_str()],
        vec!["client", "add-federation", &ops.client.client_id, "--issuer", "x", "--audience", "a", "--match", "s=x"],
        vec!["webhook", "test", "wh_AAAAAAAAAAAAAAAA"],
        vec!["admin", "bootstrap"],
    ] {
        failed(&args, &remote_with(&app, Some(&ops.write), &args).await, "run it where the database is");
    }
    // Receivers are registered and removed through the server like on the database.
    let args = ["webhook", "add", "--url", "http://127.0.0.1:9/h", "--events", "token.revoked,key.rotated", "--json"];
    let out = remote_with(&app, Some(&ops.write), &args).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(added["secret"].as_str().unwrap().starts_with("whsec_"), "{added}");
    assert_eq!(added["events"], serde_json::json!(["token.revoked", "key.rotated"]));
    let id = added["webhook_id"].as_str().unwrap();
    let listed = app.cli_ok(&["webhook", "list", "--json"]).await;
    assert!(listed.contains(id) && !listed.contains("whsec_"), "{listed}");
    let args = ["webhook", "remove", id, "--json"];
    let out = remote_with(&app, Some(&ops.write), &args).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!app.cli_ok(&["webhook", "list", "--json"]).await.contains(id));
    let args = ["webhook", "redeliver", "msg_x"];
    failed(&args, &remote_with(&app, Some(&ops.write), &args).await, "no failed delivery");
}
