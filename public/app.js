// The storefront page: catalogue, product detail, cart, checkout and order history, talking to
// the API of the worker that serves it. No framework; the DOM is built with textContent only
// (data is never parsed as HTML), which together with the page's CSP keeps injected markup inert.
//
// The account token lives in sessionStorage (this tab only). A shopper who has not signed in
// gets a guest session on the first add (POST /session/guest): its token lives in localStorage,
// so the guest cart survives a reload and is the same in a new tab. Signing in merges the guest
// cart into the account's (POST /cart/merge); signing out forgets both, and the next add starts
// a fresh guest cart. Tokens leave the page only as `Authorization: Bearer`, same-origin.
//
// Read-your-writes: a checkout or a cancellation answers with `Edgecart-Bookmark` (where its
// database write landed). The page keeps the newest one in sessionStorage and sends it on
// every signed-in request, so the next order list and cart show that write even when a
// database replica that lags answers them.
import { availabilityText, canBuy, checkoutStep, describeProblem, formatMoney } from './core.js';

const TOKEN_KEY = 'edgecart.token';
const GUEST_KEY = 'edgecart.guest';
const BOOKMARK_KEY = 'edgecart.bookmark';
const BOOKMARK_HEADER = 'Edgecart-Bookmark';
const PAGE_SIZE = 12;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  // The guest session's token while the shopper has not signed in.
  guest: localStorage.getItem(GUEST_KEY),
  who: null,
  products: new Map(), // sku → product, for names in messages
  productsCursor: null,
  cart: null,
  cartEtag: null,
  ordersCursor: null,
  detailSku: null,
  // The checkout attempt in progress or awaiting a definitive answer: its Idempotency-Key and
  // the cart version it was made for. A new key only when the cart version changes or the
  // server gave a definitive refusal.
  attempt: null,
  checkoutBusy: false,
};

// ---------------------------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'data') Object.assign(node.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let noticeTimer;
function notify(text, kind = 'info') {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
  n.hidden = false;
  clearTimeout(noticeTimer);
  if (kind === 'info') noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

const nameOf = (sku) => state.products.get(sku)?.name ?? state.cart?.items?.find((l) => l.sku === sku)?.name ?? sku;
const money = (minor, currency) => formatMoney(minor, currency);
const dateTime = (rfc3339) => {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString();
};

/**
 * One API call. Resolves to { ok, status, headers, body, problem }; rejects only on a network
 * failure (the caller decides whether to retry).
 */
async function api(path, { method = 'GET', body, headers = {}, auth = false } = {}) {
  const h = new Headers(headers);
  if (body !== undefined) h.set('Content-Type', 'application/json');
  const token = activeToken();
  if (auth && token) h.set('Authorization', `Bearer ${token}`);
  const bookmark = sessionStorage.getItem(BOOKMARK_KEY);
  if (auth && bookmark) h.set(BOOKMARK_HEADER, bookmark);
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  keepBookmark(res.headers.get(BOOKMARK_HEADER));
  const type = res.headers.get('content-type') || '';
  let parsed = null;
  if (type.includes('json')) {
    try { parsed = await res.json(); } catch { parsed = null; }
  }
  const problem = type.startsWith('application/problem+json') ? parsed ?? { status: res.status } : null;
  if (problem && (problem.type === '/problems/invalid-token' || problem.type === '/problems/missing-token') && auth) {
    if (state.token) signOut(describeProblem(problem).text);
    else setGuest(null); // an expired guest session: the next add starts a new one
  }
  return { ok: res.ok, status: res.status, headers: res.headers, body: problem ? null : parsed, problem };
}

function showProblem(problem, fallback = 'Something went wrong.') {
  const { text } = describeProblem(problem ?? { detail: fallback }, nameOf);
  notify(text, 'error');
  return text;
}

// ---------------------------------------------------------------------------------- sign-in

async function offerSignIn() {
  $('signed-in').hidden = true;
  let dev = false;
  try {
    // 404 means the worker has no development token endpoint; anything else means it has.
    const res = await fetch('/dev/token', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    dev = res.status !== 404;
  } catch { dev = false; }
  $('dev-signin').hidden = !dev;
  $('token-signin').hidden = dev;
  $('use-token').hidden = !dev;
}

/** The token the cart and orders are read with: the account's, else the guest session's. */
function activeToken() {
  return state.token || state.guest;
}

function setGuest(token) {
  state.guest = token;
  if (token) localStorage.setItem(GUEST_KEY, token);
  else localStorage.removeItem(GUEST_KEY);
}

/** A guest session for a shopper who adds to the cart before signing in; false if none. */
async function ensureGuest() {
  if (activeToken()) return true;
  let res;
  try { res = await api('/session/guest', { method: 'POST' }); } catch { notify('The shop cannot be reached.', 'error'); return false; }
  if (res.status === 201 && typeof res.body?.token === 'string') {
    setGuest(res.body.token);
    return true;
  }
  if (res.status === 404) notify('Please sign in first.', 'error');
  else showProblem(res.problem, 'A cart could not be started.');
  return false;
}

/** After sign-in: the guest cart joins the account's, and the guest session ends. */
async function mergeGuestCart() {
  const guest = state.guest;
  if (!guest || !state.token) return;
  let res;
  try {
    res = await api('/cart/merge', { method: 'POST', auth: true, body: { guest_token: guest } });
  } catch {
    notify('Your guest cart could not be added to your account yet; it is kept.', 'error');
    return;
  }
  if (res.ok) {
    setGuest(null);
    takeCart(res);
    const { merged, capped, left_out: leftOut } = res.body.merge;
    const notes = [];
    if (merged.length) notes.push(`${merged.length} item${merged.length === 1 ? '' : 's'} from your guest cart added`);
    for (const c of capped) notes.push(`${nameOf(c.sku)} capped at ${c.quantity}`);
    for (const l of leftOut) notes.push(`${nameOf(l.sku)} left out (${l.reason === 'currency' ? 'another currency' : 'cart full'})`);
    if (notes.length) notify(`${notes.join('; ')}.`);
    return;
  }
  if (res.status === 422) setGuest(null); // the guest session expired: nothing to merge
  else if (res.problem) showProblem(res.problem, 'Your guest cart could not be added to your account.');
}

/** Keeps `bookmark` if it is newer than the one kept (bookmarks order as strings). */
function keepBookmark(bookmark) {
  if (!bookmark) return;
  const kept = sessionStorage.getItem(BOOKMARK_KEY);
  if (!kept || kept < bookmark) sessionStorage.setItem(BOOKMARK_KEY, bookmark);
}

function setToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function signOut(message) {
  setToken(null);
  setGuest(null);
  sessionStorage.removeItem(BOOKMARK_KEY);
  state.who = null;
  state.cart = null;
  state.cartEtag = null;
  state.attempt = null;
  renderAccount();
  renderCart();
  $('orders').replaceChildren();
  $('orders-more').hidden = true;
  $('orders-empty').hidden = true;
  offerSignIn();
  if (message) notify(message, 'error');
}

async function signedIn() {
  const me = await api('/me', { auth: true });
  if (!me.ok) return false;
  state.who = me.body.sub;
  renderAccount();
  await mergeGuestCart();
  await Promise.all([loadCart(), loadOrders()]);
  return true;
}

/** A returning guest (a guest token from an earlier visit or another tab). */
async function resumeGuest() {
  if (!state.guest) return;
  const me = await api('/me', { auth: true });
  if (!me.ok) { setGuest(null); return; }
  await Promise.all([loadCart(), loadOrders()]);
}

function renderAccount() {
  const on = Boolean(state.token && state.who);
  $('signed-in').hidden = !on;
  if (on) {
    $('dev-signin').hidden = true;
    $('token-signin').hidden = true;
    $('who').textContent = state.who;
  }
  const shopping = Boolean(activeToken());
  $('cart-signed-out').hidden = shopping;
  $('cart-body').hidden = !shopping;
  $('orders-signed-out').hidden = shopping;
  $('guest-email-required').hidden = on;
  $('checkout-email').required = !on;
}

$('dev-signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const sub = $('dev-name').value.trim();
  if (!sub) return;
  let res;
  try {
    res = await api('/dev/token', { method: 'POST', body: { sub } });
  } catch {
    notify('The shop cannot be reached. Check your connection.', 'error');
    return;
  }
  if (res.status === 404) {
    $('dev-signin').hidden = true;
    $('token-signin').hidden = false;
    notify('Development sign-in is not available here; paste a token instead.', 'error');
    return;
  }
  if (!res.ok || typeof res.body?.token !== 'string') {
    showProblem(res.problem, 'Sign-in failed.');
    return;
  }
  setToken(res.body.token);
  if (await signedIn()) notify(`Welcome, ${state.who}.`);
});

$('use-token').addEventListener('click', () => {
  $('dev-signin').hidden = true;
  $('token-signin').hidden = false;
  $('token-input').focus();
});

$('token-signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
  if (!token) return;
  $('token-input').value = '';
  setToken(token);
  if (!(await signedIn())) {
    if (state.token) signOut('That token was not accepted.');
  } else {
    notify(`Welcome, ${state.who}.`);
  }
});

$('sign-out').addEventListener('click', () => signOut());

// ---------------------------------------------------------------------------------- catalogue

function productCard(p) {
  const add = el('button', { type: 'button', class: 'add', data: { sku: p.sku }, disabled: !canBuy(p) }, canBuy(p) ? 'Add to cart' : 'Sold out');
  add.addEventListener('click', () => addToCart(p.sku));
  const more = el('button', { type: 'button', class: 'link', data: { sku: p.sku } }, 'Details');
  more.addEventListener('click', () => showDetail(p.sku));
  return el('li', { class: 'card', data: { sku: p.sku } },
    el('h3', {}, p.name),
    el('p', { class: 'price' }, money(p.price_minor, p.currency)),
    el('p', { class: 'muted stock' }, availabilityText(p)),
    el('div', { class: 'actions' }, add, more));
}

async function loadProducts({ more = false } = {}) {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (more && state.productsCursor) q.set('cursor', state.productsCursor);
  let res;
  try { res = await api(`/products?${q}`); } catch { notify('The catalogue cannot be reached.', 'error'); return; }
  if (!res.ok) { showProblem(res.problem, 'The catalogue could not be loaded.'); return; }
  const list = $('products');
  if (!more) { list.replaceChildren(); state.products.clear(); }
  for (const p of res.body.items) {
    state.products.set(p.sku, p);
    list.append(productCard(p));
  }
  state.productsCursor = res.body.next_cursor ?? null;
  $('products-more').hidden = !state.productsCursor;
  $('products-empty').hidden = state.products.size > 0;
}

/** Reloads the catalogue as far as it was paged (after an order: the stock it took). */
async function refreshProducts() {
  const shown = state.products.size;
  await loadProducts();
  while (state.productsCursor && state.products.size < shown) await loadProducts({ more: true });
}

$('products-more').addEventListener('click', () => loadProducts({ more: true }));

async function showDetail(sku) {
  let res;
  try { res = await api(`/products/${encodeURIComponent(sku)}`); } catch { notify('The product cannot be reached.', 'error'); return; }
  if (!res.ok) { showProblem(res.problem); return; }
  const p = res.body;
  state.products.set(p.sku, p);
  state.detailSku = p.sku;
  $('detail-name').textContent = p.name;
  $('detail-description').textContent = p.description || '';
  $('detail-price').textContent = money(p.price_minor, p.currency);
  $('detail-stock').textContent = availabilityText(p);
  $('detail-sku').textContent = p.sku;
  $('detail-updated').textContent = dateTime(p.updated_at);
  $('detail-add').disabled = !canBuy(p);
  $('detail').hidden = false;
  $('detail').scrollIntoView({ block: 'nearest' });
}

$('detail-close').addEventListener('click', () => { $('detail').hidden = true; state.detailSku = null; });
$('detail-add').addEventListener('click', () => state.detailSku && addToCart(state.detailSku));

// ---------------------------------------------------------------------------------- cart

function takeCart(res) {
  state.cart = res.body;
  state.cartEtag = res.headers.get('etag');
  renderCart();
}

async function loadCart() {
  if (!activeToken()) return;
  let res;
  try { res = await api('/cart', { auth: true }); } catch { notify('The cart cannot be reached.', 'error'); return; }
  if (res.ok) takeCart(res);
  else if (res.problem) showProblem(res.problem, 'The cart could not be loaded.');
}

/** Sets a line's quantity (0 removes it), guarded by the cart's ETag. */
async function setQuantity(sku, quantity) {
  if (!(await ensureGuest())) return;
  const headers = state.cartEtag ? { 'If-Match': state.cartEtag } : {};
  let res;
  try {
    res = quantity > 0
      ? await api(`/cart/items/${encodeURIComponent(sku)}`, { method: 'PUT', body: { quantity }, headers, auth: true })
      : await api(`/cart/items/${encodeURIComponent(sku)}`, { method: 'DELETE', headers, auth: true });
  } catch {
    notify('The cart cannot be reached. Please try again.', 'error');
    return;
  }
  if (res.ok) { takeCart(res); return; }
  if (!res.problem) return;
  const { action } = describeProblem(res.problem, nameOf);
  showProblem(res.problem);
  if (action === 'reload-cart') await loadCart();
}

function addToCart(sku) {
  const line = state.cart?.items?.find((l) => l.sku === sku);
  return setQuantity(sku, (line?.quantity ?? 0) + 1);
}

function cartLine(line) {
  const qty = el('input', {
    type: 'number', min: '0', step: '1', value: String(line.quantity), class: 'qty',
    'aria-label': `Quantity of ${line.name}`, data: { sku: line.sku },
  });
  qty.addEventListener('change', () => {
    const n = Number(qty.value);
    if (Number.isInteger(n) && n >= 0) setQuantity(line.sku, n);
    else qty.value = String(line.quantity);
  });
  const remove = el('button', { type: 'button', class: 'link remove', data: { sku: line.sku }, 'aria-label': `Remove ${line.name}` }, 'Remove');
  remove.addEventListener('click', () => setQuantity(line.sku, 0));
  return el('li', { class: line.available === false ? 'line unavailable' : 'line', data: { sku: line.sku } },
    el('span', { class: 'line-name' }, line.name, line.available === false ? el('small', {}, ' (not available)') : null),
    el('span', { class: 'muted' }, money(line.unit_price_minor, state.cart.currency)),
    qty,
    el('span', { class: 'line-total' }, money(line.line_total_minor, state.cart.currency)),
    remove);
}

function renderCart() {
  renderAccount();
  const cart = state.cart;
  const lines = $('cart-lines');
  if (!cart) { lines.replaceChildren(); return; }
  lines.replaceChildren(...cart.items.map(cartLine));
  $('cart-empty').hidden = cart.items.length > 0;
  $('cart-subtotal').textContent = cart.items.length ? money(cart.subtotal_minor, cart.currency) : '—';
  $('checkout').disabled = state.checkoutBusy || cart.items.length === 0;
}

// ---------------------------------------------------------------------------------- checkout

function setCheckoutStatus(text, kind = 'info') {
  const s = $('checkout-status');
  s.textContent = text;
  s.dataset.kind = kind;
}

/**
 * Places the order for the cart version on screen. One Idempotency-Key per attempt, reused for
 * every retry of that attempt (network error, 409 request-in-flight, 429/503) and for a later
 * click while no definitive answer came; a new key after a definitive refusal or once the cart
 * version changed. The button is disabled while a request is in flight, and a second click is
 * ignored, so a double click sends one request.
 */
/** The checkout form's email and shipping address, as the API takes them. */
function checkoutDetails() {
  const email = $('checkout-email').value.trim();
  const address = {};
  for (const [field, id] of [['name', 'ship-name'], ['line1', 'ship-line1'], ['line2', 'ship-line2'], ['city', 'ship-city'], ['postal_code', 'ship-postal'], ['country', 'ship-country']]) {
    const value = $(id).value.trim();
    if (value) address[field] = value;
  }
  return { email, address };
}

async function checkout() {
  if (state.checkoutBusy || !state.cart || !activeToken()) return;
  const version = state.cart.version;
  const { email, address } = checkoutDetails();
  if (!state.token && !email) {
    setCheckoutStatus('Please enter your email: it is how we reach you about this order.', 'error');
    $('checkout-email').focus();
    return;
  }
  const body = { cart_version: version, expected_total_minor: state.cart.subtotal_minor };
  if (email) body.email = email;
  if (Object.keys(address).length) body.shipping_address = address;
  const fingerprint = JSON.stringify(body);
  if (!state.attempt || state.attempt.version !== version || state.attempt.fingerprint !== fingerprint) {
    state.attempt = { key: crypto.randomUUID(), version, fingerprint };
  }
  const attempt = state.attempt;
  state.checkoutBusy = true;
  $('checkout').disabled = true;
  setCheckoutStatus('Placing your order…');
  try {
    for (let tries = 1; ; tries++) {
      let res = null;
      let outcome;
      try {
        res = await api('/orders', {
          method: 'POST',
          auth: true,
          headers: { 'Idempotency-Key': `"${attempt.key}"` },
          body: JSON.parse(attempt.fingerprint),
        });
        outcome = { status: res.status, type: res.problem?.type, retryAfter: res.headers.get('retry-after') };
      } catch {
        outcome = { network: true };
      }
      const step = checkoutStep(outcome, tries);
      if (step.next === 'retry') {
        setCheckoutStatus(outcome.network ? 'Connection lost; retrying…' : 'Still processing; retrying…');
        await sleep(step.waitMs);
        continue;
      }
      if (step.next === 'done') {
        state.attempt = null;
        const order = res.body;
        const replayed = res.headers.get('idempotent-replayed') === 'true';
        setCheckoutStatus(
          `Order ${order.id} placed: ${money(order.total_minor, order.currency)}.` +
            (replayed ? ' (It had already been placed; this is the saved confirmation.)' : ''),
          'ok');
        $('checkout-status').dataset.replayed = String(replayed);
        $('checkout-status').dataset.order = order.id;
        // The product list shows the stock this order took.
        await Promise.all([loadCart(), loadOrders(), refreshProducts()]);
        return;
      }
      // stop
      if (!step.keepKey) state.attempt = null;
      if (outcome.network) {
        setCheckoutStatus('The shop cannot be reached. Your order may not be placed yet; press “Place order” again to retry safely.', 'error');
      } else if (res.problem) {
        const { text, action } = describeProblem(res.problem, nameOf);
        setCheckoutStatus(text, 'error');
        $('checkout-status').dataset.problem = res.problem.type ?? '';
        if (action === 'reload-cart') await loadCart();
      } else {
        setCheckoutStatus(`Unexpected answer (${res.status}). Press “Place order” again to retry safely.`, 'error');
      }
      return;
    }
  } finally {
    state.checkoutBusy = false;
    renderCart();
  }
}

$('checkout').addEventListener('click', () => {
  $('checkout-status').removeAttribute('data-problem');
  checkout();
});

// ---------------------------------------------------------------------------------- orders

const STATUS_TEXT = { confirmed: 'Confirmed', cancelled: 'Cancelled', fulfilled: 'Fulfilled' };

function orderItem(o) {
  const items = o.items.map((l) => `${l.quantity} × ${l.name}`).join(', ');
  // An order can be cancelled while it is confirmed (not once it is fulfilled or cancelled).
  const cancel = o.status === 'confirmed'
    ? el('button', { type: 'button', class: 'cancel', on: { click: (e) => cancelOrder(o, e.currentTarget) } }, 'Cancel')
    : null;
  return el('li', { class: 'order', data: { id: o.id, status: o.status } },
    el('div', { class: 'order-head' },
      el('strong', {}, money(o.total_minor, o.currency)),
      el('span', { class: 'muted' }, dateTime(o.created_at))),
    el('div', { class: 'muted' }, items),
    el('div', { class: 'order-foot' },
      el('span', { class: 'order-status', data: { status: o.status } }, STATUS_TEXT[o.status] ?? o.status),
      el('span', { class: 'muted small' }, o.id),
      cancel));
}

/** Cancels an order (a repeat is answered with the order unchanged, so a retry is safe). */
async function cancelOrder(o, button) {
  button.disabled = true;
  let res;
  try {
    res = await api(`/orders/${encodeURIComponent(o.id)}/cancel`, { method: 'POST', auth: true });
  } catch {
    button.disabled = false;
    notify('The shop cannot be reached. The order was not cancelled yet; press “Cancel” again to retry.', 'error');
    return;
  }
  if (!res.ok) {
    button.disabled = false;
    if (res.problem) showProblem(res.problem, 'The order could not be cancelled.');
    // A fulfilled order (409) shows its status now.
    if (res.status === 409) await loadOrders();
    return;
  }
  const li = document.querySelector(`#orders li[data-id="${o.id}"]`);
  li?.replaceWith(orderItem(res.body));
  notify(`Order ${o.id} cancelled.`);
  // The stock came back: the catalogue shows it on its next load.
}

async function loadOrders({ more = false } = {}) {
  if (!activeToken()) return;
  const q = new URLSearchParams({ limit: '10' });
  if (more && state.ordersCursor) q.set('cursor', state.ordersCursor);
  let res;
  try { res = await api(`/orders?${q}`, { auth: true }); } catch { notify('Order history cannot be reached.', 'error'); return; }
  if (!res.ok) { if (res.problem) showProblem(res.problem, 'Order history could not be loaded.'); return; }
  const list = $('orders');
  if (!more) list.replaceChildren();
  list.append(...res.body.items.map(orderItem));
  state.ordersCursor = res.body.next_cursor ?? null;
  $('orders-more').hidden = !state.ordersCursor;
  $('orders-empty').hidden = list.children.length > 0;
}

$('orders-more').addEventListener('click', () => loadOrders({ more: true }));

// ---------------------------------------------------------------------------------- start

async function start() {
  renderAccount();
  const catalogue = loadProducts();
  if (state.token && (await signedIn())) {
    // signed in from this tab's session
  } else {
    if (state.token) setToken(null);
    await Promise.all([offerSignIn(), resumeGuest()]);
    renderAccount();
  }
  await catalogue;
  document.body.dataset.ready = 'true';
}

start();
