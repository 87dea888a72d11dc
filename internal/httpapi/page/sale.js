// The live sale page: counts come from the server's event stream
// (GET /sales/current/events: a "sale" event per change, an "items" event
// with the items whose counts changed), items from GET
// /sales/current/items, and the forms call POST /checkout and POST
// /purchase as any client would.
"use strict";

const $ = (id) => document.getElementById(id);
const itemsPerPage = 48;
// With auth on (the server says so in data-auth), the shopper is the
// subject of their token, sent as a bearer token; there is no id to type.
const authOn = document.body.dataset.auth === "bearer";

const state = {
  sale: null, // the last "sale" event
  offset: 0, // the server's clock minus this browser's, in ms
  itemsSale: null, // the sale whose items the grid shows
  onlyAvailable: false,
  after: 0, // the next page of items starts after this id; null when all are shown
  loading: false,
  // tiles: item id -> {li, item, at}: at is when its counts were read
  // (server time, ms), so an older answer never overwrites a newer one.
  tiles: new Map(),
  streamFrom: 0, // read time of the first event since the stream (re)opened
  resynced: false, // the grid was re-read since the stream (re)opened
  holdExpires: null, // when the code shown expires, by the server's clock (ms)
  token: null, // the bearer token, with auth on
};

const serverNow = () => Date.now() + state.offset;

function duration(ms) {
  let s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  s %= 86400;
  const h = Math.floor(s / 3600);
  s %= 3600;
  const m = Math.floor(s / 60);
  s %= 60;
  const two = (n) => String(n).padStart(2, "0");
  const clock = d > 0 || h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  return d > 0 ? `${d}d ${clock}` : clock;
}

// Times in the shopper's own zone, saying which.
const timeFormat = new Intl.DateTimeFormat([], {
  weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});

function setTime(el, iso) {
  el.dateTime = iso;
  el.textContent = timeFormat.format(new Date(iso));
}

const moneyFormats = new Map();

// price is a decimal string; currency an ISO 4217 code (the generated
// sales' prices are dollars and name none).
function money(price, currency) {
  const cur = currency || "USD";
  try {
    if (!moneyFormats.has(cur)) {
      moneyFormats.set(cur, new Intl.NumberFormat([], { style: "currency", currency: cur }));
    }
    return moneyFormats.get(cur).format(Number(price));
  } catch {
    return `${price} ${cur}`; // a code this browser does not know
  }
}

// What a shopper reads for each error code; the code stays in the
// message's data-code attribute.
const errorTexts = {
  invalid_request: "Please check what you entered",
  unauthorized: "Please sign in to buy.",
  forbidden: "That belongs to another shopper.",
  rate_limited: "Too many tries at once. Wait a moment and try again.",
  item_not_found: "There is no item with that number in this sale.",
  sale_not_found: "That sale does not exist.",
  code_not_found: "That checkout code is not known. Check it and try again.",
  item_unavailable: "Sorry, that item is gone: every unit is sold or held. Choose another one.",
  sold_out: "Sorry, the sale is sold out.",
  user_limit_reached: "You have reached this sale's limit per shopper.",
  code_expired: "Your hold expired before the purchase. Check out again if units are left.",
  idempotency_key_reused: "That request was already used for something else.",
  no_active_sale: "No sale is open right now. Come back when the next one starts.",
  sale_paused: "The sale is paused for a moment. Try again shortly; your held items stay yours.",
  unavailable: "The shop cannot answer right now. Try again in a moment.",
  network: "The shop could not be reached. Check your connection and try again.",
};

function errorText(err) {
  const text = errorTexts[err.code];
  if (!text) return `Something went wrong: ${err.message}.`;
  // Bad input: what was wrong is in the server's message.
  return err.code === "invalid_request" ? `${text}: ${err.message}.` : text;
}

function setLive(text, on) {
  $("live").textContent = text;
  $("live").classList.toggle("on", on);
}

function showSale(s) {
  state.sale = s;
  state.offset = Date.parse(s.server_time) - Date.now();
  $("sale-id").textContent = s.id;
  setTime($("starts-at"), s.starts_at);
  setTime($("ends-at"), s.ends_at);
  for (const kind of ["sold", "held", "available"]) {
    const n = s["units_" + kind];
    $("count-" + kind).textContent = n;
    const bar = $("bar-" + kind);
    bar.style.width = (s.units_total > 0 ? (100 * n) / s.units_total : 0) + "%";
    bar.style.minWidth = n > 0 ? "3px" : "0"; // one unit of 10,000 still shows
  }
  $("count-total").textContent = s.units_total;
  $("count-buyers").textContent = s.buyers;
  $("per-user-limit").textContent = s.per_user_limit;
  $("bar").setAttribute("aria-label",
    `${s.units_sold} sold, ${s.units_held} held, ${s.units_available} available of ${s.units_total} units`);
  showSoldOut(s);
  showNext(s);
  if (state.itemsSale !== s.id) {
    // A new sale: its items, and a code of the old sale no longer counts down.
    const rollover = state.itemsSale !== null;
    state.itemsSale = s.id;
    state.resynced = true; // the grid is read afresh
    resetGrid();
    if (rollover) {
      forgetHold();
      say(`Sale ${s.id} has started.`);
    }
  } else if (!state.resynced) {
    // The stream (re)opened: changes made while it was closed came in no
    // event, so the items shown are read again.
    state.resynced = true;
    resync();
  }
  tick();
}

// showSoldOut: no unit free means no checkout can succeed; units held
// may still come back if their holds expire.
function showSoldOut(s) {
  const out = s.units_available === 0;
  const banner = $("soldout");
  banner.hidden = !out;
  banner.classList.toggle("held", out && s.units_held > 0);
  banner.textContent = !out ? "" : s.units_held > 0
    ? `Everything is taken: ${s.units_held} held ${s.units_held === 1 ? "unit" : "units"} may come back if not bought in time.`
    : "Sold out: every unit of this sale is sold.";
  document.body.classList.toggle("sold-out", out);
  $("checkout-fields").disabled = out;
}

// showNext shows when the next sale starts, if one exists: right after
// this one (no second countdown to the same moment), or later.
function showNext(s) {
  const next = s.next_sale_starts_at;
  $("next-box").hidden = !next;
  if (!next) return;
  setTime($("next-at"), next);
  $("next-label").textContent = Date.parse(next) <= Date.parse(s.ends_at) ? "Next sale" : "Next sale in";
}

function tick() {
  const s = state.sale;
  if (s) {
    const left = Date.parse(s.ends_at) - serverNow();
    $("ends-in").textContent = left > 0 ? duration(left) : "ending…";
    if (s.next_sale_starts_at) {
      const next = Date.parse(s.next_sale_starts_at);
      $("next-in").textContent = next <= Date.parse(s.ends_at) ? "as this one ends" : duration(next - serverNow());
    }
  }
  if (state.holdExpires !== null) {
    const left = state.holdExpires - serverNow();
    $("code-expires").textContent = left > 0 ? duration(left) : "expired";
  }
}

function connect() {
  const events = new EventSource("/sales/current/events");
  events.onopen = () => {
    state.resynced = false;
  };
  events.addEventListener("sale", (e) => {
    setLive("live", true);
    const s = JSON.parse(e.data);
    if (!state.resynced) state.streamFrom = Date.parse(s.read_at);
    showSale(s);
  });
  events.addEventListener("items", (e) => {
    const ev = JSON.parse(e.data);
    if (ev.sale_id !== state.itemsSale) return;
    const at = Date.parse(ev.read_at);
    for (const c of ev.items) updateTile(c.id, c.free_units, c.held_units, at);
  });
  // No sale can be read (none open, database away): the counts shown are
  // old, and changes meanwhile may be missed: read the items again after.
  events.addEventListener("sale_error", (e) => {
    const err = JSON.parse(e.data).error;
    setLive(errorTexts[err.code] ?? err.message, false);
    state.resynced = false;
  });
  events.onerror = () => {
    setLive("reconnecting…", false);
    state.resynced = false;
    // The browser retries by itself unless the server refused the stream
    // (a 503 while it shuts down); then try again after a while.
    if (events.readyState === EventSource.CLOSED) {
      setTimeout(connect, 3000);
    }
  };
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function itemCard(it) {
  const li = el("li", "item");
  li.dataset.id = it.id;
  const img = el("img");
  // A shop's own picture when the item has one, else the drawn one.
  img.src = it.image_url || `/items/${state.itemsSale}/${it.id}/image.svg`;
  img.alt = it.name;
  img.width = img.height = 320;
  img.loading = "lazy";
  img.decoding = "async";
  const pick = el("button", "pick", "Choose");
  pick.type = "button";
  pick.addEventListener("click", () => choose(it));
  li.append(img, el("span", "name", it.name));
  if (it.description) li.append(el("span", "desc", it.description));
  li.append(el("span", "price", money(it.price, it.currency)), el("span", "free"), el("span", "held-note"), pick);
  return li;
}

// updateTile shows an item's counts as read at `at` (server time, ms),
// unless the tile already shows a later read.
function updateTile(id, free, held, at) {
  const t = state.tiles.get(id);
  if (!t || at < t.at) return;
  t.at = at;
  const li = t.li;
  li.dataset.free = free;
  li.dataset.held = held;
  li.classList.toggle("none", free === 0 && held > 0);
  li.classList.toggle("gone", free === 0 && held === 0);
  li.querySelector(".free").textContent = free > 0 ? `${free} left` : held > 0 ? "None free now" : "Sold out";
  li.querySelector(".held-note").textContent = held > 0 ? `${held} held, may return` : "";
  const pick = li.querySelector(".pick");
  pick.disabled = free === 0;
  pick.textContent = free > 0 ? "Choose" : held > 0 ? "All held" : "Sold out";
}

function choose(it) {
  $("item-id").value = it.id;
  $("chosen").textContent = `Chosen: ${it.name}, ${money(it.price, it.currency)}`;
  const user = $("user-id");
  (authOn || user.value ? $("checkout") : user).focus();
}

function authHeaders() {
  return authOn && state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

// callAPI answers {ok: body} or {error: {code, message}}, also when the
// server cannot be reached or answers something that is not JSON.
async function callAPI(method, url) {
  let r;
  try {
    r = await fetch(url, { method, headers: { Accept: "application/json", ...authHeaders() } });
  } catch {
    return { error: { code: "network", message: "the server could not be reached" } };
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    return { error: body?.error ?? { code: `http_${r.status}`, message: r.statusText || "request failed" } };
  }
  return { ok: body };
}

function itemsURL(after, limit) {
  return `/sales/current/items?after=${after}&limit=${limit}` + (state.onlyAvailable ? "&available=true" : "");
}

function resetGrid() {
  state.after = 0;
  state.tiles.clear();
  $("items").replaceChildren();
  $("no-items").hidden = true;
  loadItems();
}

// showPage shows an answer of GET /sales/current/items: new tiles for
// items not shown yet (when add), counts for those shown. An answer read
// before the stream's first event may miss changes no event will repeat:
// the grid is read again a little later.
function showPage(page, add) {
  const at = Date.parse(page.read_at);
  const fresh = [];
  for (const it of page.items) {
    if (!state.tiles.has(it.id)) {
      if (!add) continue;
      const li = itemCard(it);
      state.tiles.set(it.id, { li, item: it, at: -Infinity });
      fresh.push(li);
    }
    updateTile(it.id, it.free_units, it.held_units, at);
  }
  $("items").append(...fresh);
  if (at < state.streamFrom) setTimeout(resync, 1000);
}

async function loadItems() {
  if (state.loading || state.after === null) return;
  state.loading = true;
  const sale = state.itemsSale;
  const filter = state.onlyAvailable;
  try {
    const res = await callAPI("GET", itemsURL(state.after, itemsPerPage));
    if (res.error) {
      fail(res.error);
      return;
    }
    // Items of another sale: the sale rolled over since the last event,
    // and the event that says so resets the grid. Or the filter changed.
    if (res.ok.sale_id !== sale || state.itemsSale !== sale || state.onlyAvailable !== filter) return;
    showPage(res.ok, true);
    state.after = res.ok.next_after;
  } finally {
    state.loading = false;
    $("more").hidden = state.after === null;
    $("no-items").hidden = state.tiles.size > 0 || state.after !== null;
  }
}

// resync reads the counts of every item shown again, a page at a time.
let resyncing = false;
async function resync() {
  if (resyncing || state.tiles.size === 0) return;
  resyncing = true;
  try {
    const ids = [...state.tiles.keys()].sort((a, b) => a - b);
    const last = ids[ids.length - 1];
    let after = 0;
    while (after !== null && after < last) {
      // All items, not only available ones: a tile shown may have sold out.
      const res = await callAPI("GET", `/sales/current/items?after=${after}&limit=1000`);
      if (res.error || res.ok.sale_id !== state.itemsSale) return;
      showPage(res.ok, false);
      after = res.ok.next_after;
    }
  } finally {
    resyncing = false;
  }
}

// refreshItem re-reads one item's counts after this page changed them.
async function refreshItem(id) {
  const res = await callAPI("GET", `/sales/current/items?after=${id - 1}&limit=1`);
  if (res.ok && res.ok.sale_id === state.itemsSale) showPage(res.ok, false);
}

function say(text) {
  const m = $("message");
  m.textContent = text;
  m.classList.remove("error");
  delete m.dataset.code;
}

function fail(err) {
  const m = $("message");
  m.textContent = errorText(err);
  m.dataset.code = err.code;
  m.classList.add("error");
}

function forgetHold() {
  state.holdExpires = null;
  $("code").value = "";
  $("code-expires").textContent = "–";
}

// busy disables a form's button while its request runs.
async function busy(button, f) {
  button.disabled = true;
  button.classList.add("busy");
  try {
    await f();
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
  }
}

// Who the shopper is. With auth on: the token's subject (read here only
// to show it; the server checks the token). Without: an id of their
// choosing, remembered, with a generated one to start.
function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return typeof claims.sub === "string" && claims.sub ? claims.sub : null;
  } catch {
    return null;
  }
}

function showSignedIn() {
  const sub = state.token && tokenSubject(state.token);
  $("signin-form").hidden = !!sub;
  $("who").hidden = !sub;
  $("who-name").textContent = sub || "";
}

function setupIdentity() {
  if (authOn) {
    $("user-label").hidden = true;
    $("user-id").disabled = true;
    // The shop's sign-in may hand the token over in the fragment, which
    // no server sees; it is kept for this tab only.
    const fromURL = new URLSearchParams(location.hash.slice(1)).get("token");
    try {
      if (fromURL) sessionStorage.setItem("token", fromURL);
      state.token = fromURL || sessionStorage.getItem("token");
    } catch {
      state.token = fromURL;
    }
    if (fromURL) history.replaceState(null, "", location.pathname + location.search);
    showSignedIn();
    return;
  }
  let id = "";
  try {
    id = localStorage.getItem("user_id") || "";
  } catch {} // storage may be off; the field still works
  if (!id) {
    const rnd = new Uint32Array(1);
    crypto.getRandomValues(rnd);
    id = "shopper-" + rnd[0].toString(36);
    remember(id);
  }
  $("user-id").value = id;
}

function remember(id) {
  try {
    localStorage.setItem("user_id", id);
  } catch {}
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  if (!tokenSubject(token)) {
    fail({ code: "invalid_request", message: "that is not a token from the shop" });
    return;
  }
  state.token = token;
  try {
    sessionStorage.setItem("token", token);
  } catch {}
  $("token").value = "";
  showSignedIn();
  say(`Signed in as ${tokenSubject(token)}.`);
});

function signOut() {
  state.token = null;
  try {
    sessionStorage.removeItem("token");
  } catch {}
  showSignedIn();
}

$("signout").addEventListener("click", signOut);

// A refused token (expired, or not the shop's) is forgotten.
function checkAuth(err) {
  if (authOn && err.code === "unauthorized") signOut();
}

$("checkout-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy($("checkout"), async () => {
    const item = $("item-id").value.trim();
    let url = `/checkout?id=${encodeURIComponent(item)}`;
    if (!authOn) {
      const user = $("user-id").value.trim();
      remember(user);
      url += `&user_id=${encodeURIComponent(user)}`;
    }
    const res = await callAPI("POST", url);
    if (res.error) {
      fail(res.error);
      checkAuth(res.error);
      if (/^\d+$/.test(item)) refreshItem(Number(item));
      return;
    }
    const h = res.ok;
    $("code").value = h.code;
    state.holdExpires = Date.parse(h.expires_at);
    say(`${h.item.name} (${money(h.item.price, h.item.currency)}) is held for you: purchase it with the code before it expires.`);
    tick();
    refreshItem(h.item.id);
  });
});

$("purchase-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy($("purchase"), async () => {
    const res = await callAPI("POST", `/purchase?code=${encodeURIComponent($("code").value.trim())}`);
    if (res.error) {
      fail(res.error);
      checkAuth(res.error);
      return;
    }
    const p = res.ok;
    forgetHold();
    say(`You bought ${p.item.name} (${money(p.item.price, p.item.currency)}), purchase ${p.purchase_id}: ${p.user_purchases} in this sale.`);
    refreshItem(p.item.id);
  });
});

$("only-available").addEventListener("change", (e) => {
  state.onlyAvailable = e.target.checked;
  if (state.itemsSale !== null) resetGrid();
});

$("more").addEventListener("click", loadItems);
// Scrolling to the end of the grid loads the next page.
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadItems();
}).observe($("more"));

// A safety net under the events: whatever a missed event left wrong is
// put right within half a minute (the reads are shared by the server).
setInterval(resync, 30000);

setupIdentity();
setInterval(tick, 250);
connect();
