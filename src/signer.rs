//! Signing keys and short-term JWTs (RFC 9068 profile).
//!
//! A [`KeySet`] is a pure value: the keys that verify, the one that signs, and the JWKS that
//! publishes them. It never touches storage; `TokenService` loads the key records, decrypts
//! them and builds a `KeySet`. Tokens are signed with the parsed key pair held in memory
//! (aws-lc-rs), so the hot path does no key parsing. Verification is pinned: a token's header
//! must name a `kid` of this set and exactly that key's algorithm, and `typ` must be `at+jwt`.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The algorithms this service signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    EdDSA,
    ES256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::ES256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" | "eddsa" | "Ed25519" | "ed25519" => Some(SigningAlg::EdDSA),
            "ES256" | "es256" => Some(SigningAlg::ES256),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private signing key in PKCS#8 form, with its id. Redacted in `Debug`.
pub struct KeyMaterial {
    pub kid: String,
    pub alg: SigningAlg,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial {{ kid: {}, alg: {}, pkcs8: <redacted> }}", self.kid, self.alg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("signing key {0} is not a valid {1} PKCS#8 key")]
    Invalid(String, SigningAlg),
    #[error("no signing key")]
    Empty,
}

enum Pair {
    Ed(Ed25519KeyPair),
    Es(EcdsaKeyPair),
}

impl Pair {
    fn parse(alg: SigningAlg, pkcs8: &[u8]) -> Option<Self> {
        match alg {
            SigningAlg::EdDSA => Ed25519KeyPair::from_pkcs8(pkcs8).ok().map(Pair::Ed),
            SigningAlg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).ok().map(Pair::Es),
        }
    }

    fn public_jwk(&self) -> serde_json::Value {
        match self {
            Pair::Ed(k) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref()),
            }),
            Pair::Es(k) => {
                // Uncompressed point: 0x04 ‖ x (32) ‖ y (32).
                let p = k.public_key().as_ref();
                serde_json::json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(p.get(1..33).unwrap_or_default()),
                    "y": URL_SAFE_NO_PAD.encode(p.get(33..65).unwrap_or_default()),
                })
            }
        }
    }

    fn sign(&self, msg: &[u8]) -> Option<Vec<u8>> {
        match self {
            Pair::Ed(k) => Some(k.sign(msg).as_ref().to_vec()),
            Pair::Es(k) => k.sign(&SystemRandom::new(), msg).ok().map(|s| s.as_ref().to_vec()),
        }
    }
}

/// RFC 7638 thumbprint of a public JWK: the canonical key id.
fn thumbprint(jwk: &serde_json::Value) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3).
    let canonical = match jwk["kty"].as_str() {
        Some("OKP") => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap_or(""),
            jwk["x"].as_str().unwrap_or("")
        ),
        _ => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap_or(""),
            jwk["x"].as_str().unwrap_or(""),
            jwk["y"].as_str().unwrap_or("")
        ),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Generates a new private key of `alg`.
pub fn generate(alg: SigningAlg) -> Result<KeyMaterial, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = match alg {
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?,
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| KeyError::Generate)?
        }
    };
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let pair = Pair::parse(alg, &pkcs8).ok_or(KeyError::Generate)?;
    let kid = thumbprint(&pair.public_jwk());
    Ok(KeyMaterial { kid, alg, pkcs8 })
}

struct Verifier {
    alg: SigningAlg,
    /// Parsed once: parsing per verification would cost more than the verification.
    key: ParsedPublicKey,
}

/// The claims of a short-term token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShortClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub scope: String,
    /// The long-term token this one was minted from, in tokens issued before this claim was
    /// dropped (the `jti` carries it, authenticated); checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ltid: Option<String>,
}

/// The claims of a token being issued, borrowed from the request's values (the same members
/// as [`ShortClaims`], in the same order).
#[derive(Debug, Serialize)]
pub struct NewShortClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    pub scope: &'a str,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

/// Why a presented JWT was refused (never shown verbatim to a client beyond this text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token header is not acceptable")]
    Header,
    #[error("token was not signed by a key of this service")]
    UnknownKey,
    #[error("token signature is not valid")]
    Signature,
}

/// The keys in force: one that signs, all that verify, and their JWKS.
pub struct KeySet {
    active_kid: String,
    active: Pair,
    /// Pre-encoded JOSE header of the active key: it is the same for every token.
    header_b64: String,
    verifiers: HashMap<String, Verifier>,
    jwks: serde_json::Value,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("active_kid", &self.active_kid).finish_non_exhaustive()
    }
}

impl KeySet {
    /// Builds the set from key material; `active` names the signing key.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a KeyMaterial>, active: &str) -> Result<Self, KeyError> {
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing = None;
        for k in keys {
            let pair = Pair::parse(k.alg, &k.pkcs8).ok_or_else(|| KeyError::Invalid(k.kid.clone(), k.alg))?;
            let mut jwk = pair.public_jwk();
            jwk["kid"] = k.kid.clone().into();
            jwk["use"] = "sig".into();
            jwk["alg"] = k.alg.as_str().into();
            jwks.push(jwk);
            let parsed = match &pair {
                Pair::Ed(p) => ParsedPublicKey::new(&ED25519, p.public_key().as_ref()),
                Pair::Es(p) => ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, p.public_key().as_ref()),
            };
            let key = parsed.map_err(|_| KeyError::Invalid(k.kid.clone(), k.alg))?;
            verifiers.insert(k.kid.clone(), Verifier { alg: k.alg, key });
            if k.kid == active {
                signing = Some((pair, k.alg));
            }
        }
        let (active_pair, alg) = signing.ok_or(KeyError::Empty)?;
        let header = serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": active});
        Ok(KeySet {
            active_kid: active.to_owned(),
            active: active_pair,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            verifiers,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// How many keys the set publishes and verifies with.
    pub fn key_count(&self) -> usize {
        self.verifiers.len()
    }

    /// The JWK Set (RFC 7517) to publish.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// Signs `claims` as a compact JWS with the active key.
    pub fn sign(&self, claims: &impl Serialize) -> Option<String> {
        let mut payload = Vec::with_capacity(384);
        serde_json::to_writer(&mut payload, claims).ok()?;
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(&self.header_b64);
        out.push('.');
        crate::crypto::push_base64url(&mut out, &payload);
        let sig = self.active.sign(out.as_bytes())?;
        out.push('.');
        crate::crypto::push_base64url(&mut out, &sig);
        Some(out)
    }

    /// Verifies a JWT issued by this service and returns its claims. Time and revocation are
    /// the caller's to check.
    pub fn verify(&self, jwt: &str) -> Result<ShortClaims, VerifyError> {
        if jwt.len() > 8192 {
            return Err(VerifyError::Malformed);
        }
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD.decode(h).map_err(|_| VerifyError::Malformed)?;
        let header: JoseHeader = serde_json::from_slice(&header_json).map_err(|_| VerifyError::Header)?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(VerifyError::Header);
        }
        let kid = header.kid.ok_or(VerifyError::Header)?;
        let v = self.verifiers.get(&kid).ok_or(VerifyError::UnknownKey)?;
        // Pinned: the algorithm is the key's, and the header must agree with it.
        if header.alg != v.alg.as_str() {
            return Err(VerifyError::Header);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| VerifyError::Malformed)?;
        let signed = &jwt.as_bytes()[..h.len() + 1 + p.len()];
        v.key.verify_sig(signed, &sig).map_err(|_| VerifyError::Signature)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ShortClaims {
        ShortClaims {
            iss: "http://i".into(),
            sub: "cli_1".into(),
            client_id: "cli_1".into(),
            aud: "a".into(),
            iat: 1,
            exp: 2,
            jti: "st_x".into(),
            scope: "a b".into(),
            ltid: Some("l".into()),
        }
    }

    #[test]
    fn signs_and_verifies_with_both_algorithms() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
            let k = generate(alg).unwrap();
            let set = KeySet::new(std::slice::from_ref(&k), &k.kid).unwrap();
            let jwt = set.sign(&claims()).unwrap();
            assert_eq!(set.verify(&jwt).unwrap(), claims());
            // Any change to the payload breaks the signature.
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let other = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
            parts[1] = &other;
            assert_eq!(set.verify(&parts.join(".")), Err(VerifyError::Signature));
        }
    }

    #[test]
    fn new_tokens_carry_no_ltid_and_older_ones_still_verify() {
        let k = generate(SigningAlg::EdDSA).unwrap();
        let set = KeySet::new(std::slice::from_ref(&k), &k.kid).unwrap();
        let c = claims();
        let new = NewShortClaims {
            iss: &c.iss,
            sub: &c.sub,
            client_id: &c.client_id,
            aud: &c.aud,
            iat: c.iat,
            exp: c.exp,
            jti: &c.jti,
            scope: &c.scope,
        };
        let jwt = set.sign(&new).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("ltid"));
        assert_eq!(set.verify(&jwt).unwrap(), ShortClaims { ltid: None, ..claims() });
        // A token issued before the claim was dropped keeps its ltid.
        assert_eq!(set.verify(&set.sign(&claims()).unwrap()).unwrap().ltid.as_deref(), Some("l"));
    }

    #[test]
    fn refuses_none_and_mismatched_algorithms() {
        let k = generate(SigningAlg::EdDSA).unwrap();
        let set = KeySet::new(std::slice::from_ref(&k), &k.kid).unwrap();
        let jwt = set.sign(&claims()).unwrap();
        let (_, rest) = jwt.split_once('.').unwrap();
        for alg in ["none", "HS256", "ES256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{}"}}"#, k.kid));
            assert!(set.verify(&format!("{h}.{rest}")).is_err(), "{alg}");
        }
        assert_eq!(set.verify("a.b"), Err(VerifyError::Malformed));
        // A token from another key set is unknown here.
        let k2 = generate(SigningAlg::EdDSA).unwrap();
        let other = KeySet::new(std::slice::from_ref(&k2), &k2.kid).unwrap();
        assert_eq!(set.verify(&other.sign(&claims()).unwrap()), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn jwks_lists_every_key_with_its_kid() {
        let a = generate(SigningAlg::EdDSA).unwrap();
        let b = generate(SigningAlg::ES256).unwrap();
        let set = KeySet::new(&[a, b], "nope");
        assert!(set.is_err());
        let a = generate(SigningAlg::EdDSA).unwrap();
        let b = generate(SigningAlg::ES256).unwrap();
        let kid = b.kid.clone();
        let set = KeySet::new(&[a, b], &kid).unwrap();
        let keys = set.jwks()["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().any(|k| k["kid"] == kid.as_str() && k["crv"] == "P-256"));
        assert!(format!("{:?}", generate(SigningAlg::EdDSA).unwrap()).contains("redacted"));
    }
}
