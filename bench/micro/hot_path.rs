//! Micro-benchmarks of the pieces of the hot path (`POST /v1/auth/tokens/short`):
//! checking a long-term token, signing a JWT, serialising the response.
//!
//! Run with `cargo bench --bench hot_path`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tokensmith::crypto::Keyring;
use tokensmith::domain::{LONG_TOKEN_PREFIX, LongTokenId, OpaqueSecret, ShortTokenId};
use tokensmith::http::tokens::ShortTokenResponse;
use tokensmith::signer::{self, KeySet, ShortClaims, SigningAlg};

fn claims(keys: &Keyring) -> ShortClaims {
    let parent = LongTokenId::generate();
    let id = ShortTokenId::generate(keys, parent, 1_900_000_000);
    ShortClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "cli_pMR59Rna5ZGBICGUjyMo".into(),
        client_id: "cli_pMR59Rna5ZGBICGUjyMo".into(),
        aud: "http://127.0.0.1:8080".into(),
        iat: 1_899_999_100,
        exp: 1_900_000_000,
        jti: id.to_string(),
        scope: "read tokens:introspect tokens:write".into(),
        ltid: None,
    }
}

fn bench(c: &mut Criterion) {
    let keyring = Keyring::random();
    let token = OpaqueSecret::generate(LONG_TOKEN_PREFIX);
    let text = token.expose().to_owned();
    c.bench_function("long_token/parse_checksum_and_keyed_hash", |b| {
        b.iter(|| {
            let t = OpaqueSecret::parse(LONG_TOKEN_PREFIX, black_box(&text))
                .map(|t| keyring.keyed_hash(t.expose().as_bytes()));
            black_box(t)
        })
    });
    c.bench_function("short_id/generate", |b| {
        let parent = LongTokenId::generate();
        b.iter(|| black_box(ShortTokenId::generate(&keyring, parent, 1_900_000_000)))
    });
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256] {
        let k = signer::generate(alg).unwrap();
        let set = KeySet::new(std::slice::from_ref(&k), &k.kid).unwrap();
        let cl = claims(&keyring);
        c.bench_function(&format!("jwt/sign_{alg}"), |b| b.iter(|| black_box(set.sign(black_box(&cl)))));
        let jwt = set.sign(&cl).unwrap();
        c.bench_function(&format!("jwt/verify_{alg}"), |b| b.iter(|| black_box(set.verify(black_box(&jwt)))));
    }
    let k = signer::generate(SigningAlg::EdDSA).unwrap();
    let set = KeySet::new(std::slice::from_ref(&k), &k.kid).unwrap();
    let jwt = set.sign(&claims(&keyring)).unwrap();
    c.bench_function("response/serialise_short_token_response", |b| {
        b.iter(|| {
            let r = ShortTokenResponse {
                token_id: "st_AaInYtO6dxOSdw5t33k6dmsMJQIuPLdJIZoLSSCurwBndRa3XHYpag".into(),
                access_token: jwt.clone(),
                token_type: "Bearer",
                scopes: vec!["read".into(), "tokens:introspect".into(), "tokens:write".into()],
                issued_at: tokensmith::clock::rfc3339(1_899_999_100),
                expires_at: tokensmith::clock::rfc3339(1_900_000_000),
                expires_in: 900,
            };
            black_box(r.to_json())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
