//! Verifying an external identity token against its trusted issuer's keys: the signature with
//! the algorithm its key's type pins (EdDSA, ES256, RS256), then `iss`, `exp`, `nbf`, `iat`
//! with the usual skew, and a lifetime no longer than the configured maximum. Keys come from
//! the issuer's key set only: `jku`, `x5u` and `jwk` in the header are never read.

use serde_json::Value;

use crate::domain::client_key::{ClientPublicKey, verify_to_claims};

/// The clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const SKEW_SECS: i64 = 30;
/// The longest external token text read.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// One of an issuer's verification keys.
#[derive(Clone)]
pub struct ExternalKey {
    pub kid: Option<String>,
    pub key: ClientPublicKey,
}

impl std::fmt::Debug for ExternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalKey").field("kid", &self.kid).field("alg", &self.key.alg).finish()
    }
}

/// The verified claims of an external token, and the facts the audit trail names.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub claims: Value,
    pub sub: Option<String>,
    pub jti: Option<String>,
    pub exp: i64,
}

/// Why an external token was refused; every reason is answered with the same failure, the
/// reason goes to the audit trail only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    Expired,
    NotYetValid,
    TooLong,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::UnknownKey => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::TooLong => "lifetime_too_long",
        }
    }
}

/// The `kid` of a token's header, unverified: which key to look for.
pub fn header_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}

/// Verifies `token` as a token of `iss`, signed by one of `keys`, at `now` (Unix seconds).
pub fn verify(
    token: &str,
    iss: &str,
    keys: &[ExternalKey],
    now: i64,
    max_lifetime: i64,
) -> Result<ExternalIdentity, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
    let key = choose_key(keys, header.kid.as_deref(), header.alg)?;
    let claims = verify_to_claims(token, &key.key).ok_or(Refusal::BadSignature)?;
    check_times(&claims, iss, now, max_lifetime)?;
    Ok(ExternalIdentity {
        sub: string_claim(&claims, "sub")?,
        jti: string_claim(&claims, "jti")?,
        exp: claims["exp"].as_i64().ok_or(Refusal::Malformed)?,
        claims,
    })
}

/// A claim RFC 7519 makes a string: absent, or a string; anything else is malformed (a `jti`
/// of another type must not escape being single-use).
fn string_claim(claims: &Value, name: &str) -> Result<Option<String>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::Malformed),
    }
}

/// The key the header names (by `kid`), or without a `kid` the one key of the header's
/// algorithm; its type must be the header's algorithm (no HMAC, no `none`, no confusion).
fn choose_key<'k>(
    keys: &'k [ExternalKey],
    kid: Option<&str>,
    alg: jsonwebtoken::Algorithm,
) -> Result<&'k ExternalKey, Refusal> {
    let mut candidates = keys.iter().filter(|k| k.key.alg == alg);
    let key = match kid {
        Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
        None => match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        },
    };
    key.ok_or(Refusal::UnknownKey)
}

fn check_times(claims: &Value, iss: &str, now: i64, max_lifetime: i64) -> Result<(), Refusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(iss) {
        return Err(Refusal::WrongIssuer);
    }
    let time = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(Refusal::Malformed),
    };
    let exp = time("exp")?.ok_or(Refusal::Malformed)?;
    let (nbf, iat) = (time("nbf")?, time("iat")?);
    if exp + SKEW_SECS <= now {
        return Err(Refusal::Expired);
    }
    if nbf.is_some_and(|t| t > now + SKEW_SECS) || iat.is_some_and(|t| t > now + SKEW_SECS) {
        return Err(Refusal::NotYetValid);
    }
    // A long-lived token is refused whatever is left of it: counted from its issue (or its
    // start), else from now.
    let start = iat.or(nbf).unwrap_or(now).min(now);
    if exp - start > max_lifetime {
        return Err(Refusal::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://token.actions.githubusercontent.com";
    const NOW: i64 = 1_800_000_000;

    struct Signer {
        encoding: EncodingKey,
        public: ExternalKey,
    }

    fn signer(kid: Option<&str>) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x}).to_string();
        Signer {
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public: ExternalKey { kid: kid.map(str::to_owned), key: ClientPublicKey::parse(&jwk).unwrap() },
        }
    }

    fn sign(s: &Signer, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &s.encoding).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": ISS, "sub": "repo:acme/deploy:ref:refs/heads/main", "aud": "https://tokensmith.example",
               "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 290, "jti": "run-1"})
    }

    #[test]
    fn a_token_signed_by_a_key_of_its_issuer_verifies_with_its_identity() {
        let s = signer(Some("k1"));
        let id = verify(&sign(&s, Some("k1"), claims()), ISS, std::slice::from_ref(&s.public), NOW, 3600).unwrap();
        assert_eq!(
            (id.sub.as_deref(), id.jti.as_deref(), id.exp),
            (Some("repo:acme/deploy:ref:refs/heads/main"), Some("run-1"), NOW + 290)
        );
        let alone = signer(None);
        assert!(
            verify(&sign(&alone, None, claims()), ISS, std::slice::from_ref(&alone.public), NOW, 3600).is_ok(),
            "one key, no kid"
        );
    }

    #[test]
    fn a_jti_or_sub_that_is_not_a_string_is_malformed() {
        let s = signer(Some("k1"));
        for (name, value) in [("jti", json!(424242)), ("jti", json!(true)), ("jti", json!({})), ("sub", json!(["a"]))] {
            let mut c = claims();
            c[name] = value;
            let r = verify(&sign(&s, Some("k1"), c), ISS, std::slice::from_ref(&s.public), NOW, 3600);
            assert!(r.is_err(), "{name}");
        }
    }

    #[test]
    fn keys_are_the_issuers_own_chosen_by_kid_and_pinned_to_their_type() {
        let (s, other) = (signer(Some("k1")), signer(Some("k2")));
        let keys = [s.public.clone(), other.public.clone()];
        assert_eq!(verify(&sign(&s, Some("k2"), claims()), ISS, &keys, NOW, 3600).unwrap_err(), Refusal::BadSignature);
        assert_eq!(verify(&sign(&s, Some("k9"), claims()), ISS, &keys, NOW, 3600).unwrap_err(), Refusal::UnknownKey);
        assert_eq!(
            verify(&sign(&s, None, claims()), ISS, &keys, NOW, 3600).unwrap_err(),
            Refusal::UnknownKey,
            "no kid, two keys"
        );
        // HS256 keyed with the public key's bytes, and `none`: no key has their type.
        let hs =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(b"x").unwrap())
                .unwrap();
        assert_eq!(verify(&hs, ISS, &keys, NOW, 3600).unwrap_err(), Refusal::UnknownKey);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#));
        assert_eq!(verify(&none, ISS, &keys, NOW, 3600).unwrap_err(), Refusal::Malformed);
        // A jku pointing elsewhere changes nothing: the header's keys are never read.
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        header.jku = Some("https://evil.example/jwks".into());
        let with_jku = jsonwebtoken::encode(&header, &claims(), &other.encoding).unwrap();
        assert_eq!(verify(&with_jku, ISS, &keys, NOW, 3600).unwrap_err(), Refusal::BadSignature);
        assert_eq!(verify("not.a.jwt", ISS, &keys, NOW, 3600).unwrap_err(), Refusal::Malformed);
    }

    #[test]
    fn issuer_times_and_lifetime_are_checked_with_the_skew() {
        let s = signer(Some("k1"));
        let keys = [s.public.clone()];
        let with = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            verify(&sign(&s, Some("k1"), c), ISS, &keys, NOW, 3600)
        };
        assert_eq!(with(&|c| c["iss"] = json!("https://evil.example")).unwrap_err(), Refusal::WrongIssuer);
        assert_eq!(with(&|c| c["exp"] = json!(NOW - SKEW_SECS)).unwrap_err(), Refusal::Expired);
        assert!(with(&|c| c["exp"] = json!(NOW - SKEW_SECS + 1)).is_ok(), "inside the skew");
        assert_eq!(with(&|c| c["nbf"] = json!(NOW + SKEW_SECS + 1)).unwrap_err(), Refusal::NotYetValid);
        assert_eq!(with(&|c| c["iat"] = json!(NOW + SKEW_SECS + 1)).unwrap_err(), Refusal::NotYetValid);
        assert_eq!(with(&|c| c["exp"] = json!(NOW + 3601)).unwrap_err(), Refusal::TooLong);
        let issued_long_ago = |c: &mut Value| {
            c["iat"] = json!(NOW - 7000);
            c["nbf"] = json!(NOW - 7000);
        };
        assert_eq!(with(&issued_long_ago).unwrap_err(), Refusal::TooLong, "a day-long token with minutes left");
        assert_eq!(with(&|c| c["exp"] = json!("soon")).unwrap_err(), Refusal::Malformed);
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })
            .unwrap_err(),
            Refusal::Malformed
        );
    }
}
