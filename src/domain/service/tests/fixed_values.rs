//! No fixed value authenticates anyone (property tests): no string but a client's current
//! secret, or its previous one while a rotation's overlap runs, passes as its secret; no code
//! but one of the current TOTP steps, once; no assertion but one signed by the client's own key
//! with the right claims, once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use secrecy::{ExposeSecret, SecretString};

use super::{Harness, T0};
use crate::domain::admin::{self, CreatedClient};
use crate::domain::{CLIENT_SECRET_PREFIX, ClientId, Credential, DomainError, OpaqueSecret, otp};

/// The literal that authenticated as any client before the timing dummy became random.
const OLD_DUMMY: &str = "tokensmith/dummy-secret-that-nothing-matches";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// A client and the secrets that must authenticate it.
struct SecretCase {
    id: ClientId,
    valid: Vec<String>,
}

/// Clients in every state a secret check meets: no rotation, a rotation whose overlap runs,
/// one whose overlap has ended, a disabled client.
struct SecretWorld {
    h: Harness,
    cases: Vec<SecretCase>,
    /// Every secret issued, valid or not: the seeds of near misses.
    known: Vec<String>,
}

async fn secret_world() -> SecretWorld {
    let h = Harness::without_limits().await;
    let secret = |c: &CreatedClient| c.client_secret.expose().to_owned();
    let plain = h.client("plain", false, None).await;
    let rotating = h.client("rotating", false, None).await;
    let rotated = h.client("rotated", false, None).await;
    let disabled = h.client("disabled", false, None).await;
    let rotate = |id: ClientId, overlap| {
        let h = &h;
        async move {
            let new = admin::rotate_client_secret(h.store.as_ref(), &h.keyring, T0, &id, overlap).await.unwrap();
            new.expose().to_owned()
        }
    };
    let rotating_new = rotate(rotating.client_id.clone(), 3600).await;
    let rotated_new = rotate(rotated.client_id.clone(), 0).await;
    admin::disable_client(h.store.as_ref(), T0, &disabled.client_id).await.unwrap();
    let known = vec![
        secret(&plain),
        secret(&rotating),
        rotating_new.clone(),
        secret(&rotated),
        rotated_new.clone(),
        secret(&disabled),
    ];
    let cases = vec![
        SecretCase { id: plain.client_id.clone(), valid: vec![secret(&plain)] },
        SecretCase { id: rotating.client_id.clone(), valid: vec![rotating_new, secret(&rotating)] },
        SecretCase { id: rotated.client_id.clone(), valid: vec![rotated_new] },
        SecretCase { id: disabled.client_id.clone(), valid: vec![] },
        SecretCase { id: ClientId::generate(), valid: vec![] },
    ];
    SecretWorld { h, cases, known }
}

/// `s` with the character at `at` replaced by `c` (a different one).
fn replace_char(s: &str, at: Index, c: char) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = at.index(chars.len().max(1)).min(chars.len().saturating_sub(1));
    if let Some(old) = chars.get_mut(i) {
        *old = if *old == c { if c == 'a' { 'b' } else { 'a' } } else { c };
    }
    chars.into_iter().collect()
}

/// Candidate secrets: anything, well-formed random secrets, the secrets issued (valid or not,
/// for other clients too), near misses of them with or without a recomputed checksum, and
/// the fixed values that once mattered.
fn secret_candidates(known: Vec<String>) -> impl Strategy<Value = String> {
    let fixed = vec![OLD_DUMMY.to_owned(), String::new(), " ".into(), "tsc_".into(), "\0".into()];
    let seeds = select(known.clone());
    prop_oneof![
        "\\PC{0,80}",
        "[0-9A-Za-z]{43}".prop_map(|body| OpaqueSecret::with_body(CLIENT_SECRET_PREFIX, &body).expose().to_owned()),
        select(known),
        select(fixed),
        (seeds.clone(), any::<Index>(), "[0-9A-Za-z]")
            .prop_map(|(s, at, c)| { replace_char(&s, at, c.chars().next().unwrap_or('x')) }),
        (seeds.clone(), any::<Index>(), "[0-9A-Za-z]").prop_map(|(s, at, c)| {
            let body = &s[CLIENT_SECRET_PREFIX.len()..CLIENT_SECRET_PREFIX.len() + 43];
            let body = replace_char(body, at, c.chars().next().unwrap_or('x'));
            OpaqueSecret::with_body(CLIENT_SECRET_PREFIX, &body).expose().to_owned()
        }),
        (seeds, "\\PC{0,3}").prop_map(|(s, extra)| format!("{s}{extra}")),
    ]
}

#[test]
fn no_string_but_a_clients_current_or_overlapping_previous_secret_authenticates_it() {
    let rt = runtime();
    let world = rt.block_on(secret_world());
    proptest!(cases(128), |(candidate in secret_candidates(world.known.clone()))| {
        for case in &world.cases {
            let result = rt.block_on(world.h.with_secret(&case.id, &candidate));
            let expected = case.valid.contains(&candidate);
            prop_assert_eq!(result.is_ok(), expected, "client {} with {:?}", case.id, candidate);
            if let Err(e) = result {
                prop_assert!(matches!(e, DomainError::InvalidClient), "{:?}", e);
            }
        }
    });
}

/// An OTP client, a client without OTP, and an unknown client.
struct OtpWorld {
    h: Harness,
    client: ClientId,
    seed: Vec<u8>,
    others: Vec<ClientId>,
}

async fn otp_world() -> OtpWorld {
    let h = Harness::without_limits().await;
    let client = h.client("otp", true, None).await;
    let base32 = client.otp_secret.as_ref().unwrap().expose_secret().to_owned();
    let seed = totp_rs::Secret::try_from_base32(&base32).unwrap();
    let no_otp = h.client("no-otp", false, None).await;
    OtpWorld {
        seed: seed.as_bytes().to_vec(),
        client: client.client_id,
        others: vec![no_otp.client_id, ClientId::generate()],
        h,
    }
}

fn otp_candidates(seed: Vec<u8>) -> impl Strategy<Value = String> {
    let other_seed = otp::generate_secret();
    prop_oneof![
        "[0-9]{6}",
        "\\PC{0,10}",
        "[0-9]{5,7}",
        // The codes of other steps, of the current ones, and of another seed.
        (-2000i64..2000).prop_map(move |d| otp::code_at(&seed, T0 + d * 30).unwrap_or_default()),
        (-1i64..=1).prop_map(move |d| otp::code_at(&other_seed, T0 + d * 30).unwrap_or_default()),
    ]
}

#[test]
fn no_code_but_one_of_the_current_steps_authenticates_and_each_only_once() {
    let rt = runtime();
    let world = rt.block_on(otp_world());
    let used = std::cell::Cell::new(i64::MIN);
    proptest!(cases(256), |(code in otp_candidates(world.seed.clone()))| {
        let credential = |client: &ClientId| Credential::Otp { client_id: client.clone(), code: SecretString::from(code.clone()) };
        for other in &world.others {
            prop_assert!(rt.block_on(world.h.issue(credential(other))).is_err(), "{} for {}", code, other);
        }
        // The one rule: a code of step T0-1, T0 or T0+1, of a step after the last one used.
        let step = otp::matching_step(&world.seed, &code, T0);
        let expected = step.is_some_and(|s| s > used.get());
        let result = rt.block_on(world.h.issue(credential(&world.client)));
        prop_assert_eq!(result.is_ok(), expected, "{:?} (step {:?}, last used {})", code, step, used.get());
        if let Some(s) = step.filter(|_| expected) {
            used.set(s);
            prop_assert!(rt.block_on(world.h.issue(credential(&world.client))).is_err(), "a replay of {}", code);
        }
    });
}

/// Signing keys for assertions, and the public JWK a client registers.
struct SigningKey {
    encoding: EncodingKey,
    alg: Algorithm,
    jwk: String,
}

fn ed25519() -> SigningKey {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    SigningKey {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        alg: Algorithm::EdDSA,
        jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#),
    }
}

fn p256() -> SigningKey {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    SigningKey {
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        alg: Algorithm::ES256,
        jwk: secret.public_key().to_jwk_string(),
    }
}

fn sign(key: &SigningKey, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(key.alg), claims, &key.encoding).unwrap()
}

/// What an attacker can make of an assertion.
#[derive(Debug, Clone)]
enum Forgery {
    Garbage(String),
    /// Good claims, `alg: none`.
    Unsigned,
    /// Good claims, HS256 keyed with the client's public key (the classic confusion).
    HmacWithPublicKey,
    /// Good claims, signed by another key of the client's type, or of another type.
    ForeignKey,
    ForeignType,
    /// A good assertion with one character changed.
    Tampered(Index, char),
    /// Signed by the client's key, with one claim wrong.
    WrongClaim(usize),
    /// Signed by the client's key, naming another client.
    OtherClient(usize),
}

fn forgeries() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        "\\PC{0,200}".prop_map(Forgery::Garbage),
        "[A-Za-z0-9_-]{5,40}\\.[A-Za-z0-9_-]{5,80}\\.[A-Za-z0-9_-]{0,90}".prop_map(Forgery::Garbage),
        Just(Forgery::Unsigned),
        Just(Forgery::HmacWithPublicKey),
        Just(Forgery::ForeignKey),
        Just(Forgery::ForeignType),
        (any::<Index>(), "[A-Za-z0-9_.-]").prop_map(|(i, c)| Forgery::Tampered(i, c.chars().next().unwrap_or('A'))),
        (0usize..8).prop_map(Forgery::WrongClaim),
        (0usize..2).prop_map(Forgery::OtherClient),
    ]
}

struct AssertionWorld {
    h: Harness,
    client: ClientId,
    key: SigningKey,
    foreign: SigningKey,
    foreign_type: SigningKey,
    others: Vec<ClientId>,
}

async fn assertion_world() -> AssertionWorld {
    let h = Harness::without_limits().await;
    let key = ed25519();
    let client = h.client("robot", false, Some(key.jwk.clone())).await.client_id;
    let keyless = h.client("keyless", false, None).await.client_id;
    AssertionWorld {
        h,
        client,
        key,
        foreign: ed25519(),
        foreign_type: p256(),
        others: vec![keyless, ClientId::generate()],
    }
}

impl AssertionWorld {
    fn claims(&self, client: &ClientId) -> serde_json::Value {
        let id = client.as_str();
        serde_json::json!({
            "iss": id, "sub": id, "aud": "https://tokens.test",
            "iat": T0, "exp": T0 + 120, "jti": uuid::Uuid::now_v7().to_string(),
        })
    }

    /// The forged assertion, and for a tampered one the good assertion it was made from.
    fn forge(&self, forgery: &Forgery) -> (String, Option<String>) {
        let good = self.claims(&self.client);
        if let Forgery::Tampered(at, c) = forgery {
            let original = sign(&self.key, &good);
            return (replace_char(&original, *at, *c), Some(original));
        }
        let forged = match forgery {
            Forgery::Garbage(s) => s.clone(),
            Forgery::Unsigned => {
                let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
                format!("{header}.{}.", URL_SAFE_NO_PAD.encode(good.to_string()))
            }
            Forgery::HmacWithPublicKey => {
                let key = EncodingKey::from_secret(self.key.jwk.as_bytes()).unwrap();
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &good, &key).unwrap()
            }
            Forgery::ForeignKey => sign(&self.foreign, &good),
            Forgery::ForeignType => sign(&self.foreign_type, &good),
            Forgery::Tampered(..) => return (String::new(), None),
            Forgery::WrongClaim(n) => {
                let mut claims = good;
                let (field, value) = match n {
                    0 => ("iss", serde_json::json!("cli_someone_else")),
                    1 => ("sub", serde_json::json!("cli_someone_else")),
                    2 => ("aud", serde_json::json!("https://elsewhere.test")),
                    3 => ("exp", serde_json::json!(T0 - 1)),
                    4 => ("exp", serde_json::json!(T0 + 3600)),
                    5 => ("exp", serde_json::Value::Null),
                    6 => ("jti", serde_json::Value::Null),
                    _ => ("iat", serde_json::json!(T0 + 3600)),
                };
                claims[field] = value;
                sign(&self.key, &claims)
            }
            Forgery::OtherClient(n) => sign(&self.key, &self.claims(&self.others[*n])),
        };
        (forged, None)
    }
}

#[test]
fn no_assertion_but_one_signed_by_the_clients_key_with_the_right_claims_authenticates() {
    let rt = runtime();
    let world = rt.block_on(assertion_world());
    let assert = |a: String| Credential::Assertion { assertion: SecretString::from(a), client_key: None };
    // The property is not vacuous: a good assertion is accepted, once.
    let good = sign(&world.key, &world.claims(&world.client));
    assert!(rt.block_on(world.h.issue(assert(good.clone()))).is_ok());
    assert!(rt.block_on(world.h.issue(assert(good))).is_err(), "a replay");
    proptest!(cases(192), |(forgery in forgeries())| {
        let (forged, original) = world.forge(&forgery);
        let result = rt.block_on(world.h.issue(assert(forged.clone())));
        // A changed character that decodes to the same bytes leaves the good assertion itself.
        let same = original.is_some_and(|o| decoded(&o) == decoded(&forged));
        prop_assert!(result.is_err() || same, "{:?} was accepted: {}", forgery, forged);
    });
}

/// The bytes of a JWT's parts, as a verifier decodes them.
fn decoded(jwt: &str) -> Vec<Option<Vec<u8>>> {
    jwt.split('.').map(|part| URL_SAFE_NO_PAD.decode(part).ok()).collect()
}

#[tokio::test]
async fn a_small_order_key_already_in_the_database_verifies_no_assertion() {
    use crate::store::Client;
    let h = Harness::without_limits().await;
    // Registered before keys were checked: the Ed25519 identity point.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(identity));
    let id = ClientId::generate();
    let record = Client {
        id: id.clone(),
        name: "legacy".into(),
        scopes: super::scopes("deploy"),
        secret_hash: vec![0; 32],
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        otp_seed_sealed: None,
        otp_last_step: 0,
        public_key: Some(jwk),
        public_key_alg: Some("EdDSA".into()),
        disabled: false,
        created_at: T0,
        last_used_at: None,
    };
    h.store.insert_client(&record).await.unwrap();
    let claims = serde_json::json!({
        "iss": id.as_str(), "sub": id.as_str(), "aud": "https://tokens.test",
        "iat": T0, "exp": T0 + 60, "jti": "forged",
    });
    // The signature anyone can make for that key: R = identity, S = 0.
    let mut signature = identity.to_vec();
    signature.extend([0u8; 32]);
    let forged = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    );

    let result = h.issue(Credential::Assertion { assertion: SecretString::from(forged), client_key: None }).await;

    assert!(matches!(result, Err(DomainError::InvalidGrant(_))), "{result:?}");
}
