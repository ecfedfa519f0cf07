//! The operator's input as an attacker (or a slip) would shape it: a path naming a device, a
//! pipe or a huge file; a key file `serve` would refuse; a database URL with a secret in a
//! parameter the driver does not know. Each is a one-line error naming what is wrong, at once,
//! with no secret in it.

use std::os::unix::fs::PermissionsExt;

use crate::config_check::{config_check, stderr};

const MASTER_KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

async fn tokensmith(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"));
    command.args(args).env_remove("TOKENSMITH_MASTER_KEY").envs(env.iter().copied()).kill_on_drop(true);
    tokio::time::timeout(crate::process::PATIENCE, command.output())
        .await
        .expect("the command answers at once, whatever the file")
        .expect("the binary runs")
}

fn refused_because(out: &std::process::Output, reason: &str) {
    assert!(!out.status.success(), "refused");
    assert!(stderr(out).contains(reason), "{reason:?} in {}", stderr(out));
}

#[tokio::test]
async fn a_device_or_a_pipe_or_a_huge_file_is_refused_instead_of_read_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    let env = [("TOKENSMITH_MASTER_KEY", MASTER_KEY)];

    for config in ["/dev/zero", fifo.to_str().unwrap()] {
        refused_because(&config_check(&["--config", config], &env).await, "not a regular file");
    }
    refused_because(&config_check(&["--config", huge.to_str().unwrap()], &env).await, "larger than");
    let tls = ["--tls-cert", "/dev/zero", "--tls-key", "/dev/zero"];
    refused_because(&config_check(&tls, &env).await, "not a regular file");
    refused_because(&config_check(&["--key-file", "/dev/zero"], &[]).await, "not a regular file");

    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let create = ["client", "create", "--database", &db, "--name", "ci", "--scopes", "a", "--public-key", "/dev/zero"];
    refused_because(&tokensmith(&create, &[]).await, "not a regular file");
    assert!(!dir.path().join("t.db").exists(), "nothing is written before the key is read");
}

#[tokio::test]
async fn config_check_refuses_the_key_file_that_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("g.key");
    std::fs::write(&key, "garbage\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = key.to_str().unwrap();

    refused_because(&config_check(&["--key-file", key], &[]).await, "readable by other users");
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    refused_because(&config_check(&["--key-file", key], &[]).await, "not 32 bytes of base64");
    std::fs::write(key, format!("{MASTER_KEY}\n")).unwrap();
    let out = config_check(&["--key-file", key], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_secret_in_an_unknown_database_parameter_is_refused_and_never_printed() {
    let url = "postgres://postgres@127.0.0.1:9/db?sslmode=disable&sslpassword=pw11SECRET&PASSWORD=pw5SECRET";
    let env = [("TOKENSMITH_MASTER_KEY", MASTER_KEY)];
    let checked = config_check(&["--database", url], &env).await;
    let served = tokensmith(&["serve", "--listen", "127.0.0.1:0", "--database", url], &env).await;

    for out in [checked, served] {
        refused_because(&out, "unknown parameter \"sslpassword\"");
        let printed = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(!printed.contains("SECRET"), "{printed}");
    }
}

/// Numbers without a unit, empty list items and paths another spelling also names are slips
/// that would be read as something else (seconds, nothing, another issuer): refused, each
/// with what to write instead.
#[tokio::test]
async fn inputs_that_would_be_misread_are_refused() {
    let app = crate::helpers::spawn_app().await;
    let client = app.create_client("ci", "read").await;
    for (args, reason) in [
        (vec!["audit", "--since", "1"], "duration"),
        (vec!["audit", "--limit", "0"], "1 or more"),
        (vec!["client", "rotate-secret", &client.client_id, "--overlap", "1"], "no unit"),
        (vec!["client", "create", "--name", "x", "--scopes", "tokens:write,deploy"], "not commas"),
        (vec!["webhook", "add", "--url", "http://127.0.0.1:0/hook", "--events", "all"], "port 0"),
    ] {
        let out = app.cli(&args).await;
        refused_because(&out, reason);
    }
    assert_eq!(app.list_clients().await.len(), 1, "no client with a comma-joined scope was created");
    assert!(app.cli_ok(&["webhook", "list", "--json"]).await.trim() == "[]", "no receiver on port 0");
    let secret_still_works = app.issue_long(&client).await;
    assert!(!secret_still_works.token_id.is_empty(), "the refused rotation changed nothing");
    for (flag, value, reason) in [
        ("--expiry-warning-days", "7,,1", "not a number of days"),
        ("--expiry-warning-days", "7,7", "twice"),
        ("--issuer", "http://tokensmith.example/../", ". or .. path segments"),
        ("--issuer", "https://tokensmith.example/a/./b", ". or .. path segments"),
        ("--trusted-proxies", "10.0.0.0/8,,10.1.0.0/16", "is not an address"),
        ("--trusted-proxies", "10.1.2.3/8", "host bits"),
    ] {
        let out = config_check(&[flag, value], &[]).await;
        refused_because(&out, reason);
    }
}
