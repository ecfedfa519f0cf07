//! Long-term tokens, client secrets and token ids, as the server parses them from a bearer
//! header, a request body or a revocation path: never a panic, and what parses is what the
//! format says (prefix, length, alphabet, checksum; canonical ids; MACs bound to the key).
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tokensmith::crypto::Keyring;
use tokensmith::domain::{
    CLIENT_SECRET_PREFIX, ClientId, LONG_TOKEN_PREFIX, LongTokenId, OpaqueSecret, Scope, Scopes, ShortTokenId, TokenId,
};

/// The fixed test key the seed corpus's short-term ids were made with (test only).
static KEYS: LazyLock<Keyring> = LazyLock::new(|| Keyring::from_master(&[7u8; 32]));
/// Another key: no id made under `KEYS` may verify under it.
static OTHER: LazyLock<Keyring> = LazyLock::new(|| Keyring::from_master(&[8u8; 32]));

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    parse_text(&s);
    round_trip_short_id(data);
});

fn parse_text(s: &str) {
    for prefix in [LONG_TOKEN_PREFIX, CLIENT_SECRET_PREFIX] {
        if let Some(secret) = OpaqueSecret::parse(prefix, s) {
            let rest = &s[prefix.len()..];
            assert_eq!(secret.expose(), s);
            assert_eq!(rest.len(), 43 + 6, "body and checksum");
            assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "base62 only");
            assert_eq!(format!("{secret:?}"), "OpaqueSecret(<redacted>)");
        }
    }

    if let Some(id) = ClientId::parse(s) {
        assert_eq!(id.as_str(), s);
        assert!(!s.is_empty() && s.len() <= 64);
    }

    match TokenId::parse(&KEYS, s) {
        Some(TokenId::Long(LongTokenId(u))) => {
            // Only the hyphenated form (case aside) names a long-term token.
            assert_eq!(s.len(), 36);
            assert!(u.hyphenated().to_string().eq_ignore_ascii_case(s), "{s:?} is not canonical");
        }
        Some(TokenId::Short(id)) => {
            assert_eq!(id.as_str(), s);
            // One id, one spelling: the base64url body is canonical (no trailing bits).
            let body = &s[3..];
            let raw = URL_SAFE_NO_PAD.decode(body).expect("an accepted id decodes");
            assert_eq!(URL_SAFE_NO_PAD.encode(raw), body);
            assert_eq!(ShortTokenId::parse(&KEYS, s).as_ref(), Some(&id));
            // The MAC binds the id to the key.
            assert!(ShortTokenId::parse(&OTHER, s).is_none(), "an id verified under a foreign key");
        }
        None => assert!(ShortTokenId::parse(&KEYS, s).is_none()),
    }

    if let Some(scope) = Scope::parse(s) {
        assert_eq!(scope.as_str(), s);
    }
    if let Ok(scopes) = Scopes::from_space_separated(s) {
        let again = Scopes::from_space_separated(&scopes.to_space_separated()).expect("a printed set parses");
        assert_eq!(again, scopes);
    }
}

/// Any parent and expiry survive generation and parsing (the expiry clamped to `u32`).
fn round_trip_short_id(data: &[u8]) {
    let Some((parent, rest)) = data.split_first_chunk::<16>() else { return };
    let Some((exp, _)) = rest.split_first_chunk::<8>() else { return };
    let parent = LongTokenId(uuid::Uuid::from_bytes(*parent));
    let exp = i64::from_be_bytes(*exp);
    let id = ShortTokenId::generate(&KEYS, parent, exp);
    assert_eq!(id.expires_at, exp.clamp(0, i64::from(u32::MAX)));
    let back = ShortTokenId::parse(&KEYS, id.as_str()).expect("a generated id parses");
    assert_eq!(back, id);
    assert!(matches!(TokenId::parse(&KEYS, id.as_str()), Some(TokenId::Short(ref t)) if *t == id));
}
