//! Client public keys and the verification of their JWT assertions (RFC 7523).
//!
//! A client registers one public key: a PEM SubjectPublicKeyInfo or a JWK, Ed25519, P-256
//! or RSA. The key's type pins the one algorithm accepted from that client (EdDSA, ES256,
//! RS256); `none`, HMAC and every other algorithm are refused, whatever the header says.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// A parsed, usable client public key.
#[derive(Clone)]
pub struct ClientPublicKey {
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for ClientPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientPublicKey({:?})", self.alg)
    }
}

/// The registered form: the text as given and the algorithm it implies.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

impl ClientPublicKey {
    /// Parses a PEM SubjectPublicKeyInfo or a JWK. The error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.starts_with("-----BEGIN") {
            Self::parse_pem(t)
        } else if t.starts_with('{') {
            Self::parse_jwk(t)
        } else {
            Err("expected a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK (JSON object)".into())
        }
    }

    /// The key's JWK thumbprint (RFC 7638, SHA-256, base64url): the same for the PEM and the
    /// JWK form of one key, and what `kid` values and key pinning commonly use.
    pub fn thumbprint(&self) -> Option<String> {
        Jwk::from_decoding_key(&self.key, Some(self.alg))
            .and_then(|jwk| jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256))
            .ok()
    }

    fn parse_pem(t: &str) -> Result<Self, String> {
        if t.contains("PRIVATE KEY") {
            return Err("this is a private key; register the public key only".into());
        }
        if let Ok(key) = DecodingKey::from_ed_pem(t.as_bytes()) {
            return Ok(ClientPublicKey { alg: Algorithm::EdDSA, key });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(t.as_bytes()) {
            // An uncompressed P-256 point is 65 bytes; other curves are not accepted.
            let len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
            if len != 65 {
                return Err("only P-256 elliptic-curve keys are supported (ES256)".into());
            }
            return Ok(ClientPublicKey { alg: Algorithm::ES256, key });
        }
        if let Ok(key) = DecodingKey::from_rsa_pem(t.as_bytes()) {
            let len = key.try_get_as_bytes().map(<[u8]>::len).unwrap_or(0);
            // A PKCS#1 RSAPublicKey of a 2048-bit modulus is about 270 bytes.
            if len < 260 {
                return Err("RSA keys must be at least 2048 bits".into());
            }
            return Ok(ClientPublicKey { alg: Algorithm::RS256, key });
        }
        Err("the PEM is not an Ed25519, P-256 or RSA public key".into())
    }

    fn parse_jwk(t: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Private {
            d: Option<serde_json::Value>,
        }
        if serde_json::from_str::<Private>(t).ok().and_then(|p| p.d).is_some() {
            return Err("this JWK holds a private key; register the public key only".into());
        }
        let jwk: Jwk = serde_json::from_str(t).map_err(|e| format!("not a valid JWK: {e}"))?;
        let alg = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
            AlgorithmParameters::RSA(p) => {
                if p.n.len() < 342 {
                    return Err("RSA keys must be at least 2048 bits".into());
                }
                Algorithm::RS256
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err("symmetric (oct) keys are not accepted; register a public key".into());
            }
            _ => return Err("only Ed25519 (OKP), P-256 (EC) and RSA JWKs are supported".into()),
        };
        if let Some(declared) = jwk.common.key_algorithm {
            let matches = matches!(
                (declared, alg),
                (jsonwebtoken::jwk::KeyAlgorithm::EdDSA, Algorithm::EdDSA)
                    | (jsonwebtoken::jwk::KeyAlgorithm::ES256, Algorithm::ES256)
                    | (jsonwebtoken::jwk::KeyAlgorithm::RS256, Algorithm::RS256)
            );
            if !matches {
                return Err(format!("the JWK's alg does not match its key type (expected {})", alg_name(alg)));
            }
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("not a usable JWK: {e}"))?;
        Ok(ClientPublicKey { alg, key })
    }
}

/// The claims of an assertion this service reads.
#[derive(Debug, Deserialize)]
pub struct AssertionClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Reads the claimed client (`iss`, else `sub`) without verifying anything, only to choose
/// which registered key to verify with. Nothing else is trusted before verification.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let claims: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion).ok()?;
    claims.iss.or(claims.sub)
}

/// Whether the assertion's header names `alg` (and so could have been signed by a key of that
/// type).
pub fn header_alg_is(assertion: &str, alg: Algorithm) -> bool {
    jsonwebtoken::decode_header(assertion).is_ok_and(|h| h.alg == alg)
}

/// Verifies the signature with the client's key and its pinned algorithm. Time, audience
/// and identity claims are checked by the caller against its injected clock. The error is the
/// same whatever failed, so that it says nothing about the key.
pub fn verify_signature(assertion: &str, key: &ClientPublicKey) -> Result<AssertionClaims, String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "assertion is not valid".to_owned())?;
    if header.alg != key.alg {
        return Err("assertion is not valid".to_owned());
    }
    let mut v = Validation::new(key.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &v)
        .map(|d| d.claims)
        .map_err(|_| "assertion is not valid".to_owned())
}

/// Public keys whose private halves were drawn at random when this process first needed them
/// and then dropped, one per algorithm: nobody holds them, and they differ in every process.
/// An assertion naming an unknown client, a client without a key, or a client whose key is of
/// another type is verified against the one of its header's algorithm, so that it takes the
/// same path and time as an assertion with a bad signature from a registered client.
fn dummy_keys() -> &'static [ClientPublicKey] {
    static KEYS: std::sync::OnceLock<Vec<ClientPublicKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
        let mut keys = Vec::with_capacity(3);
        if let Ok(pair) = Ed25519KeyPair::generate() {
            let key = DecodingKey::from_ed_der(pair.public_key().as_ref());
            keys.push(ClientPublicKey { alg: Algorithm::EdDSA, key });
        }
        if let Ok(pair) = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING) {
            let key = DecodingKey::from_ec_der(pair.public_key().as_ref());
            keys.push(ClientPublicKey { alg: Algorithm::ES256, key });
        }
        if let Ok(pair) = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048) {
            let key = DecodingKey::from_rsa_der(pair.public_key().as_ref());
            keys.push(ClientPublicKey { alg: Algorithm::RS256, key });
        }
        keys
    })
}

/// Does the work of [`verify_signature`] against a key nobody holds (see [`dummy_keys`]); the
/// result is ignored by the caller, which refuses the assertion whatever it is.
pub fn verify_against_dummy(assertion: &str) {
    let Ok(header) = jsonwebtoken::decode_header(assertion) else { return };
    if let Some(key) = dummy_keys().iter().find(|k| k.alg == header.alg) {
        let _ = std::hint::black_box(verify_signature(assertion, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_random_dummy_key_for_every_algorithm() {
        let algs: Vec<Algorithm> = dummy_keys().iter().map(|k| k.alg).collect();
        assert_eq!(algs, [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256]);
        // Nobody holds them: their thumbprints are not the RFC examples used before, and a
        // JWT signed by a fresh key of the same type does not verify against them.
        for key in dummy_keys() {
            assert!(key.thumbprint().is_some());
        }
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
        let jwk = r#"{"kty":"RSA","e":"AQAB","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;
        let key = ClientPublicKey::parse(jwk).unwrap();
        assert_eq!(key.thumbprint().as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn a_key_has_one_thumbprint_in_either_form() {
        use p256::pkcs8::EncodePublicKey;
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let public = secret.public_key();
        let pem = public.to_public_key_pem(p256::pkcs8::LineEnding::LF).unwrap();
        let from_pem = ClientPublicKey::parse(&pem).unwrap().thumbprint().unwrap();
        let from_jwk = ClientPublicKey::parse(&public.to_jwk_string()).unwrap().thumbprint().unwrap();
        assert_eq!(from_pem, from_jwk);
        assert_eq!(from_pem.len(), 43, "SHA-256, base64url without padding: {from_pem}");
        let other = p256::SecretKey::from_slice(&[8u8; 32]).unwrap().public_key();
        assert_ne!(ClientPublicKey::parse(&other.to_jwk_string()).unwrap().thumbprint().unwrap(), from_pem);
    }
}
