//! Request parts, read defensively: bodies with a size limit and a content-type check,
//! bearer tokens, the client key header and the peer address.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;

use super::error::ApiError;
use super::{ApiContext, forwarded};
use crate::domain::Bearer;

/// A request body of at most the configured size. Oversize and non-JSON bodies are 400s
/// (the token operations document no 413 or 415).
pub struct RawBody(pub Bytes);

impl FromRequest<ApiContext> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiContext) -> Result<Self, ApiError> {
        match media_type(&req) {
            None | Some(MediaType::Json) => read_body(req, state).await.map(RawBody),
            Some(_) => Err(ApiError::invalid_request("Content-Type must be application/json")),
        }
    }
}

/// What a request body says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    Other,
}

/// The essence of the `Content-Type` header, if there is one.
fn media_type(req: &Request) -> Option<MediaType> {
    let ct = req.headers().get(header::CONTENT_TYPE)?;
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    Some(match essence {
        "application/x-www-form-urlencoded" => MediaType::Form,
        e if e == "application/json" || e.ends_with("+json") => MediaType::Json,
        _ => MediaType::Other,
    })
}

/// A body of at most the configured size sent as JSON or as a form, as OAuth's token endpoint
/// takes it (RFC 6749 §3.2); no `Content-Type` means JSON.
pub struct JsonOrFormBody {
    pub media_type: MediaType,
    pub bytes: Bytes,
}

impl FromRequest<ApiContext> for JsonOrFormBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiContext) -> Result<Self, ApiError> {
        let media_type = match media_type(&req) {
            None | Some(MediaType::Json) => MediaType::Json,
            Some(MediaType::Form) => MediaType::Form,
            Some(MediaType::Other) => {
                return Err(ApiError::invalid_request(
                    "Content-Type must be application/json or application/x-www-form-urlencoded",
                ));
            }
        };
        Ok(JsonOrFormBody { media_type, bytes: read_body(req, state).await? })
    }
}

/// Reads an uncompressed body of at most `body_limit` bytes within `body_timeout`.
async fn read_body(req: Request, state: &ApiContext) -> Result<Bytes, ApiError> {
    if let Some(encoding) = req.headers().get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("").trim();
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(ApiError::invalid_request("Content-Encoding is not supported: send the body uncompressed"));
        }
    }
    // Most short-term requests have no body: skip collecting one.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return Ok(Bytes::new());
    }
    let limit = state.body_limit;
    // A declared size past the limit is refused before a byte is read.
    if axum::body::HttpBody::size_hint(req.body()).lower() > limit as u64 {
        return Err(ApiError::invalid_request(format!("request body must be at most {limit} bytes")));
    }
    // A body that trickles in holds a connection and a task: it gets `body_timeout` in all.
    match tokio::time::timeout(state.body_timeout, axum::body::to_bytes(req.into_body(), limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::invalid_request(format!("request body must be at most {limit} bytes"))),
        Err(_) => Err(ApiError::invalid_request(format!(
            "request body did not arrive within {} seconds",
            state.body_timeout.as_secs()
        ))),
    }
}

impl RawBody {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    /// Parses the body as `T`; the error names what is wrong (serde's message, which points
    /// at the field and position).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.is_empty() {
            return Err(ApiError::invalid_request("a JSON request body is required"));
        }
        serde_json::from_slice(&self.0).map_err(|e| ApiError::invalid_request(format!("invalid request body: {e}")))
    }

    /// Refuses a body on an operation that takes none (an empty JSON object, which says
    /// nothing, aside): what it says would otherwise be ignored while the change is made.
    pub fn none(&self) -> Result<(), ApiError> {
        let said: Vec<u8> = self.0.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        if said.is_empty() || said == b"{}" {
            return Ok(());
        }
        Err(ApiError::invalid_request("this operation takes no request body"))
    }

    /// Like [`RawBody::json`], for a body that must be a JSON object (serde would otherwise read
    /// an array as a struct's fields in order).
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.is_empty() && self.0.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid_request("the request body must be a JSON object"));
        }
        self.json()
    }

    /// Like [`RawBody::object`], but an empty body is `None`.
    pub fn optional_object<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        if self.is_empty() { Ok(None) } else { self.object().map(Some) }
    }

    /// Like [`RawBody::json`], but an empty body is `None`.
    pub fn optional_json<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        if self.is_empty() { Ok(None) } else { self.json().map(Some) }
    }
}

/// The `Authorization` header, as presented: absent, malformed, or `Bearer <token>`. The
/// domain decides what each means (a missing or malformed one is a failed authentication).
impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Bearer::Absent);
        };
        // Two credentials in one request: which one is meant is anybody's guess.
        if values.next().is_some() {
            return Ok(Bearer::Malformed);
        }
        let Ok(value) = value.to_str() else {
            return Ok(Bearer::Malformed);
        };
        // RFC 6750 §2.1: the scheme is case-insensitive; one space; then the token.
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Ok(Bearer::Malformed),
        };
        if token.is_empty() || token.len() > 8192 {
            return Ok(Bearer::Malformed);
        }
        Ok(Bearer::Token(SecretString::from(token.to_owned())))
    }
}

/// The address a request counts against: the TCP peer, or behind a trusted proxy the client
/// it forwarded for (see `http::forwarded`).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<ApiContext> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &ApiContext) -> Result<Self, Self::Rejection> {
        let peer = match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => addr.ip(),
            None => IpAddr::from([0, 0, 0, 0]),
        };
        Ok(ClientAddr(forwarded::client_addr(peer, &parts.headers, &state.trusted_proxies)))
    }
}

/// The `X-Client-Key` header (the ClientKey security scheme), if any.
pub struct ClientKeyHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all("x-client-key").iter();
        let first = values.next();
        // Two client ids in one request: which one is meant is anybody's guess.
        if values.next().is_some() {
            return Err(ApiError::invalid_request("X-Client-Key must be sent once"));
        }
        match first {
            None => Ok(ClientKeyHeader(None)),
            Some(v) => v
                .to_str()
                .map(|s| ClientKeyHeader(Some(s.trim().to_owned())))
                .map_err(|_| ApiError::invalid_request("X-Client-Key must be visible ASCII")),
        }
    }
}
