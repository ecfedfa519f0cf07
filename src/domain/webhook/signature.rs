//! Signing per Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the receiver's secret, which is shown
//! once as `whsec_<base64>` (the form the specification's libraries take).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto;

const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// A receiver's signing secret. Never printed by `Debug`.
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        crypto::random_bytes(&mut key);
        WebhookSecret(key)
    }

    /// The key bytes as unsealed from the database.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        WebhookSecret(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_…`, to be shown once to the operator.
    pub fn reveal(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{PREFIX}{}", STANDARD.encode(&*self.0)))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp` (Unix seconds).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes()) else {
        return String::new(); // HMAC takes keys of any length
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let secret = WebhookSecret::from_bytes(Zeroizing::new(key));
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_is_shown_in_the_whsec_form_and_never_debugged() {
        let s = WebhookSecret::generate();
        let shown = s.reveal();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap(), s.bytes());
        assert!(!format!("{s:?}").contains(&shown[6..]));
    }
}
