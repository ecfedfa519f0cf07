//! Client public keys and JWT verification: client assertions (RFC 7523) against registered
//! Ed25519, P-256 and RSA keys, and this service's own short-term tokens against its key set.
//!
//! Never a panic, and nothing verifies unless it was really signed by the matching private
//! key: an unsigned (`none`) token, an HMAC made with the public key as secret (algorithm
//! confusion), an RSA-PSS or DER-encoded ECDSA signature, or a valid token altered after
//! signing must all be refused. The keys are made afresh in each process, so an arbitrary
//! string can never carry a valid signature.
//!
//! The first byte chooses the mode: 0 parses `ClientPublicKey` text, 1 verifies the rest as a
//! JWT string, otherwise the rest is `[sign, split, mutation op, position (2), byte, header
//! JSON…, claims JSON…]`: header and claims are base64url-encoded as given (`KID_ED`/`KID_ES`
//! in the header become the key set's ids), signed as `sign` says (low nibble: how; high
//! nibble: which key), then optionally altered.
#![no_main]

use std::sync::LazyLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use tokensmith::domain::client_key::{self, ClientPublicKey};
use tokensmith::signer::{self, KeySet, SigningAlg};

struct Keys {
    ed: Ed25519KeyPair,
    es: EcdsaKeyPair,
    es_asn1: EcdsaKeyPair,
    rsa: RsaKeyPair,
    /// The public keys as registered texts: Ed25519 PEM, P-256 JWK, RSA PEM.
    texts: [String; 3],
    /// The same keys parsed, as the service holds them for a client.
    clients: [ClientPublicKey; 3],
    /// The service's own key set: the Ed25519 and P-256 keys above.
    set: KeySet,
    kid_ed: String,
    kid_es: String,
}

const ED: usize = 0;
const ES: usize = 1;

static KEYS: LazyLock<Keys> = LazyLock::new(keys);

fn keys() -> Keys {
    let ed_m = signer::generate(SigningAlg::EdDSA).expect("ed25519 key");
    let es_m = signer::generate(SigningAlg::ES256).expect("p-256 key");
    let ed = Ed25519KeyPair::from_pkcs8(&ed_m.pkcs8).expect("ed25519 pkcs8");
    let es = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &es_m.pkcs8).expect("p-256 pkcs8");
    let es_asn1 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &es_m.pkcs8).expect("p-256 pkcs8");
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");

    let mut ed_spki = hex("302a300506032b6570032100");
    ed_spki.extend_from_slice(ed.public_key().as_ref());
    let point = es.public_key().as_ref();
    let es_jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
    .to_string();
    let rsa_spki = rsa.public_key().as_der().expect("rsa spki").as_ref().to_vec();
    let texts = [pem(&ed_spki), es_jwk, pem(&rsa_spki)];
    let parse = |t: &String| ClientPublicKey::parse(t).expect("a registered key parses");
    let clients = [parse(&texts[0]), parse(&texts[1]), parse(&texts[2])];
    let (kid_ed, kid_es) = (ed_m.kid.clone(), es_m.kid.clone());
    let set = KeySet::new(&[ed_m, es_m], &kid_ed).expect("a key set");
    Keys { ed, es, es_asn1, rsa, texts, clients, set, kid_ed, kid_es }
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode {
        0 => parse_key(rest),
        1 => verify_string(rest),
        _ => verify_structured(rest),
    }
});

fn parse_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = ClientPublicKey::parse(&text) {
        let alg = client_key::alg_name(key.alg);
        assert_ne!(alg, "unsupported", "a key was registered for an algorithm that is not pinned");
    }
}

/// An arbitrary string: the keys were made in this process, so nothing can verify.
fn verify_string(data: &[u8]) {
    let jwt = String::from_utf8_lossy(data);
    let k = &*KEYS;
    let _ = client_key::claimed_client(&jwt);
    for (i, key) in k.clients.iter().enumerate() {
        assert!(client_key::verify_signature(&jwt, key).is_err(), "an unsigned string verified with key {i}");
    }
    assert!(k.set.verify(&jwt).is_err(), "an unsigned string verified with the service's keys");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    /// `alg: none` style: an empty signature.
    Unsigned,
    /// HMAC (HS256/384/512) keyed with the registered public key's text.
    HmacWithPublicKey(usize),
    /// RSA-PSS by the RSA key (RS256 pins PKCS#1 v1.5).
    RsaPss,
    /// ECDSA by the P-256 key, DER-encoded (JWS uses the fixed r‖s form).
    EcdsaDer,
    /// A real signature by key 0 (Ed25519), 1 (P-256) or 2 (RSA), in the JWS form.
    Real(usize),
}

fn verify_structured(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<6>() else { return };
    let [sign, split, op, pos_hi, pos_lo, byte] = *head;
    let which = usize::from(sign >> 4) % 3;
    let how = match (sign & 0x0F) % 6 {
        0 => Sign::Unsigned,
        1 | 2 => Sign::HmacWithPublicKey(which),
        3 => Sign::RsaPss,
        4 => Sign::EcdsaDer,
        _ => Sign::Real(which),
    };
    let split = usize::from(split).min(rest.len());
    let (header, claims) = rest.split_at(split);
    let k = &*KEYS;
    let header = String::from_utf8_lossy(header).replace("KID_ED", &k.kid_ed).replace("KID_ES", &k.kid_es);
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.as_bytes()), URL_SAFE_NO_PAD.encode(claims));
    let signature = sign_with(k, how, sign, signing_input.as_bytes());
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let altered = mutate(&jwt, op, usize::from(u16::from_be_bytes([pos_hi, pos_lo])), byte);
    let untouched = altered == jwt;

    let _ = client_key::claimed_client(&altered);
    for (i, key) in k.clients.iter().enumerate() {
        if client_key::verify_signature(&altered, key).is_ok() {
            assert_eq!(how, Sign::Real(i), "client key {i} accepted a token signed {how:?}");
            assert!(untouched, "client key {i} accepted a token altered after signing: {altered:?} from {jwt:?}");
        }
    }
    if k.set.verify(&altered).is_ok() {
        assert!(matches!(how, Sign::Real(ED | ES)), "the service's key set accepted a token signed {how:?}");
        assert!(untouched, "the service's key set accepted a token altered after signing: {altered:?}");
    }
}

fn sign_with(k: &Keys, how: Sign, sign: u8, msg: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match how {
        Sign::Unsigned => Vec::new(),
        Sign::HmacWithPublicKey(i) => {
            let alg = [hmac::HMAC_SHA256, hmac::HMAC_SHA384, hmac::HMAC_SHA512][usize::from(sign >> 6) % 3];
            hmac::sign(&hmac::Key::new(alg, k.texts[i].as_bytes()), msg).as_ref().to_vec()
        }
        Sign::RsaPss => rsa_sign(k, &RSA_PSS_SHA256, msg),
        Sign::EcdsaDer => k.es_asn1.sign(&rng, msg).expect("ecdsa signs").as_ref().to_vec(),
        Sign::Real(ED) => k.ed.sign(msg).as_ref().to_vec(),
        Sign::Real(ES) => k.es.sign(&rng, msg).expect("ecdsa signs").as_ref().to_vec(),
        Sign::Real(_) => rsa_sign(k, &RSA_PKCS1_SHA256, msg),
    }
}

fn rsa_sign(k: &Keys, alg: &'static dyn aws_lc_rs::signature::RsaEncoding, msg: &[u8]) -> Vec<u8> {
    let mut sig = vec![0u8; k.rsa.public_modulus_len()];
    k.rsa.sign(alg, &SystemRandom::new(), msg, &mut sig).expect("rsa signs");
    sig
}

/// Alters the token after signing: 0 none, 1 replace, 2 insert, 3 delete, 4 truncate.
fn mutate(jwt: &str, op: u8, pos: usize, byte: u8) -> String {
    let mut b = jwt.as_bytes().to_vec();
    let pos = pos % (b.len() + 1);
    match op % 5 {
        1 if pos < b.len() => b[pos] = byte,
        2 => b.insert(pos, byte),
        3 if pos < b.len() => {
            b.remove(pos);
        }
        4 => b.truncate(pos),
        _ => {}
    }
    String::from_utf8_lossy(&b).into_owned()
}
