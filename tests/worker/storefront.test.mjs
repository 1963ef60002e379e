// The storefront page in headless Chromium against the built worker: sign in, browse, cart,
// checkout (with double clicks, lost responses, in-flight retries and a changed cart), order
// history, the page's security headers, and CORS as a browser enforces it. The page's pure
// decisions (public/core.js) are checked first, directly under Node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { availabilityText, canBuy, checkoutStep, describeProblem, formatMoney, retryAfterMillis } from '../../public/core.js';
import { ROOT, devToken, freePort, startWorker } from './harness.mjs';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const LOCALE = 'en-US';
const PRODUCTS = [
  { sku: 'sf-sencha', name: 'Sencha, 100 g', description: 'A grassy green tea from Shizuoka.', price_minor: 1250, stock: 50 },
  { sku: 'sf-cup', name: 'Tea cup', description: 'Stoneware, 150 ml.', price_minor: 800, stock: 8 },
  { sku: 'sf-kettle', name: 'Kettle', description: 'Cast iron, 0.8 l.', price_minor: 3900, stock: 5 },
];
const eur = (minor) => formatMoney(minor, 'EUR', LOCALE);

describe('the page’s pure decisions (public/core.js)', () => {
  test('money is formatted from integer minor units with the currency’s digits', () => {
    const cases = [
      [1250, 'EUR', '€12.50'],
      [5, 'EUR', '€0.05'],
      [0, 'USD', '$0.00'],
      [1500, 'JPY', '¥1,500'],
      [123456789012345, 'EUR', '€1,234,567,890,123.45'],
      [1.5, 'EUR', '—'],
      [100, 'eur', '—'],
    ];
    for (const [minor, currency, want] of cases) assert.equal(formatMoney(minor, currency, LOCALE), want, `${minor} ${currency}`);
  });

  test('stock is told by its band, with the count only while low', () => {
    assert.equal(availabilityText({ availability: 'in_stock' }), 'In stock');
    assert.equal(availabilityText({ availability: 'low_stock', stock_left: 3 }), 'Only 3 left');
    assert.equal(availabilityText({ availability: 'low_stock' }), 'Low stock');
    assert.equal(availabilityText({ availability: 'out_of_stock' }), 'Out of stock');
    assert.equal(availabilityText({}), '');
    assert.deepEqual(
      ['in_stock', 'low_stock', 'out_of_stock', undefined].map((availability) => canBuy({ availability })),
      [true, true, false, false],
    );
  });

  test('problems are explained by type, naming the item that is out of stock', () => {
    const nameOf = (sku) => ({ 'sf-cup': 'Tea cup' })[sku];
    assert.equal(describeProblem({ type: '/problems/invalid-token' }).action, 'sign-in');
    assert.match(describeProblem({ type: '/problems/invalid-token' }).text, /sign in again/i);
    const changed = describeProblem({ type: '/problems/cart-changed' });
    assert.equal(changed.action, 'reload-cart');
    assert.match(changed.text, /review/i);
    const stock = describeProblem({ type: '/problems/out-of-stock', sku: 'sf-cup' }, nameOf);
    assert.match(stock.text, /Tea cup/);
    assert.match(describeProblem({ type: '/problems/out-of-stock', sku: 'sf-x' }, nameOf).text, /sf-x/);
    assert.equal(describeProblem({ type: '/problems/whatever', detail: 'Plain words.' }).text, 'Plain words.');
    assert.match(describeProblem({ type: '/problems/order-not-cancellable' }).text, /fulfilled/);
  });

  test('checkout retries with the same key only when the outcome is unknown', () => {
    const cases = [
      [{ status: 201 }, 1, { next: 'done' }],
      [{ network: true }, 1, { next: 'retry', waitMs: 250 }],
      [{ network: true }, 6, { next: 'stop', keepKey: true }],
      [{ status: 409, type: '/problems/request-in-flight', retryAfter: '2' }, 1, { next: 'retry', waitMs: 2000 }],
      [{ status: 409, type: '/problems/request-in-flight', retryAfter: '3600' }, 1, { next: 'retry', waitMs: 10000 }],
      [{ status: 503, retryAfter: '1' }, 2, { next: 'retry', waitMs: 1000 }],
      [{ status: 500 }, 1, { next: 'stop', keepKey: true }],
      [{ status: 409, type: '/problems/cart-changed' }, 1, { next: 'stop', keepKey: false }],
      [{ status: 409, type: '/problems/out-of-stock' }, 1, { next: 'stop', keepKey: false }],
      [{ status: 422, type: '/problems/invalid-value' }, 1, { next: 'stop', keepKey: false }],
      [{ status: 401, type: '/problems/invalid-token' }, 1, { next: 'stop', keepKey: false }],
    ];
    for (const [outcome, tries, want] of cases) assert.deepEqual(checkoutStep(outcome, tries), want, JSON.stringify(outcome));
    assert.equal(retryAfterMillis('Wed, 21 Oct 2015 07:28:00 GMT'), 1000);
  });
});

describe('the storefront in a browser', () => {
  let w;
  let browser;
  let allowed; // a page origin listed in CORS_ALLOW_ORIGINS
  let refused; // one that is not
  let admin;

  async function otherOrigin() {
    const port = await freePort();
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>another shop</title><p>another origin</p>');
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    return { server, origin: `http://127.0.0.1:${port}` };
  }

  before(async () => {
    allowed = await otherOrigin();
    refused = await otherOrigin();
    w = await startWorker({ vars: { CORS_ALLOW_ORIGINS: allowed.origin } });
    admin = await devToken(w, { sub: 'storefront-admin', scope: 'catalog:write' });
    for (const p of PRODUCTS) {
      const res = await w.fetch(`/products/${p.sku}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...p, currency: 'EUR' }),
      });
      assert.equal(res.status, 201, `seeding ${p.sku}: ${await res.text()}`);
    }
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  });
  after(async () => {
    await browser?.close();
    await w?.stop();
    allowed?.server.close();
    refused?.server.close();
  });

  /** A fresh tab (own sessionStorage) on the storefront, recording CSP violations and errors. */
  async function openShop() {
    const context = await browser.newContext({ locale: LOCALE, viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) page.problems.push(m.text());
    });
    page.on('pageerror', (e) => page.problems.push(String(e)));
    page.orderPosts = [];
    // The Edgecart-Bookmark each order read sent (null when none).
    page.orderReads = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/orders') page.orderPosts.push(r.headers()['idempotency-key']);
      if (r.method() === 'GET' && new URL(r.url()).pathname === '/orders') page.orderReads.push(r.headers()['edgecart-bookmark'] ?? null);
    });
    await page.goto(`${w.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    return page;
  }

  async function signIn(page, name) {
    await page.waitForSelector('#dev-signin:not([hidden])');
    await page.fill('#dev-name', name);
    await page.click('#dev-signin button[type="submit"]');
    await page.waitForSelector('#signed-in:not([hidden])');
    assert.equal(await page.textContent('#who'), name);
  }

  /** Pages through the catalogue with "More products" until `sku` is on screen. */
  async function findProduct(page, sku) {
    const card = page.locator(`#products li[data-sku="${sku}"]`);
    for (let i = 0; i < 50 && (await card.count()) === 0; i++) {
      const count = await page.locator('#products li.card').count();
      await page.click('#products-more');
      await page.waitForFunction((n) => document.querySelectorAll('#products li.card').length > n, count);
    }
    await card.waitFor();
    return card;
  }

  async function addToCart(page, sku) {
    await findProduct(page, sku);
    const before = await page.getAttribute(`#cart-lines li[data-sku="${sku}"] input.qty`, 'value').catch(() => null);
    await page.click(`#products li[data-sku="${sku}"] button.add`);
    const want = String(Number(before ?? 0) + 1);
    await page.waitForFunction(
      ([s, q]) => document.querySelector(`#cart-lines li[data-sku="${s}"] input.qty`)?.value === q,
      [sku, want],
    );
  }

  async function setQuantity(page, sku, quantity) {
    const qty = page.locator(`#cart-lines li[data-sku="${sku}"] input.qty`);
    await qty.fill(String(quantity));
    await qty.dispatchEvent('change');
  }

  async function placeOrder(page) {
    await page.click('#checkout');
    await page.waitForSelector('#checkout-status[data-kind="ok"], #checkout-status[data-kind="error"]');
    return page.getAttribute('#checkout-status', 'data-order');
  }

  const tokenOf = (page) => page.evaluate(() => sessionStorage.getItem('edgecart.token'));
  async function ordersOf(token) {
    const res = await w.fetch('/orders?limit=50', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return (await res.json()).items;
  }

  test('GET / is the page, with a strict CSP and no inline script or style', async () => {
    const res = await w.fetch('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(res.headers.get('content-security-policy'), CSP);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'inline script');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'inline style or handler');
    for (const [path, type] of [['/app.js', /javascript/], ['/core.js', /javascript/], ['/app.css', /^text\/css/]]) {
      const asset = await w.fetch(path);
      assert.equal(asset.status, 200, path);
      assert.match(asset.headers.get('content-type'), type, path);
      assert.equal(asset.headers.get('x-content-type-options'), 'nosniff', path);
    }
    const js = await readFile(join(ROOT, 'public', 'app.js'), 'utf8');
    assert.doesNotMatch(js, /innerHTML|outerHTML|insertAdjacentHTML|\.style\b|setAttribute\('style'|eval\(|new Function/);
  });

  test('the page’s files answer like API routes: 304 to their ETag, 405 + Allow to other methods, a 404 problem when missing', async () => {
    const page = await w.fetch('/');
    await page.arrayBuffer();
    assert.ok(page.headers.get('x-request-id'), 'the worker answered (it runs ahead of the assets)');
    const etag = page.headers.get('etag');
    assert.ok(etag, 'the page has an ETag');
    const again = await w.fetch('/', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
    const head = await w.fetch('/app.js', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type'), /javascript/);
    assert.equal(await head.text(), '');
    for (const [method, path] of [['POST', '/'], ['PUT', '/app.js'], ['DELETE', '/app.css'], ['PURGE', '/']]) {
      const res = await w.fetch(path, { method, body: method === 'POST' || method === 'PUT' ? '{}' : undefined });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      assert.equal((await res.json()).type, '/problems/method-not-allowed');
    }
    for (const [method, path] of [['GET', '/nowhere.js'], ['POST', '/nowhere'], ['HEAD', '/missing.css']]) {
      const res = await w.fetch(path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      await res.arrayBuffer();
    }
  });

  test('a shopper signs in, browses, fills the cart, checks out and sees the order in history', async () => {
    const page = await openShop();
    await page.waitForSelector('#products li.card');
    const firstPage = await page.locator('#products li.card').count();
    await findProduct(page, 'sf-sencha');
    await findProduct(page, 'sf-cup');
    const skus = await page.locator('#products li.card').evaluateAll((cards) => cards.map((c) => c.dataset.sku));
    assert.equal(new Set(skus).size, skus.length, 'paging repeats no product');
    assert.ok(skus.length >= firstPage);
    assert.equal(await page.textContent('#products li[data-sku="sf-sencha"] .price'), eur(1250));

    await page.click('#products li[data-sku="sf-sencha"] button.link');
    await page.waitForSelector('#detail:not([hidden])');
    assert.equal(await page.textContent('#detail-name'), 'Sencha, 100 g');
    assert.equal(await page.textContent('#detail-description'), 'A grassy green tea from Shizuoka.');

    await signIn(page, 'shopper');
    await addToCart(page, 'sf-sencha');
    await addToCart(page, 'sf-cup');
    await setQuantity(page, 'sf-sencha', 3);
    await page.waitForFunction((want) => document.querySelector('#cart-subtotal').textContent === want, eur(3 * 1250 + 800));
    await page.click('#detail-close');
    await page.evaluate(() => window.scrollTo(0, 0));
    await mkdir(join(ROOT, 'docs'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'storefront.png') });

    const id = await placeOrder(page);
    assert.match(id ?? '', /\S/, await page.textContent('#checkout-status'));
    assert.match(await page.textContent('#checkout-status'), new RegExp(`${id}.*${eur(4550).replace('$', '\\$')}`));
    await page.waitForSelector(`#orders li[data-id="${id}"]`);
    assert.match(await page.textContent(`#orders li[data-id="${id}"]`), /3 × Sencha, 100 g, 1 × Tea cup/);
    await page.waitForSelector('#cart-empty:not([hidden])');

    const token = await tokenOf(page);
    const orders = await ordersOf(token);
    assert.deepEqual(orders.map((o) => o.id), [id]);
    assert.equal(orders[0].total_minor, 4550);
    assert.equal(page.orderPosts.length, 1);
    assert.match(page.orderPosts[0], /^"[0-9a-f-]{36}"$/);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  const guestOf = (page) => page.evaluate(() => localStorage.getItem('edgecart.guest'));
  const stockShown = (page, sku) => page.textContent(`#products li[data-sku="${sku}"] .stock`);
  /** The exact stock, which only D1 (and the merchant's write reply) shows. */
  const stockInD1 = async (sku) =>
    (await (await w.mf.getD1Database('DB')).prepare('SELECT stock FROM products WHERE sku = ?1').bind(sku).first())?.stock;
  async function fillAddress(page) {
    await page.fill('#ship-name', 'Mika Tanaka');
    await page.fill('#ship-line1', '3-1 Gion');
    await page.fill('#ship-city', 'Kyoto');
    await page.fill('#ship-postal', '605-0073');
    await page.fill('#ship-country', 'JP');
  }

  test('a shopper fills a cart signed out; it survives a reload and a new tab, sign-in merges it, and the order shows the new stock', async () => {
    const page = await openShop();
    await findProduct(page, 'sf-cup');
    const stockBefore = await stockInD1('sf-cup');
    const shownBefore = await stockShown(page, 'sf-cup');
    await addToCart(page, 'sf-cup');
    await addToCart(page, 'sf-cup');
    const guest = await guestOf(page);
    assert.match(guest ?? '', /^eyJ/, 'the first add started a guest session');
    assert.equal(await tokenOf(page), null, 'not signed in');

    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#cart-lines li[data-sku="sf-cup"]');
    assert.equal(await page.getAttribute('#cart-lines li[data-sku="sf-cup"] input.qty', 'value'), '2');
    const other = await page.context().newPage();
    await other.goto(`${w.url}/`);
    await other.waitForSelector('#cart-lines li[data-sku="sf-cup"]');
    await other.close();

    await signIn(page, 'merger');
    await page.waitForSelector('#cart-lines li[data-sku="sf-cup"]');
    assert.equal(await page.getAttribute('#cart-lines li[data-sku="sf-cup"] input.qty', 'value'), '2', 'the guest lines joined the account');
    assert.equal(await guestOf(page), null, 'the guest session ended');

    await page.fill('#checkout-email', 'mika@example.com');
    await fillAddress(page);
    const id = await placeOrder(page);
    assert.match(id ?? '', /^ord_/, await page.textContent('#checkout-status'));
    await page.waitForSelector(`#orders li[data-id="${id}"]`);
    const [order] = await ordersOf(await tokenOf(page));
    assert.equal(order.id, id);
    assert.equal(order.email, 'mika@example.com');
    assert.deepEqual(order.shipping_address, { name: 'Mika Tanaka', line1: '3-1 Gion', city: 'Kyoto', postal_code: '605-0073', country: 'JP' });
    // The cup starts at 8 and the first scenario takes one: these two move it from in_stock to
    // low_stock, so its cached pages change and show the count (at most 5 left is low).
    const left = stockBefore - 2;
    assert.equal(await stockInD1('sf-cup'), left);
    assert.equal(shownBefore, stockBefore > 5 ? 'In stock' : `Only ${stockBefore} left`);
    const want = left > 5 ? 'In stock' : left > 0 ? `Only ${left} left` : 'Out of stock';
    // The reload showed the first page only: page on to the product again.
    await findProduct(page, 'sf-cup');
    await page.waitForFunction(([sku, text]) => document.querySelector(`#products li[data-sku="${sku}"] .stock`)?.textContent === text, ['sf-cup', want]);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a guest checks out with an email (the page asks for one), and signing out starts a fresh guest cart', async () => {
    const page = await openShop();
    await addToCart(page, 'sf-sencha');
    const first = await guestOf(page);
    await page.click('#checkout');
    await page.waitForSelector('#checkout-status[data-kind="error"]');
    assert.match(await page.textContent('#checkout-status'), /email/i);
    assert.equal(page.orderPosts.length, 0, 'nothing sent without an email');
    await page.fill('#checkout-email', 'guest@example.com');
    const id = await placeOrder(page);
    assert.match(id ?? '', /^ord_/, await page.textContent('#checkout-status'));
    await page.waitForSelector(`#orders li[data-id="${id}"]`);
    assert.deepEqual((await ordersOf(first)).map((o) => o.id), [id], 'the order is the guest\'s');
    await page.waitForSelector('#cart-empty:not([hidden])');
    // Signing out (here: of the guest session's page state) forgets it; the next add is a new guest.
    await signIn(page, 'after-guest');
    await page.click('#sign-out');
    await page.waitForSelector('#dev-signin:not([hidden])');
    await addToCart(page, 'sf-cup');
    const second = await guestOf(page);
    assert.ok(second && second !== first, 'a fresh guest session');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('an order shows its status and offers "Cancel" only while confirmed; cancelling returns the stock', async () => {
    const page = await openShop();
    await signIn(page, 'canceller');
    await addToCart(page, 'sf-kettle');
    const stockOf = () => stockInD1('sf-kettle');
    const before = await stockOf();
    const id = await placeOrder(page);
    assert.match(id ?? '', /^ord_/, await page.textContent('#checkout-status'));
    const li = `#orders li[data-id="${id}"]`;
    await page.waitForSelector(`${li} .order-status`);
    assert.equal(await page.textContent(`${li} .order-status`), 'Confirmed');
    assert.equal(await stockOf(), before - 1);
    // The checkout's bookmark is kept and the order list that followed sent it back.
    const kept = () => page.evaluate(() => sessionStorage.getItem('edgecart.bookmark'));
    const placed = await kept();
    assert.match(placed ?? '', /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    assert.equal(page.orderReads.at(-1), placed);

    await page.click(`${li} button.cancel`);
    await page.waitForSelector(`${li}[data-status="cancelled"]`);
    assert.ok((await kept()) > placed, 'the cancellation\'s newer bookmark is kept');
    assert.equal(await page.textContent(`${li} .order-status`), 'Cancelled');
    assert.equal(await page.locator(`${li} button.cancel`).count(), 0, 'no Cancel once cancelled');
    assert.equal(await stockOf(), before);
    assert.match(await page.textContent('#notice'), new RegExp(`${id} cancelled`));

    // An order the merchant fulfilled offers no Cancel; one fulfilled behind the page's back
    // is refused readably and then shown fulfilled.
    await addToCart(page, 'sf-kettle');
    const second = await placeOrder(page);
    await page.waitForSelector(`#orders li[data-id="${second}"] button.cancel`);
    const merchant = await devToken(w, { sub: 'storefront-merchant', scope: 'orders:write' });
    const f = await w.fetch(`/orders/${second}/fulfilment`, { method: 'POST', headers: { authorization: `Bearer ${merchant}` } });
    assert.equal(f.status, 200);
    await page.click(`#orders li[data-id="${second}"] button.cancel`);
    await page.waitForSelector(`#orders li[data-id="${second}"][data-status="fulfilled"]`);
    assert.equal(await page.textContent(`#orders li[data-id="${second}"] .order-status`), 'Fulfilled');
    assert.equal(await page.locator(`#orders li[data-id="${second}"] button.cancel`).count(), 0);
    assert.match(await page.textContent('#notice'), /already fulfilled/);
    await page.context().close();
  });

  test('a double click on "Place order" places exactly one order', async () => {
    const page = await openShop();
    await signIn(page, 'double-clicker');
    await addToCart(page, 'sf-cup');
    await page.dblclick('#checkout');
    await page.waitForSelector('#checkout-status[data-kind="ok"]');
    await page.waitForTimeout(500);
    assert.equal(page.orderPosts.length, 1);
    assert.equal((await ordersOf(await tokenOf(page))).length, 1);
    await page.context().close();
  });

  test('a lost response is retried with the same key and the replay is shown as such', async () => {
    const page = await openShop();
    await signIn(page, 'unlucky');
    await addToCart(page, 'sf-kettle');
    let lost = 0;
    await page.route('**/orders', async (route) => {
      if (route.request().method() === 'POST' && lost === 0) {
        lost += 1;
        const delivered = await route.fetch(); // the server places the order …
        assert.equal(delivered.status(), 201);
        await route.abort('connectionreset'); // … and the answer never arrives
        return;
      }
      await route.continue();
    });
    await placeOrder(page);
    assert.equal(await page.getAttribute('#checkout-status', 'data-kind'), 'ok');
    assert.equal(await page.getAttribute('#checkout-status', 'data-replayed'), 'true');
    assert.match(await page.textContent('#checkout-status'), /already been placed/);
    assert.equal(page.orderPosts.length, 2);
    assert.equal(page.orderPosts[0], page.orderPosts[1]);
    assert.equal((await ordersOf(await tokenOf(page))).length, 1);
    await page.context().close();
  });

  test('a request still in flight is retried with the same key after Retry-After', async () => {
    const page = await openShop();
    await signIn(page, 'patient');
    await addToCart(page, 'sf-cup');
    let answered = 0;
    await page.route('**/orders', async (route) => {
      if (route.request().method() === 'POST' && answered === 0) {
        answered += 1;
        await route.fulfill({
          status: 409,
          headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
          body: JSON.stringify({ type: '/problems/request-in-flight', title: 'Request in flight', status: 409, detail: '…' }),
        });
        return;
      }
      await route.continue();
    });
    const started = Date.now();
    await placeOrder(page);
    assert.equal(await page.getAttribute('#checkout-status', 'data-kind'), 'ok');
    assert.ok(Date.now() - started >= 900, 'waited for Retry-After');
    assert.equal(page.orderPosts.length, 2);
    assert.equal(page.orderPosts[0], page.orderPosts[1]);
    assert.equal((await ordersOf(await tokenOf(page))).length, 1);
    await page.context().close();
  });

  test('a cart changed elsewhere is reported readably, reloaded, and the next attempt uses a new key', async () => {
    const page = await openShop();
    await signIn(page, 'two-tabs');
    await addToCart(page, 'sf-sencha');
    const token = await tokenOf(page);
    // Another tab changes the cart behind this page's back.
    const other = await w.fetch('/cart/items/sf-sencha', {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ quantity: 4 }),
    });
    assert.equal(other.status, 200);

    await placeOrder(page);
    assert.equal(await page.getAttribute('#checkout-status', 'data-kind'), 'error');
    assert.equal(await page.getAttribute('#checkout-status', 'data-problem'), '/problems/cart-changed');
    assert.match(await page.textContent('#checkout-status'), /cart changed.*review/i);
    await page.waitForFunction(() => document.querySelector('#cart-lines li[data-sku="sf-sencha"] input.qty')?.value === '4');
    assert.equal((await ordersOf(token)).length, 0);

    const id = await placeOrder(page);
    assert.equal(await page.getAttribute('#checkout-status', 'data-kind'), 'ok');
    assert.equal(page.orderPosts.length, 2);
    assert.notEqual(page.orderPosts[0], page.orderPosts[1]);
    const orders = await ordersOf(token);
    assert.deepEqual(orders.map((o) => o.id), [id]);
    assert.equal(orders[0].total_minor, 4 * 1250);
    await page.context().close();
  });

  test('an invalid token sends the shopper back to sign-in; a pasted token works', async () => {
    const page = await openShop();
    await page.evaluate(() => sessionStorage.setItem('edgecart.token', 'not-a-token'));
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#dev-signin:not([hidden])');
    assert.match(await page.textContent('#notice'), /sign in again/i);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('edgecart.token')), null);

    await page.click('#use-token');
    await page.fill('#token-input', await devToken(w, { sub: 'paster' }));
    await page.click('#token-signin button[type="submit"]');
    await page.waitForSelector('#signed-in:not([hidden])');
    assert.equal(await page.textContent('#who'), 'paster');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a page on a listed origin can call the API; one on another origin cannot', async () => {
    const token = await devToken(w, { sub: 'cross-origin' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const call = () => page.evaluate(async ({ base, bearer }) => {
      try {
        const auth = { Authorization: `Bearer ${bearer}` };
        const cart = await fetch(`${base}/cart`, { headers: auth });
        const etag = cart.headers.get('etag');
        const put = await fetch(`${base}/cart/items/sf-cup`, {
          method: 'PUT',
          headers: { ...auth, 'Content-Type': 'application/json', ...(etag ? { 'If-Match': etag } : {}) },
          body: JSON.stringify({ quantity: 2 }),
        });
        const body = await put.json();
        return { status: put.status, quantity: body.items?.[0]?.quantity, etag, requestId: put.headers.get('x-request-id') };
      } catch (e) {
        return { error: e.name };
      }
    }, { base: w.url, bearer: token });

    await page.goto(`${refused.origin}/`);
    assert.deepEqual(await call(), { error: 'TypeError' });
    const untouched = await w.fetch('/cart', { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual((await untouched.json()).items, [], 'the refused preflight changed nothing');
    await page.goto(`${allowed.origin}/`);
    const ok = await call();
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal(ok.quantity, 2);
    assert.ok(ok.etag, 'ETag is exposed to the page');
    assert.match(ok.requestId, /\S/);
    await context.close();
  });
});
