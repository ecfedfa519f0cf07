// A stand-in for tokensmith's admin listener, for working on the console without building the
// server: serves the console's files under the same CSP and answers the admin API (per the
// spec) from memory. Not used by run.sh.   node tests/console/mock-admin.mjs [port]
// Sign in with client id cli_admin, secret s, any 6-digit code (000000 gets a 401).
import http from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../src/http/admin/console");
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const now = Date.now();
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const clients = [
  { client_id: "cli_admin", name: "admin", scopes: ["admin:read", "admin:write"], otp: true, public_key_alg: null, disabled: false, created_at: iso(now - 86400e3 * 3), last_used_at: iso(now) },
  { client_id: "cli_deploy", name: "deploy-bot", scopes: ["deploy", "tokens:write"], otp: false, public_key_alg: "EdDSA", disabled: false, created_at: iso(now - 86400e3 * 2), last_used_at: null },
];
const tokens = [
  { token_id: "01parent", client_id: "cli_deploy", name: "ci", scopes: ["deploy", "tokens:write"], issued_at: iso(now - 3600e3), expires_at: iso(now + 86400e3 * 2), revoked_at: null, last_used_at: iso(now - 60e3), origin: null, status: "live", parent: null },
  { token_id: "01child", client_id: "cli_deploy", name: "child", scopes: ["deploy"], issued_at: iso(now - 1800e3), expires_at: iso(now + 86400e3 * 2), revoked_at: null, last_used_at: null, origin: null, status: "live", parent: "01parent" },
];
const keys = [{ kid: "k1", alg: "EdDSA", state: "active", created_at: iso(now - 86400e3), activates_at: iso(now - 86400e3), retired_at: null }];
const audit = Array.from({ length: 120 }, (_, i) => ({ id: 120 - i, at: iso(now - i * 60e3), event: i % 7 === 0 ? "auth.failed" : "token.issued", outcome: i % 7 === 0 ? "failure" : "success", client_id: "cli_deploy", token_id: null, source: "127.0.0.1", mechanism: "client_secret", reason: i % 7 === 0 ? "wrong_secret" : null, detail: { n: i } }));
const QR = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 21 21"><rect width="21" height="21" fill="#fff"/><rect x="1" y="1" width="7" height="7"/><rect x="13" y="1" width="7" height="7"/><rect x="1" y="13" width="7" height="7"/><rect x="10" y="10" width="2" height="2"/></svg>';
let session = null;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(body === undefined ? "" : JSON.stringify(body));
}
const err = (res, status, error, description, headers) => send(res, status, { error, error_description: description }, headers);

http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  const files = { "/": ["index.html", "text/html; charset=utf-8"], "/console.js": ["console.js", "text/javascript"], "/console.css": ["console.css", "text/css"] };
  if (req.method === "GET" && files[url.pathname]) {
    const [f, type] = files[url.pathname];
    res.writeHead(200, { "Content-Type": type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff" });
    return res.end(readFileSync(path.join(dir, f)));
  }
  let raw = "";
  for await (const c of req) raw += c;
  const body = raw ? JSON.parse(raw) : {};
  const p = url.pathname.replace(/^\/admin\/v1/, "");
  if (p === "/session" && req.method === "POST") {
    if (body.otp === "000000") return err(res, 401, "invalid_grant", "the client secret or the OTP code is not valid");
    if (body.otp === "429429") return err(res, 429, "rate_limited", "too many failed authentications", { "Retry-After": "42" });
    session = "tok" + Math.random();
    return send(res, 200, { access_token: session, token_type: "Bearer", expires_in: 900, expires_at: iso(Date.now() + 900e3), client_id: body.client_id, scopes: ["admin:read", "admin:write"] });
  }
  if (req.headers.authorization !== `Bearer ${session}`) return err(res, 401, "invalid_token", "the session token is not valid", { "WWW-Authenticate": "Bearer" });
  const m = (re) => p.match(re);
  let r;
  if (p === "/session" && req.method === "DELETE") { session = null; res.writeHead(204); return res.end(); }
  if (p === "/clients" && req.method === "GET") return send(res, 200, clients);
  if (p === "/clients" && req.method === "POST") {
    const c = { client_id: "cli_" + Math.random().toString(36).slice(2, 12), name: body.name, scopes: body.scopes, otp: !!body.otp, public_key_alg: null, disabled: false, created_at: iso(Date.now()), last_used_at: null };
    clients.push(c);
    return send(res, 201, { ...c, client_secret: "tsc_" + "x".repeat(40), ...(c.otp ? { otp_secret: "JBSWY3DPEHPK3PXP", otp_uri: `otpauth://totp/tokensmith:${c.name}?secret=JBSWY3DPEHPK3PXP&issuer=tokensmith`, otp_qr_svg: QR } : {}) });
  }
  if ((r = m(/^\/clients\/([^/]+)$/))) {
    const c = clients.find((x) => x.client_id === r[1]);
    if (!c) return err(res, 404, "not_found", "no such client");
    return send(res, 200, { ...c, public_key: null, public_key_thumbprint: null, long_tokens: { live: 1, rotating: 0, suspended: 0 } });
  }
  if ((r = m(/^\/clients\/([^/]+)\/(disable|enable|rotate-secret|unlock|reset-otp)$/))) {
    const c = clients.find((x) => x.client_id === r[1]);
    if (!c) return err(res, 404, "not_found", "no such client");
    if (r[2] === "disable") { c.disabled = true; return send(res, 200, { client_id: c.client_id, disabled: true }); }
    if (r[2] === "enable") { c.disabled = false; return send(res, 200, { client_id: c.client_id, disabled: false, revoked_tokens: 0 }); }
    if (r[2] === "rotate-secret") return send(res, 200, { client_id: c.client_id, client_secret: "tsc_new", previous_secret_valid_until: null });
    if (r[2] === "unlock") return send(res, 200, { client_id: c.client_id });
    return send(res, 200, { client_id: c.client_id, otp: !body.remove, otp_secret: "ABC", otp_uri: "otpauth://totp/x", otp_qr_svg: QR });
  }
  if (p === "/tokens") {
    const st = url.searchParams.get("status") || "current";
    const cid = url.searchParams.get("client_id");
    const list = tokens.filter((t) => (!cid || t.client_id === cid) && (st === "all" || (st === "current" ? ["live", "rotating", "disabled"].includes(t.status) : t.status === st)));
    return send(res, 200, list.map(({ parent, ...t }) => t));
  }
  if ((r = m(/^\/tokens\/([^/]+)\/cascade$/))) {
    const t = tokens.find((x) => x.token_id === r[1]);
    if (!t) return err(res, 404, "not_found", "no such token");
    return send(res, 200, { token_id: t.token_id, client_id: t.client_id, status: t.status, descendants: tokens.filter((x) => x.parent === t.token_id && x.status === "live").map((x) => x.token_id) });
  }
  if ((r = m(/^\/tokens\/([^/]+)\/revoke$/))) {
    const t = tokens.find((x) => x.token_id === r[1]);
    if (!t) return err(res, 404, "not_found", "no such token");
    const kids = tokens.filter((x) => x.parent === t.token_id && x.status === "live");
    for (const x of [t, ...kids]) { x.status = "revoked"; x.revoked_at = iso(Date.now()); }
    return send(res, 200, { token_id: t.token_id, token_type: "long", client_id: t.client_id, outcome: "revoked", cascade: kids.length });
  }
  if (p === "/keys" && req.method === "GET") return send(res, 200, keys);
  if (p === "/keys/rotate") { const k = { kid: "k" + (keys.length + 1), alg: "EdDSA", state: "pending", created_at: iso(Date.now()), activates_at: iso(Date.now() + 600e3), retired_at: null }; keys.push(k); return send(res, 201, k); }
  if (p === "/audit") {
    const start = url.searchParams.get("cursor") ? Number(url.searchParams.get("cursor")) : 0;
    const list = audit.filter((e) => (!url.searchParams.get("event") || e.event === url.searchParams.get("event")));
    const page = list.slice(start, start + 50);
    return send(res, 200, { events: page, next_cursor: start + 50 < list.length ? String(start + 50) : null });
  }
  if (p === "/stats") {
    const buckets = Array.from({ length: 24 }, (_, i) => ({ start: iso(Math.floor(now / 3600e3) * 3600e3 - (23 - i) * 3600e3), long_issued: i % 5, short_issued: (i * 7) % 13, auth_failed: i % 9 === 0 ? 3 : 0 }));
    return send(res, 200, { bucket_secs: 3600, buckets, expiring_soon: tokens.filter((t) => t.status === "live").map(({ parent, ...t }) => t) });
  }
  if (p === "/webhooks") return send(res, 200, [{ webhook_id: "wh_1", url: "https://hooks.example.com/x", events: ["token.revoked"], created_at: iso(now) }]);
  if (p === "/webhooks/deliveries") return send(res, 200, [{ message_id: "msg_1", webhook_id: "wh_1", event_type: "token.revoked", status: "failed", attempts: 3, last_status: 500, last_error: "server error", next_attempt_at: null, created_at: iso(now) }]);
  return err(res, 404, "not_found", "no such path");
}).listen(Number(process.argv[2] || 8099), "127.0.0.1", () => console.log(`mock admin on http://127.0.0.1:${process.argv[2] || 8099}`));
