// The admin web console in a real browser (headless Chromium through playwright-core), driven
// as an operator would, against a real tokensmith on a fresh SQLite database.
//
//   node console.test.mjs path/to/tokensmith [screenshot dir]
//
// Starts the server on free loopback ports, bootstraps the first admin client, then: signs in
// (TOTP computed here) → dashboard → creates a client with OTP (its QR code must load) →
// issues a long-term token, a short-term token and a child long-term token through the public
// API → finds the parent on the Tokens page and revokes it (the confirmation names the child;
// both end revoked) → rotates a signing key → reads the audit trail (the revocation is there;
// pages older) → webhooks → signs out (the session token no longer works) → fails to sign in
// with a wrong code and reads the error. Throughout: no request to another origin, no console
// error or CSP violation, no 5xx, the session token in no storage. A screenshot of each page
// goes to docs/screenshots/. Exits non-zero on any failure; prints "N passed, N failed".
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.argv[2] || path.join(HERE, "../../target/debug/tokensmith"));
const SHOTS = path.resolve(process.argv[3] || path.join(HERE, "../../docs/screenshots"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 10_000;
const started = Date.now();

// ---- small helpers ---------------------------------------------------------------------------

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: SHA-1, 6 digits, 30 s steps. */
function totp(secret, step = Math.floor(Date.now() / 1000 / 30)) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

async function http(method, url, { body, bearer, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  const res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text, headers: res.headers };
}

// ---- the run ---------------------------------------------------------------------------------

const results = [];
let server = null;
let browser = null;
const work = mkdtempSync(path.join(tmpdir(), "tokensmith-console-"));
const serverLog = path.join(work, "server.log");

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`  ok   ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`  FAIL ${name}: ${err && err.message ? err.message.split("\n").slice(0, 6).join("\n       ") : err}`);
    throw err;
  }
}

async function main() {
  assert(BIN && readFileSync(BIN).length > 0, `no tokensmith binary at ${BIN}`);
  mkdirSync(SHOTS, { recursive: true });
  const db = `sqlite://${work}/ts.db`;
  const [pubPort, adminPort] = [await freePort(), await freePort()];
  const PUB = `http://127.0.0.1:${pubPort}`;
  const ADMIN = `http://127.0.0.1:${adminPort}`;
  const ORIGIN = new URL(ADMIN).origin;

  let admin;
  await step("server starts with an admin listener; bootstrap makes the first admin client", async () => {
    const { openSync } = await import("node:fs");
    const log = openSync(serverLog, "a");
    server = spawn(BIN, ["serve", "--listen", `127.0.0.1:${pubPort}`, "--admin-listen", `127.0.0.1:${adminPort}`, "--database", db], {
      stdio: ["ignore", log, log],
    });
    let exited = null;
    server.on("exit", (code) => {
      exited = code;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      assert(exited === null, `tokensmith exited (${exited}); its log:\n${readFileSync(serverLog, "utf8").slice(-2000)}`);
      try {
        const a = await fetch(`${PUB}/healthz`);
        const b = await fetch(`${ADMIN}/`);
        if (a.ok && b.ok) break;
      } catch {
        // not up yet
      }
      assert(Date.now() < deadline, `tokensmith did not answer on ${PUB}/healthz and ${ADMIN}/ within 20 s`);
      await sleep(100);
    }
    admin = JSON.parse(execFileSync(BIN, ["admin", "bootstrap", "--database", db, "--json"], { encoding: "utf8" }));
    for (const k of ["client_id", "client_secret", "otp_secret"]) assert(admin[k], `bootstrap printed no ${k}`);
    const page = await fetch(`${ADMIN}/`);
    const csp = page.headers.get("content-security-policy") || "";
    assert(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), `the console's page has no strict CSP (got "${csp}")`);
    assert((page.headers.get("content-type") || "").startsWith("text/html"), "the console's page is not text/html");
  });

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  // Watchers for the whole run.
  const foreign = [];
  const consoleErrors = [];
  const serverErrors = [];
  let sessionToken = null;
  page.on("request", (req) => {
    const u = req.url();
    if (u.startsWith("data:")) return;
    if (new URL(u).origin !== ORIGIN) foreign.push(u);
    const auth = req.headers().authorization;
    if (auth && auth.startsWith("Bearer ")) sessionToken = auth.slice(7);
  });
  page.on("response", (res) => {
    if (res.status() >= 500) serverErrors.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(`uncaught: ${err.message}`));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const signinForm = page.locator("#signin");
  const pg = page.locator("#page");
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
  const statusText = () => page.locator("#page [role=status]").first();

  await step("sign-in page loads with its form", async () => {
    await page.goto(`${ADMIN}/`);
    await signinForm.getByLabel("Client id").waitFor();
    await signinForm.getByLabel("Client secret").waitFor();
    await signinForm.getByLabel("One-time code").waitFor();
    assert(await signinForm.getByLabel("Client id").evaluate((e) => document.activeElement === e), "the client id field has no focus on load");
    await shot("sign-in.png");
  });

  await step("sign in with the bootstrap credentials and a TOTP code → dashboard", async () => {
    await signinForm.getByLabel("Client id").fill(admin.client_id);
    await signinForm.getByLabel("Client secret").fill(admin.client_secret);
    await signinForm.getByLabel("One-time code").fill(totp(admin.otp_secret));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    await page.locator("svg.chart").nth(1).waitFor();
    assert((await page.locator("svg.chart").count()) === 2, "the dashboard does not show two charts");
    await page.getByRole("heading", { name: "Tokens expiring soon" }).waitFor();
    const stored = await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length);
    assert(stored === 0, "the console stored something in localStorage, sessionStorage or a cookie");
    assert(sessionToken, "no request carried the session token as a bearer");
    await shot("dashboard.png");
  });

  let created;
  await step("Clients: create a client with OTP and scopes 'tokens:write deploy'; its QR code loads", async () => {
    await page.getByRole("navigation").getByRole("link", { name: "Clients" }).click();
    await page.getByRole("heading", { level: 1, name: "Clients" }).waitFor();
    await page.locator(`tr[data-key="${admin.client_id}"]`).waitFor();
    await shot("clients.png");
    await page.getByRole("button", { name: "New client" }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    assert(await page.evaluate(() => document.querySelector("dialog").contains(document.activeElement)), "the dialog did not take focus");
    await page.locator("dialog[open]").getByLabel("Name").fill("deploy-bot");
    await page.locator("dialog[open]").getByLabel("Scopes").fill("tokens:write deploy");
    const otp = page.getByLabel("Enrol an authenticator app (TOTP one-time codes)");
    if (!(await otp.isChecked())) await otp.check();
    await dialog.getByRole("button", { name: "Create client" }).click();
    await page.locator("#otp-qr").waitFor();
    const qr = await page.locator("#otp-qr").evaluate(async (img) => {
      if (!img.complete) await new Promise((r) => img.addEventListener("load", r, { once: true }));
      return { w: img.naturalWidth, src: img.getAttribute("src").slice(0, 26) };
    });
    assert(qr.w > 0, "the QR code image did not load (naturalWidth 0)");
    assert(qr.src === "data:image/svg+xml;base64,", `the QR code is not a data: SVG (${qr.src})`);
    created = {
      client_id: (await page.locator("#created-client-id").textContent()).trim(),
      client_secret: (await page.locator("#created-client-secret").textContent()).trim(),
      otp_uri: (await page.locator("#created-otp-uri").textContent()).trim(),
    };
    assert(/^cli_/.test(created.client_id), `no client id shown (${created.client_id})`);
    assert(created.client_secret.length > 10, "no client secret shown");
    assert(created.otp_uri.startsWith("otpauth://totp/"), `no otpauth URI shown (${created.otp_uri})`);
    await dialog.getByText("shown this once").waitFor();
    await shot("client-created.png");
    await dialog.getByRole("button", { name: "I have stored them" }).click();
    await page.locator(`tr[data-key="${created.client_id}"]`).waitFor();
    assert(!(await page.locator("#created-client-secret").count()), "the secret stays in the page after the dialog closed");
  });

  let parent;
  let child;
  await step("public API: a long-term token, a short-term token from it, a child long-term token", async () => {
    const p = await http("POST", `${PUB}/v1/auth/tokens/long`, {
      body: { grant_type: "client_credentials", client_id: created.client_id, client_secret: created.client_secret, name: "parent" },
    });
    assert(p.status === 201, `long-term token: ${p.status} ${p.text}`);
    parent = p.json;
    const s = await http("POST", `${PUB}/v1/auth/tokens/short`, { bearer: parent.access_token, body: {} });
    assert(s.status === 201, `short-term token: ${s.status} ${s.text}`);
    const c = await http("POST", `${PUB}/v1/auth/tokens/long`, { bearer: s.json.access_token, body: { grant_type: "short_token", name: "child" } });
    assert(c.status === 201, `child long-term token: ${c.status} ${c.text}`);
    child = c.json;
  });

  await step("Tokens: filter by client; the revoke dialog names the child; after it both are revoked", async () => {
    await page.getByRole("navigation").getByRole("link", { name: "Tokens" }).click();
    await page.getByRole("heading", { level: 1, name: "Tokens" }).waitFor();
    await pg.getByLabel("Client id").fill(created.client_id);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator(`tr[data-key="${parent.token_id}"]`).waitFor();
    await page.locator(`tr[data-key="${child.token_id}"]`).waitFor();
    assert((await page.locator("tbody tr[data-key]").count()) === 2, "the filter by client does not show exactly its 2 tokens");
    await shot("tokens.png");
    // Escape closes the dialog.
    await page.getByRole("button", { name: `Revoke token ${parent.token_id}` }).click();
    await page.locator("dialog[open]").waitFor();
    await page.keyboard.press("Escape");
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    // Again, and confirm.
    await page.getByRole("button", { name: `Revoke token ${parent.token_id}` }).click();
    const preview = page.locator("#cascade-preview");
    await preview.getByText(child.token_id).waitFor();
    const text = await preview.textContent();
    assert(/This also revokes 1 long-term token minted from it/.test(text), `the confirmation does not say what else is revoked: "${text}"`);
    await shot("revoke-confirm.png");
    await page.locator("dialog[open]").getByRole("button", { name: "Revoke token" }).click();
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    await statusText().getByText("is revoked").waitFor();
    await pg.getByLabel("Status").selectOption("all");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator(`tr[data-key="${parent.token_id}"] .badge-revoked`).waitFor();
    await page.locator(`tr[data-key="${child.token_id}"] .badge-revoked`).waitFor();
    const s = await http("POST", `${PUB}/v1/auth/tokens/short`, { bearer: child.access_token, body: {} });
    assert(s.status === 401, `the child token still mints short-term tokens (${s.status})`);
  });

  await step("Signing keys: rotate with confirmation; a new key appears", async () => {
    await page.getByRole("navigation").getByRole("link", { name: "Signing keys" }).click();
    await page.getByRole("heading", { level: 1, name: "Signing keys" }).waitFor();
    await page.locator("tbody tr[data-key]").first().waitFor();
    const before = await page.locator("tbody tr[data-key]").count();
    await page.getByRole("button", { name: "Rotate signing key" }).click();
    await page.locator("dialog[open]").getByRole("button", { name: "Rotate key" }).click();
    await statusText().getByText("New signing key").waitFor();
    await page.waitForFunction((n) => document.querySelectorAll("tbody tr[data-key]").length === n + 1, before);
    await shot("keys.png");
  });

  await step("Audit: the revocation is in the trail; Older and Newest page through it", async () => {
    // Enough events for a second page of 50.
    for (let i = 0; i < 55; i++) {
      const r = await http("POST", `${PUB}/v1/auth/tokens/long`, {
        body: { grant_type: "client_credentials", client_id: created.client_id, client_secret: created.client_secret, name: `batch-${i}`, ttl_days: 1 },
      });
      assert(r.status === 201, `long-term token ${i}: ${r.status} ${r.text}`);
    }
    await page.getByRole("navigation").getByRole("link", { name: "Audit" }).click();
    await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
    await page.locator("tbody tr[data-key]").first().waitFor();
    assert((await page.locator("tbody tr[data-key]").count()) === 50, "the first audit page does not hold 50 events");
    await page.getByRole("button", { name: "Older" }).click();
    await page.getByText("Page 2", { exact: true }).waitFor();
    await page.locator("tbody tr[data-key]").first().waitFor();
    const revocation = page.locator("tbody tr[data-key]").filter({ hasText: parent.token_id }).filter({ has: page.locator("td:nth-child(2)", { hasText: /revok/ }) });
    await revocation.first().waitFor();
    const event = (await revocation.first().locator("td").nth(1).textContent()).trim();
    if (process.env.DEBUG) console.log("revocation row:", await revocation.first().textContent());
    await page.getByRole("button", { name: "Newest" }).click();
    await page.getByText("Page 1", { exact: true }).waitFor();
    // Filtered by client and by the revocation's event name as the trail records it.
    await pg.getByLabel("Client id").fill(created.client_id);
    await pg.getByLabel("Event").fill(event);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator("tbody tr[data-key]").filter({ hasText: parent.token_id }).first().waitFor();
    await shot("audit.png");
  });

  await step("Webhooks: receivers and deliveries (read-only)", async () => {
    await page.getByRole("navigation").getByRole("link", { name: "Webhooks" }).click();
    await page.getByRole("heading", { name: "Recent deliveries" }).waitFor();
    await page.getByText("No receivers registered.").waitFor();
  });

  await step("sign out: back at the sign-in form, and the session token no longer works", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You signed out.").waitFor();
    const r = await http("GET", `${ADMIN}/admin/v1/clients`, { bearer: sessionToken });
    assert(r.status === 401, `the signed-out session token still works (${r.status})`);
  });

  await step("a wrong OTP code: the sign-in fails with an error in words", async () => {
    const now = Math.floor(Date.now() / 1000 / 30);
    const near = new Set([-1, 0, 1].map((d) => totp(admin.otp_secret, now + d)));
    let wrong = 123456;
    while (near.has(String(wrong))) wrong++;
    await signinForm.getByLabel("Client id").fill(admin.client_id);
    await signinForm.getByLabel("Client secret").fill(admin.client_secret);
    await signinForm.getByLabel("One-time code").fill(String(wrong));
    await page.getByRole("button", { name: "Sign in" }).click();
    const err = page.locator("#signin-error");
    await err.waitFor();
    const text = (await err.textContent()).trim();
    assert(/authenticator app/.test(text) && text.length > 40, `the sign-in error is not in words: "${text}"`);
    await shot("sign-in-error.png");
  });

  await step("no request to another origin, no console error or CSP violation, no 5xx", async () => {
    const csp = await page.evaluate(() => window.__csp);
    // The one expected failure: the wrong code's 401, which Chromium logs as a failed resource.
    const unexpected = consoleErrors.filter((t) => !/Failed to load resource: the server responded with a status of 401/.test(t));
    assert(foreign.length === 0, `requests to other origins: ${foreign.join(", ")}`);
    assert(csp.length === 0, `CSP violations: ${csp.join("; ")}`);
    assert(unexpected.length === 0, `console errors: ${unexpected.join(" | ")}`);
    assert(serverErrors.length === 0, `5xx answers: ${serverErrors.join(", ")}`);
  });
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  if (!results.length || results[results.length - 1].ok) console.log(`  FAIL ${err && err.stack ? err.stack : err}`);
  try {
    console.log(`  server log (tail):\n${readFileSync(serverLog, "utf8").split("\n").slice(-15).join("\n")}`);
  } catch {
    // no log
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await Promise.race([new Promise((r) => server.once("exit", r)), sleep(5000)]);
    if (server.exitCode === null) server.kill("SIGKILL");
  }
  rmSync(work, { recursive: true, force: true });
}
const passed = results.filter((r) => r.ok).length;
const nfail = results.length - passed + (failed && results.every((r) => r.ok) ? 1 : 0);
console.log(`console: ${passed} passed, ${nfail} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(nfail ? 1 : 0);
