//! Federation, administered from the command line: trusted issuers (`tokensmith issuer …`)
//! and the rules that bind a client to their tokens' claims (`tokensmith client
//! add-federation | list-federation | remove-federation`), each change audited, on both
//! backends.

use serde_json::Value;

use crate::helpers::spawn_app;

const ED25519: &str = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}"#;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("--json prints JSON ({e}): {text}"))
}

#[tokio::test]
async fn an_operator_trusts_issuers_binds_a_client_to_claims_and_undoes_it() {
    let app = spawn_app().await;
    let client = app.create_client("deployer", "deploy read").await;
    let jwks = app.dir.path().join("k8s.jwks");
    std::fs::write(&jwks, format!(r#"{{"keys":[{ED25519}]}}"#)).unwrap();

    let github = ["issuer", "add", "--name", "github", "--issuer", "https://token.actions.githubusercontent.com"];
    let added = json(&app.cli_ok(&[&github[..], &["--discovery", "--json"]].concat()).await);
    assert_eq!(added["discovery"], true);
    let k8s = ["issuer", "add", "--name", "k8s", "--issuer", "https://k8s.example", "--jwks-file"];
    app.cli_ok(&[&k8s[..], &[jwks.to_str().unwrap()]].concat()).await;
    let listed = app.cli_ok(&["issuer", "list"]).await;
    assert!(listed.contains("github") && listed.contains("1 keys from a file"), "{listed}");

    let rule = [
        "client",
        "add-federation",
        &client.client_id,
        "--issuer",
        "github",
        "--audience",
        "https://tokensmith.example",
        "--match",
        "sub=repo:acme/deploy:ref:refs/heads/main",
        "--match",
        "repository_owner=acme",
        "--max-ttl-days",
        "7",
        "--scopes",
        "deploy",
        "--json",
    ];
    let rule = json(&app.cli_ok(&rule).await);
    let id = rule["rule_id"].as_str().unwrap();
    assert_eq!(
        rule["matches"],
        serde_json::json!(["sub=repo:acme/deploy:ref:refs/heads/main", "repository_owner=acme"])
    );
    assert_eq!((rule["max_ttl_days"].as_i64(), &rule["scopes"]), (Some(7), &serde_json::json!(["deploy"])));
    let rules = json(&app.cli_ok(&["client", "list-federation", &client.client_id, "--json"]).await);
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let shown = json(&app.cli_ok(&["issuer", "show", "github", "--json"]).await);
    assert_eq!(shown["rules"][0]["rule_id"], id);

    app.cli_ok(&["client", "remove-federation", id]).await;
    assert!(app.cli_ok(&["client", "list-federation"]).await.contains("no federation rules"));
    let removed = json(&app.cli_ok(&["issuer", "remove", "github", "--json"]).await);
    assert_eq!(removed["rules_removed"], 0);

    let trail: Vec<String> = app.audit(&[]).await.iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect();
    for event in ["issuer.added", "client.federation_added", "client.federation_removed", "issuer.removed"] {
        assert!(trail.iter().any(|e| e == event), "{event} in {trail:?}");
    }
}

async fn refused(app: &crate::helpers::TestApp, args: &[&str], reason: &str) {
    let out = app.cli(args).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(reason), "{args:?}: {reason:?} in {err}");
}

#[tokio::test]
async fn issuers_and_rules_that_would_trust_too_much_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let client = app.create_client("deployer", "deploy").await;
    let add = |iss: &'static str, keys: &[&'static str]| {
        [&["issuer", "add", "--name", "x", "--issuer", iss][..], keys].concat()
    };
    refused(&app, &add("http://issuer.example", &["--discovery"]), "https:// is required").await;
    refused(&app, &add("https://issuer.example", &["--jwks-uri", "http://10.0.0.1/jwks"]), "https:// is required")
        .await;
    refused(&app, &add("https://issuer.example", &["--jwks-file", "/dev/zero"]), "not a regular file").await;
    refused(&app, &add("https://issuer.example", &[]), "required").await;
    let both = ["--discovery", "--jwks-uri", "https://issuer.example/k"];
    refused(&app, &add("https://issuer.example", &both), "cannot be used").await;
    app.cli_ok(&add("http://127.0.0.1:9/", &["--discovery"])).await;

    let id = client.client_id.as_str();
    let rule = |extra: &[&'static str]| -> Vec<&str> {
        let base = ["client", "add-federation", id, "--issuer", "x", "--audience", "https://tokensmith.example"];
        [&base[..], extra].concat()
    };
    refused(&app, &rule(&[]), "--match").await;
    refused(&app, &rule(&["--match", "sub=*"]), "matches anything").await;
    refused(&app, &rule(&["--match", "sub"]), "CLAIM=VALUE").await;
    // Conditions that hold for every token that gets that far (adversarial pass 4).
    refused(&app, &rule(&["--match", "iss=http://127.0.0.1:9/"]), "names no workload").await;
    refused(&app, &rule(&["--match", "aud=https://tokensmith.example"]), "names no workload").await;
    refused(&app, &rule(&["--match", "sub=x", "--match", "jti=*x"]), "names no workload").await;
    refused(&app, &rule(&["--match", "sub=x", "--max-ttl-days", "91"]), "--max-ttl-days").await;
    refused(&app, &rule(&["--match", "sub=x", "--scopes", "deploy admin"]), "subset").await;
    let unknown = ["client", "add-federation", id, "--issuer", "nope", "--audience", "a", "--match", "sub=x"];
    refused(&app, &unknown, "no trusted issuer").await;
    assert!(app.cli_ok(&["client", "list-federation"]).await.contains("no federation rules"));
}
