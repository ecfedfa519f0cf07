//! A stolen short-term token holding `tokens:write` cannot become a root: the long-term token
//! it mints is a child of the long-term token behind it, capped to its expiry and scopes, and
//! ends with it (revocation, the end of a rotation's grace), its descendants included.

use serde_json::{Value, json};

use crate::helpers::{Issued, TestApp, TestClient, issued, merge, rfc3339, secret_grant, sorted, spawn_app};

async fn setup() -> (TestApp, TestClient, Issued) {
    let app = spawn_app().await;
    let client = app.create_client("ci", "deploy read tokens:write tokens:introspect").await;
    let parent = app.issue_long_with(&client, json!({"ttl_days": 10})).await;
    (app, client, parent)
}

/// A long-term token minted with a short-term token of `parent`.
async fn mint_child(app: &TestApp, parent: &Issued, body: Value) -> Issued {
    let short = app.issue_short(&parent.access_token).await;
    issued(&app.post_long_with_short(&short.access_token, &merge(json!({"grant_type": "short_token"}), body)).await)
}

#[tokio::test]
async fn a_child_is_capped_to_its_parents_expiry() {
    let (app, _client, parent) = setup().await;

    let child = mint_child(&app, &parent, json!({"ttl_days": 90})).await;

    assert_eq!(rfc3339(&child.body["expires_at"]), rfc3339(&parent.body["expires_at"]));
    assert_eq!(child.body["expires_in"], rfc3339(&child.body["expires_at"]) - rfc3339(&child.body["issued_at"]));
    app.clock.advance_secs(10 * 86_400);
    app.post_short(Some(&child.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_child_holds_at_most_its_parents_scopes() {
    let (app, client, _) = setup().await;
    let narrow = app.issue_long_with(&client, json!({"scopes": ["read", "tokens:write"]})).await;

    let child = mint_child(&app, &narrow, json!({})).await;
    assert_eq!(child.scopes(), sorted(&["read", "tokens:write"]));
    let short = app.issue_short(&narrow.access_token).await;
    let body = json!({"grant_type": "short_token", "scopes": ["deploy"]});
    app.post_long_with_short(&short.access_token, &body).await.assert_error(403, "insufficient_scope");
}

#[tokio::test]
async fn revoking_the_parent_revokes_every_descendant_and_its_short_term_tokens() {
    let (app, client, parent) = setup().await;
    let child = mint_child(&app, &parent, json!({})).await;
    let grandchild = mint_child(&app, &child, json!({})).await;
    let grandchild_short = app.issue_short(&grandchild.access_token).await;
    let auditor = app.issue_long(&client).await;

    app.revoke(Some(&parent.access_token), &parent.token_id).await.assert_status(204);

    for token in [&child.access_token, &grandchild.access_token] {
        app.post_short(Some(token), None).await.assert_invalid_token();
        assert!(!app.is_active(&auditor.access_token, token).await);
    }
    assert!(!app.is_active(&auditor.access_token, &grandchild_short.access_token).await);
    app.revoke(Some(&grandchild_short.access_token), &grandchild_short.token_id).await.assert_invalid_token();
}

#[tokio::test]
async fn an_operators_revocation_cascades_the_same_way() {
    let (app, _client, parent) = setup().await;
    let child = mint_child(&app, &parent, json!({})).await;

    app.cli_ok(&["token", "revoke", &parent.token_id]).await;

    app.post_short(Some(&child.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn children_end_with_their_parents_rotation_grace() {
    let (app, client, parent) = setup().await;
    let child = mint_child(&app, &parent, json!({})).await;
    let successor =
        app.issue_long_with(&client, json!({"rotate_token_id": parent.token_id, "grace_seconds": 600})).await;

    app.issue_short(&child.access_token).await;
    app.clock.advance_secs(601);

    app.post_short(Some(&parent.access_token), None).await.assert_invalid_token();
    app.post_short(Some(&child.access_token), None).await.assert_invalid_token();
    app.issue_short(&successor.access_token).await;
}

#[tokio::test]
async fn a_token_renews_itself_as_a_root_with_its_own_short_term_token() {
    let (app, _client, parent) = setup().await;

    let renewed = mint_child(&app, &parent, json!({"rotate_token_id": parent.token_id, "ttl_days": 90})).await;

    assert_eq!(renewed.body["expires_in"], 90 * 86_400, "a root's successor is a root, not capped");
    app.clock.advance_secs(11 * 86_400);
    app.issue_short(&renewed.access_token).await;
}

#[tokio::test]
async fn a_childs_successor_is_a_child_of_the_same_parent() {
    let (app, _client, parent) = setup().await;
    let child = mint_child(&app, &parent, json!({})).await;

    let successor = mint_child(&app, &child, json!({"rotate_token_id": child.token_id, "ttl_days": 90})).await;
    assert_eq!(rfc3339(&successor.body["expires_at"]), rfc3339(&parent.body["expires_at"]), "capped like it");

    app.revoke(Some(&parent.access_token), &parent.token_id).await.assert_status(204);
    app.post_short(Some(&successor.access_token), None).await.assert_invalid_token();
}

#[tokio::test]
async fn a_short_term_token_cannot_rotate_a_token_of_another_lineage_into_a_root() {
    let (app, client, parent) = setup().await;
    let other_root = app.issue_long(&client).await;
    let child = mint_child(&app, &parent, json!({})).await;
    let short = app.issue_short(&child.access_token).await;

    let body = json!({"grant_type": "short_token", "rotate_token_id": other_root.token_id, "ttl_days": 90});
    app.post_long_with_short(&short.access_token, &body).await.assert_error(403, "insufficient_scope");

    app.issue_short(&other_root.access_token).await;
    let again = json!({"rotate_token_id": other_root.token_id});
    app.issue_long_with(&client, again).await;
}

#[tokio::test]
async fn a_rotated_token_cannot_be_rotated_again_during_its_grace() {
    let (app, client, parent) = setup().await;
    let rotate = json!({"rotate_token_id": parent.token_id, "grace_seconds": 600});
    app.issue_long_with(&client, rotate.clone()).await;

    app.post_long(&merge(secret_grant(&client), rotate)).await.assert_invalid_request();
    app.issue_short(&parent.access_token).await;
}

#[tokio::test]
async fn the_audit_event_of_a_child_names_its_parent() {
    let (app, client, parent) = setup().await;
    let child = mint_child(&app, &parent, json!({})).await;

    let events = app.audit(&["--client", &client.client_id]).await;
    let issued = events
        .iter()
        .find(|e| e["event"] == "long_token.issued" && e["token_id"] == child.token_id.as_str())
        .expect("the child's issuance is recorded");
    let detail = issued["detail"].to_string();
    assert!(detail.contains(&parent.token_id), "{issued}");
}
