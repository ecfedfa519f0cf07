#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/: a handful of valid and near-valid inputs
per target (see each target's doc comment for its input layout). Deterministic; rerun after
changing a layout. Nothing here is a real secret: the tokens are made up for the corpus, and
the short-term id is MACed under the fuzz target's fixed test key ([7; 32])."""

import base64
import hashlib
import hmac
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def base62_fixed(v: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(BASE62[v % 62])
        v //= 62
    return "".join(reversed(out))


def opaque(prefix: str, body: str) -> str:
    """`<prefix><43 base62><6 base62 checksum>`, as `OpaqueSecret` (src/domain/types.rs)."""
    d = hashlib.sha256((prefix + body).encode()).digest()
    return prefix + body + base62_fixed(int.from_bytes(d[:4], "big"), 6)


def short_id(master: bytes, parent: bytes, exp: int, nonce: bytes) -> str:
    """`st_` + base64url(parent ‖ exp ‖ nonce ‖ MAC), as `ShortTokenId`."""
    id_key = hmac.new(master, b"tokensmith/v1/short-id", hashlib.sha256).digest()
    raw = parent + exp.to_bytes(4, "big") + nonce
    return "st_" + b64url(raw + hmac.new(id_key, raw, hashlib.sha256).digest()[:12])


def write(target: str, name: str, data: bytes | str) -> None:
    path = os.path.join(HERE, "corpus", target, name)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def main() -> None:
    for t in ("token_parse", "assertion", "request_body"):
        shutil.rmtree(os.path.join(HERE, "corpus", t), ignore_errors=True)
        os.makedirs(os.path.join(HERE, "corpus", t))

    body = "".join(BASE62[(i * 7 + 3) % 62] for i in range(43))
    long_token = opaque("tsl_", body)
    write("token_parse", "long_token", long_token)
    write("token_parse", "client_secret", opaque("tsc_", body))
    write("token_parse", "long_token_bad_checksum", long_token[:-1] + ("A" if long_token[-1] != "A" else "B"))
    write("token_parse", "client_id", "cli_3vQk0ZcO0mB1m4v8Xq2L")
    write("token_parse", "long_id", "01a227ec-c4a8-7277-be62-5a974990e263")
    write("token_parse", "long_id_upper", "01A227EC-C4A8-7277-BE62-5A974990E263")
    sid = short_id(bytes([7] * 32), bytes.fromhex("01a227ecc4a87277be625a974990e263"), 1_800_000_000, b"\x01" * 8)
    write("token_parse", "short_id", sid)
    write("token_parse", "short_id_tampered", sid[:10] + ("B" if sid[10] != "B" else "C") + sid[11:])
    write("token_parse", "scopes", "tokens:write  tokens:introspect deploy")

    # assertion: mode 0 (key text), 1 (JWT string), 2 (structured; see assertion.rs).
    ed_pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
    write("assertion", "key_ed25519_pem", b"\x00" + ed_pem.encode())
    p256 = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    write("assertion", "key_p256_jwk", b"\x00" + json.dumps(p256).encode())
    write("assertion", "key_oct_jwk", b"\x00" + b'{"kty":"oct","k":"c2VjcmV0"}')
    write("assertion", "key_rsa_jwk_short", b"\x00" + b'{"kty":"RSA","n":"0vx7","e":"AQAB","alg":"RS256"}')
    write("assertion", "key_private_pem", b"\x00-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n")
    claims = {"iss": "cli_a", "sub": "cli_a", "aud": "http://fuzz.test", "exp": 1999999999, "iat": 1, "jti": "j1"}
    c = json.dumps(claims, separators=(",", ":")).encode()
    none_jwt = b64url(b'{"alg":"none"}') + "." + b64url(c) + "."
    write("assertion", "jwt_none", b"\x01" + none_jwt.encode())
    write("assertion", "jwt_hs256", b"\x01" + (b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(c) + ".c2ln").encode())

    def structured(name: str, sign: int, header: dict, op: int = 0, pos: int = 0, byte: int = 0) -> None:
        h = json.dumps(header, separators=(",", ":")).encode()
        head = bytes([2, sign, len(h), op, pos >> 8, pos & 0xFF, byte])
        write("assertion", name, head + h + c)

    structured("real_ed25519", 0x05, {"alg": "EdDSA", "typ": "JWT"})
    structured("real_p256", 0x15, {"alg": "ES256"})
    structured("real_rsa", 0x25, {"alg": "RS256", "typ": "JWT"})
    structured("real_ed25519_at_jwt", 0x05, {"alg": "EdDSA", "typ": "at+jwt", "kid": "KID_ED"})
    structured("real_p256_at_jwt_altered", 0x15, {"alg": "ES256", "typ": "at+jwt", "kid": "KID_ES"}, op=1, pos=40,
               byte=ord("A"))
    own = {"iss": "http://fuzz.test", "sub": "cli_a", "client_id": "cli_a", "aud": "a", "iat": 1, "exp": 2,
           "jti": "st_x", "scope": "read", "ltid": "01a227ec-c4a8-7277-be62-5a974990e263"}
    h = json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "KID_ES"}, separators=(",", ":")).encode()
    write("assertion", "real_p256_own_token", bytes([2, 0x15, len(h), 0, 0, 0, 0]) + h + json.dumps(own).encode())
    structured("unsigned_none", 0x00, {"alg": "none"})
    structured("hmac_with_rsa_pem", 0x21, {"alg": "HS256", "typ": "JWT"})
    structured("rsa_pss", 0x23, {"alg": "PS256"})
    structured("ecdsa_der", 0x14, {"alg": "ES256"})

    # request_body: [operation, bearer, X-Client-Key, Content-Type] + body.
    def req(name: str, head: tuple[int, int, int, int], body: str) -> None:
        write("request_body", name, bytes(head) + body.encode())

    req("long_secret", (0, 0, 0, 1),
        '{"grant_type":"client_credentials","client_id":"$CLIENT","client_secret":"$SECRET","ttl_days":30,"name":"ci"}')
    req("long_secret_header", (0, 0, 1, 1), '{"grant_type":"client_credentials","client_secret":"$SECRET","scopes":["read"]}')
    req("long_rotate", (0, 0, 0, 1),
        '{"grant_type":"client_credentials","client_id":"$CLIENT","client_secret":"$SECRET",'
        '"rotate_token_id":"01a227ec-c4a8-7277-be62-5a974990e263","grace_seconds":300}')
    req("long_otp", (0, 0, 0, 0), '{"grant_type":"client_credentials","client_id":"$CLIENT","otp_code":"123456"}')
    req("long_assertion", (0, 0, 0, 1),
        '{"grant_type":"urn:ietf:params:oauth:grant-type:jwt-bearer","assertion":"' + none_jwt + '"}')
    req("long_short_token", (0, 2, 0, 1), '{"scopes":["read","tokens:write"],"ttl_days":1}')
    req("short", (1, 1, 0, 1), '{"scopes":["read"],"audience":"https://deploy.example","ttl_seconds":300}')
    req("short_empty", (1, 1, 0, 0), "")
    req("introspect_short", (2, 1, 0, 1), '{"token":"$SHORT_TOKEN"}')
    req("introspect_long", (2, 2, 0, 3), '{"token":"$LONG_TOKEN"}')


if __name__ == "__main__":
    main()
