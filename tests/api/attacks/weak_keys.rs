//! Client public keys that decode but must not be trusted are refused when registered: with a
//! small-order Ed25519 key anyone can make a signature that verifies; another curve's point,
//! an off-curve point, an RSA exponent of 1 or an even one, a modulus outside 2048–8192 bits.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::helpers::{TestApp, spawn_app};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn pem(spki: &[u8]) -> String {
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki))
}

fn weak_keys() -> Vec<(&'static str, String)> {
    let ed_prefix = hex("302a300506032b6570032100");
    let mut identity = vec![0u8; 32];
    identity[0] = 1;
    let order_8 = hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
    let secp256k1 = hex(concat!(
        "3056301006072a8648ce3d020106052b8104000a034200",
        "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
        "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
    ));
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let n = b64(&[0xC5u8; 256]);
    vec![
        ("Ed25519 identity point", pem(&[ed_prefix.clone(), identity.clone()].concat())),
        ("Ed25519 all zeros", pem(&[ed_prefix.clone(), vec![0u8; 32]].concat())),
        ("Ed25519 order 8", format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64(&order_8))),
        ("secp256k1 as EC", pem(&secp256k1)),
        ("off-curve P-256", format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#, b64(&[7; 32]), b64(&[9; 32]))),
        ("RSA e=1", format!(r#"{{"kty":"RSA","n":"{n}","e":"AQ"}}"#)),
        ("RSA even e", format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAA"}}"#)),
        ("RSA 16384 bits", format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64(&[0xC5u8; 2048]))),
    ]
}

async fn refused(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(args).await;
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn weak_public_keys_are_refused_by_client_create_and_add_key() {
    let app = spawn_app().await;
    let client = app.create_client("keyless", "deploy").await;

    for (what, key) in weak_keys() {
        let path = app.write_file("weak.key", &key);
        let create = ["client", "create", "--name", "victim", "--scopes", "deploy", "--public-key", &path];
        let err = refused(&app, &create).await;
        assert!(err.contains("--public-key"), "{what}: {err}");
        let add = ["client", "add-key", &client.client_id, "--public-key", &path];
        let err = refused(&app, &add).await;
        assert!(err.contains("--public-key"), "{what}: {err}");
    }
    assert_eq!(app.list_clients().await.len(), 1, "no client was created");
}
