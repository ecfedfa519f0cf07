//! One-time codes (RFC 6238 TOTP: HMAC-SHA-1, 6 digits, 30-second steps, ±1 step of skew).
//!
//! Checking a code only finds its time step; `TokenService` then consumes that step in the
//! store atomically (RFC 6238 §5.2: a code is accepted once), so a replay fails on every
//! instance sharing the database.

use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const SECRET_LEN: usize = 20;
pub const STEP_SECS: u64 = 30;

fn totp(secret: &[u8], account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some("tokensmith"))
        .build()
        .ok()
}

/// A fresh random TOTP seed.
pub fn generate_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_LEN];
    crate::crypto::random_bytes(&mut s);
    s
}

/// The seed in base32 (what authenticator apps ask for when typed by hand).
pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The `otpauth://totp/...` enrolment URI for an authenticator app.
pub fn otp_uri(secret: &[u8], account: &str) -> Option<String> {
    // ':' separates issuer and account in the URI label; keep the label valid.
    let account: String = account.chars().map(|c| if c == ':' { '-' } else { c }).collect();
    totp(secret, &account)?.to_url().ok()
}

/// The time step that `code` belongs to at `now` (within ±1 step), if any. All three
/// candidate codes are computed and compared in constant time, whichever matches.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    use subtle::{ConditionallySelectable, ConstantTimeEq};
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now).ok()?;
    let totp = totp(secret, "x")?;
    let origin = now / STEP_SECS;
    let mut found = subtle::Choice::from(0);
    let mut step = 0u64;
    for counter in [origin.saturating_sub(1), origin, origin + 1] {
        let candidate = totp.generate(counter * STEP_SECS).to_string();
        let hit = candidate.as_bytes().ct_eq(code.as_bytes()) & !found;
        step = u64::conditional_select(&step, &counter, hit);
        found |= hit;
    }
    if bool::from(found) { i64::try_from(step).ok() } else { None }
}

/// The code for `now`, for tests and for the CLI's self-check.
pub fn code_at(secret: &[u8], now: i64) -> Option<String> {
    Some(totp(secret, "x")?.generate(u64::try_from(now).ok()?).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_neighbours_only() {
        let s = generate_secret();
        let now = 1_800_000_015;
        let code = code_at(&s, now).unwrap();
        assert_eq!(code.len(), 6);
        assert_eq!(matching_step(&s, &code, now), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&s, &code, now + 90), None);
        assert_eq!(matching_step(&s, "12345", now), None);
        assert_eq!(matching_step(&s, "abcdef", now), None);
    }

    #[test]
    fn rfc6238_test_vector() {
        // RFC 6238 Appendix B, SHA-1, T = 59 -> 94287082 (8 digits); its last 6 are 287082.
        assert_eq!(code_at(b"12345678901234567890", 59).as_deref(), Some("287082"));
    }

    #[test]
    fn uri_is_otpauth_totp() {
        let uri = otp_uri(&generate_secret(), "cli_x:y").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    }
}
