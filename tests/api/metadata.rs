//! Discovery: RFC 8414 metadata, the JWKS it points to, and the OpenAPI description.

use crate::helpers::{spawn_app, spawn_app_with, string_list};

#[tokio::test]
async fn the_metadata_names_the_issuer_the_jwks_and_the_endpoints() {
    let app = spawn_app().await;

    let reply = app.get("/.well-known/oauth-authorization-server").await;

    reply.assert_status(200);
    reply.assert_json_content_type();
    let metadata = reply.json();
    assert_eq!(metadata["issuer"], app.issuer.as_str());
    assert_eq!(app.issuer, app.address, "the issuer defaults to http://<listen address>");
    assert_eq!(metadata["token_endpoint"], format!("{}/v1/auth/tokens/long", app.issuer));
    assert!(metadata["introspection_endpoint"].is_string(), "{metadata}");
    let grants = string_list(&metadata["grant_types_supported"]);
    assert!(grants.contains(&"client_credentials".to_owned()), "{grants:?}");

    // The JWKS is where the metadata says it is.
    let jwks_uri = metadata["jwks_uri"].as_str().expect("jwks_uri");
    let path = jwks_uri.strip_prefix(&app.issuer).expect("the JWKS is served by the issuer");
    let jwks = app.get(path).await;
    jwks.assert_status(200);
    assert!(!jwks.json()["keys"].as_array().expect("keys").is_empty());
}

#[tokio::test]
async fn a_configured_issuer_is_announced() {
    let app = spawn_app_with(|s| s.issuer = Some("https://auth.example.com".to_owned())).await;

    let metadata = app.get("/.well-known/oauth-authorization-server").await.json();

    assert_eq!(app.issuer, "https://auth.example.com");
    assert_eq!(metadata["issuer"], "https://auth.example.com");
    assert_eq!(metadata["jwks_uri"], "https://auth.example.com/.well-known/jwks.json");
}

#[tokio::test]
async fn openapi_describes_the_three_seed_operations() {
    let app = spawn_app().await;

    let reply = app.get("/openapi.json").await;

    reply.assert_status(200);
    let doc = reply.json();
    let paths = doc["paths"].as_object().expect("paths");
    // Paths are relative to their server (the path's own `servers`, else the document's).
    let server = |item: &serde_json::Value| {
        let url = item["servers"][0]["url"].as_str().or_else(|| doc["servers"][0]["url"].as_str()).unwrap_or("");
        url.trim_end_matches('/').to_owned()
    };
    let operations: std::collections::HashMap<String, serde_json::Value> = paths
        .iter()
        .map(|(path, item)| (format!("{}{path}", server(item)), item["post"]["operationId"].clone()))
        .collect();
    let operation_id =
        |path: &str| operations.get(path).cloned().unwrap_or_else(|| panic!("{path} in {:?}", operations.keys()));
    assert_eq!(operation_id("/v1/auth/tokens/long"), "issueLongTermToken");
    assert_eq!(operation_id("/v1/auth/tokens/short"), "issueShortTermToken");
    let revoke = operations
        .keys()
        .find(|p| p.starts_with("/v1/auth/tokens/{") && p.ends_with("}/revoke"))
        .expect("the revoke path");
    assert_eq!(operation_id(revoke), "revokeToken");
}
