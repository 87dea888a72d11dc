// The live sale page: counts come from the server's event stream
// (GET /sales/current/events), items from GET /sales/current/items, and the
// form calls POST /checkout and POST /purchase as any client would.
"use strict";

const $ = (id) => document.getElementById(id);
const itemsPerPage = 48;

const state = {
  sale: null, // the last "sale" event
  offset: 0, // the server's clock minus this browser's, in ms
  itemsSale: null, // the sale whose items the grid shows
  after: 0, // the next page of items starts after this id; null when all are shown
  loading: false,
  holdExpires: null, // when the code shown expires, by the server's clock (ms)
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

function setTime(el, iso) {
  el.dateTime = iso;
  el.textContent = new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
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
  if (state.itemsSale !== s.id) {
    // A new sale: its items, and a code of the old sale no longer counts down.
    const rollover = state.itemsSale !== null;
    state.itemsSale = s.id;
    state.after = 0;
    $("items").replaceChildren();
    loadItems();
    if (rollover) {
      forgetHold();
      say(`Sale ${s.id} has started.`);
    }
  }
  tick();
}

function tick() {
  const s = state.sale;
  if (s) {
    const left = Date.parse(s.ends_at) - serverNow();
    $("ends-in").textContent = left > 0 ? duration(left) : "ending…";
    $("next-in").textContent = duration(Date.parse(s.next_sale_starts_at) - serverNow());
  }
  if (state.holdExpires !== null) {
    const left = state.holdExpires - serverNow();
    $("code-expires").textContent = left > 0 ? duration(left) : "expired";
  }
}

function connect() {
  const events = new EventSource("/sales/current/events");
  events.addEventListener("sale", (e) => {
    setLive("live", true);
    showSale(JSON.parse(e.data));
  });
  // No sale can be read (none open, database away): the counts shown are old.
  events.addEventListener("sale_error", (e) => {
    setLive(JSON.parse(e.data).error.message, false);
  });
  events.onerror = () => {
    setLive("reconnecting…", false);
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

const freeText = (n) => (n > 0 ? `${n} left` : "none left");

function itemCard(it) {
  const li = el("li", "item");
  li.dataset.id = it.id;
  li.classList.toggle("gone", it.free_units === 0);
  const img = el("img");
  img.src = it.image_url;
  img.alt = it.name;
  img.width = img.height = 320;
  img.loading = "lazy";
  img.decoding = "async";
  const pick = el("button", "pick", "Choose");
  pick.type = "button";
  pick.addEventListener("click", () => {
    $("item-id").value = it.id;
    ($("user-id").value ? $("checkout") : $("user-id")).focus();
  });
  li.append(img, el("span", "name", it.name), el("span", "price", `$${it.price}`),
    el("span", "free", freeText(it.free_units)), pick);
  return li;
}

// callAPI answers {ok: body} or {error: {code, message}}, also when the
// server cannot be reached or answers something that is not JSON.
async function callAPI(method, url) {
  let r;
  try {
    r = await fetch(url, { method, headers: { Accept: "application/json" } });
  } catch {
    return { error: { code: "network", message: "the server could not be reached" } };
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    return { error: body?.error ?? { code: `http_${r.status}`, message: r.statusText || "request failed" } };
  }
  return { ok: body };
}

async function loadItems() {
  if (state.loading || state.after === null) return;
  state.loading = true;
  const sale = state.itemsSale;
  try {
    const res = await callAPI("GET", `/sales/current/items?after=${state.after}&limit=${itemsPerPage}`);
    if (res.error) {
      fail(res.error);
      return;
    }
    // Items of another sale: the sale rolled over since the last event,
    // and the event that says so resets the grid.
    if (res.ok.sale_id !== sale || state.itemsSale !== sale) return;
    $("items").append(...res.ok.items.map(itemCard));
    state.after = res.ok.next_after;
  } finally {
    state.loading = false;
    $("more").hidden = state.after === null;
  }
}

// refreshItem re-reads one item's free units after this page changed them.
async function refreshItem(id) {
  const res = await callAPI("GET", `/sales/current/items?after=${id - 1}&limit=1`);
  const it = res.ok?.items?.[0];
  const li = $("items").querySelector(`[data-id="${id}"]`);
  if (!it || it.id !== id || !li) return;
  li.querySelector(".free").textContent = freeText(it.free_units);
  li.classList.toggle("gone", it.free_units === 0);
}

function say(text) {
  $("message").textContent = text;
  $("message").classList.remove("error");
}

function fail(err) {
  $("message").textContent = `${err.message} (${err.code})`;
  $("message").classList.add("error");
}

function forgetHold() {
  state.holdExpires = null;
  $("code").value = "";
  $("code-expires").textContent = "–";
}

// busy disables a form's button while its request runs.
async function busy(button, f) {
  button.disabled = true;
  try {
    await f();
  } finally {
    button.disabled = false;
  }
}

$("checkout-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy($("checkout"), async () => {
    const user = $("user-id").value;
    const item = $("item-id").value.trim();
    try {
      localStorage.setItem("user_id", user);
    } catch {} // storage may be off; the field still works
    const res = await callAPI("POST", `/checkout?user_id=${encodeURIComponent(user)}&id=${encodeURIComponent(item)}`);
    if (res.error) {
      fail(res.error);
      return;
    }
    const h = res.ok;
    $("code").value = h.code;
    state.holdExpires = Date.parse(h.expires_at);
    say(`${h.item.name} ($${h.item.price}) is held for ${h.user_id}: purchase it with the code before it expires.`);
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
      return;
    }
    const p = res.ok;
    forgetHold();
    say(`${p.user_id} bought ${p.item.name} ($${p.item.price}), purchase ${p.purchase_id}: ${p.user_purchases} in this sale.`);
    refreshItem(p.item.id);
  });
});

$("more").addEventListener("click", loadItems);
// Scrolling to the end of the grid loads the next page.
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadItems();
}).observe($("more"));

try {
  $("user-id").value = localStorage.getItem("user_id") ?? "";
} catch {}
setInterval(tick, 250);
connect();
