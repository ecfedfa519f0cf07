//! Client public keys and the verification of their JWT assertions (RFC 7523).
//!
//! A client registers one public key: a PEM SubjectPublicKeyInfo or a JWK, Ed25519, P-256
//! or RSA. The key's type pins the one algorithm accepted from that client (EdDSA, ES256,
//! RS256); `none`, HMAC and every other algorithm are refused, whatever the header says.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        let key = if t.starts_with("-----BEGIN") {
            Self::parse_pem(t)?
        } else if t.starts_with('{') {
            Self::parse_jwk(t)?
        } else {
            return Err("expected a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK (JSON object)".into());
        };
        key.check_strength(t)?;
        Ok(key)
    }

    /// Refuses keys that decode but must not be trusted: an Ed25519 point that is not canonical,
    /// is of small order or has a torsion component (with a small-order key, anyone can make a
    /// signature that verifies); a point that is not on P-256 (another curve's, or none); an RSA
    /// key whose exponent is even or 1, or whose modulus is outside 2048–8192 bits.
    fn check_strength(&self, text: &str) -> Result<(), String> {
        match self.alg {
            Algorithm::EdDSA => check_ed25519(self.key.try_get_as_bytes().unwrap_or_default()),
            Algorithm::ES256 => check_p256(self.key.try_get_as_bytes().unwrap_or_default()),
            _ => match self.key.try_get_as_bytes() {
                Ok(pkcs1) => check_rsa_der(pkcs1),
                Err(_) => check_rsa_jwk(text),
            },
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
                return Err("RSA keys must be 2048 to 8192 bits".into());
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
                    return Err("RSA keys must be 2048 to 8192 bits".into());
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

/// An Ed25519 public key: the canonical encoding of a point of the prime-order subgroup.
fn check_ed25519(raw: &[u8]) -> Result<(), String> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let bad = || Err("not a usable Ed25519 public key (not a point of the curve's prime-order group)".into());
    let Ok(bytes) = <[u8; 32]>::try_from(raw) else { return bad() };
    let Some(point) = CompressedEdwardsY(bytes).decompress() else { return bad() };
    if point.compress().to_bytes() != bytes || point.is_small_order() || !point.is_torsion_free() {
        return bad();
    }
    Ok(())
}

/// A P-256 public key: an uncompressed point on the curve (aws-lc checks it).
fn check_p256(point: &[u8]) -> Result<(), String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
    if point.len() != 65 || ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).is_err() {
        return Err("only P-256 elliptic-curve keys are supported (ES256), as a point on the curve".into());
    }
    Ok(())
}

/// The RSA key sizes accepted, in bytes of modulus: 2048 to 8192 bits.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// An RSA public key given as a PKCS#1 RSAPublicKey (aws-lc checks its exponent).
fn check_rsa_der(pkcs1: &[u8]) -> Result<(), String> {
    let key = aws_lc_rs::rsa::PublicKey::from_der(pkcs1).map_err(|_| "not a usable RSA public key".to_owned())?;
    let n = key.modulus();
    let e = key.exponent();
    check_rsa(n.big_endian_without_leading_zero(), e.big_endian_without_leading_zero())
}

/// An RSA public key given as a JWK's `n` and `e`.
fn check_rsa_jwk(text: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Rsa {
        n: String,
        e: String,
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| "the RSA JWK's n or e is not base64url".to_owned());
    let jwk: Rsa = serde_json::from_str(text).map_err(|e| format!("not a valid RSA JWK: {e}"))?;
    let (n, e) = (decode(&jwk.n)?, decode(&jwk.e)?);
    let strip = |b: &[u8]| b.iter().position(|&x| x != 0).map_or(Vec::new(), |i| b[i..].to_vec());
    check_rsa(&strip(&n), &strip(&e))?;
    let components = aws_lc_rs::rsa::PublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
    let key: Result<aws_lc_rs::rsa::PublicEncryptingKey, _> = components.try_into();
    key.map(drop).map_err(|_| "not a usable RSA public key".into())
}

/// The modulus (2048–8192 bits) and the exponent (odd, at least 3, at most 32 bits), both
/// big-endian without leading zeros.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    if !RSA_MODULUS_BYTES.contains(&n.len()) {
        return Err("RSA keys must be 2048 to 8192 bits".into());
    }
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    if e.is_empty() || e.len() > 4 || !odd || e == [1] {
        return Err("the RSA key's public exponent must be odd and at least 3 (usually 65537)".into());
    }
    Ok(())
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
    /// Only who the token says it is from: the other claims are checked once it is verified.
    #[derive(Deserialize)]
    struct Claimed {
        iss: Option<String>,
        sub: Option<String>,
    }
    let claims: Claimed = jsonwebtoken::dangerous::insecure_decode_claims(assertion).ok()?;
    claims.iss.or(claims.sub)
}

/// Reads the `iss` claim alone, without verifying anything (other claims of any type are not
/// read): whether the token names a trusted issuer, whose verification then answers for it.
pub fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Claimed {
        iss: Option<String>,
    }
    let claims: Claimed = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    claims.iss
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
    jsonwebtoken::decode::<AssertionClaims>(assertion, &key.key, &signature_only(key.alg))
        .map(|d| d.claims)
        .map_err(|_| "assertion is not valid".to_owned())
}

/// Verifies `token`'s signature with `key`, its algorithm pinned to the key's type, and answers
/// its claims as JSON (checked by the caller: no claim is validated here).
pub fn verify_to_claims(token: &str, key: &ClientPublicKey) -> Option<serde_json::Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != key.alg {
        return None;
    }
    jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &signature_only(key.alg)).ok().map(|d| d.claims)
}

/// A validation of the signature alone, with `alg`: every claim is the caller's to check.
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
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
    use base64::engine::general_purpose::STANDARD;

    fn pem(spki: &[u8]) -> String {
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki))
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn ed25519_pem(point: &[u8]) -> String {
        pem(&[hex("302a300506032b6570032100"), point.to_vec()].concat())
    }

    fn ed25519_jwk(point: &[u8]) -> String {
        format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(point))
    }

    #[test]
    fn ed25519_keys_of_small_order_with_torsion_or_not_canonical_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let order_8 = hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
        let order_2 = hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        let non_canonical = hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        // A real point plus a point of order 2: a key with a torsion component.
        let torsion = {
            use curve25519_dalek::edwards::CompressedEdwardsY;
            let real = curve25519_dalek::constants::ED25519_BASEPOINT_POINT * curve25519_dalek::Scalar::from(7u64);
            let t = CompressedEdwardsY(<[u8; 32]>::try_from(order_2.as_slice()).unwrap()).decompress().unwrap();
            (real + t).compress().to_bytes().to_vec()
        };
        for bad in [identity.to_vec(), vec![0u8; 32], order_8, order_2.clone(), non_canonical, torsion] {
            for text in [ed25519_pem(&bad), ed25519_jwk(&bad)] {
                let err = ClientPublicKey::parse(&text).unwrap_err();
                assert!(err.contains("not a usable Ed25519 public key"), "{err}");
            }
        }
        let good = dummy_keys()[0].key.try_get_as_bytes().unwrap().to_vec();
        assert!(ClientPublicKey::parse(&ed25519_pem(&good)).is_ok());
        assert!(ClientPublicKey::parse(&ed25519_jwk(&good)).is_ok());
    }

    #[test]
    fn ec_keys_must_be_points_of_p256() {
        // secp256k1's generator, as an EC SubjectPublicKeyInfo: another curve.
        let k1 = hex(concat!(
            "3056301006072a8648ce3d020106052b8104000a034200",
            "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
        ));
        assert!(ClientPublicKey::parse(&pem(&k1)).unwrap_err().contains("P-256"));
        let off_curve = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode([7u8; 32]),
            URL_SAFE_NO_PAD.encode([9u8; 32])
        );
        assert!(ClientPublicKey::parse(&off_curve).unwrap_err().contains("P-256"));
        let good = p256::SecretKey::from_slice(&[7u8; 32]).unwrap().public_key().to_jwk_string();
        assert!(ClientPublicKey::parse(&good).is_ok());
    }

    #[test]
    fn rsa_keys_need_an_odd_exponent_of_at_least_3_and_2048_to_8192_bits() {
        let n = |bytes: usize| {
            let mut n = vec![0xC5u8; bytes];
            n[bytes - 1] |= 1;
            URL_SAFE_NO_PAD.encode(n)
        };
        let jwk = |n: &str, e: &[u8]| format!(r#"{{"kty":"RSA","n":"{n}","e":"{}"}}"#, URL_SAFE_NO_PAD.encode(e));
        let good = dummy_keys()[2].thumbprint().is_some();
        assert!(good);
        for (text, says) in [
            (jwk(&n(256), &[1]), "exponent"),
            (jwk(&n(256), &[1, 0, 0]), "exponent"),
            (jwk(&n(256), &[]), "exponent"),
            (jwk(&n(128), &[1, 0, 1]), "2048 to 8192"),
            (jwk(&n(2048), &[1, 0, 1]), "2048 to 8192"),
        ] {
            let err = ClientPublicKey::parse(&text).unwrap_err();
            assert!(err.contains(says), "{says}: {err}");
        }
    }

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
