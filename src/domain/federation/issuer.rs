//! A trusted issuer: the exact `iss` of the external tokens tokensmith accepts, and where
//! their keys come from — a JWKS URL, the issuer's OIDC discovery document, or a JWK Set the
//! operator gave. Never from a token's own header (`jku`, `x5u`, `jwk`).

use serde_json::Value;

use crate::domain::client_key::ClientPublicKey;

/// The operator's name for an issuer: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerName(String);

impl IssuerName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !ok {
            return Err(format!("--name {s:?}: 1 to 64 of a-z, 0-9, -, _ and ."));
        }
        Ok(IssuerName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerKeys {
    /// Fetched from this URL.
    JwksUri(String),
    /// Fetched from the `jwks_uri` of `<issuer>/.well-known/openid-configuration`.
    Discovery,
    /// A JWK Set, as the operator gave it (checked when it was added).
    Jwks(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    pub name: IssuerName,
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    pub keys: IssuerKeys,
    pub created_at: i64,
}

/// Checks a URL tokensmith will fetch keys from, or that names an issuer: HTTPS, or HTTP to a
/// loopback address only (a test issuer on the same machine); no credentials, no fragment; at
/// most 512 bytes.
pub fn check_remote_url(what: &str, s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{what} {s:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the refused part is a credential.
        return Err(format!("{what}: a URL with credentials (user:password@) is refused"));
    }
    if s.len() > 512 || url.fragment().is_some() {
        return Err(format!("{what} {s:?}: at most 512 bytes, without a fragment"));
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Ok(url),
        ("http", Some(host)) if is_loopback(&host) => Ok(url),
        _ => Err(format!("{what} {s:?}: https:// is required (http:// only for a loopback address)")),
    }
}

/// Whether a token's (unverified) `iss` is in the form of a trusted issuer's — a URL, which no
/// client id can be — and so the token is an external identity token, not a client's assertion.
pub fn is_issuer_url(iss: &str) -> bool {
    iss.contains("://")
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

/// The most keys a JWK Set may hold, and its size.
pub const MAX_JWKS_KEYS: usize = 32;
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Checks a JWK Set: a `keys` array of 1 to 32 public keys, each of a kind tokensmith verifies
/// (Ed25519, P-256, RSA of 2048 to 8192 bits) and strong enough; `kid`s distinct. Answers the
/// set re-serialised, without anything but `keys`.
pub fn check_jwks(text: &str) -> Result<String, String> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("a JWK Set must be at most {MAX_JWKS_BYTES} bytes"));
    }
    let set: Value = serde_json::from_str(text).map_err(|e| format!("not a JWK Set: {e}"))?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or("not a JWK Set: no \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_JWKS_KEYS {
        return Err(format!("a JWK Set must hold 1 to {MAX_JWKS_KEYS} keys"));
    }
    let mut kids = std::collections::HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        ClientPublicKey::parse(&key.to_string()).map_err(|e| format!("key {i}: {e}"))?;
        let kid = key.get("kid").and_then(Value::as_str);
        if !kids.insert(kid) {
            return Err(format!("key {i}: the kid {kid:?} is used twice"));
        }
    }
    Ok(serde_json::json!({ "keys": keys }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_identifiers() {
        assert_eq!(IssuerName::parse("github-actions").unwrap().as_str(), "github-actions");
        for bad in ["", "GitHub", "a b", "a/b", &"x".repeat(65)] {
            assert!(IssuerName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_urls_are_https_or_loopback_http_without_credentials() {
        assert!(check_remote_url("--issuer", "https://token.actions.githubusercontent.com").is_ok());
        assert!(check_remote_url("--jwks-uri", "http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_remote_url("--jwks-uri", "http://[::1]:8080/jwks").is_ok());
        assert!(check_remote_url("--jwks-uri", "http://localhost/jwks").is_ok());
        for bad in [
            "http://issuer.example/jwks",
            "http://10.0.0.1/jwks",
            "https://user:pw@issuer.example",
            "https://issuer.example/#x",
            "file:///etc/passwd",
            "ftp://issuer.example",
            "not a url",
        ] {
            assert!(check_remote_url("--jwks-uri", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_jwk_set_holds_strong_public_keys_only() {
        let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}"#;
        let set = format!(r#"{{"keys":[{ed}],"extra":1}}"#);
        let kept: Value = serde_json::from_str(&check_jwks(&set).unwrap()).unwrap();
        assert!(kept.get("extra").is_none() && kept["keys"][0]["kid"] == "a");
        assert!(check_jwks(&format!(r#"{{"keys":[{ed},{ed}]}}"#)).unwrap_err().contains("twice"));
        assert!(check_jwks(r#"{"keys":[]}"#).is_err());
        assert!(check_jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err(), "a shared secret");
        assert!(check_jwks("[]").is_err() && check_jwks("{").is_err());
        let small_order =
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#;
        assert!(check_jwks(small_order).is_err(), "a key anyone can sign for");
    }
}
