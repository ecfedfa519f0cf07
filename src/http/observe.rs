//! The request middleware: a request id, one access-log line and the metrics of every request.
//!
//! Each request gets an id: the client's `X-Request-Id` when it is sane (1 to 64 characters
//! of `A-Z a-z 0-9 - _ . :`, and not shaped like one of our secrets), otherwise a new UUID;
//! it is echoed in the response's `X-Request-Id` and names the request's span, so that the
//! domain's own log lines carry it too. When the response is ready, one line is logged
//! (target `tokensmith::access`): `request_id`, `method`, `operation` (the route's name, never
//! the path), `status`, `latency_ms`, and when known `client_id`, `grant`, `token_id` (the
//! token issued, revoked or found by introspection) and `caller_token_id` (the bearer's).
//!
//! Architecture invariant: no secret reaches this line. Headers, bodies, paths and query
//! strings are not logged; handlers record only ids, through [`RequestLog`], and only once
//! they are parsed (a revoked token's id is recorded after the revocation succeeded).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::domain::types::{CLIENT_SECRET_PREFIX, LONG_TOKEN_PREFIX};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a handler learned about its request, for the access-log line. Taken as an extractor
/// (it never fails); a handler records ids as soon as it has parsed them.
///
/// The ids are kept only when the access line is enabled; the grant always (it labels metrics).
#[derive(Clone, Default)]
pub struct RequestLog {
    fields: Arc<Mutex<Fields>>,
    ids: bool,
}

#[derive(Default)]
struct Fields {
    client_id: Option<String>,
    grant: Option<&'static str>,
    token_id: Option<String>,
    caller_token_id: Option<String>,
}

impl RequestLog {
    fn with<R>(&self, f: impl FnOnce(&mut Fields) -> R) -> R {
        f(&mut self.fields.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The authenticated client (or the one a token was issued to).
    pub fn client(&self, id: impl ToString) {
        if self.ids {
            self.with(|f| f.client_id = Some(id.to_string()));
        }
    }

    /// The grant of an issuance request.
    pub fn grant(&self, grant: &'static str) {
        self.with(|f| f.grant = Some(grant));
    }

    /// The id of the token the operation issued, revoked or inspected (an id, never a token).
    pub fn token(&self, id: impl ToString) {
        if self.ids {
            self.with(|f| f.token_id = Some(id.to_string()));
        }
    }

    /// The id of the bearer token that authenticated the request.
    pub fn caller_token(&self, id: impl ToString) {
        if self.ids {
            self.with(|f| f.caller_token_id = Some(id.to_string()));
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestLog {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<RequestLog>().cloned().unwrap_or_default())
    }
}

/// The client's request id if it is sane, else `None`.
fn sane_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let s = value?.to_str().ok()?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        && !s.starts_with(LONG_TOKEN_PREFIX)
        && !s.starts_with(CLIENT_SECRET_PREFIX);
    ok.then(|| s.to_owned())
}

/// A new request id: a UUIDv7 (time-ordered, so log lines sort by it). Its random bits come
/// from the thread's userspace generator: `Uuid::now_v7` would make a `getrandom` system call
/// for every request.
fn new_request_id() -> String {
    let mut random = [0u8; 10];
    crate::crypto::nonce_bytes(&mut random);
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid().to_string()
}

/// The request's method if it is a standard one; any other is `other` (a method is whatever
/// token the client sends, so it is not logged as sent).
fn method_name(m: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Middleware: request id, span, metrics and the access-log line.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let op = operation(req.uri().path());
    let method = method_name(req.method());
    let request_id = sane_request_id(req.headers().get(&REQUEST_ID)).unwrap_or_else(new_request_id);
    let ids = tracing::enabled!(target: "tokensmith::access", tracing::Level::INFO);
    let log = RequestLog { fields: Arc::default(), ids };
    req.extensions_mut().insert(log.clone());
    let span = tracing::info_span!("request", request_id = %request_id, operation = op);
    let mut res = next.run(req).instrument(span).await;
    let elapsed = start.elapsed();
    let status = res.status();
    let fields = log.with(std::mem::take);
    crate::telemetry::metrics::record_request(op, status, elapsed, fields.grant);
    tracing::info!(
        target: "tokensmith::access",
        request_id = %request_id,
        method,
        operation = op,
        status = status.as_u16(),
        latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        client_id = fields.client_id.as_deref(),
        grant = fields.grant,
        token_id = fields.token_id.as_deref(),
        caller_token_id = fields.caller_token_id.as_deref(),
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// The operation a path belongs to: a fixed set of labels, whatever the client sends.
pub fn operation(path: &str) -> &'static str {
    match path {
        "/v1/auth/tokens/long" => "issueLongTermToken",
        "/v1/auth/tokens/short" => "issueShortTermToken",
        "/v1/auth/tokens/introspect" => "introspect",
        "/v1/auth/tokens/exchange" => "exchangeToken",
        "/.well-known/jwks.json" => "jwks",
        "/.well-known/oauth-authorization-server" => "metadata",
        "/openapi.json" => "openapi",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/v1/auth/tokens/") && p.ends_with("/revoke") => "revokeToken",
        // The admin listener's: one label for its API, one for its document and the console.
        p if p.starts_with("/admin/v1/") => "admin",
        "/admin/openapi.json" | "/" | "/console.js" | "/console.css" => "adminConsole",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_a_fixed_set_of_operations() {
        assert_eq!(operation("/v1/auth/tokens/long"), "issueLongTermToken");
        assert_eq!(operation("/v1/auth/tokens/abc/revoke"), "revokeToken");
        assert_eq!(operation("/v1/auth/tokens/exchange"), "exchangeToken");
        assert_eq!(operation("/v1/auth/tokens/abc"), "unknown");
        assert_eq!(operation("/anything/else"), "unknown");
        assert_eq!(operation("/admin/v1/clients/cli_x/disable"), "admin");
    }

    #[test]
    fn only_sane_request_ids_are_kept() {
        let id = |s: &str| sane_request_id(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(id("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(id(""), None);
        assert_eq!(id(&"a".repeat(65)), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id("a\"b"), None);
        assert_eq!(id("tsl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA000000"), None);
        assert_eq!(id("tsc_AAAA"), None);
        assert_eq!(sane_request_id(None), None);
    }

    #[test]
    fn generated_request_ids_are_distinct_uuid_v7() {
        let a = uuid::Uuid::parse_str(&new_request_id()).unwrap();
        let b = uuid::Uuid::parse_str(&new_request_id()).unwrap();
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, b);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let (secs, _) = a.get_timestamp().unwrap().to_unix();
        assert!(secs.abs_diff(now) <= 2);
    }

    #[test]
    fn only_standard_methods_are_logged_by_name() {
        assert_eq!(method_name(&axum::http::Method::POST), "POST");
        let custom = axum::http::Method::from_bytes(b"tsl_SECRET").unwrap();
        assert_eq!(method_name(&custom), "other");
    }
}
