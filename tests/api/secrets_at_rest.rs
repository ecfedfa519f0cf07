//! Secrets at rest: the database alone yields no long-term token, client secret or TOTP seed.

use std::os::unix::fs::PermissionsExt;

use base64::Engine;

use crate::helpers::{TestApp, hex, otp_seed, spawn_app, sqlite_only};

/// Everything the database holds, as bytes to search: with SQLite every byte of the database
/// file, its write-ahead log and shared memory file; with PostgreSQL every row of every table
/// as text, once with `bytea` in hex and once in escape form (printable bytes as themselves).
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    if app.db.is_postgres() {
        let mut conn = app.db.pg_connect().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(table_name::text) FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut conn)
        .await
        .expect("the tables are listed");
        assert!(tables.len() >= 5, "the schema exists: {tables:?}");
        for format in ["hex", "escape"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET bytea_output = '{format}'")))
                .execute(&mut conn)
                .await
                .expect("bytea_output is set");
            for table in &tables {
                let dump: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM {table} t"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("the table is dumped");
                bytes.extend(dump.into_bytes());
                bytes.push(b'\n');
            }
        }
    } else {
        for name in ["t.db", "t.db-wal", "t.db-shm", "t.db-journal"] {
            if let Ok(content) = std::fs::read(app.dir.path().join(name)) {
                bytes.extend(content);
            }
        }
    }
    assert!(!bytes.is_empty(), "the database exists");
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no secret appears in `bytes`, as itself or in hex (how PostgreSQL prints bytes).
#[track_caller]
fn assert_absent(bytes: &[u8], secrets: &[(&str, Vec<u8>)]) {
    for (what, secret) in secrets {
        assert!(!contains(bytes, secret), "the database holds the {what} in clear");
        assert!(!contains(bytes, hex(secret).as_bytes()), "the database holds the {what} in clear, hex-encoded");
    }
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

    let bytes = database_bytes(&app).await;

    let otp_base32 = client.otp_secret.clone().expect("otp secret");
    let seed = otp_seed(&otp_base32);
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("client secret", client.client_secret.clone().into_bytes()),
        ("long-term token", long.access_token.clone().into_bytes()),
        ("long-term token body", long.access_token.as_bytes()["tsl_".len()..].to_vec()),
        ("revoked long-term token", other.access_token.clone().into_bytes()),
        ("otp seed (base32)", otp_base32.clone().into_bytes()),
        ("otp seed (raw)", seed.clone()),
        ("otp seed (hex)", hex(&seed).into_bytes()),
        ("otp seed (base64)", base64::engine::general_purpose::STANDARD.encode(&seed).into_bytes()),
    ];
    assert_absent(&bytes, &secrets);
}

#[tokio::test]
async fn the_master_key_is_not_in_the_database() {
    let app = spawn_app().await;
    let client = app.create_otp_client("ci", "read").await;
    app.issue_long(&client).await;

    let key_text = match &app.db.master_key {
        Some(key) => key.clone().into_bytes(),
        None => std::fs::read(app.dir.path().join("t.db.key")).expect("a key file beside the database"),
    };
    let bytes = database_bytes(&app).await;

    let mut secrets = vec![("master key", key_text.clone())];
    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(key_text.trim_ascii()) {
        secrets.push(("master key (raw)", raw));
    }
    assert_absent(&bytes, &secrets);
}

#[tokio::test]
async fn the_key_file_beside_the_database_is_readable_by_its_owner_only() {
    // With PostgreSQL there is no key file: the key comes from TOKENSMITH_MASTER_KEY (see
    // `the_master_key_is_not_in_the_database` for what holds on both backends).
    if !sqlite_only("the_key_file_beside_the_database_is_readable_by_its_owner_only") {
        return;
    }
    let app = spawn_app().await;
    app.create_client("ci", "read").await;

    let key_file = app.dir.path().join("t.db.key");
    let metadata = std::fs::metadata(&key_file).expect("a key file beside the database");

    assert_eq!(metadata.permissions().mode() & 0o777, 0o600, "mode 0600");
    let key = std::fs::read(&key_file).expect("readable");
    assert!(!contains(&database_bytes(&app).await, &key), "the key is not in the database");
}
