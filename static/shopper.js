/* Footfall shopper demo client: sign in, consent, a simulated walk down East Nanjing Road,
 * and a live view of what the server concluded (verdicts, geofence events, fences, trust,
 * creatures, coupons with their QR).
 *
 * A plain ES module; its one library is the official socket.io-client from npm, served by the
 * Footfall server under /vendor/ (docs/frontend.md). Every URL is relative to this page's
 * origin, so the page works wherever run.py (or gunicorn) serves it, with no CORS and no network
 * access beyond the Footfall server itself.
 */
import { io } from "/vendor/socket.io-client/socket.io.esm.min.js";

// ------------------------------------------------------------------------------ constants

// The two ends of the East Nanjing Road demo cluster (geo/demo.py NANJING_ROAD_EAST/WEST).
const BUND = { lat: 31.2400, lon: 121.4900 };
const PEOPLES_SQUARE = { lat: 31.2350, lon: 121.4750 };
// Tiananmen: ~1,070 km from the walk, far beyond the server's 10 km jump threshold.
const BEIJING = { lat: 39.9087, lon: 116.3975 };

const WALK_SPEED_MPS = 1.4;
const FIX_INTERVAL_MS = 1000;
const REFRESH_INTERVAL_MS = 3000;
const NEARBY_RADIUS_M = 600;
const NEARBY_FETCH = 40; // more than the 10 listed, so the map shows the fences around us
const NEARBY_LISTED = 10;
const M_PER_DEG_LAT = 111320;
const MAX_LOG_ROWS = 200;

// ------------------------------------------------------------------------------ small helpers

const $ = (id) => document.getElementById(id);

/** Create an element with text; never innerHTML, since store names come from the server. */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function clockTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Standard normal sample (Box-Muller): GPS noise is roughly Gaussian. */
function gauss() {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/** Local east/north metres around an origin; plenty accurate over a 2 km walk. */
function toMetres(origin, p) {
  const k = M_PER_DEG_LAT * Math.cos((origin.lat * Math.PI) / 180);
  return { x: (p.lon - origin.lon) * k, y: (p.lat - origin.lat) * M_PER_DEG_LAT };
}

function fromMetres(origin, x, y) {
  const k = M_PER_DEG_LAT * Math.cos((origin.lat * Math.PI) / 180);
  return { lat: origin.lat + y / M_PER_DEG_LAT, lon: origin.lon + x / k };
}

function trimList(list, max) {
  while (list.children.length > max) list.lastElementChild.remove();
}

// ------------------------------------------------------------------------------ state

const WALK_VECTOR = toMetres(BUND, PEOPLES_SQUARE);
const WALK_LENGTH_M = Math.hypot(WALK_VECTOR.x, WALK_VECTOR.y);

const state = {
  token: null,
  user: null,
  consent: null,
  walk: { distance: 0, direction: 1, running: false, timer: null, lastTick: 0 },
  position: { ...BUND, accuracy: 8 }, // the simulated (true) position on the street
  lastSent: null, // the last fix actually sent, which may be noisy or in Beijing
  lastRecordedMs: 0,
  fixInFlight: false,
  stores: new Map(), // id -> store from /nearby; the map and the event log look names up here
  nearby: [],
  nearbyAt: null, // where /nearby was last asked, to skip asking again while standing still
  inside: new Map(), // store_id -> item of /inside
  events: new Map(), // event id -> {row, via: Set}; REST and socket deliver the same event
  trail: [], // {x, y, verdict} of sent fixes, in metres from the Bund
  socket: null,
  refreshTimer: null,
  lastThrow: null, // {name, note, caught} of the last throw, shown until the next one
};

// ------------------------------------------------------------------------------ errors

class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope.message || "request failed");
    this.status = status;
    this.code = envelope.code || `http_${status}`;
    this.field = envelope.field || null;
  }
}

/** Show an error in the page; the same error repeating (one per fix) is counted, not listed. */
function showError(context, err) {
  const list = $("error-list");
  const code = err.code || "error";
  const key = `${context}|${code}|${err.field || ""}|${err.message}`;
  const first = list.firstElementChild;
  if (first && first.dataset.key === key) {
    const n = Number(first.dataset.count) + 1;
    first.dataset.count = String(n);
    first.querySelector(".count").textContent = ` ×${n}`;
  } else {
    const li = el("li");
    li.dataset.key = key;
    li.dataset.count = "1";
    li.append(el("span", `${clockTime(Date.now() / 1000)} ${context}: `), el("code", code),
      el("span", ` ${err.message}`));
    if (err.field) li.append(el("span", " (field "), el("code", err.field), el("span", ")"));
    li.append(el("span", "", "count"));
    list.prepend(li);
    trimList(list, 8);
  }
  $("errors").hidden = false;
}

$("errors-clear").addEventListener("click", () => {
  $("error-list").replaceChildren();
  $("errors").hidden = true;
});

// ------------------------------------------------------------------------------ REST

/** Call the API; resolve with the JSON body or reject with an ApiError from the envelope. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "network_error", message: "the server did not answer" });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status line is all we have.
  }
  if (!response.ok) {
    const envelope = (data && data.error) || { message: response.statusText || "request failed" };
    const err = new ApiError(response.status, envelope);
    // A revoked or expired token: every later call would fail the same way.
    if (response.status === 401 && state.token) signedOut("the session ended; sign in again");
    throw err;
  }
  return data;
}

// ------------------------------------------------------------------------------ account

function saveSession() {
  if (state.token) {
    sessionStorage.setItem("footfall.session", JSON.stringify({ token: state.token, user: state.user }));
  } else {
    sessionStorage.removeItem("footfall.session");
  }
}

function renderAccount() {
  const signedIn = Boolean(state.token);
  $("who").textContent = signedIn ? `${state.user.email} (${state.user.role})` : "signed out";
  $("login-btn").disabled = signedIn;
  $("logout-btn").disabled = !signedIn;
  $("consent-btn").disabled = !signedIn;
  $("teleport-btn").disabled = !signedIn;
  $("start-btn").disabled = !signedIn || state.walk.running;
  $("stop-btn").disabled = !state.walk.running;
  $("start-btn").textContent = state.walk.direction > 0 ? "Start" : "Start (walk back)";
  const consent = $("consent-state");
  consent.className = "pill" + (state.consent === true ? " yes" : state.consent === false ? " no" : "");
  consent.textContent = state.consent === null ? "unknown" : state.consent ? "granted" : "not granted";
  $("consent-btn").textContent = state.consent ? "Withdraw consent" : "Grant location consent";
}

async function signIn(event) {
  event.preventDefault();
  $("login-btn").disabled = true;
  try {
    const session = await api("POST", "/api/auth/login", {
      email: $("email").value,
      password: $("password").value,
    });
    state.token = session.token;
    state.user = session.user;
    saveSession();
    await signedIn();
  } catch (err) {
    showError("sign in", err);
  } finally {
    renderAccount();
  }
}

async function signedIn() {
  renderAccount();
  connectSocket();
  clearInterval(state.refreshTimer);
  state.refreshTimer = setInterval(refresh, REFRESH_INTERVAL_MS);
  try {
    state.consent = (await api("GET", "/api/me/consent")).location;
  } catch (err) {
    showError("consent", err);
  }
  renderAccount();
  refresh();
  loadWallet();
}

// ------------------------------------------------------------------------------ wallet

/** Show the newest coupons of the wallet (GET /api/wallet). */
async function loadWallet() {
  try {
    const page = await api("GET", "/api/wallet?limit=10");
    $("coupons").replaceChildren();
    for (const coupon of page.items.reverse()) showCoupon(coupon, false);
  } catch (err) {
    showError("wallet", err);
  }
}

/** Add a coupon row with its QR; one announced over the socket is fetched for its short code
 * and the name of its store (the wallet's answer carries store_name, the event only the id). */
async function showCoupon(coupon, fresh) {
  if (document.getElementById(`coupon-${coupon.id}`)) return;
  const row = el("li", null, "coupon");
  row.id = `coupon-${coupon.id}`;
  const where = el("span", "", "store");
  const code = el("span", coupon.code || "…", "via code");
  const detail = el("span", `${coupon.title} — ${coupon.campaign_name}`, "detail");
  detail.append(where);
  const qr = document.createElement("img");
  qr.className = "qr";
  qr.width = 96;
  qr.height = 96;
  qr.alt = `QR code of coupon ${coupon.title}`;
  row.append(el("span", clockTime(coupon.issued_at), "time"),
    el("span", coupon.status, `kind ${coupon.status}`), detail, code, qr);
  row.title = `coupon ${coupon.id}, valid until ${new Date(coupon.expires_at * 1000).toLocaleString()}`;
  const showStore = (c) => {
    if (c.store_id) where.textContent = ` · earned at ${c.store_name || storeName(c.store_id)}`;
  };
  showStore(coupon);
  $("coupons").prepend(row);
  trimList($("coupons"), 20);
  if (fresh) {
    try {
      const full = await api("GET", `/api/wallet/${coupon.id}`);
      code.textContent = full.code;
      showStore(full);
    } catch (err) {
      showError("wallet", err);
    }
  }
  loadQr(coupon.id, qr);
}

/** Show a coupon's QR (GET /api/wallet/{id}/qr.png): the image needs the bearer token, which
 * never goes into a URL, so it is fetched as a blob and shown through an object URL. */
async function loadQr(couponId, img) {
  const token = state.token;
  if (!token) return;
  let response;
  try {
    response = await fetch(`/api/wallet/${couponId}/qr.png`, {
      headers: { Authorization: `Bearer ${token}` },
    });
  } catch {
    showError("QR", { code: "network_error", message: "the server did not answer" });
    return;
  }
  if (!response.ok) {
    let envelope = { code: `http_${response.status}`, message: response.statusText };
    try {
      envelope = (await response.json()).error || envelope;
    } catch {
      // not JSON: the status line is all we have
    }
    showError("QR", envelope);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  // A decoded image stays on screen after its object URL is revoked.
  img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  img.addEventListener("error", () => URL.revokeObjectURL(url), { once: true });
  img.src = url;
}

/** Forget the session locally (after sign-out, or when the server no longer knows the token). */
function signedOut(reason) {
  stopWalk();
  state.token = null;
  state.user = null;
  state.consent = null;
  saveSession();
  clearInterval(state.refreshTimer);
  if (state.socket) state.socket.disconnect();
  state.socket = null;
  setSocketState("off", "off");
  if (reason) showError("session", { code: "signed_out", message: reason });
  // Nothing shown may outlive the session it belongs to.
  $("trust").textContent = "–";
  state.inside = new Map();
  state.nearby = [];
  $("inside").replaceChildren(el("li", "–", "muted"));
  $("coupons").replaceChildren();
  $("spawns").replaceChildren(el("li", "–", "muted"));
  state.lastThrow = null;
  renderThrowResult();
  renderNearby();
  drawMap();
  renderAccount();
}

async function signOut() {
  try {
    await api("POST", "/api/auth/logout");
  } catch (err) {
    showError("sign out", err);
  }
  signedOut();
}

async function toggleConsent() {
  const grant = !state.consent;
  try {
    state.consent = (await api("PUT", "/api/me/consent", { location: grant })).location;
    if (!grant) stopWalk();
  } catch (err) {
    showError("consent", err);
  }
  renderAccount();
  refresh();
}

$("login-form").addEventListener("submit", signIn);
$("logout-btn").addEventListener("click", signOut);
$("consent-btn").addEventListener("click", toggleConsent);

// ------------------------------------------------------------------------------ fixes

/** Send one fix and show its verdict and events. */
async function sendFix(point, { accuracy, speed = null, label = null }) {
  // recorded_at must increase strictly: the server ignores a fix not newer than the last one.
  const ms = Math.max(Date.now(), state.lastRecordedMs + 1);
  state.lastRecordedMs = ms;
  const fix = {
    lat: Number(point.lat.toFixed(6)),
    lon: Number(point.lon.toFixed(6)),
    accuracy_m: Number(accuracy.toFixed(1)),
    recorded_at: ms / 1000,
    mock: $("mock").checked,
  };
  if (speed !== null) fix.speed_mps = speed;
  state.lastSent = { ...fix, label };
  state.fixInFlight = true;
  try {
    const answer = await api("POST", "/api/location/fix", fix);
    for (const result of answer.results) {
      logFix(fix, result, label);
      for (const event of result.events) logEvent(event, "REST");
      if (!label) state.trail.push({ ...toMetres(BUND, fix), verdict: result.verdict });
      if (result.verdict !== "ok") refreshTrust(); // suspicious fixes cost trust at once
    }
  } catch (err) {
    logFix(fix, { verdict: "error", reason: err.code }, label);
    showError("location fix", err);
  } finally {
    state.fixInFlight = false;
  }
  renderPosition();
  drawMap();
}

function logFix(fix, result, label) {
  const row = el("li");
  const verdict = result.ignored ? "ignored" : result.verdict;
  row.append(el("span", clockTime(fix.recorded_at), "time"), el("span", verdict, `verdict ${verdict}`));
  const where = label || `${fix.lat.toFixed(5)}, ${fix.lon.toFixed(5)} ±${fix.accuracy_m} m`;
  let detail = where + (fix.mock ? " · mock" : "");
  if (result.reason) detail += ` · ${result.reason}`;
  row.append(el("span", detail, "detail"));
  const n = result.events ? result.events.length : 0;
  if (n) row.append(el("span", `${n} event${n > 1 ? "s" : ""}`, "via"));
  $("fixes").prepend(row);
  trimList($("fixes"), MAX_LOG_ROWS);
  const badge = $("verdict");
  badge.textContent = verdict;
  badge.className = `verdict ${verdict}`;
}

// ------------------------------------------------------------------------------ the walk

function pointAt(distance) {
  const f = distance / WALK_LENGTH_M;
  return fromMetres(BUND, WALK_VECTOR.x * f, WALK_VECTOR.y * f);
}

function startWalk() {
  if (state.walk.running) return;
  state.walk.running = true;
  state.walk.lastTick = performance.now();
  renderAccount();
  tick();
}

function stopWalk() {
  state.walk.running = false;
  clearTimeout(state.walk.timer);
  renderAccount();
}

/** Advance by the real time elapsed, so the server's speed check sees the intended pace. */
function tick() {
  if (!state.walk.running) return;
  const walk = state.walk;
  const now = performance.now();
  const speed = WALK_SPEED_MPS * Number($("pace").value);
  walk.distance += walk.direction * speed * Math.min(5, (now - walk.lastTick) / 1000);
  walk.lastTick = now;
  const arrived = walk.distance >= WALK_LENGTH_M || walk.distance <= 0;
  walk.distance = Math.min(WALK_LENGTH_M, Math.max(0, walk.distance));
  const street = pointAt(walk.distance);
  state.position = { ...street, accuracy: Math.min(11, Math.max(5, 8 + gauss())) };
  // The phone reports the true position plus noise well inside its accuracy circle.
  const noisy = fromMetres(street, 2 * gauss(), 2 * gauss());
  // A slow answer must not let fixes overtake each other; skipping one second is harmless.
  if (!state.fixInFlight) sendFix(noisy, { accuracy: state.position.accuracy, speed });
  if (arrived) {
    walk.direction = -walk.direction;
    stopWalk();
    logNote(walk.direction < 0 ? "arrived at People's Square" : "back at the Bund");
  } else {
    walk.timer = setTimeout(tick, FIX_INTERVAL_MS);
  }
  // A reload resumes here: restarting at the Bund would look like a 1 km leap (too_fast).
  sessionStorage.setItem("footfall.walk", JSON.stringify({ distance: walk.distance, direction: walk.direction }));
  renderPosition();
}

function teleport() {
  // One fix in Beijing; the walk itself stays in Shanghai, so the next fix jumps back
  // (the server compares against the last trusted fix, so that one is fine again).
  sendFix(BEIJING, { accuracy: 8, label: "Beijing (teleport)" });
}

function renderPosition() {
  const p = state.position;
  $("pos").textContent = `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)} (±${p.accuracy.toFixed(1)} m)`;
  const pct = Math.round((100 * state.walk.distance) / WALK_LENGTH_M);
  $("progress").textContent =
    `${Math.round(state.walk.distance)} of ${Math.round(WALK_LENGTH_M)} m (${pct} %)` +
    (state.walk.running ? (state.walk.direction > 0 ? " → People's Square" : " → the Bund") : "");
}

$("start-btn").addEventListener("click", startWalk);
$("stop-btn").addEventListener("click", stopWalk);
$("teleport-btn").addEventListener("click", teleport);

// ------------------------------------------------------------------------------ event log

function storeName(id) {
  const store = state.stores.get(id) || (state.inside.get(id) || {}).store;
  return store ? store.name : id;
}

/** Add a geofence event once; a second delivery (REST vs socket) only adds its source. */
function logEvent(event, via) {
  const known = state.events.get(event.id);
  if (known) {
    known.via.add(via);
    known.viaNode.textContent = [...known.via].join(" + ");
    return;
  }
  const row = el("li");
  const bits = [storeName(event.store_id)];
  if (event.kind === "dwell" && event.dwell_s) bits.push(`after ${duration(event.dwell_s)}`);
  if (event.kind === "exit" && event.duration_s !== undefined) bits.push(`stayed ${duration(event.duration_s)}`);
  if (event.confirmed_by) bits.push(`confirmed by ${event.confirmed_by}`);
  if (event.kind === "transit") bits.push("passed through between two fixes");
  const viaNode = el("span", via, "via");
  row.append(el("span", clockTime(event.at), "time"), el("span", event.kind, `kind ${event.kind}`),
    el("span", bits.join(" · "), "detail"), viaNode);
  row.title = `${bits.join(" · ")}\n${event.id} · trust ${event.trust}`; // the row may be cut short
  $("events").prepend(row);
  state.events.set(event.id, { row, via: new Set([via]), viaNode });
  if (typeof event.trust === "number") $("trust").textContent = event.trust;
  while ($("events").children.length > MAX_LOG_ROWS) {
    const last = $("events").lastElementChild;
    for (const [id, entry] of state.events) if (entry.row === last) state.events.delete(id);
    last.remove();
  }
  // The fence state changed: show it now instead of at the next refresh.
  refreshInside();
}

function logNote(text) {
  const row = el("li");
  row.append(el("span", clockTime(Date.now() / 1000), "time"), el("span", text, "detail muted"));
  $("fixes").prepend(row);
}

// ------------------------------------------------------------------------------ periodic views

let refreshing = false;

async function refresh() {
  if (!state.token || refreshing) return;
  refreshing = true;
  try {
    await Promise.all([refreshInside(), refreshTrust(), refreshNearby(), refreshSpawns()]);
  } finally {
    refreshing = false;
  }
}

// ------------------------------------------------------------------------------ game

/** List the nearest creatures (GET /api/game/spawns) with a button to throw at each one this
 * shopper has not caught yet (the answer says `caught`). */
async function refreshSpawns() {
  if (!state.token || !state.position) return;
  let found;
  try {
    found = await api("GET", "/api/game/spawns");
  } catch (err) {
    if (err.code !== "NO_POSITION") showError("spawns", err);
    return;
  }
  const list = $("spawns");
  list.replaceChildren();
  if (!found.spawns.length) list.append(el("li", "no creatures around", "muted"));
  for (const spawn of found.spawns.slice(0, 8)) {
    const li = el("li");
    li.dataset.spawn = spawn.id;
    const img = document.createElement("img");
    img.src = `${spawn.sprite_url}?size=128`;
    img.alt = spawn.name;
    img.width = 40;
    img.height = 40;
    li.append(img, el("strong", ` ${spawn.name}`),
      el("span", ` · ${spawn.rarity} · ${Math.round(spawn.distance_m)} m · ` +
        `${Math.round(spawn.bearing_deg)}°${spawn.store_id ? " · in a store" : ""} `, "muted"));
    if (spawn.caught) {
      li.append(el("span", "caught ✓", "caught"));
    } else {
      const button = el("button", "throw");
      button.type = "button";
      button.addEventListener("click", () => throwAt(spawn));
      li.append(button);
    }
    list.append(li);
  }
}

/** The last throw's result stays on screen until the next throw (the list refreshes every 3 s). */
function renderThrowResult() {
  const box = $("throw-result");
  const last = state.lastThrow;
  box.hidden = !last;
  box.textContent = last ? `${last.name}: ${last.note}` : "";
  box.className = `throw-result${last && last.caught ? " caught" : ""}`;
}

/** Throw at a creature from the walker's current position (POST /api/game/catches). */
async function throwAt(spawn) {
  const p = state.position;
  const ms = Math.max(Date.now(), state.lastRecordedMs + 1);
  const fix = { lat: Number(p.lat.toFixed(6)), lon: Number(p.lon.toFixed(6)),
    accuracy_m: Number(p.accuracy.toFixed(1)), recorded_at: ms / 1000 };
  state.lastThrow = { name: spawn.name, note: "throwing…" };
  renderThrowResult();
  let caught = false;
  let note;
  try {
    const result = await api("POST", "/api/game/catches", { spawn_id: spawn.id, fix });
    caught = result.outcome === "caught";
    note = caught
      ? `caught! +${result.points} points${result.coupon ? ` and a coupon: ${result.coupon.title}` : ""}`
      : result.outcome;
  } catch (err) {
    note = `${err.code || "refused"}: ${err.message}`;
  }
  state.lastThrow = { name: spawn.name, note, caught };
  renderThrowResult();
  // A catch takes the throw button away and may have put a coupon in the wallet.
  refreshSpawns();
  if (caught) loadWallet();
}

async function refreshTrust() {
  if (!state.token) return;
  try {
    $("trust").textContent = (await api("GET", "/api/location/trust")).trust;
  } catch (err) {
    showError("trust", err);
  }
}

async function refreshInside() {
  if (!state.token) return;
  let items;
  try {
    items = (await api("GET", "/api/location/inside")).items;
  } catch (err) {
    showError("inside", err);
    return;
  }
  state.inside = new Map(items.map((item) => [item.store_id, item]));
  const list = $("inside");
  list.replaceChildren();
  if (!items.length) list.append(el("li", "not inside any fence", "muted"));
  const now = Date.now() / 1000;
  for (const item of items) {
    const li = el("li");
    li.append(el("strong", item.store ? item.store.name : item.store_id));
    let text = ` · since ${clockTime(item.entered_at)} (${duration(now - item.entered_at)})`;
    if (item.dwelled) text += " · dwelled";
    if (item.exit_pending) text += " · leaving (exit pending)";
    li.append(el("span", text, "muted"));
    list.append(li);
  }
  renderNearby();
  drawMap();
}

async function refreshNearby(force = false) {
  if (!state.token) return;
  const here = state.position;
  const openNow = $("open-now").checked;
  const last = state.nearbyAt;
  if (!force && last && last.openNow === openNow) {
    const moved = toMetres(last, here);
    if (Math.hypot(moved.x, moved.y) < 15) return;
  }
  const query = new URLSearchParams({
    lat: here.lat.toFixed(6),
    lon: here.lon.toFixed(6),
    radius_m: String(NEARBY_RADIUS_M),
    limit: String(NEARBY_FETCH),
  });
  if (openNow) query.set("open_now", "true");
  try {
    const answer = await api("GET", `/api/stores/nearby?${query}`);
    state.nearby = answer.items;
    state.nearbyAt = { lat: here.lat, lon: here.lon, openNow };
    for (const store of answer.items) state.stores.set(store.id, store);
  } catch (err) {
    showError("nearby stores", err);
  }
  renderNearby();
  drawMap();
}

function renderNearby() {
  const body = $("nearby");
  body.replaceChildren();
  const listed = state.nearby.slice(0, NEARBY_LISTED);
  if (!listed.length) {
    const row = el("tr");
    const cell = el("td", state.token ? "no store within reach" : "–", "muted");
    cell.colSpan = 3;
    row.append(cell);
    body.append(row);
  }
  for (const store of listed) {
    const row = el("tr", null, state.inside.has(store.id) ? "inside" : "");
    const name = el("td", store.name);
    name.title = `${store.id} · ${store.address}`;
    row.append(name, el("td", Math.round(store.distance_m), "num"),
      el("td", store.open_now ? "open" : "closed", store.open_now ? "" : "muted"));
    body.append(row);
  }
}

$("open-now").addEventListener("change", () => refreshNearby(true));

// ------------------------------------------------------------------------------ the map

const VERDICT_COLOURS = { ok: "#15803d", inaccurate: "#b45309", ignored: "#b45309" };

function drawMap() {
  const canvas = $("map");
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);

  let minX, maxX, minY, maxY;
  if ($("zoom").checked) {
    // About 320 m around the shopper: fences become large enough to see the accuracy circle
    // cross their edge.
    const me = toMetres(BUND, state.position);
    [minX, maxX, minY, maxY] = [me.x - 160, me.x + 160, me.y - 160, me.y + 160];
  } else {
    // The whole walk, with a margin for the fences on either side of the street.
    const pad = 110;
    minX = Math.min(0, WALK_VECTOR.x) - pad;
    maxX = Math.max(0, WALK_VECTOR.x) + pad;
    minY = Math.min(0, WALK_VECTOR.y) - pad;
    maxY = Math.max(0, WALK_VECTOR.y) + pad;
  }
  const scale = Math.min(width / (maxX - minX), height / (maxY - minY));
  const offX = (width - (maxX - minX) * scale) / 2;
  const offY = (height - (maxY - minY) * scale) / 2;
  const project = (p) => {
    const m = toMetres(BUND, p);
    return [offX + (m.x - minX) * scale, offY + (maxY - m.y) * scale];
  };

  // The street.
  const [ex, ey] = project(BUND);
  const [wx, wy] = project(PEOPLES_SQUARE);
  ctx.lineCap = "round";
  ctx.strokeStyle = "#e5e7eb";
  ctx.lineWidth = Math.max(6, 24 * scale);
  ctx.beginPath();
  ctx.moveTo(ex, ey);
  ctx.lineTo(wx, wy);
  ctx.stroke();
  ctx.setLineDash([6, 6]);
  ctx.strokeStyle = "#9ca3af";
  ctx.lineWidth = 1;
  ctx.stroke();
  ctx.setLineDash([]);

  // Fences: circles around the store point or polygons from their [lon, lat] rings.
  for (const store of state.stores.values()) {
    const inside = state.inside.has(store.id);
    ctx.beginPath();
    if (store.fence.type === "circle") {
      const [x, y] = project(store);
      ctx.arc(x, y, store.fence.radius_m * scale, 0, 2 * Math.PI);
    } else if (store.fence.type === "Polygon") {
      store.fence.coordinates[0].forEach(([lon, lat], i) => {
        const [x, y] = project({ lat, lon });
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.closePath();
    }
    ctx.fillStyle = inside ? "rgba(21,128,61,0.30)" : store.open_now ? "rgba(37,99,235,0.06)" : "rgba(0,0,0,0.025)";
    ctx.strokeStyle = inside ? "#15803d" : store.open_now ? "rgba(37,99,235,0.55)" : "rgba(107,114,128,0.35)";
    ctx.lineWidth = inside ? 2 : 1;
    ctx.fill();
    ctx.stroke();
  }

  // The fixes sent so far, coloured by verdict.
  for (const p of state.trail.slice(-3000)) {
    ctx.fillStyle = VERDICT_COLOURS[p.verdict] || "#b91c1c";
    const [x, y] = project(fromMetres(BUND, p.x, p.y));
    ctx.fillRect(x - 1, y - 1, 2, 2);
  }

  // Landmarks.
  ctx.fillStyle = "#374151";
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.fillText("The Bund", ex - 8, ey - 10);
  ctx.textAlign = "left";
  ctx.fillText("People's Square", wx + 8, wy + 16);

  // The shopper with the accuracy circle.
  const [sx, sy] = project(state.position);
  ctx.beginPath();
  ctx.arc(sx, sy, Math.max(4, state.position.accuracy * scale), 0, 2 * Math.PI);
  ctx.fillStyle = "rgba(37,99,235,0.18)";
  ctx.fill();
  ctx.beginPath();
  ctx.arc(sx, sy, 5, 0, 2 * Math.PI);
  ctx.fillStyle = "#2563eb";
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  ctx.fill();
  ctx.stroke();

  // Scale bar and legend.
  const bar = 100 * scale;
  ctx.strokeStyle = "#374151";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(12, height - 14);
  ctx.lineTo(12 + bar, height - 14);
  ctx.stroke();
  ctx.fillStyle = "#374151";
  ctx.fillText("100 m", 16 + bar, height - 10);
  ctx.textAlign = "right";
  ctx.fillStyle = "#6b7280";
  ctx.fillText("blue: open · grey: closed · green: inside", width - 10, height - 10);
  if (state.lastSent && state.lastSent.label) {
    ctx.fillStyle = "#b91c1c";
    ctx.fillText(`last fix: ${state.lastSent.label}, off this map`, width - 10, 18);
  }
}

window.addEventListener("resize", drawMap);
$("zoom").addEventListener("change", drawMap);

// ------------------------------------------------------------------------------ Socket.IO

function setSocketState(text, kind) {
  const pill = $("socket-state");
  pill.textContent = `socket: ${text}`;
  pill.dataset.state = kind;
}

/**
 * The /shopper namespace through the official socket.io-client (npm, served under /vendor/).
 * WebSocket only (no long-polling first), as docs/events.md recommends: it needs no sticky
 * sessions behind a load balancer. The client reconnects with backoff by itself; `auth` is a
 * function so a reconnect sends the token of now.
 */
function connectSocket() {
  if (state.socket) state.socket.disconnect();
  const socket = io("/shopper", {
    transports: ["websocket"],
    auth: (send) => send({ token: state.token }),
  });
  state.socket = socket;
  setSocketState("connecting", "connecting");
  socket.on("connect", () => setSocketState("connected", "on"));
  socket.on("disconnect", () => setSocketState("reconnecting", "waiting"));
  socket.on("connect_error", (err) => {
    if (socket.active) {
      // A transport failure: the client retries on its own.
      setSocketState("retrying", "waiting");
      return;
    }
    // Refused by the server (bad token, wrong role, storage down): the envelope is in err.data
    // (docs/events.md). No automatic retry; ask the REST API whether the token is still good
    // (a 401 there signs us out).
    showError("socket", (err.data && err.data.error) ||
      { code: "connect_refused", message: err.message || "connection refused" });
    setSocketState("refused", "refused");
    api("GET", "/api/me").catch(() => {});
  });
  socket.on("geofence", (event) => logEvent(event, "socket"));
  socket.on("coupon_issued", (coupon) => showCoupon(coupon, true));
  socket.on("error", (data) => showError("socket", (data && data.error) || {}));
}

// ------------------------------------------------------------------------------ start

function restoreSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem("footfall.session") || "null");
    if (saved && saved.token) {
      state.token = saved.token;
      state.user = saved.user;
    }
  } catch {
    sessionStorage.removeItem("footfall.session");
  }
}

function restoreWalk() {
  try {
    const saved = JSON.parse(sessionStorage.getItem("footfall.walk") || "null");
    if (saved && Number.isFinite(saved.distance)) {
      state.walk.distance = Math.min(WALK_LENGTH_M, Math.max(0, saved.distance));
      state.walk.direction = saved.direction < 0 ? -1 : 1;
      state.position = { ...pointAt(state.walk.distance), accuracy: 8 };
    }
  } catch {
    sessionStorage.removeItem("footfall.walk");
  }
}

restoreSession();
restoreWalk();
renderAccount();
renderPosition();
drawMap();
if (state.token) signedIn();
