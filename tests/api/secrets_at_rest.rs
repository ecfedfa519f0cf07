//! Secrets at rest: the database alone yields no long-term token, client secret or TOTP seed.

use std::os::unix::fs::PermissionsExt;

use base64::Engine;

use crate::helpers::{otp_seed, spawn_app};

/// Every byte of the SQLite database, its write-ahead log and shared memory file.
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["t.db", "t.db-wal", "t.db-shm", "t.db-journal"] {
        if let Ok(content) = std::fs::read(dir.join(name)) {
            bytes.extend(content);
        }
    }
    assert!(!bytes.is_empty(), "the database exists");
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_database_holds_no_token_secret_or_otp_seed_in_clear() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read tokens:write").await;
    let long = app.issue_long(&client).await;
    let other = app.issue_long(&client).await;
    app.revoke(Some(&long.access_token), &other.token_id).await.assert_status(204);
    app.issue_short(&long.access_token).await;
    app.align_to_otp_step();
    let code = app.otp_code(&client);
    crate::helpers::issued(
        &app.post_long(&serde_json::json!({
            "grant_type": "client_credentials", "client_id": client.client_id, "otp_code": code,
        }))
        .await,
    );

    let bytes = database_bytes(app.dir.path());

    let otp_base32 = client.otp_secret.clone().expect("otp secret");
    let seed = otp_seed(&otp_base32);
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("client secret", client.client_secret.clone().into_bytes()),
        ("long-term token", long.access_token.clone().into_bytes()),
        ("long-term token body", long.access_token.as_bytes()["tsl_".len()..].to_vec()),
        ("revoked long-term token", other.access_token.clone().into_bytes()),
        ("otp seed (base32)", otp_base32.clone().into_bytes()),
        ("otp seed (raw)", seed.clone()),
        ("otp seed (hex)", seed_hex.into_bytes()),
        ("otp seed (base64)", base64::engine::general_purpose::STANDARD.encode(&seed).into_bytes()),
    ];
    for (what, secret) in secrets {
        assert!(!contains(&bytes, &secret), "the database holds the {what} in clear");
    }
}

#[tokio::test]
async fn the_key_file_beside_the_database_is_readable_by_its_owner_only() {
    let app = spawn_app().await;
    app.create_client("ci", "read").await;

    let key_file = app.dir.path().join("t.db.key");
    let metadata = std::fs::metadata(&key_file).expect("a key file beside the database");

    assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "mode 0600");
    let key = std::fs::read(&key_file).expect("readable");
    assert!(!contains(&database_bytes(app.dir.path()), &key), "the key is not in the database");
}
