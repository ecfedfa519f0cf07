//! Newtypes that are parsed once, at the edge, and trusted everywhere after.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::crypto::{self, Keyring};

/// A registered client's id: `cli_` followed by base62, as printed by `client create`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        ClientId(format!("cli_{}", crypto::random_base62(20)))
    }

    /// Accepts any plausible id (so that unknown ids are answered like wrong secrets, not
    /// like malformed requests); rejects what could never be one.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        ok.then(|| ClientId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a long-term token: a UUID v7 (time-ordered, so indexes stay compact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LongTokenId(pub Uuid);

impl LongTokenId {
    pub fn generate() -> Self {
        LongTokenId(Uuid::now_v7())
    }

    /// Only the canonical hyphenated form, as issued; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 36 {
            return None;
        }
        Uuid::parse_str(s).ok().map(LongTokenId)
    }
}

impl fmt::Display for LongTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The id of a short-term token (its JWT `jti`).
///
/// Short-term tokens are not stored: the id carries, authenticated by a MAC under a key
/// outside the database, the long-term token it was minted from and its expiry. So revoking
/// one by id can check ownership and answer 404 for ids this service never issued, without a
/// write per issuance on the hot path. Layout, base64url after `st_`:
/// parent UUID (16) ‖ exp, u32 big-endian (4) ‖ nonce (8) ‖ MAC (12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortTokenId {
    encoded: String,
    pub parent: LongTokenId,
    pub expires_at: i64,
}

const SHORT_PREFIX: &str = "st_";
const SHORT_RAW_LEN: usize = 16 + 4 + 8 + 12;

impl ShortTokenId {
    pub fn generate(keys: &Keyring, parent: LongTokenId, expires_at: i64) -> Self {
        let mut raw = [0u8; SHORT_RAW_LEN];
        raw[..16].copy_from_slice(parent.0.as_bytes());
        let exp = u32::try_from(expires_at.max(0)).unwrap_or(u32::MAX);
        raw[16..20].copy_from_slice(&exp.to_be_bytes());
        crypto::nonce_bytes(&mut raw[20..28]);
        let mac: [u8; 12] = keys.id_mac(&raw[..28]);
        raw[28..].copy_from_slice(&mac);
        let encoded = format!("{SHORT_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        ShortTokenId { encoded, parent, expires_at: i64::from(exp) }
    }

    /// Parses and authenticates an id; `None` for anything this service did not issue.
    pub fn parse(keys: &Keyring, s: &str) -> Option<Self> {
        let body = s.strip_prefix(SHORT_PREFIX)?;
        if body.len() != 54 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
        if raw.len() != SHORT_RAW_LEN {
            return None;
        }
        let expected: [u8; 12] = keys.id_mac(&raw[..28]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &raw[28..])) {
            return None;
        }
        let parent = LongTokenId(Uuid::from_slice(&raw[..16]).ok()?);
        let exp = u32::from_be_bytes(raw[16..20].try_into().ok()?);
        Some(ShortTokenId { encoded: s.to_owned(), parent, expires_at: i64::from(exp) })
    }

    pub fn as_str(&self) -> &str {
        &self.encoded
    }
}

impl fmt::Display for ShortTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

/// Either kind of token id, as found in a revocation path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenId {
    Long(LongTokenId),
    Short(ShortTokenId),
}

impl TokenId {
    /// `None` when `s` is no id this service could have issued.
    pub fn parse(keys: &Keyring, s: &str) -> Option<Self> {
        if s.starts_with(SHORT_PREFIX) {
            return ShortTokenId::parse(keys, s).map(TokenId::Short);
        }
        LongTokenId::parse(s).map(TokenId::Long)
    }
}

/// Whether `c` may stand in text that people read (a token's or a client's name, an audience):
/// not a control character, nor one that changes how the rest is shown without being seen —
/// bidirectional overrides, zero-width characters, line and paragraph separators, the byte-order
/// mark, tags —, nor a space other than the ASCII one or a blank that is drawn as nothing
/// (fillers, variation selectors), with which two names that look alike could differ, or a
/// listing be made to say something else than it holds.
pub fn is_plain_text(c: char) -> bool {
    !(c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180D}'
            | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}')
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
        // Noncharacters, the replacement character and private use: nothing anyone can read.
        || matches!(c, '\u{FDD0}'..='\u{FDEF}' | '\u{FFFD}' | '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..)
        || (u32::from(c) & 0xFFFE) == 0xFFFE)
}

/// A long-term token's name, shown in listings: at most 100 characters of plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

pub const MAX_NAME_CHARS: usize = 100;

impl TokenName {
    pub fn parse(s: String) -> Result<Self, String> {
        if s.chars().count() > MAX_NAME_CHARS || !s.chars().all(is_plain_text) {
            return Err(format!(
                "name must be at most {MAX_NAME_CHARS} characters, of visible text (no control, format or invisible characters, no space but the ASCII one)"
            ));
        }
        Ok(TokenName(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The `aud` a short-term token is minted for: 1 to 256 characters of plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(String);

pub const MAX_AUDIENCE_LEN: usize = 256;

impl Audience {
    pub fn parse(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_AUDIENCE_LEN || !s.chars().all(is_plain_text) {
            return Err(format!("audience must be 1 to {MAX_AUDIENCE_LEN} printable characters"));
        }
        Ok(Audience(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a caller authenticates (or tries to), for the limits, the audit trail and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    ClientSecret,
    Otp,
    Assertion,
    /// A short-term token, for the `short_token` grant.
    ShortToken,
    /// A long-term token, for short-term issuance.
    LongToken,
    /// A bearer token of either kind (revocation, introspection), or the lack of one.
    Bearer,
    /// An external identity token exchanged for a short-term token (RFC 8693).
    TokenExchange,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::ClientSecret => "client_secret",
            Mechanism::Otp => "otp",
            Mechanism::Assertion => "assertion",
            Mechanism::ShortToken => "short_token",
            Mechanism::LongToken => "long_token",
            Mechanism::Bearer => "bearer",
            Mechanism::TokenExchange => "token_exchange",
        }
    }

    /// Whether its credential can be guessed by someone who knows only the client id: its
    /// failures then count against the client too. Bearer tokens cannot be, so nobody can
    /// lock a client's valid tokens out by failing in its name.
    pub fn is_guessable(self) -> bool {
        matches!(self, Mechanism::ClientSecret | Mechanism::Otp | Mechanism::Assertion)
    }

    /// Whether a failed check of its credential is answered only after the uniform delay: the
    /// guessable ones (so the answer says nothing about the client), and an external identity
    /// token, whose issuer's keys may have to be fetched (so the answer does not tell a trusted
    /// issuer from an unknown one).
    pub fn delays_failures(self) -> bool {
        self.is_guessable() || self == Mechanism::TokenExchange
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One OAuth scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

pub const MAX_SCOPE_LEN: usize = 128;
pub const MAX_SCOPES: usize = 64;

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_SCOPE_LEN
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        ok.then(|| Scope(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const TOKENS_WRITE: &str = "tokens:write";
pub const TOKENS_INTROSPECT: &str = "tokens:introspect";

/// A set of scopes, kept sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a list of scope strings; the error names the first bad one.
    pub fn from_list<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        if items.len() > MAX_SCOPES {
            return Err(format!("at most {MAX_SCOPES} scopes are allowed"));
        }
        let mut set = BTreeSet::new();
        for item in items {
            let s = item.as_ref();
            let scope = Scope::parse(s).ok_or_else(|| {
                format!("scope {:?} is not a valid scope token (1 to {MAX_SCOPE_LEN} printable ASCII characters, no space, quote or backslash)", truncate(s, 40))
            })?;
            set.insert(scope);
        }
        Ok(Scopes(set))
    }

    /// Parses the space-separated form (`scope` claim, database column, CLI flag).
    pub fn from_space_separated(s: &str) -> Result<Self, String> {
        let items: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
        Self::from_list(&items)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }

    pub fn to_space_separated(&self) -> String {
        self.to_vec().join(" ")
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// An opaque bearer secret: `<prefix><43 base62 chars><6 base62 checksum chars>`.
///
/// 43 base62 characters carry 256 bits of randomness. The checksum (the first 32 bits of
/// SHA-256 over prefix and body) lets secret scanners and the server reject a mistyped or
/// forged value without any lookup.
#[derive(Clone)]
pub struct OpaqueSecret(SecretString);

const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;

/// Prefix of long-term tokens.
pub const LONG_TOKEN_PREFIX: &str = "tsl_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tsc_";

fn checksum(prefix: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update(body.as_bytes());
    let d = h.finalize();
    let v = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    crypto::base62_fixed(u64::from(v), CHECK_LEN)
}

impl OpaqueSecret {
    pub fn generate(prefix: &str) -> Self {
        let body = crypto::random_base62(BODY_LEN);
        let check = checksum(prefix, &body);
        OpaqueSecret(SecretString::from(format!("{prefix}{body}{check}")))
    }

    /// The secret with this body and its checksum (tests build well-formed near misses).
    #[cfg(test)]
    pub(crate) fn with_body(prefix: &str, body: &str) -> Self {
        OpaqueSecret(SecretString::from(format!("{prefix}{body}{}", checksum(prefix, body))))
    }

    /// Checks shape and checksum; `None` if either fails.
    pub fn parse(prefix: &str, s: &str) -> Option<Self> {
        let rest = s.strip_prefix(prefix)?;
        if rest.len() != BODY_LEN + CHECK_LEN || !crypto::is_base62(rest) {
            return None;
        }
        let (body, check) = rest.split_at(BODY_LEN);
        let expected = checksum(prefix, body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), check.as_bytes())) {
            return None;
        }
        Some(OpaqueSecret(SecretString::from(s.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OpaqueSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_long_tokens_parse_and_carry_enough_entropy() {
        let t = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
        assert!(OpaqueSecret::parse(LONG_TOKEN_PREFIX, t.expose()).is_some());
        assert!(OpaqueSecret::parse(CLIENT_SECRET_PREFIX, t.expose()).is_none());
        // 43 base62 characters: 43 * log2(62) = 256 bits, above the required 192.
        assert!((BODY_LEN as f64) * 62f64.log2() >= 192.0);
        assert_eq!(format!("{t:?}"), "OpaqueSecret(<redacted>)");
    }

    #[test]
    fn short_ids_round_trip_and_reject_foreign_keys() {
        let k = Keyring::random();
        let parent = LongTokenId::generate();
        let id = ShortTokenId::generate(&k, parent, 1_800_000_000);
        let back = ShortTokenId::parse(&k, id.as_str()).unwrap();
        assert_eq!(back.parent, parent);
        assert_eq!(back.expires_at, 1_800_000_000);
        assert!(ShortTokenId::parse(&Keyring::random(), id.as_str()).is_none());
        assert!(matches!(TokenId::parse(&k, id.as_str()), Some(TokenId::Short(_))));
        assert!(matches!(TokenId::parse(&k, &parent.to_string()), Some(TokenId::Long(_))));
        assert!(TokenId::parse(&k, "nope").is_none());
    }

    #[test]
    fn scopes_are_sorted_deduplicated_and_validated() {
        let s = Scopes::from_list(&["b", "a", "b"]).unwrap();
        assert_eq!(s.to_vec(), vec!["a", "b"]);
        assert!(Scopes::from_list(&["has space"]).is_err());
        assert!(Scopes::from_list(&["quo\"te"]).is_err());
        assert!(Scopes::from_list(&[""]).is_err());
        assert_eq!(Scopes::from_space_separated("  x  y ").unwrap().to_vec(), vec!["x", "y"]);
    }

    #[test]
    fn names_and_audiences_are_plain_text_of_bounded_length() {
        assert_eq!(TokenName::parse("ci deploy".into()).unwrap().as_str(), "ci deploy");
        assert!(TokenName::parse("é".repeat(100)).is_ok(), "characters are counted, not bytes");
        assert!(TokenName::parse("x".repeat(101)).is_err());
        assert!(TokenName::parse("evil\u{202E}txt".into()).is_err());
        assert!(TokenName::parse("line\nbreak".into()).is_err());
        assert_eq!(Audience::parse("https://api.example".into()).unwrap().as_str(), "https://api.example");
        assert!(Audience::parse(String::new()).is_err());
        assert!(Audience::parse("a".repeat(257)).is_err());
        assert!(Audience::parse("tab\there".into()).is_err());
    }

    #[test]
    fn names_refuse_spaces_and_blanks_that_make_two_names_look_alike() {
        for c in ['\u{00A0}', '\u{2000}', '\u{2007}', '\u{202F}', '\u{205F}', '\u{3000}', '\u{1680}', '\u{0085}'] {
            assert!(TokenName::parse(format!("ci{c}x")).is_err(), "{:?} is a space", c);
        }
        for c in ['\u{034F}', '\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}', '\u{FE0F}', '\u{180B}'] {
            assert!(TokenName::parse(format!("ci{c}x")).is_err(), "{:?} is drawn as nothing", c);
            assert!(Audience::parse(format!("api{c}")).is_err(), "{:?} is drawn as nothing", c);
        }
        for c in ['\u{FFFE}', '\u{FFFF}', '\u{FDD0}', '\u{FFFD}', '\u{E000}', '\u{F8FF}', '\u{10FFFF}', '\u{1FFFE}'] {
            assert!(Audience::parse(format!("https://x{c}")).is_err(), "{:?} is no readable text", c);
        }
        assert!(TokenName::parse("nightly backup".into()).is_ok(), "the ASCII space stays");
        assert!(TokenName::parse("déploiement 東京".into()).is_ok(), "letters of any script stay");
    }

    #[test]
    fn long_token_ids_parse_only_in_their_issued_form() {
        let id = LongTokenId::generate();
        assert_eq!(LongTokenId::parse(&id.to_string()), Some(id));
        assert_eq!(LongTokenId::parse(&id.0.simple().to_string()), None);
        assert_eq!(LongTokenId::parse(&format!("{{{id}}}")), None);
    }

    proptest! {
        #[test]
        fn any_single_character_change_breaks_a_long_token(pos in 0usize..53, c in "[0-9A-Za-z]") {
            let t = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
            let mut chars: Vec<char> = t.expose().chars().collect();
            let idx = 4 + pos % (chars.len() - 4);
            let new = c.chars().next().unwrap();
            prop_assume!(chars[idx] != new);
            chars[idx] = new;
            let mutated: String = chars.into_iter().collect();
            // A 32-bit checksum misses a random change with probability 2^-32; a single
            // substitution in the body always changes the SHA-256 input.
            prop_assert!(OpaqueSecret::parse(LONG_TOKEN_PREFIX, &mutated).is_none());
        }

        #[test]
        fn parsing_arbitrary_strings_never_panics(s in "\\PC*") {
            let _ = OpaqueSecret::parse(LONG_TOKEN_PREFIX, &s);
            let k = Keyring::random();
            let _ = TokenId::parse(&k, &s);
            let _ = ClientId::parse(&s);
            let _ = Scope::parse(&s);
        }

        #[test]
        fn short_id_tampering_is_detected(byte in 0usize..54, c in "[A-Za-z0-9_-]") {
            let k = Keyring::random();
            let id = ShortTokenId::generate(&k, LongTokenId::generate(), 1_900_000_000);
            let mut s: Vec<char> = id.as_str().chars().collect();
            let idx = 3 + byte;
            let new = c.chars().next().unwrap();
            prop_assume!(s[idx] != new);
            s[idx] = new;
            let tampered: String = s.into_iter().collect();
            prop_assert!(ShortTokenId::parse(&k, &tampered).is_none());
        }
    }
}
