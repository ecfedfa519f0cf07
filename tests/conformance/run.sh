#!/usr/bin/env bash
# OpenAPI conformance: the document tokensmith serves, the client users generate from it, and
# the server's answers to everything that document allows.
#
#   1. builds tokensmith (if needed) and starts it on a fresh SQLite database;
#   2. fetches GET /openapi.json (and checks `tokensmith openapi` prints the same document);
#   3. generates the typescript-axios client with openapi-generator 7.26.0; requires its docs to
#      equal the API reference in docs/api/ (UPDATE_DOCS=1 rewrites docs/api/ instead), and its
#      docs/AuthApi.md to equal the user's specification except the base-URL line when that
#      document is at ../shared/seed/AuthApi.md beside the repository (or at $SEED_DOC);
#      without it, that comparison says SKIPPED;
#   4. compiles that client and runs client.test.mjs (node's test runner, the real axios, jose);
#   5. restarts tokensmith with the failed-authentication limits off and runs schemathesis on
#      every operation with real credentials, a fixed seed and a bounded number of examples;
#      then the same on the admin API's document (/admin/openapi.json on --admin-listen) with a
#      real admin token;
#   6. scans the servers' logs for secrets;
#   7. registers a webhook receiver that verifies deliveries with the Standard Webhooks
#      reference library (PyPI standardwebhooks), causes events, and checks that each arrives
#      verified and that a forged one is refused.
#
# Needs Java 17+, Node 20+ with npm, Python 3.9+ and curl; installs the rest from PyPI (into a
# venv under the cargo target directory) and npm. Exits non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

GENERATOR_VERSION="7.26.0"
SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_SEED="20261129"
SCHEMATHESIS_EXAMPLES="200"
STANDARDWEBHOOKS_VERSION="1.1.0"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/debug/tokensmith"
VENV="$TARGET/conformance/venv"
WORK="$(mktemp -d)"
SERVER_PID=""
RECEIVER_PID=""

log() { printf '== conformance: %s\n' "$*"; }
fail() { printf 'conformance: FAILED: %s\n' "$*" >&2; exit 1; }

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    [[ -n "$RECEIVER_PID" ]] && kill "$RECEIVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- tools ----------------------------------------------------------------------------------
for tool in java node npm python3 curl; do
    command -v "$tool" >/dev/null || fail "$tool is required (see the top of $0)"
done

log "build"
cargo build --locked --quiet --bin tokensmith

log "python tools (openapi-generator-cli $GENERATOR_VERSION, schemathesis $SCHEMATHESIS_VERSION)"
REQUIREMENTS="openapi-generator-cli==$GENERATOR_VERSION schemathesis==$SCHEMATHESIS_VERSION standardwebhooks==$STANDARDWEBHOOKS_VERSION"
if [[ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # the requirements are words
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $REQUIREMENTS
    echo "$REQUIREMENTS" >"$VENV/.requirements"
fi
# The PyPI package runs the jar it bundles; nothing is downloaded at run time.
[[ "$("$VENV/bin/openapi-generator-cli" version)" == "$GENERATOR_VERSION" ]] ||
    fail "openapi-generator-cli is not $GENERATOR_VERSION"

log "node packages"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

# ---- a server -------------------------------------------------------------------------------
# start_server DB [FLAGS...]: starts tokensmith on a free port and sets URL.
start_server() {
    local db="$1"
    shift
    "$BIN" --log-format json serve --listen 127.0.0.1:0 --database "sqlite://$WORK/$db" "$@" \
        >"$WORK/$db.out" 2>"$WORK/$db.log" &
    SERVER_PID=$!
    URL=""
    for _ in $(seq 1 100); do
        URL="$(grep -o 'listening on http://[0-9.:]*' "$WORK/$db.out" 2>/dev/null | cut -d' ' -f3 || true)"
        [[ -n "$URL" ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$db.log" >&2 || true
    fail "tokensmith did not start"
}

# create_client DB NAME SCOPES: prints the client's JSON (client_id, client_secret).
create_client() {
    "$BIN" client create --database "sqlite://$WORK/$1" --name "$2" --scopes "$3" --json
}

# field JSON NAME: one string field of a JSON object.
field() {
    python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# ---- 1-3: the document and the generated client's documentation -----------------------------
main_client="$(create_client node.db main "tokens:write tokens:introspect deploy")"
limited_client="$(create_client node.db limited "deploy")"
throttled_client="$(create_client node.db throttled "deploy")"
start_server node.db
log "tokensmith at $URL"

curl -fsS "$URL/openapi.json" -o "$WORK/openapi.json"
[[ "$("$BIN" openapi)" == "$(cat "$WORK/openapi.json")" ]] ||
    fail "tokensmith openapi does not print the document served at /openapi.json"

log "generate the typescript-axios client"
rm -rf "$HERE/generated"
"$VENV/bin/openapi-generator-cli" generate -g typescript-axios -i "$WORK/openapi.json" \
    -o "$HERE/generated/client" >"$WORK/generator.log" 2>&1 || {
    cat "$WORK/generator.log" >&2
    fail "openapi-generator could not generate the client"
}

log "docs/api/ against the generated client's docs"
generated_docs="$HERE/generated/client/docs"
if [[ "${UPDATE_DOCS:-0}" == 1 ]]; then
    rm -rf "$ROOT/docs/api"
    mkdir -p "$ROOT/docs/api"
    cp "$generated_docs"/*.md "$ROOT/docs/api/"
    log "docs/api/ rewritten"
elif ! diff -ru "$ROOT/docs/api" "$generated_docs" >"$WORK/docs.diff"; then
    head -100 "$WORK/docs.diff" >&2
    fail "docs/api/ is not what the served document generates (run with UPDATE_DOCS=1 and commit)"
fi

SEED_DOC="${SEED_DOC:-$ROOT/../shared/seed/AuthApi.md}"
generated_doc="$generated_docs/AuthApi.md"
if [[ -f "$SEED_DOC" ]]; then
    log "docs/AuthApi.md against the specification ($SEED_DOC)"
    # The one line allowed to differ names the base URL: the specification's is
    # https://api.example.com/v1, the served document's server is relative (/v1).
    base_line='^All URIs are relative to \*[^*]*\*$'
    [[ "$(grep -c "$base_line" "$SEED_DOC")" == 1 && "$(grep -c "$base_line" "$generated_doc")" == 1 ]] ||
        fail "the base-URL line is not where it is expected"
    if ! diff -u <(sed "/$base_line/d" "$SEED_DOC") <(sed "/$base_line/d" "$generated_doc") >"$WORK/spec.diff"; then
        cat "$WORK/spec.diff" >&2
        fail "the generated docs/AuthApi.md differs from the specification"
    fi
    log "docs/AuthApi.md matches the specification; base URL: $(grep "$base_line" "$generated_doc")"
else
    log "SKIPPED: docs/AuthApi.md against the specification ($SEED_DOC is not there)"
fi

# ---- 4: the generated client against the server ---------------------------------------------
log "compile the client"
(cd "$HERE" && npx --no-install tsc -p tsconfig.json)

log "node test: the generated client against tokensmith"
(
    cd "$HERE"
    TOKENSMITH_URL="$URL" \
        MAIN_CLIENT_ID="$(field "$main_client" client_id)" \
        MAIN_CLIENT_SECRET="$(field "$main_client" client_secret)" \
        LIMITED_CLIENT_ID="$(field "$limited_client" client_id)" \
        LIMITED_CLIENT_SECRET="$(field "$limited_client" client_secret)" \
        THROTTLED_CLIENT_ID="$(field "$throttled_client" client_id)" \
        THROTTLED_CLIENT_SECRET="$(field "$throttled_client" client_secret)" \
        node --test client.test.mjs
)
stop_server

# ---- 5: schemathesis -------------------------------------------------------------------------
# Failed authentications are expected by the thousand here: the limits would turn them into
# 429s that hide everything else, so they are off.
st_client="$(create_client st.db schemathesis "tokens:write tokens:introspect deploy")"
start_server st.db --failures-per-client 0 --failures-per-address 0 --otp-failures-per-day 0
log "tokensmith at $URL (failure limits off)"
TOKENSMITH_CLIENT_ID="$(field "$st_client" client_id)"
long="$(curl -fsS -X POST "$URL/v1/auth/tokens/long" -H 'Content-Type: application/json' \
    -d "{\"grant_type\":\"client_credentials\",\"client_id\":\"$TOKENSMITH_CLIENT_ID\",\"client_secret\":\"$(field "$st_client" client_secret)\"}")"
TOKENSMITH_LONG_TOKEN="$(field "$long" access_token)"
short="$(curl -fsS -X POST "$URL/v1/auth/tokens/short" -H "Authorization: Bearer $TOKENSMITH_LONG_TOKEN")"
TOKENSMITH_SHORT_TOKEN="$(field "$short" access_token)"
export TOKENSMITH_CLIENT_ID TOKENSMITH_LONG_TOKEN TOKENSMITH_SHORT_TOKEN

log "schemathesis: every operation, seed $SCHEMATHESIS_SEED, at most $SCHEMATHESIS_EXAMPLES examples each"
# All checks but two whose premise this API does not meet by design:
# - positive_data_acceptance: a schema-valid body can still break a rule no schema can state
#   (one mechanism per call; scopes within the caller's), which is a documented 400;
# - ignored_auth: issueLongTermToken may carry its credential (client_id and client_secret) in
#   the body, with none of its security schemes, as the API reference (docs/api/) says.
# What remains includes: no 5xx, every status documented, every body and header as documented,
# schema-invalid requests refused, unsupported methods refused.
(
    cd "$WORK"
    "$VENV/bin/schemathesis" --no-color --config-file "$HERE/schemathesis.toml" run "$URL/openapi.json" \
        --checks all --exclude-checks positive_data_acceptance,ignored_auth \
        --seed "$SCHEMATHESIS_SEED" --max-examples "$SCHEMATHESIS_EXAMPLES" --workers 1 \
        --generation-database none --request-timeout 10
)
stop_server
if grep -q '"level":"ERROR"' "$WORK/st.db.log"; then
    grep '"level":"ERROR"' "$WORK/st.db.log" | head -20 >&2
    fail "tokensmith logged errors during the schemathesis run"
fi

# ---- 5b: schemathesis on the admin API -------------------------------------------------------
# The admin listener's own document, with a real admin token (admin:read and admin:write, its
# audience the admin URL). signOut is left out: it would revoke the token every later request
# needs. Changes go to a database of their own.
adm_client="$("$BIN" admin bootstrap --database "sqlite://$WORK/adm.db" --json)"
start_server adm.db --failures-per-client 0 --failures-per-address 0 --otp-failures-per-day 0 \
    --admin-listen 127.0.0.1:0
ADMIN_URL="$(grep -o 'admin API and console on http://[0-9.:]*' "$WORK/adm.db.out" | cut -d' ' -f6)"
[[ -n "$ADMIN_URL" ]] || fail "tokensmith did not announce its admin listener"
log "tokensmith at $URL, admin API at $ADMIN_URL (failure limits off)"
# Admin scopes are never granted to a secret alone: sign in with the secret and a TOTP code.
adm_code="$(python3 - "$(field "$adm_client" otp_secret)" <<'PY'
import base64, hashlib, hmac, struct, sys, time
seed = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
mac = hmac.new(seed, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
)"
adm_short="$(curl -fsS -X POST "$ADMIN_URL/admin/v1/session" -H 'Content-Type: application/json' \
    -d "{\"client_id\":\"$(field "$adm_client" client_id)\",\"client_secret\":\"$(field "$adm_client" client_secret)\",\"otp\":\"$adm_code\"}")"
TOKENSMITH_ADMIN_TOKEN="$(field "$adm_short" access_token)"
export TOKENSMITH_ADMIN_TOKEN
log "schemathesis: every admin operation but signOut, disableClient and revokeAnyToken, seed $SCHEMATHESIS_SEED, at most $SCHEMATHESIS_EXAMPLES examples each"
# The same checks as above; positive_data_acceptance is left out for the same reason (a
# schema-valid body can name a client that does not exist: a documented 404). No stateful
# phase, and two operations left out besides signOut: schemathesis reuses ids from earlier
# answers, and disableClient or revokeAnyToken on the very client (or session) whose token it
# holds would leave nothing but 401s to test from then on (both are covered by tests/api).
(
    cd "$WORK"
    "$VENV/bin/schemathesis" --no-color --config-file "$HERE/schemathesis-admin.toml" run "$ADMIN_URL/admin/openapi.json" \
        --checks all --exclude-checks positive_data_acceptance,ignored_auth --exclude-operation-id signOut \
        --exclude-operation-id disableClient --exclude-operation-id revokeAnyToken --phases examples,coverage,fuzzing \
        --seed "$SCHEMATHESIS_SEED" --max-examples "$SCHEMATHESIS_EXAMPLES" --workers 1 \
        --generation-database none --request-timeout 10
)
stop_server
if grep -q '"level":"ERROR"' "$WORK/adm.db.log"; then
    grep '"level":"ERROR"' "$WORK/adm.db.log" | head -20 >&2
    fail "tokensmith logged errors during the admin schemathesis run"
fi

# ---- 6: the logs of both runs hold no secret ----------------------------------------------
# Both servers logged as JSON, one access line per request. Scan everything they wrote for the
# secrets this script knows and for anything shaped like a token or a JWT (the Node test and
# schemathesis mint their own).
log "scan the servers' logs for secrets"
python3 - "$WORK/node.db.log" "$WORK/st.db.log" "$WORK/adm.db.log" \
    "$(field "$main_client" client_secret)" "$(field "$limited_client" client_secret)" \
    "$(field "$throttled_client" client_secret)" "$(field "$st_client" client_secret)" \
    "$TOKENSMITH_LONG_TOKEN" "$TOKENSMITH_SHORT_TOKEN" "$(field "$adm_client" client_secret)" \
    "$TOKENSMITH_ADMIN_TOKEN" <<'PY' || fail "a server log holds a secret"
import json, re, sys
logs, secrets = sys.argv[1:4], sys.argv[4:]
shapes = re.compile(r"ts[lc]_[0-9A-Za-z]{20,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ")
for path in logs:
    text = open(path, encoding="utf-8").read()
    lines = [json.loads(l) for l in text.splitlines() if l.strip()]
    access = [l for l in lines if l.get("target") == "tokensmith::access"]
    if not access or any("request_id" not in l or "status" not in l for l in access):
        sys.exit(f"{path}: no access lines, or access lines without request_id/status")
    for s in secrets:
        if s and s in text:
            sys.exit(f"{path} holds a secret this script issued")
    m = shapes.search(text)
    if m:
        sys.exit(f"{path} holds something shaped like a token: {m.group(0)[:8]}…")
    print(f"{path}: {len(lines)} lines, {len(access)} requests, no secret")
PY

# ---- 7: webhooks, verified by the Standard Webhooks reference library ------------------------
log "webhooks: deliveries verified with standardwebhooks $STANDARDWEBHOOKS_VERSION"
hook_db="sqlite://$WORK/hooks.db"
hook_client="$(create_client hooks.db hooks "tokens:write")"
"$VENV/bin/python" "$HERE/webhook_receiver.py" "$WORK/whsec" "$WORK/hooks.jsonl" "$WORK/hooks.port" &
RECEIVER_PID=$!
for _ in $(seq 1 50); do [[ -s "$WORK/hooks.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/hooks.port" ]] || fail "the webhook receiver did not start"
hook="$("$BIN" webhook add --database "$hook_db" --url "http://127.0.0.1:$(cat "$WORK/hooks.port")/hook" \
    --events token.issued,token.revoked,key.rotated,client.disabled --json)"
field "$hook" secret >"$WORK/whsec"
"$BIN" webhook test --database "$hook_db" "$(field "$hook" webhook_id)" >/dev/null || fail "webhook test was refused"
start_server hooks.db
hook_id="$(field "$hook_client" client_id)"
long="$(curl -fsS -X POST "$URL/v1/auth/tokens/long" -H 'Content-Type: application/json' \
    -d "{\"grant_type\":\"client_credentials\",\"client_id\":\"$hook_id\",\"client_secret\":\"$(field "$hook_client" client_secret)\"}")"
curl -fsS -X POST "$URL/v1/auth/tokens/$(field "$long" token_id)/revoke" \
    -H "Authorization: Bearer $(field "$long" access_token)" -o /dev/null
"$BIN" keys rotate --database "$hook_db" >/dev/null
"$BIN" client disable --database "$hook_db" "$hook_id" >/dev/null
# A forged delivery (the right headers, another body) must be refused by the library.
curl -sS -o /dev/null -X POST "http://127.0.0.1:$(cat "$WORK/hooks.port")/hook" \
    -H "webhook-id: msg_forged" -H "webhook-timestamp: $(date +%s)" \
    -H "webhook-signature: v1,$(printf 'forged' | base64)" -d '{"type":"token.revoked"}'
"$VENV/bin/python" - "$WORK/hooks.jsonl" <<'PY' || fail "the webhook deliveries did not all arrive verified"
import json, sys, time
want = {"webhook.test", "token.issued", "token.revoked", "key.rotated", "client.disabled"}
deadline = time.time() + 30
while True:
    try:
        entries = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
    except FileNotFoundError:
        entries = []
    verified = {e["type"] for e in entries if e["verified"]}
    forged = [e for e in entries if e["id"] == "msg_forged"]
    if want <= verified and forged:
        break
    if time.time() > deadline:
        sys.exit(f"verified {sorted(verified)}, want {sorted(want)}; forged seen: {bool(forged)}")
    time.sleep(0.2)
if any(e["verified"] for e in forged):
    sys.exit("the forged delivery was verified")
bad = [e for e in entries if not e["verified"] and e["id"] != "msg_forged"]
if bad:
    sys.exit(f"deliveries the library refused: {bad}")
print(f"{len(entries) - len(forged)} deliveries verified by standardwebhooks; the forged one refused")
PY
stop_server

log "all passed"
