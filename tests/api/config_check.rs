//! `tokensmith config check`: the effective settings of file, environment and flags, in that
//! order of precedence, with secrets redacted; bad input named in a one-line error.

use std::process::Output;

use serde_json::Value;

pub(crate) async fn config_check(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"));
    command.arg("config").arg("check").args(args).kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOKENSMITH_")) {
        command.env_remove(k);
    }
    command.env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    tokio::time::timeout(crate::process::PATIENCE, command.output())
        .await
        .expect("config check finishes in time")
        .expect("the binary runs")
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn flags_override_the_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:7001\"\nshort_ttl_max_secs = 300\nfailures_per_client = 3\n")
        .expect("a config file");
    let file = file.display().to_string();
    let env = [("TOKENSMITH_SHORT_TTL_MAX_SECS", "600"), ("TOKENSMITH_FAILURES_PER_CLIENT", "4")];
    let out = config_check(&["--config", &file, "--failures-per-client", "5", "--json"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let effective: Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    assert_eq!(effective["listen"], "127.0.0.1:7001", "from the file");
    assert_eq!(effective["short_ttl_max_secs"], 600, "the environment overrides the file");
    assert_eq!(effective["failures_per_client"], 5, "the flag overrides the environment");
    assert_eq!(effective["long_ttl_max_days"], 90, "a default");
    assert_eq!(effective["issuer"], "http://127.0.0.1:7001", "derived from listen");
    assert_eq!(effective["master_key"], Value::Null);

    // The TOML it prints is a configuration that gives the same settings.
    let out = config_check(&["--config", &file, "--failures-per-client", "5"], &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &out.stdout).expect("written");
    let again = config_check(&["--config", &printed.display().to_string()], &[]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    let strip = |o: &Output| String::from_utf8_lossy(&o.stdout).lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&again), strip(&out));
}

#[tokio::test]
async fn secrets_are_redacted() {
    let key = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
    let url = "postgres://tokensmith:hunter2-secret@db.example:5432/tokens";
    let in_query = "postgres://tokensmith@db.example:5432/tokens?sslmode=require&password=hunter2-secret";
    let out = config_check(&["--database", in_query], &[("TOKENSMITH_MASTER_KEY", key)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("hunter2-secret") && printed.contains("password=***"), "{printed}");
    for json in [false, true] {
        let mut args = vec!["--database", url];
        if json {
            args.push("--json");
        }
        let out = config_check(&args, &[("TOKENSMITH_MASTER_KEY", key)]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(!printed.contains("hunter2-secret") && !printed.contains(key), "{printed}");
        assert!(printed.contains("tokensmith:***@db.example:5432/tokens"), "{printed}");
        assert!(printed.contains("redacted"), "the master key is said to be set: {printed}");
    }
}

#[tokio::test]
async fn bad_keys_and_values_are_named_and_the_exit_is_non_zero() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cases: &[(&str, &str)] = &[
        ("listen_address = \"127.0.0.1:1\"\n", "listen_address"),
        ("short_ttl_max_secs = \"soon\"\n", "short_ttl_max_secs"),
        ("short_ttl_max_secs = 5\n", "short_ttl_max_secs"),
        ("listen = \"localhost\"\n", "listen address"),
        ("signing_alg = \"HS256\"\n", "HS256"),
        ("log_format = \"xml\"\n", "log_format"),
        ("tls_cert = \"/nonexistent/cert.pem\"\n", "tls_key"),
        ("shutdown_timeout_secs = 100000\n", "shutdown_timeout_secs"),
        ("database = \"mysql://x\"\n", "mysql://x"),
    ];
    for (i, (text, named)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, text).expect("a config file");
        let out = config_check(&["--config", &file.display().to_string()], &[]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(out.stdout.is_empty(), "nothing printed for an invalid configuration");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(named), "{text}: the error names {named}: {err}");
    }
    // A bad flag is a usage error (exit 2), and a bad environment value names its variable.
    let out = config_check(&["--no-such-flag"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = config_check(&[], &[("TOKENSMITH_BODY_LIMIT_BYTES", "lots")]).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("lots"), "{}", stderr(&out));
}

#[tokio::test]
async fn the_example_file_in_the_repository_checks() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/tokensmith.example.toml");
    let out = config_check(&["--config", example], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn an_issuer_with_a_query_or_fragment_and_an_empty_default_audience_are_refused() {
    for (args, says) in [
        (vec!["--issuer", "http://tokens.example/p?q#f"], "no query or fragment"),
        (vec!["--issuer", "https://"], "with a host"),
        (vec!["--default-audience", ""], "default_audience"),
        (vec!["--default-audience", "a\u{202e}b"], "default_audience"),
        (vec!["--failure-delay-ms", "5000"], "failure_delay_ms"),
    ] {
        let out = config_check(&args, &[]).await;
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn trusting_every_address_as_a_proxy_is_warned_about() {
    let out = config_check(&["--trusted-proxies", "10.0.0.0/8,0.0.0.0/0"], &[]).await;

    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("# warning: trusted_proxies includes 0.0.0.0/0"), "{printed}");
    assert!(printed.contains("trusted_proxies = [\"10.0.0.0/8\", \"0.0.0.0/0\"]"), "{printed}");
}

#[tokio::test]
async fn serve_refuses_an_existing_database_without_its_key_and_creates_no_key() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("t.db");
    let url = format!("sqlite://{}", db.display());
    let create = ["client", "create", "--name", "x", "--scopes", "read", "--database", &url];
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith")).args(create).output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(dir.path().join("t.db.key")).unwrap();

    let serve = ["serve", "--listen", "127.0.0.1:0", "--database", &url];
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokensmith"))
        .args(serve)
        .env_remove("TOKENSMITH_MASTER_KEY")
        .output();
    let out = tokio::time::timeout(crate::process::PATIENCE, run).await.expect("serve stops").unwrap();

    assert!(!out.status.success());
    assert!(stderr(&out).contains("no master key file at"), "{}", stderr(&out));
    assert!(!dir.path().join("t.db.key").exists(), "no new key beside the database");
}
