// The typescript-axios client that openapi-generator writes from tokensmith's own OpenAPI
// document, used as a user would: against a running tokensmith, with the real axios, and the
// short-term JWTs verified against the JWKS with jose.
//
// run.sh generates and compiles the client into generated/, starts the server, registers the
// clients and sets the environment read below.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const require = createRequire(import.meta.url);
const { AuthApi, Configuration, DiscoveryApi, IntrospectionApi, TokenExchangeApi } = require(
  './generated/dist/index.js',
);

function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (run tests/conformance/run.sh)`);
  return value;
}

/** The server's root, e.g. http://127.0.0.1:PORT. */
const ROOT = env('TOKENSMITH_URL');
/** The token operations' base: the document's server `/v1`. */
const BASE = `${ROOT}/v1`;
/** A client with tokens:write, tokens:introspect and deploy. */
const MAIN = { id: env('MAIN_CLIENT_ID'), secret: env('MAIN_CLIENT_SECRET') };
/** A client with deploy only. */
const LIMITED = { id: env('LIMITED_CLIENT_ID'), secret: env('LIMITED_CLIENT_SECRET') };
/** A client used only to run into the failed-authentication limit. */
const THROTTLED = { id: env('THROTTLED_CLIENT_ID'), secret: env('THROTTLED_CLIENT_SECRET') };

/** An AuthApi whose Configuration carries the given credentials. */
function auth({ apiKey, accessToken } = {}) {
  return new AuthApi(new Configuration({ basePath: BASE, apiKey, accessToken }));
}

/** The error response of a call that must fail, as the client reports it. */
async function failure(call) {
  try {
    const res = await call;
    assert.fail(`expected an error status, got ${res.status}`);
  } catch (e) {
    if (!e.response) throw e;
    assert.equal(e.name, 'AxiosError');
    assert.match(e.response.headers['content-type'], /^application\/json/);
    assert.equal(typeof e.response.data.error, 'string');
    assert.equal(typeof e.response.data.error_description, 'string');
    return e.response;
  }
}

async function longToken(client = MAIN, extra = {}) {
  const res = await auth().issueLongTermToken({
    grant_type: 'client_credentials',
    client_id: client.id,
    client_secret: client.secret,
    ...extra,
  });
  assert.equal(res.status, 201);
  return res.data;
}

async function shortToken(long, body) {
  const res = await auth({ accessToken: long.access_token }).issueShortTermToken(body);
  assert.equal(res.status, 201);
  return res.data;
}

function assertLongResponse(res, client) {
  assert.equal(res.status, 201);
  const t = res.data;
  assert.match(t.access_token, /^tsl_/);
  assert.equal(t.token_type, 'Bearer');
  assert.equal(t.client_id, client.id);
  assert.equal(res.headers['x-token-id'], t.token_id, 'X-Token-Id names the token');
  assert.ok(Date.parse(t.expires_at) > Date.parse(t.issued_at));
  assert.equal(t.expires_in, (Date.parse(t.expires_at) - Date.parse(t.issued_at)) / 1000);
}

test('issueLongTermToken: client secret, the client named by ClientKey (X-Client-Key)', async () => {
  const res = await auth({ apiKey: MAIN.id }).issueLongTermToken({
    grant_type: 'client_credentials',
    client_secret: MAIN.secret,
    ttl_days: 7,
    name: 'conformance',
  });
  assertLongResponse(res, MAIN);
  assert.equal(res.data.expires_in, 7 * 86400);
  assert.deepEqual(res.data.scopes, ['deploy', 'tokens:introspect', 'tokens:write']);
});

test('issueLongTermToken: client secret and client_id in the body', async () => {
  const res = await auth().issueLongTermToken({
    grant_type: 'client_credentials',
    client_id: MAIN.id,
    client_secret: MAIN.secret,
    scopes: ['deploy'],
  });
  assertLongResponse(res, MAIN);
  assert.deepEqual(res.data.scopes, ['deploy']);
  assert.equal(res.data.expires_in, 30 * 86400, 'default lifetime is 30 days');
});

test('issueShortTermToken: a JWT that verifies against the JWKS', async () => {
  const discovery = new DiscoveryApi(new Configuration({ basePath: ROOT }));
  const { data: meta } = await discovery.getServerMetadata();
  assert.equal(meta.jwks_uri, `${meta.issuer.replace(/\/$/, '')}/.well-known/jwks.json`);

  const long = await longToken();
  const short = await shortToken(long, { scopes: ['deploy'], audience: 'https://deploy.example', ttl_seconds: 300 });
  assert.equal(short.token_type, 'Bearer');
  assert.deepEqual(short.scopes, ['deploy']);
  assert.equal(short.expires_in, 300);

  const jwks = createRemoteJWKSet(new URL(`${ROOT}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(short.access_token, jwks, {
    issuer: meta.issuer,
    audience: 'https://deploy.example',
    typ: 'at+jwt',
    algorithms: ['EdDSA', 'ES256'],
  });
  assert.ok(meta.access_token_signing_alg_values_supported.includes(protectedHeader.alg));
  assert.equal(payload.sub, MAIN.id);
  assert.equal(payload.client_id, MAIN.id);
  assert.equal(payload.jti, short.token_id);
  assert.equal(payload.scope, 'deploy');
  assert.equal(payload.exp - payload.iat, 300);

  // The key that signed it is in the JWKS, as the document describes it.
  const { data: set } = await discovery.getJwks();
  const key = set.keys.find((k) => k.kid === decodeProtectedHeader(short.access_token).kid);
  assert.ok(key, 'the signing key is published');
  assert.equal(key.alg, protectedHeader.alg);
  assert.equal(key.use, 'sig');
});

test('issueShortTermToken: the body is optional', async () => {
  const long = await longToken();
  const short = await shortToken(long);
  assert.deepEqual(short.scopes, long.scopes);
  assert.equal(short.expires_in, 900, 'default lifetime is 15 minutes');
});

test('issueLongTermToken: minted with a short-term token holding tokens:write', async () => {
  const short = await shortToken(await longToken(), { scopes: ['tokens:write', 'deploy'] });
  const api = auth({ accessToken: short.access_token });

  const explicit = await api.issueLongTermToken({ grant_type: 'short_token', scopes: ['deploy'], ttl_days: 1 });
  assertLongResponse(explicit, MAIN);
  assert.deepEqual(explicit.data.scopes, ['deploy']);

  // With a bearer token, grant_type may be left out.
  const implicit = await api.issueLongTermToken({});
  assertLongResponse(implicit, MAIN);
  assert.deepEqual(implicit.data.scopes, ['deploy', 'tokens:write']);
});

test('revokeToken: short-term, then long-term with its cascade; idempotent', async () => {
  const long = await longToken();
  const shortA = await shortToken(long);
  const shortB = await shortToken(long);
  const asLong = auth({ accessToken: long.access_token });

  let res = await asLong.revokeToken(shortA.token_id);
  assert.equal(res.status, 204);
  assert.equal(res.data, '');
  res = await asLong.revokeToken(shortA.token_id);
  assert.equal(res.status, 204, 'revoking again is 204');
  const rejected = await failure(auth({ accessToken: shortA.access_token }).issueLongTermToken({}));
  assert.equal(rejected.status, 401);

  // shortB is still good until its long-term token goes.
  const introspection = new IntrospectionApi(new Configuration({ basePath: BASE, accessToken: long.access_token }));
  assert.equal((await introspection.introspectToken({ token: shortB.access_token })).data.active, true);

  res = await auth({ accessToken: shortB.access_token }).revokeToken(long.token_id);
  assert.equal(res.status, 204, 'a short-term token may revoke its own client token with tokens:write');
  res = await asLong.revokeToken(long.token_id).catch((e) => e.response);
  assert.equal(res.status, 401, 'the revoked long-term token no longer authenticates');

  const other = await longToken();
  const introspect = new IntrospectionApi(new Configuration({ basePath: BASE, accessToken: other.access_token }));
  assert.deepEqual((await introspect.introspectToken({ token: shortB.access_token })).data, { active: false });
  assert.deepEqual((await introspect.introspectToken({ token: long.access_token })).data, { active: false });
  res = await auth({ accessToken: other.access_token }).revokeToken(long.token_id);
  assert.equal(res.status, 204, 'revoking a revoked token is 204');
});

test('errors the seed lists: 400 Bad request', async () => {
  let res = await failure(auth().issueLongTermToken({ grant_type: 'client_credentials', client_secret: MAIN.secret }));
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'invalid_request');

  res = await failure(auth().issueLongTermToken({ grant_type: 'password', client_id: MAIN.id }));
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'unsupported_grant_type');

  res = await failure(
    auth({ apiKey: MAIN.id }).issueLongTermToken({ grant_type: 'client_credentials', client_secret: MAIN.secret, ttl_days: 91 }),
  );
  assert.equal(res.status, 400);

  res = await failure(
    auth({ apiKey: MAIN.id }).issueLongTermToken({ grant_type: 'client_credentials', client_secret: MAIN.secret, colour: 'blue' }),
  );
  assert.equal(res.status, 400, 'unknown fields are refused');
  assert.match(res.data.error_description, /colour/);

  const long = await longToken(MAIN, { scopes: ['deploy'] });
  const asLong = auth({ accessToken: long.access_token });
  res = await failure(asLong.issueShortTermToken({ ttl_seconds: 30 }));
  assert.equal(res.status, 400);
  res = await failure(asLong.issueShortTermToken({ scopes: ['tokens:write'] }));
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'invalid_scope');
});

test('errors the seed lists: 401 Unauthorized', async () => {
  let res = await failure(auth({ apiKey: MAIN.id }).issueLongTermToken({ grant_type: 'client_credentials', client_secret: 'tsc_wrong' }));
  assert.equal(res.status, 401);
  assert.equal(res.data.error, 'invalid_client');

  res = await failure(auth({ accessToken: 'tsl_not-a-token' }).issueShortTermToken());
  assert.equal(res.status, 401);
  assert.equal(res.data.error, 'invalid_token');
  assert.match(res.headers['www-authenticate'], /^Bearer .*error="invalid_token"/);

  res = await failure(auth().issueShortTermToken());
  assert.equal(res.status, 401, 'no token');
  assert.match(res.headers['www-authenticate'], /^Bearer/);

  res = await failure(auth().revokeToken('anything'));
  assert.equal(res.status, 401);
});

test('errors the seed lists: 403 Forbidden', async () => {
  // More scopes than the client may grant.
  let res = await failure(
    auth({ apiKey: LIMITED.id }).issueLongTermToken({
      grant_type: 'client_credentials',
      client_secret: LIMITED.secret,
      scopes: ['deploy', 'tokens:write'],
    }),
  );
  assert.equal(res.status, 403);
  assert.equal(res.data.error, 'insufficient_scope');

  // A short-term token without tokens:write cannot mint a long-term token.
  const short = await shortToken(await longToken(), { scopes: ['deploy'] });
  res = await failure(auth({ accessToken: short.access_token }).issueLongTermToken({ grant_type: 'short_token' }));
  assert.equal(res.status, 403);
  assert.equal(res.data.error, 'insufficient_scope');
});

test('exchangeToken: a subject token from no trusted issuer is the one invalid_grant', async () => {
  const api = new TokenExchangeApi(new Configuration({ basePath: BASE }));
  const long = await longToken();
  const short = (await auth({ accessToken: long.access_token }).issueShortTermToken()).data;
  const request = {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: short.access_token,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  };
  let res = await failure(api.exchangeToken(request));
  assert.equal(res.status, 401);
  assert.equal(res.data.error, 'invalid_grant');
  res = await failure(api.exchangeToken({ ...request, grant_type: 'client_credentials' }));
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'unsupported_grant_type');
});

test('errors the seed lists: 404 Not found', async () => {
  const long = await longToken();
  const asLong = auth({ accessToken: long.access_token });
  let res = await failure(asLong.revokeToken('no-such-token'));
  assert.equal(res.status, 404);
  assert.equal(res.data.error, 'not_found');

  // Another client's token: its existence is not revealed.
  const foreign = await longToken(LIMITED);
  res = await failure(asLong.revokeToken(foreign.token_id));
  assert.equal(res.status, 404);
});

test('errors the seed lists: 429 Too Many Requests', async () => {
  const api = auth({ apiKey: THROTTLED.id });
  const wrong = { grant_type: 'client_credentials', client_secret: 'tsc_wrong' };
  const statuses = [];
  for (let i = 0; i < 15 && !statuses.includes(429); i++) {
    statuses.push((await failure(api.issueLongTermToken(wrong))).status);
  }
  assert.ok(statuses.includes(401), `failed attempts are 401 first: ${statuses}`);
  assert.equal(statuses.at(-1), 429, `then 429: ${statuses}`);

  // Past the limit, the right secret is refused too, with Retry-After.
  const res = await failure(api.issueLongTermToken({ grant_type: 'client_credentials', client_secret: THROTTLED.secret }));
  assert.equal(res.status, 429);
  assert.equal(res.data.error, 'rate_limited');
  assert.match(res.headers['retry-after'], /^[0-9]+$/);
});
