//! Keys that never reach the database, and the primitives built on them.
//!
//! One 256-bit master key (a file created with mode 0600 beside the SQLite database, or given
//! in the environment) is split with HMAC into independent subkeys:
//! - the *hash key*, for keyed hashes of long-term tokens and client secrets, so a stolen
//!   database cannot be used to test guesses offline;
//! - the *sealing key*, for AES-256-GCM encryption of TOTP seeds and signing private keys;
//! - the *id key*, which authenticates short-term token ids (see `domain::types::ShortTokenId`).
//!
//! Architecture invariant: nothing here logs or formats key material; `Debug` is redacted.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // aws-lc's RNG only fails when the OS has no entropy source at all; running without one
    // would make every secret guessable, so this is the one place where stopping is right.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("the operating system's random number generator failed");
}

/// Fills `buf` from this thread's ChaCha12 generator (`rand::rng()`, a CSPRNG seeded and
/// periodically reseeded from the operating system). For values that must be unique and
/// unguessable but are not keys or secrets (the nonce of a short-term token id, request ids):
/// it costs tens of nanoseconds, where aws-lc's DRBG costs about half a microsecond a call.
pub fn nonce_bytes(buf: &mut [u8]) {
    use rand::Rng;
    rand::rng().fill_bytes(buf);
}

/// Appends the base64url (unpadded) form of `data` to `out`, without the chunked encoder's
/// intermediate buffer.
pub fn push_base64url(out: &mut String, data: &[u8]) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = out.len();
    let len = base64::encoded_len(data.len(), false).unwrap_or(0);
    let mut buf = std::mem::take(out).into_bytes();
    buf.resize(start + len, 0);
    let written = URL_SAFE_NO_PAD.encode_slice(data, &mut buf[start..]).unwrap_or(0);
    buf.truncate(start + written);
    // base64 output is ASCII, so this never fails; if it somehow did, `out` would stay empty
    // and the token built from it would be refused by every verifier.
    *out = String::from_utf8(buf).unwrap_or_default();
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` characters drawn uniformly from the base62 alphabet (5.95 bits each).
pub fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        random_bytes(&mut buf);
        // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    out
}

/// Encodes `v` as exactly `width` base62 digits (most significant first).
pub fn base62_fixed(mut v: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(digits).unwrap_or_default()
}

pub fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The master key and the subkeys derived from it.
#[derive(Clone)]
pub struct Keyring {
    /// HMAC states with the hash key and the id key already absorbed (the inner and outer
    /// pads), cloned per use: two SHA-256 compressions fewer for every MAC on the hot path.
    hash_mac: HmacSha256,
    id_mac: HmacSha256,
    sealing_key: std::sync::Arc<LessSafeKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create key file {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("key file {path} is not 32 bytes of base64")]
    Malformed { path: PathBuf },
    #[error("TOKENSMITH_MASTER_KEY is not 32 bytes of base64")]
    MalformedEnv,
    #[error("key file {path} is readable by other users (mode {mode:o}); run chmod 600 on it")]
    Permissions { path: PathBuf, mode: u32 },
}

fn derive(master: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC as a PRF keyed by the master key: independent subkeys per purpose (RFC 5869's
    // expand step with a single block).
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

impl Keyring {
    pub fn from_master(master: &[u8; 32]) -> Self {
        let hash_key = derive(master, b"tokensmith/v1/hash");
        let id_key = derive(master, b"tokensmith/v1/short-id");
        let seal = derive(master, b"tokensmith/v1/seal");
        let unbound = UnboundKey::new(&AES_256_GCM, seal.as_slice()).unwrap_or_else(|_| unreachable!());
        let hmac = |key: &[u8]| <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        Keyring {
            hash_mac: hmac(hash_key.as_slice()),
            id_mac: hmac(id_key.as_slice()),
            sealing_key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// A fresh random keyring, for tests and benchmarks.
    pub fn random() -> Self {
        let mut master = Zeroizing::new([0u8; 32]);
        random_bytes(master.as_mut_slice());
        Self::from_master(&master)
    }

    /// Loads the master key: from `env_value` (base64) when given, else from `path`, creating
    /// that file with mode 0600 and a fresh key when it does not exist.
    pub fn load_or_create(path: &Path, env_value: Option<&str>) -> Result<Self, KeyError> {
        if let Some(v) = env_value {
            let master = decode_master(v.trim()).ok_or(KeyError::MalformedEnv)?;
            return Ok(Self::from_master(&master));
        }
        match Self::load_existing(path)? {
            Some(keyring) => Ok(keyring),
            None => create_key_file(path),
        }
    }

    /// Loads the master key from the key file at `path`, checking its mode and its content,
    /// or None when there is no such file; never creates one (`config check` uses it).
    pub fn load_existing(path: &Path) -> Result<Option<Self>, KeyError> {
        match crate::files::read_small_text(path, crate::files::MAX_KEY_BYTES) {
            Ok(text) => {
                check_permissions(path)?;
                let master = decode_master(text.trim()).ok_or_else(|| KeyError::Malformed { path: path.to_owned() })?;
                Ok(Some(Self::from_master(&master)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Read { path: path.to_owned(), source }),
        }
    }

    /// HMAC-SHA-256 of `secret` under the hash key.
    pub fn keyed_hash(&self, secret: &[u8]) -> [u8; 32] {
        let mut mac = self.hash_mac.clone();
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }

    /// Whether `secret` hashes to `expected`, compared in constant time.
    pub fn verify_hash(&self, secret: &[u8], expected: &[u8]) -> bool {
        self.keyed_hash(secret).ct_eq(expected).into()
    }

    /// HMAC-SHA-256 of `data` under the id key, truncated to `N` bytes.
    pub fn id_mac<const N: usize>(&self, data: &[u8]) -> [u8; N] {
        let mut mac = self.id_mac.clone();
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; N];
        out.copy_from_slice(&full[..N]);
        out
    }

    /// Encrypts `plaintext` with AES-256-GCM; `context` is bound as associated data so a
    /// sealed value cannot be moved to another row or purpose. Output: nonce ‖ ciphertext.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce);
        let mut buf = plaintext.to_vec();
        // Sealing only fails for inputs larger than GCM allows (~64 GiB).
        self.sealing_key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .unwrap_or_else(|_| unreachable!());
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Decrypts what [`Keyring::seal`] produced under the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self.sealing_key.open_in_place(nonce, Aad::from(context), &mut buf).ok()?.len();
        buf.truncate(len);
        Some(buf)
    }
}

fn decode_master(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(STANDARD.decode(text).ok()?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return None;
    }
    out.copy_from_slice(&bytes);
    Some(out)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn create_key_file(path: &Path) -> Result<Keyring, KeyError> {
    let mut master = Zeroizing::new([0u8; 32]);
    random_bytes(master.as_mut_slice());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let err = |source| KeyError::Create { path: path.to_owned(), source };
    match opts.open(path) {
        Ok(mut f) => {
            let text = Zeroizing::new(STANDARD.encode(master.as_slice()));
            f.write_all(text.as_bytes()).map_err(err)?;
            f.write_all(b"\n").map_err(err)?;
            f.sync_all().map_err(err)?;
            Ok(Keyring::from_master(&master))
        }
        // Another process (a second instance, or the CLI) created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Keyring::load_or_create(path, None),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomputed_macs_equal_fresh_ones() {
        let master = [7u8; 32];
        let k = Keyring::from_master(&master);
        let fresh = |label: &[u8], data: &[u8]| {
            let key = derive(&master, label);
            let mut m = <HmacSha256 as KeyInit>::new_from_slice(key.as_slice()).unwrap();
            m.update(data);
            m.finalize().into_bytes()
        };
        assert_eq!(k.keyed_hash(b"abc")[..], fresh(b"tokensmith/v1/hash", b"abc")[..]);
        assert_eq!(k.id_mac::<12>(b"abc")[..], fresh(b"tokensmith/v1/short-id", b"abc")[..12]);
        // The same key pair again: a second use starts from the same state.
        assert_eq!(k.keyed_hash(b"abc"), k.keyed_hash(b"abc"));
    }

    #[test]
    fn push_base64url_appends_what_the_engine_encodes() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for len in [0usize, 1, 2, 3, 4, 63, 64, 65, 500] {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let mut out = String::from("head.");
            push_base64url(&mut out, &data);
            assert_eq!(out, format!("head.{}", URL_SAFE_NO_PAD.encode(&data)));
        }
    }

    #[test]
    fn nonce_bytes_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        nonce_bytes(&mut a);
        nonce_bytes(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn seal_round_trips_and_binds_context() {
        let k = Keyring::random();
        let sealed = k.seal(b"ctx", b"seed");
        assert_eq!(k.open(b"ctx", &sealed).as_deref().map(|v| v.as_slice()), Some(&b"seed"[..]));
        assert!(k.open(b"other", &sealed).is_none());
        assert!(Keyring::random().open(b"ctx", &sealed).is_none());
        assert!(k.open(b"ctx", &sealed[..5]).is_none());
    }

    #[test]
    fn keyed_hash_depends_on_the_key() {
        let a = Keyring::random();
        let b = Keyring::random();
        assert_ne!(a.keyed_hash(b"s"), b.keyed_hash(b"s"));
        assert!(a.verify_hash(b"s", &a.keyed_hash(b"s")));
        assert!(!a.verify_hash(b"t", &a.keyed_hash(b"s")));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let a = Keyring::load_or_create(&path, None).unwrap();
        let b = Keyring::load_or_create(&path, None).unwrap();
        assert_eq!(a.keyed_hash(b"x"), b.keyed_hash(b"x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn random_base62_has_requested_length_and_alphabet() {
        let s = random_base62(43);
        assert_eq!(s.len(), 43);
        assert!(is_base62(&s));
        assert_ne!(s, random_base62(43));
    }

    #[test]
    fn base62_fixed_pads() {
        assert_eq!(base62_fixed(0, 3), "000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
    }
}
