// tokensmith admin console: a single ES2020 module, no framework, no build step.
//
// Rules this file keeps (the admin listener serves it under a strict CSP):
// - the session token lives only in the `session` variable below: never in localStorage,
//   sessionStorage or a cookie; it is sent as `Authorization: Bearer`;
// - every request goes to this origin (relative URLs under /admin/v1/);
// - data reaches the page only through textContent and attributes (never innerHTML);
// - no inline styles or handlers: classes and addEventListener only.

const API = "/admin/v1";
const SVG_NS = "http://www.w3.org/2000/svg";

/** The signed-in session: {token, expiresAt (ms), clientId, scopes} or null. */
let session = null;
let expiryTimer = null;
let expiryTicker = null;
/** Bumped on each navigation, so an answer for a page no longer shown is dropped. */
let renderSeq = 0;
/** A message for the next page rendered (after an action that re-renders the page). */
let pendingFlash = "";

function flash(text) {
  pendingFlash = text;
}

// ---- DOM helpers -----------------------------------------------------------------------------

/**
 * Builds an element. `props`: `class`, `text`, `for`, `on<event>` (a function), `dataset`
 * (an object), booleans such as `hidden`/`disabled`, anything else as an attribute.
 * Children: nodes, strings (as text), null/false (skipped), or arrays of these.
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = String(v);
    else if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k === "for") el.htmlFor = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else if (k === "value") el.value = v;
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function $(id) {
  return document.getElementById(id);
}

function clear(el) {
  el.replaceChildren();
}

// ---- formatting ------------------------------------------------------------------------------

function pad(n) {
  return String(n).padStart(2, "0");
}

/** An RFC 3339 time as `YYYY-MM-DD HH:MM UTC` in a <time> element, or a dash. */
function when(s, empty = "—") {
  if (!s) return h("span", { class: "muted", text: empty });
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return h("span", { text: s });
  const text = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  return h("time", { datetime: s, title: `${s} (${relative(d)})`, text });
}

function relative(d) {
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const abs = Math.abs(secs);
  let n;
  let unit;
  if (abs < 90) return secs >= 0 ? "in a minute" : "just now";
  if (abs < 5400) [n, unit] = [Math.round(abs / 60), "minute"];
  else if (abs < 36 * 3600) [n, unit] = [Math.round(abs / 3600), "hour"];
  else [n, unit] = [Math.round(abs / 86400), "day"];
  const span = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return secs >= 0 ? `in ${span}` : `${span} ago`;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function badge(text, kind) {
  return h("span", { class: `badge badge-${kind || text}`, text });
}

function code(text) {
  return h("code", { text: text ?? "" });
}

function scopesCell(scopes) {
  if (!scopes || scopes.length === 0) return h("span", { class: "muted", text: "none" });
  return h("span", { class: "scopes" }, scopes.map((s) => h("span", { class: "scope", text: s })));
}

// ---- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error, description, retryAfter) {
    super(description || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.description = description;
    this.retryAfter = retryAfter;
  }
}

/**
 * Calls the admin API. Resolves to the parsed JSON body (or null for 204); rejects with an
 * ApiError (status 0 when the server did not answer). A 401 on an authenticated call ends
 * the session and shows the sign-in form.
 */
async function api(method, path, body, { auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    if (!session) throw new ApiError(401, "invalid_token", "You are not signed in.");
    if (Date.now() >= session.expiresAt) {
      endSession("Your session expired. Sign in again to continue.");
      throw new ApiError(401, "invalid_token", "Your session expired.");
    }
    headers.Authorization = `Bearer ${session.token}`;
  }
  let res;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch (e) {
    throw new ApiError(0, "network", "The server did not answer.");
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (res.ok) return data;
  const err = new ApiError(
    res.status,
    data && typeof data.error === "string" ? data.error : null,
    data && typeof data.error_description === "string" ? data.error_description : null,
    res.headers.get("Retry-After"),
  );
  if (res.status === 401 && auth && session) {
    endSession(`Your session is no longer valid (${err.description || "the server refused it"}). Sign in again to continue.`);
  }
  throw err;
}

/** An error in words a person can act on: the server's description plus a hint. */
function describeError(err, context = "") {
  if (!(err instanceof ApiError)) return `Something went wrong in the console: ${err && err.message ? err.message : err}. Reload the page and try again.`;
  if (err.status === 0) return "The server did not answer. Check that tokensmith is running and that this machine can reach it, then try again.";
  const what = err.description ? sentence(err.description) : `The server answered ${err.status}${err.error ? ` (${err.error})` : ""}.`;
  let hint = "";
  switch (err.status) {
    case 400:
    case 422:
      hint = "Correct the values and try again.";
      break;
    case 401:
      hint = context === "signin"
        ? "Check the client id and secret, and enter the current code from the authenticator app (each code works once: if you just used one, wait for the next)."
        : "Sign in again.";
      break;
    case 403:
      hint = context === "signin"
        ? "This client holds no admin scope: sign in with a client that has admin:read or admin:write."
        : "Your admin token lacks admin:write: sign in with a client that holds it.";
      break;
    case 404:
      hint = "It may have been removed: reload the list.";
      break;
    case 409:
      hint = "It changed in the meantime: reload and try again.";
      break;
    case 413:
      hint = "The request is too large: shorten it.";
      break;
    case 415:
      hint = "The console sent a body the server does not accept: reload the page.";
      break;
    case 429: {
      const secs = parseInt(err.retryAfter || "", 10);
      hint = Number.isFinite(secs)
        ? `Too many attempts: wait ${plural(secs, "second", "seconds")} before trying again.`
        : "Too many attempts: wait a minute before trying again.";
      break;
    }
    default:
      hint = err.status >= 500 ? "The server failed: try again, and look at its log if it goes on." : "";
  }
  return hint ? `${what} ${hint}` : what;
}

function sentence(s) {
  const t = s.trim();
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function showError(el, err, context) {
  el.textContent = typeof err === "string" ? err : describeError(err, context);
  el.hidden = false;
}

function hideError(el) {
  el.textContent = "";
  el.hidden = true;
}

// ---- session ---------------------------------------------------------------------------------

function showSignIn(notice) {
  $("shell").hidden = true;
  clear($("page"));
  $("signin").hidden = false;
  const n = $("signin-notice");
  if (notice) {
    n.textContent = notice;
    n.hidden = false;
  } else {
    n.hidden = true;
    n.textContent = "";
  }
  hideError($("signin-error"));
  $("signin-secret").value = "";
  $("signin-otp").value = "";
  const id = $("signin-client-id");
  (id.value ? $("signin-secret") : id).focus();
}

function endSession(notice) {
  session = null;
  clearTimeout(expiryTimer);
  clearInterval(expiryTicker);
  const dlg = $("dialog");
  if (dlg.open) dlg.close();
  showSignIn(notice);
}

async function signIn(ev) {
  ev.preventDefault();
  const errEl = $("signin-error");
  hideError(errEl);
  const clientId = $("signin-client-id").value.trim();
  const secret = $("signin-secret").value;
  const otp = $("signin-otp").value.trim();
  const missing = [];
  if (!clientId) missing.push("the client id");
  if (!secret) missing.push("the client secret");
  if (!otp) missing.push("the one-time code");
  if (missing.length) {
    showError(errEl, `Enter ${missing.join(", ")}.`);
    return;
  }
  if (!/^[0-9]{6}$/.test(otp)) {
    showError(errEl, "The one-time code is the 6 digits the authenticator app shows.");
    return;
  }
  const button = $("signin-submit");
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    const data = await api("POST", "/session", { client_id: clientId, client_secret: secret, otp }, { auth: false });
    startSession(data);
  } catch (err) {
    $("signin-otp").value = "";
    showError(errEl, err, "signin");
    $("signin-otp").focus();
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
}

function startSession(data) {
  let expiresAt = Date.parse(data.expires_at || "");
  if (Number.isNaN(expiresAt)) expiresAt = Date.now() + (Number(data.expires_in) || 900) * 1000;
  session = {
    token: data.access_token,
    expiresAt,
    clientId: data.client_id,
    scopes: Array.isArray(data.scopes) ? data.scopes : [],
  };
  $("signin-secret").value = "";
  $("signin-otp").value = "";
  $("signin").hidden = true;
  $("shell").hidden = false;
  $("session-client").textContent = session.clientId || "";
  $("session-scopes").textContent = session.scopes.includes("admin:write")
    ? `Scopes: ${session.scopes.join(" ")}`
    : `Scopes: ${session.scopes.join(" ")} (read-only)`;
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(
    () => endSession("Your session expired. Sign in again to continue."),
    Math.max(0, Math.min(session.expiresAt - Date.now(), 2 ** 31 - 1)),
  );
  clearInterval(expiryTicker);
  const tick = () => {
    if (session) $("session-expiry").textContent = `Session ends ${relative(new Date(session.expiresAt))}`;
  };
  tick();
  expiryTicker = setInterval(tick, 30000);
  if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/dashboard";
  else route();
}

async function signOut() {
  const had = session;
  if (had) {
    try {
      await api("DELETE", "/session");
    } catch (e) {
      // The token is dropped here in any case; the server lets it expire.
    }
  }
  endSession("You signed out.");
}

function canWrite() {
  return !!session && session.scopes.includes("admin:write");
}

// ---- routing ---------------------------------------------------------------------------------

const PAGES = {
  dashboard: { title: "Dashboard", render: renderDashboard },
  clients: { title: "Clients", render: renderClients },
  tokens: { title: "Tokens", render: renderTokens },
  keys: { title: "Signing keys", render: renderKeys },
  audit: { title: "Audit", render: renderAudit },
  webhooks: { title: "Webhooks", render: renderWebhooks },
};

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query] = raw.split("?");
  return { name: PAGES[name] ? name : "dashboard", params: new URLSearchParams(query || "") };
}

function route() {
  if (!session) return;
  const { name, params } = parseHash();
  const page = PAGES[name];
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · tokensmith console`;
  const root = $("page");
  clear(root);
  const seq = ++renderSeq;
  const heading = h("h1", { tabindex: "-1", text: page.title });
  const status = h("p", { class: "status", role: "status", hidden: !pendingFlash, text: pendingFlash });
  pendingFlash = "";
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const body = h("div", { class: "page-body" });
  root.append(heading, status, error, body);
  const ctx = {
    seq,
    body,
    params,
    live: () => seq === renderSeq && !!session,
    error: (err) => showError(error, err),
    clearError: () => hideError(error),
    say: (text) => {
      status.textContent = text;
      status.hidden = !text;
    },
  };
  heading.focus({ preventScroll: false });
  page.render(ctx).catch((err) => {
    if (ctx.live()) ctx.error(err);
  });
}

function go(name, params) {
  const q = params ? new URLSearchParams(params).toString() : "";
  const target = `#/${name}${q ? `?${q}` : ""}`;
  if (location.hash === target) route();
  else location.hash = target;
}

// ---- shared widgets --------------------------------------------------------------------------

/** A table: columns [{label, cell: row => node|string, class?}], rows, text when empty. */
function table(caption, columns, rows, empty) {
  const t = h("table", { class: "data" });
  if (caption) t.append(h("caption", { text: caption }));
  t.append(h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class, text: c.label })))));
  const tbody = h("tbody");
  if (rows.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: String(columns.length), class: "empty", text: empty })));
  }
  for (const row of rows) {
    const tr = h("tr");
    if (row && row.__key) tr.dataset.key = row.__key;
    for (const c of columns) tr.append(h("td", { class: c.class }, c.cell(row)));
    tbody.append(tr);
  }
  t.append(tbody);
  return h("div", { class: "table-wrap" }, t);
}

function field(id, label, input, help) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: label }), input, help ? h("p", { class: "help", id: `${id}-help`, text: help }) : null);
}

function selectOf(options, value) {
  const s = h("select");
  for (const [v, label] of options) s.append(h("option", { value: v, text: label }));
  s.value = value;
  return s;
}

function loading(text = "Loading…") {
  return h("p", { class: "muted loading", text });
}

function copyButton(getText, label = "Copy") {
  const b = h("button", { type: "button", class: "small", text: label });
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(getText());
      b.textContent = "Copied";
    } catch (e) {
      b.textContent = "Select and copy it";
    }
    setTimeout(() => {
      b.textContent = label;
    }, 2000);
  });
  return b;
}

/**
 * Opens the modal dialog. `body`: nodes; `actions`: [{label, kind, onClick(ctl) -> Promise,
 * close: true for a plain close}]. Returns the controller {close, error, body, setActions}.
 * Escape closes it (the browser's own <dialog> behaviour); `onClose` runs when it closes.
 */
function openDialog({ title, body, actions, onClose, wide }) {
  const dlg = $("dialog");
  const replacing = dlg.open;
  if (replacing) {
    currentDialog = { onClose: null, returnFocus: currentDialog && currentDialog.returnFocus };
    dlg.close();
  }
  const titleEl = $("dialog-title");
  const bodyEl = $("dialog-body");
  const errEl = $("dialog-error");
  const actionsEl = $("dialog-actions");
  titleEl.textContent = title;
  clear(bodyEl);
  append(bodyEl, [body]);
  hideError(errEl);
  dlg.classList.toggle("wide", !!wide);
  const returnFocus = document.activeElement;
  const ctl = {
    body: bodyEl,
    close: () => dlg.open && dlg.close(),
    error: (err) => showError(errEl, err),
    clearError: () => hideError(errEl),
    setActions: (list) => renderActions(list),
    busy: false,
  };
  function renderActions(list) {
    clear(actionsEl);
    let first = null;
    for (const a of list) {
      const b = h("button", { type: a.submit ? "submit" : "button", class: a.kind || "", text: a.label, dataset: { action: a.label } });
      if (a.disabled) b.disabled = true;
      b.addEventListener("click", async (ev) => {
        ev.preventDefault();
        if (a.close) {
          ctl.close();
          return;
        }
        if (ctl.busy) return;
        ctl.busy = true;
        hideError(errEl);
        const buttons = [...actionsEl.querySelectorAll("button")];
        for (const x of buttons) x.disabled = true;
        try {
          await a.onClick(ctl);
        } catch (err) {
          if (dlg.open) {
            showError(errEl, err);
            errEl.focus();
          }
        } finally {
          ctl.busy = false;
          for (const x of actionsEl.querySelectorAll("button")) if (!x.dataset.keepDisabled) x.disabled = false;
        }
      });
      if (a.focus) first = b;
      actionsEl.append(b);
    }
    return first;
  }
  const focusTarget = renderActions(actions);
  // A dialog that replaces an open one: the old one's close event comes later (it is queued),
  // and must not clear the new one; see the single "close" listener in wireDialogForm.
  currentDialog = { onClose, returnFocus: replacing ? currentDialog && currentDialog.returnFocus : returnFocus };
  dlg.showModal();
  const auto = bodyEl.querySelector("[autofocus]") || bodyEl.querySelector("input, select, textarea");
  (auto || focusTarget || actionsEl.querySelector("button")).focus();
  return ctl;
}

// The dialog's form never submits anywhere; Enter runs the primary (submit) action.
let currentDialog = null;

function wireDialogForm() {
  const dlg = $("dialog");
  dlg.addEventListener("close", () => {
    if (dlg.open) return; // a stale event: another dialog opened in the meantime
    const cur = currentDialog;
    currentDialog = null;
    clear($("dialog-body"));
    clear($("dialog-actions"));
    hideError($("dialog-error"));
    if (!cur) return;
    if (cur.onClose) cur.onClose();
    const rf = cur.returnFocus;
    if (rf && document.contains(rf) && typeof rf.focus === "function") rf.focus();
  });
  $("dialog-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const primary = $("dialog-actions").querySelector("button[type=submit]");
    if (primary && !primary.disabled) primary.click();
  });
  $("dialog-error").tabIndex = -1;
}

/** A "shown once" panel: the values with copy buttons, and the warning to store them now. */
function secretsPanel(items, { qrSvg, warning } = {}) {
  const box = h("div", { class: "secrets" });
  box.append(h("p", { class: "warning", role: "note", text: warning || "Store these now: they are shown this once and cannot be shown again." }));
  const dl = h("dl", { class: "kv" });
  for (const [label, value, id] of items) {
    if (value === undefined || value === null) continue;
    dl.append(h("dt", { text: label }), h("dd", {}, h("code", { class: "secret-value", id, text: value }), " ", copyButton(() => value)));
  }
  box.append(dl);
  if (qrSvg) {
    const img = h("img", {
      id: "otp-qr",
      class: "qr",
      alt: "QR code of the OTP URI: scan it with an authenticator app",
      width: "220",
      height: "220",
    });
    img.src = `data:image/svg+xml;base64,${base64Utf8(qrSvg)}`;
    box.append(h("figure", { class: "qr-figure" }, img, h("figcaption", { text: "Scan this with an authenticator app (it holds the OTP secret)." })));
  }
  return box;
}

function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

// ---- Dashboard -------------------------------------------------------------------------------

async function renderDashboard(ctx) {
  const hours = ["24", "72", "168"].includes(ctx.params.get("hours")) ? ctx.params.get("hours") : "24";
  const range = selectOf([["24", "Last 24 hours"], ["72", "Last 3 days"], ["168", "Last 7 days"]], hours);
  range.addEventListener("change", () => go("dashboard", { hours: range.value }));
  const refresh = h("button", { type: "button", text: "Refresh", onclick: () => go("dashboard", { hours: range.value }) });
  ctx.body.append(h("div", { class: "toolbar" }, field("dash-range", "Period", range), refresh));
  const holder = h("div", {}, loading());
  ctx.body.append(holder);
  const stats = await api("GET", `/stats?hours=${hours}`);
  if (!ctx.live()) return;
  clear(holder);
  const buckets = Array.isArray(stats.buckets) ? stats.buckets : [];
  const sum = (k) => buckets.reduce((a, b) => a + (Number(b[k]) || 0), 0);
  const longN = sum("long_issued");
  const shortN = sum("short_issued");
  const failN = sum("auth_failed");
  const expiring = Array.isArray(stats.expiring_soon) ? stats.expiring_soon : [];
  holder.append(
    h("div", { class: "cards" },
      card("Long-term tokens issued", longN),
      card("Short-term tokens issued", shortN),
      card("Failed authentications", failN, failN > 0 ? "alert" : ""),
      card("Tokens expiring soon", expiring.length)),
    h("div", { class: "charts" },
      h("section", { class: "card chart-card", "aria-labelledby": "chart-issued-title" },
        h("h2", { id: "chart-issued-title", text: "Tokens issued" }),
        barChart(buckets, stats.bucket_secs, [
          { key: "long_issued", label: "Long-term", cls: "series-long" },
          { key: "short_issued", label: "Short-term", cls: "series-short" },
        ], "Tokens issued per bucket")),
      h("section", { class: "card chart-card", "aria-labelledby": "chart-failed-title" },
        h("h2", { id: "chart-failed-title", text: "Failed authentications" }),
        barChart(buckets, stats.bucket_secs, [{ key: "auth_failed", label: "Failed", cls: "series-failed" }], "Failed authentications per bucket"))),
    h("h2", { text: "Tokens expiring soon" }),
    tokensTable(expiring, { caption: null, empty: "No long-term token expires soon.", actions: false }),
  );
}

function card(label, value, kind) {
  return h("div", { class: `card stat ${kind ? `stat-${kind}` : ""}` }, h("p", { class: "stat-value", text: String(value) }), h("p", { class: "stat-label", text: label }));
}

/** A stacked bar chart as inline SVG, built with DOM calls. */
function barChart(buckets, bucketSecs, series, label) {
  const W = 640;
  const H = 220;
  const m = { l: 40, r: 10, t: 10, b: 28 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const totals = buckets.map((b) => series.reduce((a, s) => a + (Number(b[s.key]) || 0), 0));
  const max = Math.max(1, ...totals);
  const niceMax = niceCeil(max);
  const total = totals.reduce((a, b) => a + b, 0);
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": `${label}: ${total} in all over ${buckets.length} buckets, at most ${max} in one`,
  });
  root.append(svg("title", { text: `${label}: ${total} in all` }));
  // grid and y labels
  for (let i = 0; i <= 4; i++) {
    const v = (niceMax * i) / 4;
    const y = m.t + ih - (ih * i) / 4;
    root.append(svg("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, class: i === 0 ? "axis" : "grid" }));
    root.append(svg("text", { x: m.l - 6, y: y + 4, class: "tick", "text-anchor": "end", text: Number.isInteger(v) ? v : v.toFixed(1) }));
  }
  const n = Math.max(1, buckets.length);
  const slot = iw / n;
  const bw = Math.max(1, slot * 0.7);
  const labelEvery = Math.max(1, Math.ceil(n / 8));
  buckets.forEach((b, i) => {
    const x = m.l + i * slot + (slot - bw) / 2;
    let y = m.t + ih;
    const start = new Date(b.start);
    const parts = [];
    for (const s of series) {
      const v = Number(b[s.key]) || 0;
      parts.push(`${s.label}: ${v}`);
      if (v <= 0) continue;
      const bh = (ih * v) / niceMax;
      y -= bh;
      root.append(svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: bh.toFixed(1), class: s.cls }, svg("title", { text: `${bucketLabel(start, bucketSecs)}: ${s.label} ${v}` })));
    }
    // an invisible full-height target carries the whole bucket's tooltip
    if (i % labelEvery === 0 && !Number.isNaN(start.getTime())) {
      root.append(svg("text", { x: (m.l + i * slot + slot / 2).toFixed(1), y: H - 8, class: "tick", "text-anchor": "middle", text: tickLabel(start, n, bucketSecs) }));
    }
  });
  const legend = h("ul", { class: "legend" }, series.map((s) => h("li", {}, h("span", { class: `swatch ${s.cls}`, "aria-hidden": "true" }), s.label)));
  return h("figure", { class: "chart-figure" }, root, series.length > 1 ? legend : null);
}

function niceCeil(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

function bucketLabel(d, secs) {
  if (Number.isNaN(d.getTime())) return "?";
  const end = new Date(d.getTime() + (Number(secs) || 3600) * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}–${pad(end.getUTCHours())}:${pad(end.getUTCMinutes())} UTC`;
}

function tickLabel(d, n, secs) {
  const span = n * (Number(secs) || 3600);
  if (span > 2 * 86400) return `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}h`;
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

// ---- Clients ---------------------------------------------------------------------------------

async function renderClients(ctx) {
  const create = h("button", { type: "button", class: "primary", text: "New client", onclick: () => createClientDialog(ctx) });
  ctx.body.append(h("div", { class: "toolbar" }, create, h("button", { type: "button", text: "Refresh", onclick: () => go("clients") })));
  const holder = h("div", {}, loading());
  ctx.body.append(holder);
  const clients = await api("GET", "/clients");
  if (!ctx.live()) return;
  clear(holder);
  holder.append(table("Registered clients", [
    { label: "Client", class: "name-cell", cell: (c) => h("div", {}, h("div", { class: "strong", text: c.name || "(no name)" }), code(c.client_id)) },
    { label: "Scopes", cell: (c) => scopesCell(c.scopes) },
    { label: "Credentials", cell: (c) => [c.otp ? badge("OTP", "info") : null, c.public_key_alg ? badge(`key ${c.public_key_alg}`, "info") : null, !c.otp && !c.public_key_alg ? h("span", { class: "muted", text: "secret" }) : null] },
    { label: "Status", cell: (c) => (c.disabled ? badge("disabled") : badge("enabled")) },
    { label: "Created", cell: (c) => when(c.created_at) },
    { label: "Last used", cell: (c) => when(c.last_used_at, "never") },
    {
      label: "Actions",
      class: "actions-cell",
      cell: (c) => h("div", { class: "row-actions" },
        h("button", { type: "button", class: "small", text: "Details", "aria-label": `Details of ${c.name || c.client_id}`, onclick: () => clientDetailsDialog(ctx, c.client_id) }),
        c.disabled
          ? h("button", { type: "button", class: "small", text: "Enable", "aria-label": `Enable ${c.name || c.client_id}`, onclick: () => enableClientDialog(ctx, c) })
          : h("button", { type: "button", class: "small danger", text: "Disable", "aria-label": `Disable ${c.name || c.client_id}`, onclick: () => disableClientDialog(ctx, c) }),
        h("button", { type: "button", class: "small", text: "Rotate secret", "aria-label": `Rotate the secret of ${c.name || c.client_id}`, onclick: () => rotateSecretDialog(ctx, c) })),
    },
  ], clients.map((c) => ({ ...c, __key: c.client_id })), "No clients yet: create one."));
}

function splitScopes(s) {
  return s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

function createClientDialog(ctx) {
  const name = h("input", { autocomplete: "off", spellcheck: "false", maxlength: "100", required: true });
  const scopes = h("input", { autocomplete: "off", spellcheck: "false", placeholder: "tokens:write deploy", "aria-describedby": "new-client-scopes-help" });
  const otp = h("input", { type: "checkbox" });
  otp.checked = true;
  const key = h("textarea", { rows: "4", spellcheck: "false", placeholder: "-----BEGIN PUBLIC KEY-----", "aria-describedby": "new-client-key-help" });
  const otpField = h("div", { class: "field checkbox" }, otp, h("label", { for: "new-client-otp", text: "Enrol an authenticator app (TOTP one-time codes)" }));
  otp.id = "new-client-otp";
  const form = h("div", {},
    field("new-client-name", "Name", name),
    field("new-client-scopes", "Scopes", scopes, "Separated by spaces, e.g. tokens:write deploy."),
    otpField,
    field("new-client-key", "Public key (optional)", key, "PEM or JWK of an Ed25519, P-256 or RSA key, for signed assertions."));
  name.setAttribute("autofocus", "");
  openDialog({
    title: "New client",
    body: form,
    actions: [
      { label: "Cancel", close: true },
      {
        label: "Create client",
        kind: "primary",
        submit: true,
        onClick: async (dlg) => {
          const body = { name: name.value.trim(), scopes: splitScopes(scopes.value), otp: otp.checked };
          if (!body.name) throw "Enter a name for the client.";
          if (key.value.trim()) body.public_key = key.value.trim();
          const created = await api("POST", "/clients", body);
          showCreatedClient(ctx, created);
        },
      },
    ],
  });
}

function showCreatedClient(ctx, c) {
  const body = h("div", {},
    h("p", {}, "Client ", h("strong", { text: c.name || "" }), " was created with the scopes ", (c.scopes || []).join(" ") || "none", "."),
    secretsPanel([
      ["Client id", c.client_id, "created-client-id"],
      ["Client secret", c.client_secret, "created-client-secret"],
      ["OTP secret", c.otp_secret, "created-otp-secret"],
      ["OTP URI", c.otp_uri, "created-otp-uri"],
      ["Key thumbprint", c.public_key_thumbprint, "created-key-thumbprint"],
    ], { qrSvg: c.otp_qr_svg, warning: "Store the client secret (and enrol the authenticator app) now: they are shown this once and cannot be shown again." }));
  openDialog({
    title: "Client created",
    body,
    wide: true,
    actions: [{ label: "I have stored them", kind: "primary", close: true, focus: true }],
    onClose: () => go("clients"),
  });
}

async function clientDetailsDialog(ctx, id) {
  const body = h("div", {}, loading());
  const dlg = openDialog({ title: `Client ${id}`, body, wide: true, actions: [{ label: "Close", close: true, focus: true }] });
  let c;
  try {
    c = await api("GET", `/clients/${encodeURIComponent(id)}`);
  } catch (err) {
    clear(body);
    dlg.error(err);
    return;
  }
  clear(body);
  const lt = c.long_tokens || {};
  const dl = h("dl", { class: "kv" });
  const rows = [
    ["Client id", code(c.client_id)],
    ["Name", c.name],
    ["Scopes", scopesCell(c.scopes)],
    ["Status", c.disabled ? badge("disabled") : badge("enabled")],
    ["OTP", c.otp ? "enrolled" : "not enrolled"],
    ["Public key", c.public_key_alg ? `${c.public_key_alg}${c.public_key_thumbprint ? `, thumbprint ${c.public_key_thumbprint}` : ""}` : "none"],
    ["Created", when(c.created_at)],
    ["Last used", when(c.last_used_at, "never")],
    ["Long-term tokens", `${lt.live ?? 0} live, ${lt.rotating ?? 0} rotating, ${lt.suspended ?? 0} suspended`],
  ];
  for (const [k, v] of rows) dl.append(h("dt", { text: k }), h("dd", {}, v));
  body.append(dl);
  if (c.public_key) body.append(h("details", {}, h("summary", { text: "Public key" }), h("pre", { class: "pem", text: typeof c.public_key === "string" ? c.public_key : JSON.stringify(c.public_key, null, 2) })));
  dlg.setActions([
    { label: "Close", close: true },
    { label: "View its tokens", onClick: async (d) => { d.close(); go("tokens", { client_id: c.client_id }); } },
    { label: "Unlock", onClick: async (d) => { await api("POST", `/clients/${encodeURIComponent(c.client_id)}/unlock`, {}); d.close(); ctx.say(`Client ${c.client_id}: failed-authentication locks lifted.`); } },
    { label: c.otp ? "Reset OTP" : "Enrol OTP", onClick: async () => resetOtp(ctx, c, false) },
    c.otp ? { label: "Remove OTP", kind: "danger", onClick: async () => resetOtp(ctx, c, true) } : null,
  ].filter(Boolean));
}

async function resetOtp(ctx, c, remove) {
  const r = await api("POST", `/clients/${encodeURIComponent(c.client_id)}/reset-otp`, { remove });
  if (remove || !r.otp_uri) {
    $("dialog").close();
    flash(`Client ${c.client_id}: OTP removed; its old codes no longer work.`);
    go("clients");
    return;
  }
  openDialog({
    title: "New OTP seed",
    wide: true,
    body: h("div", {}, h("p", { text: `Client ${c.client_id} has a new OTP seed: codes of the old one no longer work.` }),
      secretsPanel([["OTP secret", r.otp_secret, "reset-otp-secret"], ["OTP URI", r.otp_uri, "reset-otp-uri"]], { qrSvg: r.otp_qr_svg, warning: "Enrol the authenticator app now: the seed is shown this once." })),
    actions: [{ label: "I have enrolled it", kind: "primary", close: true, focus: true }],
    onClose: () => go("clients"),
  });
}

function disableClientDialog(ctx, c) {
  openDialog({
    title: `Disable ${c.name || c.client_id}?`,
    body: h("p", {}, "Client ", code(c.client_id), " will no longer authenticate, and all its tokens stop working at once. Enabling it again later revokes the long-term tokens it holds now, unless you choose to revive them."),
    actions: [
      { label: "Cancel", close: true, focus: true },
      { label: "Disable client", kind: "danger", onClick: async (d) => {
        await api("POST", `/clients/${encodeURIComponent(c.client_id)}/disable`, {});
        d.close();
        flash(`Client ${c.client_id} is disabled.`);
        go("clients");
      } },
    ],
  });
}

function enableClientDialog(ctx, c) {
  const revive = h("input", { type: "checkbox", id: "enable-revive" });
  openDialog({
    title: `Enable ${c.name || c.client_id}?`,
    body: h("div", {},
      h("p", {}, "Client ", code(c.client_id), " will authenticate again with its credentials."),
      h("div", { class: "field checkbox" }, revive, h("label", { for: "enable-revive", text: "Revive its long-term tokens (otherwise they are revoked now)" }))),
    actions: [
      { label: "Cancel", close: true, focus: true },
      { label: "Enable client", kind: "primary", onClick: async (d) => {
        const r = await api("POST", `/clients/${encodeURIComponent(c.client_id)}/enable`, { revive_tokens: revive.checked });
        d.close();
        const n = Number(r && r.revoked_tokens) || 0;
        flash(`Client ${c.client_id} is enabled${n ? `; ${plural(n, "long-term token was", "long-term tokens were")} revoked` : ""}.`);
        go("clients");
      } },
    ],
  });
}

function rotateSecretDialog(ctx, c) {
  const overlap = selectOf([["0", "None: the old secret stops now"], ["3600", "1 hour"], ["86400", "24 hours"], ["604800", "7 days"]], "0");
  openDialog({
    title: `Rotate the secret of ${c.name || c.client_id}?`,
    body: h("div", {},
      h("p", { text: "A new client secret is made and shown once. Deployments using the old one need the new one before the overlap ends." }),
      field("rotate-overlap", "The old secret keeps working for", overlap)),
    actions: [
      { label: "Cancel", close: true },
      { label: "Rotate secret", kind: "primary", onClick: async () => {
        const r = await api("POST", `/clients/${encodeURIComponent(c.client_id)}/rotate-secret`, { overlap_secs: Number(overlap.value) });
        openDialog({
          title: "New client secret",
          wide: true,
          body: h("div", {},
            h("p", {}, "The previous secret ", r.previous_secret_valid_until ? ["works until ", when(r.previous_secret_valid_until), "."] : "no longer works."),
            secretsPanel([["Client id", r.client_id, "rotated-client-id"], ["Client secret", r.client_secret, "rotated-client-secret"]])),
          actions: [{ label: "I have stored it", kind: "primary", close: true, focus: true }],
          onClose: () => go("clients"),
        });
      } },
    ],
  });
}

// ---- Tokens ----------------------------------------------------------------------------------

const TOKEN_STATUSES = [
  ["current", "Current (live, rotating, disabled)"],
  ["all", "All"],
  ["live", "Live"],
  ["rotating", "Rotating"],
  ["disabled", "Disabled"],
  ["revoked", "Revoked"],
  ["expired", "Expired"],
];

async function renderTokens(ctx) {
  const p = ctx.params;
  const client = h("input", { spellcheck: "false", autocomplete: "off", placeholder: "cli_…", value: p.get("client_id") || "" });
  const status = selectOf(TOKEN_STATUSES, TOKEN_STATUSES.some(([v]) => v === p.get("status")) ? p.get("status") : "current");
  const days = h("input", { type: "number", min: "1", max: "365", inputmode: "numeric", placeholder: "any", value: p.get("expiring_within_days") || "" });
  const filters = h("form", { class: "filters", "aria-label": "Token filters" },
    field("tokens-client", "Client id", client),
    field("tokens-status", "Status", status),
    field("tokens-days", "Expiring within (days)", days),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary", text: "Apply filters" }),
      h("button", { type: "button", text: "Reset", onclick: () => go("tokens") })));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = {};
    if (client.value.trim()) q.client_id = client.value.trim();
    if (status.value !== "current") q.status = status.value;
    if (days.value.trim()) q.expiring_within_days = days.value.trim();
    go("tokens", q);
  });
  ctx.body.append(filters);
  const holder = h("div", {}, loading());
  ctx.body.append(holder);
  const q = new URLSearchParams();
  if (p.get("client_id")) q.set("client_id", p.get("client_id"));
  q.set("status", status.value);
  if (p.get("expiring_within_days")) q.set("expiring_within_days", p.get("expiring_within_days"));
  const tokens = await api("GET", `/tokens?${q}`);
  if (!ctx.live()) return;
  clear(holder);
  holder.append(tokensTable(tokens, {
    caption: `${plural(tokens.length, "long-term token", "long-term tokens")}`,
    empty: "No long-term token matches these filters.",
    actions: true,
    onRevoke: (t) => revokeDialog(ctx, t),
  }));
}

function statusBadge(s) {
  return badge(s || "unknown", s);
}

function tokensTable(tokens, { caption, empty, actions, onRevoke }) {
  const cols = [
    { label: "Token", class: "name-cell", cell: (t) => h("div", {}, t.name ? h("div", { class: "strong", text: t.name }) : null, code(t.token_id)) },
    { label: "Client", cell: (t) => code(t.client_id) },
    { label: "Scopes", cell: (t) => scopesCell(t.scopes) },
    { label: "Status", cell: (t) => statusBadge(t.status) },
    { label: "Issued", cell: (t) => when(t.issued_at) },
    { label: "Expires", cell: (t) => when(t.expires_at) },
    { label: "Last used", cell: (t) => when(t.last_used_at, "never") },
  ];
  if (actions) {
    cols.push({ label: "Origin", cell: (t) => (t.origin ? code(t.origin) : h("span", { class: "muted", text: "own credentials" })) });
    cols.push({
      label: "Actions",
      class: "actions-cell",
      cell: (t) => (t.status === "revoked" || t.status === "expired"
        ? (t.revoked_at ? h("span", { class: "muted" }, "revoked ", when(t.revoked_at)) : h("span", { class: "muted", text: "—" }))
        : h("button", { type: "button", class: "small danger", text: "Revoke", "aria-label": `Revoke token ${t.token_id}`, onclick: () => onRevoke(t) })),
    });
  }
  return table(caption, cols, tokens.map((t) => ({ ...t, __key: t.token_id })), empty);
}

function revokeDialog(ctx, t) {
  const body = h("div", {},
    h("p", {}, "Revoke long-term token ", code(t.token_id), t.name ? ` (${t.name})` : "", " of client ", code(t.client_id), "? It stops working at once, and so does every short-term token minted from it."),
    h("p", { id: "cascade-preview", class: "cascade", role: "status" }, loading("Checking what else this revokes…")));
  const dlg = openDialog({
    title: "Revoke this token?",
    body,
    actions: [
      { label: "Cancel", close: true, focus: true },
      { label: "Revoke token", kind: "danger", disabled: true, onClick: async () => {} },
    ],
  });
  const confirm = (label, enabled) => dlg.setActions([
    { label: "Cancel", close: true, focus: true },
    { label, kind: "danger", disabled: !enabled, onClick: async (d) => {
      const r = await api("POST", `/tokens/${encodeURIComponent(t.token_id)}/revoke`, {});
      d.close();
      const n = Number(r && r.cascade) || 0;
      const what = r && r.outcome === "already_revoked" ? "was already revoked"
        : r && r.outcome === "already_expired" ? "had already expired" : "is revoked";
      flash(`Token ${t.token_id} ${what}${n ? `, with ${plural(n, "long-term token", "long-term tokens")} minted from it` : ""}.`);
      route();
    } },
  ]);
  const preview = $("cascade-preview");
  api("GET", `/tokens/${encodeURIComponent(t.token_id)}/cascade`).then((c) => {
    if (!document.contains(preview)) return;
    const ids = Array.isArray(c.descendants) ? c.descendants : [];
    clear(preview);
    if (ids.length === 0) {
      preview.append("No long-term token was minted from it: only its short-term tokens are revoked with it.");
    } else {
      append(preview, [
        `This also revokes ${plural(ids.length, "long-term token", "long-term tokens")} minted from it (`,
        ids.map((id, i) => [i ? ", " : null, code(id)]),
        `) and every short-term token minted from any of them.`,
      ]);
    }
    const f = confirm("Revoke token", true);
    if (f) f.focus();
  }).catch((err) => {
    if (!document.contains(preview)) return;
    clear(preview);
    preview.append("The console could not check what else this revokes. ", describeError(err));
    const f = confirm("Revoke anyway", true);
    if (f) f.focus();
  });
}

// ---- Signing keys ----------------------------------------------------------------------------

async function renderKeys(ctx) {
  ctx.body.append(h("div", { class: "toolbar" },
    h("button", { type: "button", class: "primary", text: "Rotate signing key", onclick: () => rotateKeyDialog(ctx) }),
    h("button", { type: "button", text: "Refresh", onclick: () => go("keys") })));
  ctx.body.append(h("p", { class: "muted", text: "A new key is published in the JWKS at once and starts signing after the publish delay; the key it replaces stays in the JWKS until every token it signed has expired." }));
  const holder = h("div", {}, loading());
  ctx.body.append(holder);
  const keys = await api("GET", "/keys");
  if (!ctx.live()) return;
  clear(holder);
  holder.append(table("Signing keys", [
    { label: "Key id (kid)", cell: (k) => code(k.kid) },
    { label: "Algorithm", cell: (k) => k.alg },
    { label: "State", cell: (k) => badge(k.state, `key-${k.state}`) },
    { label: "Created", cell: (k) => when(k.created_at) },
    { label: "Signs from", cell: (k) => when(k.activates_at) },
    { label: "Retired", cell: (k) => when(k.retired_at, "—") },
  ], keys.map((k) => ({ ...k, __key: k.kid })), "No signing keys."));
}

function rotateKeyDialog(ctx) {
  openDialog({
    title: "Rotate the signing key?",
    body: h("p", { text: "A new signing key is created and published in the JWKS now; it starts signing short-term tokens after the publish delay, and the current key then retires. Tokens already issued stay valid." }),
    actions: [
      { label: "Cancel", close: true, focus: true },
      { label: "Rotate key", kind: "primary", onClick: async (d) => {
        const k = await api("POST", "/keys/rotate", {});
        d.close();
        flash(`New signing key ${k.kid} (${k.alg}) created, ${k.state}${k.activates_at ? `; it signs from ${k.activates_at}` : ""}.`);
        go("keys");
      } },
    ],
  });
}

// ---- Audit -----------------------------------------------------------------------------------

const AUDIT_EVENTS = [
  "token.issued", "token.rotated", "token.revoked", "token.exchanged", "auth.failed",
  "client.created", "client.disabled", "client.enabled", "client.secret_rotated", "client.locked",
  "client.unlocked", "client.otp_reset", "key.created", "key.rotated", "admin.session",
];

async function renderAudit(ctx) {
  const p = ctx.params;
  const client = h("input", { spellcheck: "false", autocomplete: "off", placeholder: "cli_…", value: p.get("client_id") || "" });
  const event = h("input", { spellcheck: "false", autocomplete: "off", list: "audit-events", placeholder: "any", value: p.get("event") || "" });
  const outcome = selectOf([["", "Any"], ["success", "Success"], ["failure", "Failure"]], ["success", "failure"].includes(p.get("outcome")) ? p.get("outcome") : "");
  const datalist = h("datalist", { id: "audit-events" }, AUDIT_EVENTS.map((e) => h("option", { value: e })));
  const filters = h("form", { class: "filters", "aria-label": "Audit filters" },
    field("audit-client", "Client id", client),
    field("audit-event", "Event", event),
    datalist,
    field("audit-outcome", "Outcome", outcome),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary", text: "Apply filters" }),
      h("button", { type: "button", text: "Reset", onclick: () => go("audit") })));
  const base = {};
  if (p.get("client_id")) base.client_id = p.get("client_id");
  if (p.get("event")) base.event = p.get("event");
  if (p.get("outcome")) base.outcome = p.get("outcome");
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = {};
    if (client.value.trim()) q.client_id = client.value.trim();
    if (event.value.trim()) q.event = event.value.trim();
    if (outcome.value) q.outcome = outcome.value;
    go("audit", q);
  });
  ctx.body.append(filters);
  const holder = h("div");
  ctx.body.append(holder);
  // Paging stays inside the page: "Older" follows next_cursor, "Newest" starts over.
  const cursors = [];
  async function load(cursor) {
    clear(holder);
    holder.append(loading());
    const q = new URLSearchParams({ ...base, limit: "50" });
    if (cursor) q.set("cursor", cursor);
    const r = await api("GET", `/audit?${q}`);
    if (!ctx.live()) return;
    const events = Array.isArray(r.events) ? r.events : [];
    clear(holder);
    const page = cursors.length + 1;
    const older = h("button", { type: "button", text: "Older", disabled: !r.next_cursor });
    const newest = h("button", { type: "button", text: "Newest", disabled: cursors.length === 0 });
    older.addEventListener("click", () => {
      cursors.push(r.next_cursor);
      load(r.next_cursor).catch(ctx.error);
    });
    newest.addEventListener("click", () => {
      cursors.length = 0;
      load(null).catch(ctx.error);
    });
    holder.append(
      table(`Audit events, page ${page}${page === 1 ? " (newest first)" : ""}`, [
        { label: "Time", cell: (e) => when(e.at) },
        { label: "Event", cell: (e) => code(e.event) },
        { label: "Outcome", cell: (e) => badge(e.outcome, e.outcome === "failure" ? "failure" : "success") },
        { label: "Client", cell: (e) => (e.client_id ? code(e.client_id) : h("span", { class: "muted", text: "—" })) },
        { label: "Token", cell: (e) => (e.token_id ? code(e.token_id) : h("span", { class: "muted", text: "—" })) },
        { label: "Source", cell: (e) => e.source || "—" },
        { label: "Mechanism", cell: (e) => e.mechanism || "—" },
        { label: "Reason", cell: (e) => e.reason || "—" },
        { label: "Detail", class: "detail", cell: (e) => detailText(e.detail) },
      ], events.map((e) => ({ ...e, __key: String(e.id) })), page === 1 ? "No audit events match these filters." : "No older events."),
      h("div", { class: "pager" }, newest, h("span", { class: "muted", text: `Page ${page}` }), older),
    );
  }
  await load(null);
}

function detailText(d) {
  if (d === null || d === undefined || d === "") return h("span", { class: "muted", text: "—" });
  const text = typeof d === "string" ? d : JSON.stringify(d);
  return h("span", { class: "detail-text", title: text, text });
}

// ---- Webhooks --------------------------------------------------------------------------------

async function renderWebhooks(ctx) {
  ctx.body.append(h("p", { class: "muted", text: "Receivers are managed with the tokensmith webhook command; this page shows them and their recent deliveries." }));
  const holder = h("div", {}, loading());
  ctx.body.append(holder);
  const [hooks, deliveries] = await Promise.all([api("GET", "/webhooks"), api("GET", "/webhooks/deliveries?limit=50")]);
  if (!ctx.live()) return;
  clear(holder);
  holder.append(
    h("h2", { text: "Receivers" }),
    table(null, [
      { label: "Webhook", cell: (w) => code(w.webhook_id) },
      { label: "URL", cell: (w) => h("span", { class: "url", text: w.url }) },
      { label: "Events", cell: (w) => scopesCell(w.events) },
      { label: "Created", cell: (w) => when(w.created_at) },
    ], hooks.map((w) => ({ ...w, __key: w.webhook_id })), "No receivers registered."),
    h("h2", { text: "Recent deliveries" }),
    table(null, [
      { label: "Message", cell: (d) => code(d.message_id) },
      { label: "Webhook", cell: (d) => code(d.webhook_id) },
      { label: "Event", cell: (d) => code(d.event_type) },
      { label: "Status", cell: (d) => badge(d.status, `delivery-${d.status}`) },
      { label: "Attempts", class: "num", cell: (d) => String(d.attempts ?? 0) },
      { label: "Last answer", cell: (d) => [d.last_status ? `HTTP ${d.last_status}` : "", d.last_error ? h("span", { class: "muted", text: ` ${d.last_error}` }) : ""] },
      { label: "Next attempt", cell: (d) => when(d.next_attempt_at) },
      { label: "Created", cell: (d) => when(d.created_at) },
    ], deliveries.map((d) => ({ ...d, __key: d.message_id })), "No deliveries yet."),
  );
}

// ---- start -----------------------------------------------------------------------------------

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  wireDialogForm();
  window.addEventListener("hashchange", route);
  // Dialog actions may throw a plain string as a message for the person.
  window.addEventListener("unhandledrejection", (ev) => {
    if (typeof ev.reason === "string") ev.preventDefault();
  });
  showSignIn(null);
}

start();
