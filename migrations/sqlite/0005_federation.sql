-- Trusted external issuers (an OIDC provider, a CI platform, a Kubernetes cluster) and the
-- federation rules that bind a client to the claims of their tokens.
CREATE TABLE trusted_issuers (
    name       TEXT PRIMARY KEY,                 -- the operator's name for it
    issuer     TEXT NOT NULL UNIQUE,             -- the exact `iss` of its tokens
    jwks_uri   TEXT,                             -- keys fetched from here, or
    discovery  INTEGER NOT NULL,                 -- found through its OIDC discovery document, or
    jwks       TEXT,                             -- given as a JWK Set (read from a file at `issuer add`)
    created_at INTEGER NOT NULL
);
CREATE TABLE federation_rules (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients(id),
    issuer_name  TEXT NOT NULL REFERENCES trusted_issuers(name) ON DELETE CASCADE,
    audience     TEXT NOT NULL,                  -- the `aud` the external token must carry
    matches      TEXT NOT NULL,                  -- JSON: [[claim path, pattern], ...], all must hold
    max_ttl_days INTEGER NOT NULL,
    scopes       TEXT,                           -- space-separated; NULL: the client's
    created_at   INTEGER NOT NULL
);
CREATE INDEX federation_rules_issuer ON federation_rules(issuer_name);
CREATE INDEX federation_rules_client ON federation_rules(client_id);
