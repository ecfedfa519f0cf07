//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and the
//! wire types' `ToSchema` derives, so it cannot drift from the code. Served at
//! `GET /openapi.json` and printed by `tokensmith openapi`.
//!
//! Two choices shape it, both so that the client generated from it keeps the API its users
//! were given (`docs/api/AuthApi.md`, checked in CI by `tests/conformance/run.sh`):
//! - the token operations are documented relative to a server `/v1` (their paths read
//!   `/auth/tokens/long`); discovery and health live at the root, so their path items carry
//!   their own server `/`. Both server URLs are relative to the document's own URL.
//! - the three token operations carry the tag `Auth` (generators name the class `AuthApi`)
//!   and their agreed words; the other operations carry other tags, so they land in other
//!   classes.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::{Modify, OpenApi};

use super::error::{ERROR_CODES, ErrorResponse};
use super::exchange::{
    TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT, TokenExchangeRequest,
    TokenExchangeResponse,
};
use super::tokens::{
    IntrospectRequest, IntrospectResponse, LongTokenRequest, LongTokenResponse, ShortTokenRequest, ShortTokenResponse,
};
use super::wellknown::{Health, Jwk, JwkSet, Readiness, ServerMetadata};
use crate::domain::types::{MAX_SCOPE_LEN, MAX_SCOPES};

/// The three token operations; generators name the class after the tag (`AuthApi`).
pub const TAG_AUTH: &str = "Auth";
pub const TAG_INTROSPECTION: &str = "Introspection";
/// Token exchange (RFC 8693), apart from the three operations of `AuthApi`.
pub const TAG_EXCHANGE: &str = "TokenExchange";
pub const TAG_DISCOVERY: &str = "Discovery";
pub const TAG_HEALTH: &str = "Health";

/// The prefix of the token operations, written as the document's server.
pub const API_BASE: &str = "/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokensmith",
        description = "Long-term tokens for automation, short-term JWTs, instant revocation.\n\n\
Errors have the body `ErrorResponse`. A 401 of a bearer-authenticated operation carries \
`WWW-Authenticate: Bearer` (with `error=\"invalid_token\"` when a token was presented); a 429 carries \
`Retry-After` in seconds. Failed authentications are limited per client id and per source address.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::tokens::issue_long,
        super::tokens::issue_short,
        super::tokens::revoke,
        super::tokens::introspect,
        super::exchange::exchange,
        super::wellknown::jwks,
        super::wellknown::metadata,
        serve,
        super::wellknown::healthz,
        super::wellknown::readyz,
    ),
    components(schemas(
        LongTokenRequest,
        LongTokenResponse,
        ShortTokenRequest,
        ShortTokenResponse,
        ErrorResponse,
        IntrospectRequest,
        IntrospectResponse,
        TokenExchangeRequest,
        TokenExchangeResponse,
        JwkSet,
        Jwk,
        ServerMetadata,
        Health,
        Readiness,
    )),
    tags(
        (name = "Auth", description = "Issue long-term and short-term tokens, and revoke them."),
        (name = "Introspection", description = "Ask whether a token is active (RFC 7662 style)."),
        (name = "TokenExchange", description = "Exchange an external identity token for a short-term token (RFC 8693)."),
        (name = "Discovery", description = "Public keys, server metadata and this document."),
        (name = "Health", description = "Liveness and readiness."),
    ),
    modifiers(&SecuritySchemes, &ServedUnderBase)
)]
struct ApiDoc;

/// The three security schemes of the token operations.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "LongTokenAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("opaque")
                    .description(Some(
                        "A long-term token (`tsl_…`, from issueLongTermToken) as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ShortTokenAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A short-term token (a JWT, from issueShortTermToken) as `Authorization: Bearer <jwt>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ClientKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Client-Key",
                "The client's `client_id`, instead of (or equal to) `client_id` in the body.",
            ))),
        );
    }
}

/// Moves the token operations under the server [`API_BASE`] and gives every other path item
/// the server `/` (see the module documentation).
struct ServedUnderBase;

impl Modify for ServedUnderBase {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.servers = Some(vec![
            ServerBuilder::new()
                .url(API_BASE)
                .description(Some("The token operations, relative to this document's URL"))
                .build(),
        ]);
        let paths = std::mem::take(&mut doc.paths.paths);
        for (path, mut item) in paths {
            match path.strip_prefix(API_BASE).filter(|rest| rest.starts_with('/')) {
                Some(rest) => {
                    doc.paths.paths.insert(rest.to_owned(), item);
                }
                None => {
                    item.servers = Some(vec![
                        ServerBuilder::new()
                            .url("/")
                            .description(Some("The root of the server, relative to this document's URL"))
                            .build(),
                    ]);
                    doc.paths.paths.insert(path, item);
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty-printed JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_pretty_json().unwrap_or_else(|e| {
            // Serializing plain data cannot fail; should it ever, say so instead of panicking.
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            String::from("{}")
        })
    })
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = TAG_DISCOVERY,
    summary = "This OpenAPI document",
    description = "The OpenAPI 3.1 document of this service, generated from its code.",
    responses((status = 200, description = "The document", body = serde_json::Value, content_type = "application/json"))
)]
pub async fn serve() -> Response {
    let mut res = json().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

// ----- schemas of fields whose Rust type says less than the wire ---------------------------

/// A string that is one of `values`; `nullable` where the field is an `Option` the server
/// reads `null` in as absent.
fn string_enum(values: &[&str], nullable: bool, description: &str) -> Schema {
    let mut all: Vec<serde_json::Value> = values.iter().map(|v| json!(v)).collect();
    let ty = if nullable {
        all.push(serde_json::Value::Null);
        [Type::String, Type::Null].into_iter().collect()
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new().schema_type(ty).enum_values(Some(all)).description(Some(description)).into()
}

pub fn grant_type_schema() -> Schema {
    string_enum(
        &["client_credentials", "assertion", "urn:ietf:params:oauth:grant-type:jwt-bearer", "short_token"],
        true,
        "The grant. May be omitted only when a short-term token is sent as `Authorization: Bearer`; it then means \
`short_token`. `urn:ietf:params:oauth:grant-type:jwt-bearer` is an alias of `assertion` (RFC 7523).",
    )
}

pub fn exchange_grant_type_schema() -> Schema {
    string_enum(&[TOKEN_EXCHANGE], false, "The grant: token exchange (RFC 8693).")
}

pub fn subject_token_type_schema() -> Schema {
    string_enum(&[TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN], false, "The subject token is a JWT.")
}

pub fn requested_token_type_schema() -> Schema {
    string_enum(
        &[TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT],
        true,
        "The kind of token asked for; default `urn:ietf:params:oauth:token-type:access_token`. The token issued is \
both an access token and a JWT: this only names it in `issued_token_type`.",
    )
}

pub fn issued_token_type_schema() -> Schema {
    string_enum(&[TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT], false, "What `access_token` is (RFC 8693 §3).")
}

/// A list of RFC 6749 §3.3 scope tokens, as `Scopes::from_list` accepts it.
fn scopes(description: &str) -> Schema {
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_SCOPE_LEN))
        .pattern(Some(r"^[\x21\x23-\x5B\x5D-\x7E]+$"))
        .description(Some("An RFC 6749 scope token: printable ASCII without space, quote or backslash."));
    ArrayBuilder::new()
        .schema_type([Type::Array, Type::Null].into_iter().collect::<SchemaType>())
        .items(RefOr::T(Schema::Object(item.build())))
        .max_items(Some(MAX_SCOPES))
        .description(Some(description))
        .into()
}

pub fn long_scopes_schema() -> Schema {
    scopes(
        "Requested scopes; default: all that the caller may grant (the client's registered scopes, or the presenting \
short-term token's). More than that is a 403 `insufficient_scope`.",
    )
}

pub fn short_scopes_schema() -> Schema {
    scopes(
        "Scopes of the JWT, a subset of the long-term token's (otherwise a 400 `invalid_scope`); default: all of them.",
    )
}

pub fn bearer_schema() -> Schema {
    string_enum(&["Bearer"], false, "Always `Bearer`.")
}

pub fn token_kind_schema() -> Schema {
    string_enum(&["long", "short"], false, "`long` or `short` (active tokens only).")
}

pub fn error_code_schema() -> Schema {
    string_enum(ERROR_CODES, false, "A stable, machine-readable code.")
}

pub fn kty_schema() -> Schema {
    string_enum(&["OKP", "EC"], false, "Key type: `OKP` for Ed25519 (RFC 8037), `EC` for P-256.")
}

pub fn crv_schema() -> Schema {
    string_enum(&["Ed25519", "P-256"], false, "Curve.")
}

pub fn sig_schema() -> Schema {
    string_enum(&["sig"], false, "Always `sig`.")
}

pub fn jws_alg_schema() -> Schema {
    string_enum(&["EdDSA", "ES256"], false, "The one algorithm this key verifies.")
}

pub fn ok_schema() -> Schema {
    string_enum(&["ok"], false, "Always `ok`.")
}

pub fn readiness_status_schema() -> Schema {
    string_enum(&["ready", "unavailable"], false, "`ready`, or `unavailable` with a 503.")
}

pub fn database_status_schema() -> Schema {
    string_enum(&["ok", "unreachable"], false, "`ok`, or `unreachable` with a 503.")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::domain::DomainError;
    use crate::http::error::ApiError;
    use crate::store::StoreError;

    fn doc() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    fn statuses(op: &Value) -> Vec<&str> {
        op["responses"].as_object().unwrap().keys().map(String::as_str).collect()
    }

    fn security(op: &Value) -> Vec<&str> {
        op["security"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_object().unwrap().keys())
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn the_token_operations_are_documented_under_the_v1_server() {
        let d = doc();
        assert_eq!(
            d["servers"],
            json!([{"url": "/v1", "description": "The token operations, relative to this document's URL"}])
        );
        let long = &d["paths"]["/auth/tokens/long"]["post"];
        let short = &d["paths"]["/auth/tokens/short"]["post"];
        let revoke = &d["paths"]["/auth/tokens/{tokenId}/revoke"]["post"];
        for (op, id) in [(long, "issueLongTermToken"), (short, "issueShortTermToken"), (revoke, "revokeToken")] {
            assert_eq!(op["operationId"], id);
            assert_eq!(op["tags"], json!(["Auth"]), "{id}");
        }
        assert_eq!(statuses(long), ["201", "400", "401", "403", "429"]);
        assert_eq!(statuses(short), ["201", "400", "401", "429"]);
        assert_eq!(statuses(revoke), ["204", "401", "404"]);
        assert_eq!(security(long), ["ShortTokenAuth", "ClientKey"]);
        assert_eq!(security(short), ["LongTokenAuth"]);
        assert_eq!(security(revoke), ["LongTokenAuth", "ShortTokenAuth"]);

        // Bodies: required for the long token, optional (and never `null`) for the short one.
        let body = |op: &Value| op["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone();
        assert_eq!(body(long), "#/components/schemas/LongTokenRequest");
        assert_eq!(long["requestBody"]["required"], true);
        assert_eq!(body(short), "#/components/schemas/ShortTokenRequest");
        assert_ne!(short["requestBody"]["required"], true);
        assert!(revoke.get("requestBody").is_none());
        assert_eq!(
            revoke["parameters"],
            json!([{"name": "tokenId", "in": "path", "description": "The token ID to revoke", "required": true,
                "schema": {"type": "string"}}])
        );

        // The X-Token-Id header of a new long-term token; every error has the error body.
        assert_eq!(
            long["responses"]["201"]["headers"]["X-Token-Id"],
            json!({"schema": {"type": "string"}, "description": "Server-generated identifier for revocation and audit"})
        );
        assert!(revoke["responses"]["204"].get("content").is_none());
        for op in [long, short, revoke] {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorResponse",
                        "{} {status}",
                        op["operationId"]
                    );
                }
            }
        }
    }

    #[test]
    fn the_other_endpoints_are_documented_at_the_root() {
        let d = doc();
        let paths = d["paths"].as_object().unwrap();
        assert_eq!(paths["/auth/tokens/introspect"]["post"]["operationId"], "introspectToken");
        assert_eq!(statuses(&paths["/auth/tokens/introspect"]["post"]), ["200", "400", "401", "403"]);
        for path in [
            "/.well-known/jwks.json",
            "/.well-known/oauth-authorization-server",
            "/openapi.json",
            "/healthz",
            "/readyz",
        ] {
            assert_eq!(paths[path]["servers"][0]["url"], "/", "{path}");
            assert!(paths[path]["get"]["responses"]["200"].is_object(), "{path}");
            assert_ne!(paths[path]["get"]["tags"], json!(["Auth"]), "{path}");
        }
        // Nothing but the three seed operations carries the tag that names AuthApi.
        let auth_ops = paths
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter(|op| op["tags"] == json!(["Auth"]))
            .count();
        assert_eq!(auth_ops, 3);
    }

    #[test]
    fn the_four_models_document_every_field() {
        let d = doc();
        let schemas = &d["components"]["schemas"];
        // (The keys come back sorted: `serde_json::Value` here keeps no order.)
        let fields =
            |name: &str| -> Vec<String> { schemas[name]["properties"].as_object().unwrap().keys().cloned().collect() };
        let sorted = |names: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            v.sort();
            v
        };
        assert_eq!(
            fields("LongTokenRequest"),
            sorted(&[
                "grant_type",
                "client_id",
                "client_secret",
                "otp_code",
                "assertion",
                "scopes",
                "ttl_days",
                "name",
                "rotate_token_id",
                "grace_seconds"
            ])
        );
        assert_eq!(fields("ShortTokenRequest"), sorted(&["scopes", "audience", "ttl_seconds"]));
        let short_response =
            ["token_id", "access_token", "token_type", "scopes", "issued_at", "expires_at", "expires_in"];
        let long_response = [&short_response[..], &["client_id"]].concat();
        assert_eq!(fields("LongTokenResponse"), sorted(&[&long_response[..], &["rotated_token_id"]].concat()));
        assert_eq!(fields("ShortTokenResponse"), sorted(&short_response));
        let required = |name: &str| -> Vec<String> {
            let mut v: Vec<String> =
                schemas[name]["required"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
            v.sort();
            v
        };
        assert_eq!(required("LongTokenResponse"), sorted(&long_response));
        assert_eq!(required("ShortTokenResponse"), sorted(&short_response));
    }

    #[test]
    fn requests_refuse_unknown_fields_and_every_field_says_what_it_is() {
        let d = doc();
        let schemas = &d["components"]["schemas"];
        // Requests refuse unknown fields, and nothing in them is required.
        for name in ["LongTokenRequest", "ShortTokenRequest", "IntrospectRequest"] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        assert!(schemas["LongTokenRequest"].get("required").is_none());
        assert!(schemas["ShortTokenRequest"].get("required").is_none());

        // Every field says what it is; ranges, formats and enums are there.
        for name in
            ["LongTokenRequest", "LongTokenResponse", "ShortTokenRequest", "ShortTokenResponse", "ErrorResponse"]
        {
            for (field, schema) in schemas[name]["properties"].as_object().unwrap() {
                assert!(schema["description"].as_str().is_some_and(|s| !s.is_empty()), "{name}.{field}");
            }
        }
    }

    #[test]
    fn ranges_formats_and_enums_are_documented() {
        let d = doc();
        let schemas = &d["components"]["schemas"];
        let long = &schemas["LongTokenRequest"]["properties"];
        assert_eq!(
            long["grant_type"]["enum"],
            json!([
                "client_credentials",
                "assertion",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "short_token",
                null
            ])
        );
        assert_eq!((long["ttl_days"]["minimum"].clone(), long["ttl_days"]["maximum"].clone()), (json!(1), json!(90)));
        assert_eq!(
            (long["grace_seconds"]["minimum"].clone(), long["grace_seconds"]["maximum"].clone()),
            (json!(0), json!(86400))
        );
        assert_eq!(long["name"]["maxLength"], 100);
        assert_eq!(long["scopes"]["maxItems"], 64);
        let short = &schemas["ShortTokenRequest"]["properties"];
        assert_eq!(
            (short["ttl_seconds"]["minimum"].clone(), short["ttl_seconds"]["maximum"].clone()),
            (json!(60), json!(900))
        );
        for name in ["LongTokenResponse", "ShortTokenResponse"] {
            let p = &schemas[name]["properties"];
            assert_eq!(p["token_type"]["enum"], json!(["Bearer"]), "{name}");
            assert_eq!(p["issued_at"]["format"], "date-time", "{name}");
            assert_eq!(p["expires_at"]["format"], "date-time", "{name}");
        }
    }

    #[test]
    fn the_error_body_and_the_security_schemes_are_documented() {
        let d = doc();
        let error = &d["components"]["schemas"]["ErrorResponse"];
        assert_eq!(error["required"], json!(["error", "error_description"]));
        assert_eq!(error["properties"]["error"]["enum"], json!(ERROR_CODES));

        let schemes = &d["components"]["securitySchemes"];
        assert_eq!(schemes.as_object().unwrap().len(), 3);
        assert_eq!(
            (schemes["LongTokenAuth"]["type"].clone(), schemes["LongTokenAuth"]["scheme"].clone()),
            (json!("http"), json!("bearer"))
        );
        assert_eq!(schemes["ShortTokenAuth"]["scheme"], "bearer");
        assert_eq!(schemes["ShortTokenAuth"]["bearerFormat"], "JWT");
        assert_eq!(schemes["ClientKey"]["type"], "apiKey");
        assert_eq!(schemes["ClientKey"]["in"], "header");
        assert_eq!(schemes["ClientKey"]["name"], "X-Client-Key");
    }

    /// The `error` enum lists every code an error response can carry.
    #[test]
    fn every_error_code_is_documented() {
        use DomainError as D;
        let errors = [
            D::InvalidRequest("x".into()),
            D::UnsupportedGrantType("x".into()),
            D::InvalidScope("x".into()),
            D::InvalidClient,
            D::InvalidGrant("x".into()),
            D::MissingToken,
            D::InvalidToken("x".into()),
            D::InsufficientScope("x".into()),
            D::NotFound,
            D::RateLimited { retry_after_secs: 1 },
            D::Store(StoreError::Unavailable("x".into())),
            D::Store(StoreError::Backend("x".into())),
            D::Internal("x".into()),
        ];
        let mut codes: Vec<&str> = errors.into_iter().map(|e| ApiError::from(e).code).collect();
        codes.push(ApiError::not_found().code);
        codes.sort_unstable();
        codes.dedup();
        let mut documented = ERROR_CODES.to_vec();
        documented.sort_unstable();
        assert_eq!(codes, documented);
    }
}
