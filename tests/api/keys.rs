//! Client key pairs for the assertion grant (RFC 7523), made with aws-lc-rs and signed with
//! jsonwebtoken, so that the server is checked against a JWT implementation other than its own.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Which kind of key a client registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    P256,
    Rsa,
}

/// How the public key is written in the file given to `client create --public-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// PEM `SubjectPublicKeyInfo` (`-----BEGIN PUBLIC KEY-----`).
    Pem,
    /// A JSON Web Key (RFC 7517).
    Jwk,
}

/// A client's private key and the ways to publish its public half.
pub struct ClientKey {
    kind: KeyKind,
    /// The private key as jsonwebtoken wants it: PKCS#8 for Ed25519 and P-256, PKCS#1 for RSA.
    private_der: Vec<u8>,
    /// The DER `SubjectPublicKeyInfo`.
    spki_der: Vec<u8>,
    jwk: Value,
}

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";
/// DER prefix of a P-256 `SubjectPublicKeyInfo` (RFC 5480), followed by the 65-byte point.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

impl ClientKey {
    pub fn generate(kind: KeyKind) -> Self {
        match kind {
            KeyKind::Ed25519 => Self::ed25519(),
            KeyKind::P256 => Self::p256(),
            KeyKind::Rsa => Self::rsa(),
        }
    }

    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("ed25519 key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("ed25519 pkcs8");
        let public = pair.public_key().as_ref().to_vec();
        let mut spki_der = hex(ED25519_SPKI_PREFIX);
        spki_der.extend_from_slice(&public);
        ClientKey {
            kind: KeyKind::Ed25519,
            private_der: pkcs8.as_ref().to_vec(),
            spki_der,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&public)}),
        }
    }

    pub fn p256() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).expect("p-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("p-256 pkcs8");
        let point = pair.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let mut spki_der = hex(P256_SPKI_PREFIX);
        spki_der.extend_from_slice(&point);
        ClientKey {
            kind: KeyKind::P256,
            private_der: pkcs8.as_ref().to_vec(),
            spki_der,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..65])}),
        }
    }

    pub fn rsa() -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
        let pkcs8 = pair.as_der().expect("rsa pkcs8");
        let public = pair.public_key();
        let spki_der = public.as_der().expect("rsa spki").as_ref().to_vec();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        ClientKey {
            kind: KeyKind::Rsa,
            private_der: pkcs1_from_pkcs8(pkcs8.as_ref()),
            spki_der,
            jwk: json!({"kty": "RSA", "n": b64url(&n), "e": b64url(&e)}),
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The JWS algorithm that matches this key.
    pub fn alg(&self) -> Algorithm {
        match self.kind {
            KeyKind::Ed25519 => Algorithm::EdDSA,
            KeyKind::P256 => Algorithm::ES256,
            KeyKind::Rsa => Algorithm::RS256,
        }
    }

    pub fn public_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.spki_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    pub fn public_jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The public key file content in the given form.
    pub fn public_file(&self, form: KeyForm) -> String {
        match form {
            KeyForm::Pem => self.public_pem(),
            KeyForm::Jwk => self.public_jwk().to_string(),
        }
    }

    fn encoding_key(&self) -> EncodingKey {
        match self.kind {
            KeyKind::Ed25519 => EncodingKey::from_ed_der(&self.private_der),
            KeyKind::P256 => EncodingKey::from_ec_der(&self.private_der),
            KeyKind::Rsa => EncodingKey::from_rsa_der(&self.private_der),
        }
    }

    /// A JWT over `claims` with this key's algorithm.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&Header::new(self.alg()), claims)
    }

    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding_key()).expect("jwt signs")
    }
}

/// A JWT with `alg: none` and an empty signature (RFC 7519 §6).
pub fn unsecured_jwt(claims: &Value) -> String {
    let header = b64url(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes());
    let payload = b64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.")
}

/// A JWT MACed with HS256 under `secret` (e.g. the client's public key, the classic
/// algorithm-confusion attack).
pub fn hs256_jwt(secret: &[u8], claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret).expect("an hmac key");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("hs256 signs")
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Reads one DER TLV at the start of `der`: (tag, content, rest).
fn der_tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let count = usize::from(n & 0x7f);
            let len = der[2..2 + count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + count)
        }
    };
    (tag, &der[header..header + len], &der[header + len..])
}

/// Unwraps the PKCS#1 `RSAPrivateKey` from a PKCS#8 v1 `PrivateKeyInfo` (RFC 5208):
/// SEQUENCE { INTEGER version, AlgorithmIdentifier, OCTET STRING privateKey }.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_tlv(pkcs8);
    assert_eq!(tag, 0x30);
    let (tag, _version, rest) = der_tlv(info);
    assert_eq!(tag, 0x02);
    let (tag, _alg, rest) = der_tlv(rest);
    assert_eq!(tag, 0x30);
    let (tag, key, _) = der_tlv(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}
