//! The admin API's OpenAPI document, generated from the handlers' annotations like the public
//! one. Served at `GET /admin/openapi.json` on the admin listener.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::ErrorResponse;

pub const TAG: &str = "Admin";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokensmith admin API",
        description = "Administration of a tokensmith deployment: clients, tokens, signing keys, the audit \
trail, federation and webhooks. Served on the admin listener only (`--admin-listen`).\n\n\
Authenticate with a short-term token whose audience (`aud`) is this API's URL and that holds \
`admin:read` (reads) or `admin:write` (changes and reads): get one from the public API \
(`POST /v1/auth/tokens/short` with `audience` set to this URL and `scopes` naming the admin scopes), or \
sign in with `POST /admin/v1/session`. Errors have the body `ErrorResponse`; 401 means no valid admin \
token, 403 a token without the scope the operation needs. Every authenticated request is recorded in \
the audit trail (`admin.request`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::session::sign_in,
        super::session::sign_out,
        super::clients::list,
        super::clients::create,
        super::clients::show,
        super::clients::disable,
        super::clients::enable,
        super::clients::rotate_secret,
        super::clients::unlock,
        super::clients::reset_otp,
        super::clients::set_public_key,
        super::tokens::list,
        super::tokens::cascade,
        super::tokens::revoke,
        super::keys::list,
        super::keys::rotate,
        super::audit::page,
        super::audit::stats,
        super::federation::issuers,
        super::federation::add_issuer,
        super::federation::remove_issuer,
        super::federation::rules,
        super::federation::add_rule,
        super::federation::remove_rule,
        super::webhooks::webhooks,
        super::webhooks::add,
        super::webhooks::remove,
        super::webhooks::deliveries,
        super::webhooks::redeliver,
    ),
    components(schemas(ErrorResponse)),
    tags((name = "Admin", description = "Administration: clients, tokens, keys, audit, federation, webhooks.")),
    modifiers(&AdminAuth)
)]
struct AdminDoc;

/// The admin token scheme, required by every operation that does not say otherwise.
struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "AdminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A short-term token for this API's URL holding admin:read or admin:write, as \
                         `Authorization: Bearer <jwt>`.",
                    ))
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new("AdminToken", Vec::<String>::new())]);
    }
}

/// The document as pretty-printed JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        AdminDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the admin OpenAPI document");
            String::from("{}")
        })
    })
}

/// `GET /admin/openapi.json` (no token needed: it holds no secret).
pub async fn serve() -> Response {
    let mut res = json().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
