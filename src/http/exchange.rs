//! Token exchange (RFC 8693): `POST /v1/auth/tokens/exchange` takes an external identity token
//! from a trusted issuer and answers a short-term token. The body is JSON (unknown fields
//! refused, like every JSON body here) or a form, as the RFC writes it (unknown parameters
//! ignored, RFC 6749 §3.2; a parameter given twice refused).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorResponse};
use super::extract::{ClientAddr, ClientKeyHeader, JsonOrFormBody, MediaType};
use super::observe::RequestLog;
use super::tokens::{ShortTokenResponse, no_store};
use super::{ApiContext, openapi};
use crate::domain::{Audience, ClientId, DomainError, ExchangeParams, IssuedShort, Mechanism, Scopes};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The parameters of RFC 8693 §2.1; a form's other parameters are ignored.
const FIELDS: &[&str] = &[
    "grant_type",
    "subject_token",
    "subject_token_type",
    "audience",
    "scope",
    "requested_token_type",
    "resource",
    "actor_token",
    "actor_token_type",
];

/// `TokenExchangeRequest` (RFC 8693 §2.1).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "An external identity token (a JWT from an issuer the operator trusts, such as a GitHub Actions \
or Kubernetes service-account token) to exchange for a short-term token of the client whose federation rule it \
matches. As JSON, or as `application/x-www-form-urlencoded` (RFC 8693 §2.1).",
    examples(json!({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "eyJhbGciOiJSUzI1NiIs…", "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "deploy"}))
)]
pub struct TokenExchangeRequest {
    /// Always `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[schema(schema_with = openapi::exchange_grant_type_schema)]
    pub grant_type: String,
    /// The external identity token: a JWT whose `iss` is a trusted issuer, whose `aud` is a
    /// federation rule's audience, and whose claims match that rule.
    #[schema(value_type = String, min_length = 1, max_length = 8192, format = Password)]
    pub subject_token: SecretString,
    /// `urn:ietf:params:oauth:token-type:jwt` (or `…:id_token`).
    #[schema(schema_with = openapi::subject_token_type_schema)]
    pub subject_token_type: String,
    /// The short-term token's `aud`: 1 to 256 characters of visible text; default: configured,
    /// the issuer unless set.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$")]
    pub audience: Option<String>,
    /// Space-separated scopes, within what the federation rule grants (otherwise 400
    /// `invalid_scope`); default: all of them.
    #[schema(min_length = 1, max_length = 8256)]
    pub scope: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token` (the default) or
    /// `urn:ietf:params:oauth:token-type:jwt`: the token is both, this names it in
    /// `issued_token_type`.
    #[schema(schema_with = openapi::requested_token_type_schema)]
    pub requested_token_type: Option<String>,
    /// Not supported (400): name the token's audience with `audience`.
    pub resource: Option<String>,
    /// Not supported (400): delegation is not offered.
    #[schema(value_type = Option<String>, format = Password)]
    pub actor_token: Option<SecretString>,
    /// Not supported (400), like `actor_token`.
    pub actor_token_type: Option<String>,
}

/// `TokenExchangeResponse` (RFC 8693 §2.2.1), with `200 OK`: issueShortTermToken's answer and
/// RFC 8693's two fields.
#[derive(Debug, Serialize, ToSchema)]
#[schema(description = "A short-term access token, as issueShortTermToken answers one, with RFC 8693's \
`issued_token_type` and `scope`. Revoking it (by `token_id`) works as for any short-term token.")]
pub struct TokenExchangeResponse {
    #[serde(flatten)]
    pub token: ShortTokenResponse,
    /// What `access_token` is: the `requested_token_type`, `…:access_token` unless asked otherwise.
    #[schema(schema_with = openapi::issued_token_type_schema)]
    pub issued_token_type: &'static str,
    /// The scopes the JWT holds, space-separated (RFC 6749 §5.1).
    pub scope: String,
}

/// The request, from either media type.
fn parse(body: &JsonOrFormBody) -> Result<TokenExchangeRequest, ApiError> {
    let invalid = |e: serde_json::Error| ApiError::invalid_request(format!("invalid request body: {e}"));
    match body.media_type {
        MediaType::Form => serde_json::from_value(form_fields(&body.bytes)?).map_err(invalid),
        _ if body.bytes.iter().all(u8::is_ascii_whitespace) => {
            Err(ApiError::invalid_request("a request body is required (JSON or a form)"))
        }
        _ => {
            // Straight into the struct, which refuses a key given twice (a `Value` keeps the last).
            let req = serde_json::from_slice(&body.bytes).map_err(invalid)?;
            let value: serde_json::Value = serde_json::from_slice(&body.bytes).map_err(invalid)?;
            // Present at all, `null` included, they ask for what is not offered.
            if let Some(name) = REFUSED_FIELDS.iter().find(|f| value.get(**f).is_some()) {
                return Err(ApiError::invalid_request(format!("{name} is not supported")));
            }
            Ok(req)
        }
    }
}

/// The parameters refused even when empty: what they ask for is not offered.
const REFUSED_FIELDS: &[&str] = &["resource", "actor_token", "actor_token_type"];

/// A form's parameters of RFC 8693 as a JSON object of strings: others ignored, empty ones
/// omitted (RFC 6749 §3.1) unless refused anyway, one given twice refused, and a bad
/// percent-escape or invalid UTF-8 refused (never replaced).
fn form_fields(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let mut map = serde_json::Map::new();
    for pair in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name = form_decode(name).map_err(|e| ApiError::invalid_request(format!("a form parameter name {e}")))?;
        if !FIELDS.contains(&name.as_str()) {
            continue;
        }
        let value = form_decode(value).map_err(|e| ApiError::invalid_request(format!("parameter {name} {e}")))?;
        if value.is_empty() && !REFUSED_FIELDS.contains(&name.as_str()) {
            continue;
        }
        if map.contains_key(&name) {
            return Err(ApiError::invalid_request(format!("parameter {name} is given more than once")));
        }
        map.insert(name, value.into());
    }
    Ok(serde_json::Value::Object(map))
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space, `%XX`
/// a byte; the bytes must be UTF-8.
fn form_decode(raw: &[u8]) -> Result<String, &'static str> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let hex = hex.and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("has a bad percent-escape")?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8")
}

/// The exchange the request asks for, and the `issued_token_type` to answer; a 400 for
/// anything this server does not offer.
fn exchange_params(req: TokenExchangeRequest) -> Result<(ExchangeParams, &'static str), ApiError> {
    if req.grant_type != TOKEN_EXCHANGE {
        return Err(DomainError::UnsupportedGrantType(format!("grant_type must be {TOKEN_EXCHANGE}")).into());
    }
    if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN].contains(&req.subject_token_type.as_str()) {
        return Err(ApiError::invalid_request(format!("subject_token_type must be {TOKEN_TYPE_JWT}")));
    }
    if req.actor_token.is_some() || req.actor_token_type.is_some() {
        return Err(ApiError::invalid_request("actor_token is not supported: delegation is not offered"));
    }
    if req.resource.is_some() {
        return Err(ApiError::invalid_request("resource is not supported: name the token's audience with audience"));
    }
    let issued_token_type = match req.requested_token_type.as_deref() {
        None | Some(TOKEN_TYPE_ACCESS_TOKEN) => TOKEN_TYPE_ACCESS_TOKEN,
        Some(TOKEN_TYPE_JWT) => TOKEN_TYPE_JWT,
        Some(_) => {
            return Err(ApiError::invalid_request(format!(
                "requested_token_type must be {TOKEN_TYPE_ACCESS_TOKEN} or {TOKEN_TYPE_JWT}"
            )));
        }
    };
    let scopes = req.scope.as_deref().map(scope).transpose()?;
    let audience = req.audience.map(Audience::parse).transpose().map_err(ApiError::invalid_request)?;
    Ok((ExchangeParams { subject_token: req.subject_token, client_key: None, scopes, audience }, issued_token_type))
}

fn scope(s: &str) -> Result<Scopes, ApiError> {
    match Scopes::from_space_separated(s) {
        Ok(scopes) if scopes.is_empty() => Err(DomainError::InvalidScope("scope names no scope".into()).into()),
        Ok(scopes) => Ok(scopes),
        Err(e) => Err(DomainError::InvalidScope(e).into()),
    }
}

/// `POST /v1/auth/tokens/exchange` (RFC 8693 token exchange).
#[utoipa::path(
    post,
    path = "/v1/auth/tokens/exchange",
    operation_id = "exchangeToken",
    tag = openapi::TAG_EXCHANGE,
    summary = "Exchange an external identity token for a short-term token",
    description = "Token exchange (RFC 8693): an identity token from an issuer the operator trusts (a GitHub \
Actions OIDC token, a Kubernetes service-account token, any OIDC provider's JWT) is verified against that \
issuer's keys, matched to exactly one client's federation rule, and answered with a short-term token of that \
client, with no long-term token in between. Every failure of the subject token is the one 401 `invalid_grant`; \
failures count against the source address.",
    request_body(content(
        (TokenExchangeRequest = "application/json"),
        (TokenExchangeRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Short-term token issued", body = TokenExchangeResponse,
            links(("RevokeToken" = (operation_id = "revokeToken", parameters(("tokenId" = "$response.body#/token_id")),
                description = "Revoke the new token by its id")))),
        (status = 400, description = "Bad request", body = ErrorResponse),
        (status = 401, description = "Unauthorized: the subject token is not accepted", body = ErrorResponse),
        (status = 429, description = "Too Many Requests", body = ErrorResponse),
    ),
    security((), ("ClientKey" = []))
)]
pub async fn exchange(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    ClientKeyHeader(client_key): ClientKeyHeader,
    log: RequestLog,
    body: JsonOrFormBody,
) -> Result<Response, ApiError> {
    log.grant(Mechanism::TokenExchange.as_str());
    let (mut params, issued_token_type) = exchange_params(parse(&body)?)?;
    params.client_key = client_key
        .map(|k| ClientId::parse(&k).ok_or_else(|| ApiError::invalid_request("X-Client-Key is not a valid client id")))
        .transpose()?;
    let issued: IssuedShort = ctx.service.exchange(params, addr).await?;
    log.client(&issued.client_id);
    log.token(&issued.id);
    let scope = issued.scopes.join(" ");
    let body = TokenExchangeResponse { token: ShortTokenResponse::from(issued), issued_token_type, scope };
    Ok(no_store((StatusCode::OK, Json(body)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    fn body(media_type: MediaType, text: &str) -> JsonOrFormBody {
        JsonOrFormBody { media_type, bytes: Bytes::from(text.to_owned()) }
    }

    fn params(media_type: MediaType, text: &str) -> Result<(ExchangeParams, &'static str), ApiError> {
        exchange_params(parse(&body(media_type, text))?)
    }

    const FORM: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=a.b.c";

    #[test]
    fn a_form_and_its_json_mean_the_same() {
        let json = serde_json::json!({"grant_type": TOKEN_EXCHANGE, "subject_token_type": TOKEN_TYPE_JWT,
            "subject_token": "a.b.c", "scope": "deploy read"})
        .to_string();
        let (from_json, t1) = params(MediaType::Json, &json).unwrap();
        let (from_form, t2) = params(MediaType::Form, &format!("{FORM}&scope=deploy+read")).unwrap();
        assert_eq!(from_json.subject_token.expose_secret(), from_form.subject_token.expose_secret());
        assert_eq!(from_json.scopes, from_form.scopes);
        assert_eq!((t1, t2), (TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ACCESS_TOKEN));
    }

    #[test]
    fn a_form_ignores_unknown_and_empty_parameters_and_refuses_repeated_ones() {
        assert!(params(MediaType::Form, &format!("{FORM}&client_id=x&options=y&audience=")).is_ok());
        let twice = params(MediaType::Form, &format!("{FORM}&scope=a&scope=b")).err().unwrap();
        assert_eq!((twice.status.as_u16(), twice.code), (400, "invalid_request"));
        let unknown_json = params(MediaType::Json, r#"{"grant_type":"x","client_id":"y"}"#).err().unwrap();
        assert_eq!(unknown_json.status.as_u16(), 400);
        let null_actor = format!(
            r#"{{"grant_type":"{TOKEN_EXCHANGE}","subject_token":"a","subject_token_type":"{TOKEN_TYPE_JWT}","actor_token":null}}"#
        );
        assert_eq!(params(MediaType::Json, &null_actor).err().unwrap().status.as_u16(), 400);
        let twice = format!(
            r#"{{"grant_type":"{TOKEN_EXCHANGE}","subject_token":"a","subject_token_type":"{TOKEN_TYPE_JWT}","scope":"a","scope":"b"}}"#
        );
        assert_eq!(params(MediaType::Json, &twice).err().unwrap().status.as_u16(), 400);
    }

    #[test]
    fn a_form_with_bad_escapes_or_bytes_is_refused_never_repaired() {
        for bad in [
            "&audience=a%FF",
            "&audience=%zz",
            "&audience=%+A",
            "&audience=a%",
            "&scope=deploy%C3",
            "&actor_token=",
            "&resource=",
        ] {
            let e = params(MediaType::Form, &format!("{FORM}{bad}")).err().unwrap();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"), "{bad}");
        }
        assert_eq!(form_decode(b"a+b%2Fc%C3%A9").unwrap(), "a b/cé");
        let (ok, _) = params(MediaType::Form, &format!("{FORM}&audience=https%3A%2F%2Fx&unknown=%FF")).unwrap();
        assert_eq!(ok.audience.unwrap().as_str(), "https://x", "an unknown parameter is not even decoded");
    }

    #[test]
    fn the_grant_type_is_checked_before_anything_else_is_used() {
        let other = FORM.replace("token-exchange", "jwt-bearer");
        assert_eq!(params(MediaType::Form, &other).err().unwrap().code, "unsupported_grant_type");
        let saml = FORM.replace("token-type%3Ajwt", "token-type%3Asaml2");
        assert_eq!(params(MediaType::Form, &saml).err().unwrap().code, "invalid_request");
    }

    proptest! {
        /// Any form or JSON body becomes an exchange or a 400: never a panic, never a 5xx.
        #[test]
        fn any_body_parses_to_an_exchange_or_a_bad_request(
            raw in "[a-z_=&%+.:0-9A-F ]{0,200}",
            pick in prop::sample::select(FIELDS.to_vec()),
            value in "\\PC{0,40}",
        ) {
            for text in [raw.clone(), format!("{FORM}&{pick}={value}"), format!("{{\"{pick}\":{value:?}}}")] {
                for media_type in [MediaType::Form, MediaType::Json] {
                    if let Err(e) = params(media_type, &text) {
                        prop_assert_eq!(e.status.as_u16(), 400, "{} for {}", e.code, text);
                    }
                }
            }
        }
    }
}
