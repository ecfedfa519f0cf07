//! The admin listener: the admin API under `/admin/v1/…`, its OpenAPI document at
//! `/admin/openapi.json`, and the web console at `/`.
//!
//! Callers authenticate with short-term tokens minted for the admin API's URL (`aud`) that
//! hold `admin:read` (reads) or `admin:write` (changes); the console gets one at sign-in.
//! Every authenticated request is recorded in the audit trail (`admin.request`), and the
//! operator's changes it makes name the caller. The rules are the domain's (`domain::admin`,
//! `domain::keys`, …), the same the command line runs.

pub mod audit;
pub mod clients;
pub mod console;
pub mod federation;
pub mod keys;
pub mod model;
pub mod openapi;
pub mod session;
pub mod tokens;
pub mod webhooks;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use super::ApiContext;
use super::error::ApiError;
use super::extract::ClientAddr;
use crate::domain::admin::AdminError;
use crate::domain::{AdminCaller, AdminRight, Bearer, DomainError};

/// Every route of the admin listener, answering requests for `hosts` (see [`AdminHosts`]).
pub fn router(ctx: ApiContext, hosts: AdminHosts) -> Router {
    let api = Router::new()
        .route("/session", post(session::sign_in).delete(session::sign_out))
        .route("/clients", get(clients::list).post(clients::create))
        .route("/clients/{client_id}", get(clients::show))
        .route("/clients/{client_id}/disable", post(clients::disable))
        .route("/clients/{client_id}/enable", post(clients::enable))
        .route("/clients/{client_id}/rotate-secret", post(clients::rotate_secret))
        .route("/clients/{client_id}/unlock", post(clients::unlock))
        .route("/clients/{client_id}/reset-otp", post(clients::reset_otp))
        .route("/clients/{client_id}/public-key", put(clients::set_public_key))
        .route("/tokens", get(tokens::list))
        .route("/tokens/{token_id}/cascade", get(tokens::cascade))
        .route("/tokens/{token_id}/revoke", post(tokens::revoke))
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/audit", get(audit::page))
        .route("/stats", get(audit::stats))
        .route("/issuers", get(federation::issuers).post(federation::add_issuer))
        .route("/issuers/{name}", axum::routing::delete(federation::remove_issuer))
        .route("/federation-rules", get(federation::rules).post(federation::add_rule))
        .route("/federation-rules/{rule_id}", axum::routing::delete(federation::remove_rule))
        .route("/webhooks", get(webhooks::webhooks).post(webhooks::add))
        .route("/webhooks/{webhook_id}", axum::routing::delete(webhooks::remove))
        .route("/webhooks/deliveries", get(webhooks::deliveries))
        .route("/webhooks/deliveries/{message_id}/redeliver", post(webhooks::redeliver));
    Router::new()
        .nest("/admin/v1", api)
        .route("/admin/openapi.json", get(openapi::serve))
        .route("/", get(console::index))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::style))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx.clone())
        .layer(axum::middleware::from_fn_with_state(ctx, record_request))
        .layer(axum::middleware::from_fn(no_stray_query))
        .layer(axum::middleware::from_fn_with_state(Arc::new(hosts), check_host))
        .layer(axum::middleware::from_fn(super::observe::observe))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed on this path")
}

/// The console's policy: scripts, styles and requests from this origin only, images also as
/// data URLs (the QR code), nothing framed, no form posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Headers on every answer of the admin listener: nothing cached (answers hold secrets shown
/// once), nothing sniffed or framed, no referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    res
}

/// The operations that take query parameters; each reads them strictly (`http::params`).
const TAKE_QUERIES: &[&str] = &[
    "/admin/v1/tokens",
    "/admin/v1/audit",
    "/admin/v1/stats",
    "/admin/v1/federation-rules",
    "/admin/v1/webhooks/deliveries",
];

/// Refuses a query string on an operation that takes none: an option put there by mistake
/// (`?overlap_secs=86400`) would otherwise be ignored while the change is made.
async fn no_stray_query(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Those paths read their queries strictly themselves (other methods there are 405s).
    let takes = TAKE_QUERIES.contains(&path);
    if path.starts_with("/admin/") && !takes && req.uri().query().is_some_and(|q| !q.is_empty()) {
        let msg = "this operation takes no query parameters: send its options in the JSON body";
        return ApiError::invalid_request(msg).into_response();
    }
    next.run(req).await
}

/// The names the admin listener answers to: the admin URL's host (and port), and, on the
/// listener's port, IP addresses and `localhost`. A page on another site that makes its name
/// resolve to this address (DNS rebinding) is refused: its requests carry its own name.
#[derive(Debug, Clone)]
pub struct AdminHosts {
    /// The admin URL's `host[:port]`, lowercase.
    pub url_authority: String,
    /// The listener's port.
    pub port: u16,
}

impl AdminHosts {
    pub fn new(admin_url: &str, port: u16) -> AdminHosts {
        let authority = url::Url::parse(admin_url)
            .ok()
            .and_then(|u| u.host_str().map(|h| u.port().map_or_else(|| h.to_owned(), |p| format!("{h}:{p}"))))
            .unwrap_or_default();
        AdminHosts { url_authority: authority.to_ascii_lowercase(), port }
    }

    fn admits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if host == self.url_authority {
            return true;
        }
        let Some((name, port)) = host.rsplit_once(':') else { return false };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        port.parse::<u16>().is_ok_and(|p| p == self.port)
            && (name == "localhost" || name.parse::<std::net::IpAddr>().is_ok())
    }
}

async fn check_host(State(hosts): State<Arc<AdminHosts>>, req: Request, next: Next) -> Response {
    if req.headers().get_all(header::HOST).iter().count() > 1 {
        return ApiError::invalid_request("a request names one Host").into_response();
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned));
    if !host.as_deref().is_some_and(|h| hosts.admits(h)) {
        let msg = "this admin listener answers to its admin URL's host, or to an IP address or localhost on its port";
        return ApiError::new(StatusCode::MISDIRECTED_REQUEST, "invalid_request", msg).into_response();
    }
    next.run(req).await
}

/// A path segment (an id or a name), read as text: one that is not valid after decoding is a
/// 404 with the JSON error body, like any id that names nothing.
pub struct Segment(pub String);

impl FromRequestParts<ApiContext> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, ctx).await {
            Ok(axum::extract::Path(s)) => Ok(Segment(s)),
            Err(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")),
        }
    }
}

/// Where an authenticated request leaves its caller, for the audit record of the request.
#[derive(Clone, Default)]
struct CallerSlot(Arc<OnceLock<AdminCaller>>);

/// Records each authenticated admin request (method, path, status) in the audit trail, with
/// the caller's client and admin token.
async fn record_request(State(ctx): State<ApiContext>, mut req: Request, next: Next) -> Response {
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let operation = format!("{} {}", req.method(), req.uri().path());
    let res = next.run(req).await;
    if let Some(caller) = slot.0.get() {
        ctx.service.audit_admin_request(caller, &operation, res.status().as_u16()).await;
    }
    res
}

/// An admin API caller allowed to read.
pub struct Reader(pub AdminCaller);
/// An admin API caller allowed to change.
pub struct Writer(pub AdminCaller, Arc<crate::domain::TokenService>);

async fn authenticate(parts: &mut Parts, ctx: &ApiContext, right: AdminRight) -> Result<AdminCaller, ApiError> {
    let bearer = Bearer::from_request_parts(parts, ctx).await.unwrap_or(Bearer::Absent);
    let ClientAddr(addr) = ClientAddr::from_request_parts(parts, ctx).await.unwrap_or(ClientAddr([0, 0, 0, 0].into()));
    let caller = ctx.service.authenticate_admin(bearer, addr).await.map_err(ApiError::from)?;
    if let Some(slot) = parts.extensions.get::<CallerSlot>() {
        let _ = slot.0.set(caller.clone());
    }
    caller.require(right)?;
    Ok(caller)
}

impl FromRequestParts<ApiContext> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        authenticate(parts, ctx, AdminRight::Read).await.map(Reader)
    }
}

impl FromRequestParts<ApiContext> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        let caller = authenticate(parts, ctx, AdminRight::Write).await?;
        Ok(Writer(caller, Arc::clone(&ctx.service)))
    }
}

impl Writer {
    /// Runs an operator's change as this caller: its audit events name it, and this process
    /// forgets what it held of tokens' and clients' state, so the change holds here at once
    /// (other instances see it within the cache's staleness bound, as for the command line).
    pub async fn run<F: Future>(&self, change: F) -> F::Output {
        let done = crate::domain::audit::as_operator(self.0.operator(), change).await;
        self.1.forget_cached_state();
        done
    }
}

/// An operator's error as an answer: what was wrong with the request (400), what it names
/// that does not exist (404), or a conflict with what is there (409).
pub fn admin_error(e: AdminError) -> ApiError {
    match e {
        AdminError::Invalid(msg) => ApiError::invalid_request(msg),
        e @ (AdminError::UnknownClient(_)
        | AdminError::UnknownToken(_)
        | AdminError::UnknownIssuer(_)
        | AdminError::UnknownRule(_)
        | AdminError::UnknownWebhook(_)) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        e @ AdminError::KeyExists { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request",
            format!("{e}; send \"replace\": true to replace it (assertions signed with the old key then stop working)"),
        ),
        AdminError::Store(e) => ApiError::from(DomainError::Store(e)),
    }
}

/// A client id from the path.
pub fn client_id(text: &str) -> Result<crate::domain::ClientId, ApiError> {
    crate::domain::ClientId::parse(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such client (client ids look like cli_3vQk0ZcO0mB1m4v8Xq2L)",
        )
    })
}
