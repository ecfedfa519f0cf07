//! Files: the SQLite database and its WAL and shared-memory files are readable by their owner
//! only, a key file others can read is refused, and a used assertion id is kept past its `exp`
//! by the skew allowance.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{assertion_grant, issued, spawn_app, sqlite_only};
use crate::keys::{ClientKey, KeyForm};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_files_are_readable_by_their_owner_only() {
    if !sqlite_only("database file modes") {
        return;
    }
    let app = spawn_app().await;
    let client = app.create_client("ci", "read").await;
    issued(&app.post_long(&crate::helpers::secret_grant(&client)).await);

    for name in ["t.db", "t.db-wal", "t.db-shm", "t.db.key"] {
        assert_eq!(mode(&app.dir.path().join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn a_database_left_readable_by_others_is_made_private_at_start() {
    if !sqlite_only("database file modes") {
        return;
    }
    let app = spawn_app().await;
    let db = app.dir.path().join("t.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let app = app.restart().await;

    assert_eq!(mode(&db), 0o600);
    app.create_client("ci", "read").await;
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused_at_start() {
    if !sqlite_only("key file mode") {
        return;
    }
    let app = spawn_app().await;
    let key = app.dir.path().join("t.db.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = app.cli(&["client", "list"]).await;

    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by other users") && err.contains("chmod 600"), "{err}");
}

#[tokio::test]
async fn a_used_assertion_id_is_kept_past_its_exp_by_the_skew_allowance() {
    let app = spawn_app().await;
    let key = ClientKey::ed25519();
    let client = app.create_key_client("robot", "read", &key, KeyForm::Pem).await;
    let mut claims = app.assertion_claims(&client.client_id);
    claims["exp"] = (app.now() + 10).into();
    let assertion = key.sign(&claims);
    issued(&app.post_long(&assertion_grant(&assertion)).await);

    // Past its exp on this clock, the cleanup runs; an instance whose clock is 20 s behind
    // would still accept the assertion, so it must still be known as used.
    app.clock.advance_secs(15);
    app.purge().await;
    app.clock.advance_secs(-20);
    app.post_long(&assertion_grant(&assertion)).await.assert_error(401, "invalid_grant");
}
