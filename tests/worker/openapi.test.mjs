// GET /openapi.json is a valid OpenAPI 3.1 document and tells the truth: it is checked with a
// real OpenAPI 3.1 validator, and real answers of the running worker (health, readiness,
// products, cart, orders, identity, problems) are validated against the schemas it declares
// for that path, method, status and content type (ajv, JSON Schema 2020-12).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ROOT, devToken, startWorker } from './harness.mjs';

const SOURCE = JSON.parse(await readFile(join(ROOT, 'src', 'openapi.json'), 'utf8'));

/** An ajv instance holding the document's component schemas under `edgecart#/$defs/…`. */
function schemaRegistry(doc) {
  const ajv = new Ajv2020({ allErrors: true, strictTypes: false });
  addFormats(ajv);
  const defs = JSON.parse(JSON.stringify(doc.components.schemas).replaceAll('#/components/schemas/', '#/$defs/'));
  ajv.addSchema({ $id: 'edgecart', $defs: defs });
  return ajv;
}

function resolveRef(doc, node) {
  let n = node;
  while (n && n.$ref) n = n.$ref.slice(2).split('/').reduce((o, k) => o?.[k.replaceAll('~1', '/').replaceAll('~0', '~')], doc);
  return n;
}

/**
 * Checks that `res` is an answer the document describes for `method template`: its status is
 * listed, and its body matches the schema of its media type. Returns the parsed body.
 */
async function conforms(ctx, res, method, template) {
  const { doc, ajv } = ctx;
  const op = doc.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not in the document`);
  const described = resolveRef(doc, op.responses[String(res.status)]);
  assert.ok(described, `${method} ${template} → ${res.status} is not documented`);
  for (const name of Object.keys(described.headers ?? {})) {
    // Documented headers that every answer of this status carries.
    if (['Cache-Control', 'X-Request-Id'].includes(name)) assert.ok(res.headers.get(name), `${name} missing`);
  }
  const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
  const text = await res.text();
  if (!described.content) {
    assert.equal(text, '', `${res.status} should have no body`);
    return null;
  }
  const media = described.content[mediaType];
  assert.ok(media, `${method} ${template} → ${res.status} does not document ${mediaType}`);
  if (!mediaType.endsWith('json')) return text;
  const body = JSON.parse(text);
  const ref = media.schema.$ref?.replace('#/components/schemas/', 'edgecart#/$defs/');
  const validate = ref ? ajv.getSchema(ref) : ajv.compile(media.schema);
  assert.ok(validate, `no schema for ${ref}`);
  assert.ok(validate(body), `${method} ${template} → ${res.status}: ${ajv.errorsText(validate.errors)}\n${text}`);
  return body;
}

describe('the OpenAPI document', () => {
  let w;
  const ctx = {};
  before(async () => {
    w = await startWorker();
    const res = await w.fetch('/openapi.json');
    ctx.res = res;
    ctx.doc = await res.json();
    ctx.ajv = schemaRegistry(ctx.doc);
  });
  after(async () => {
    await w?.stop();
  });

  test('it is served as public JSON cacheable for five minutes, identical to src/openapi.json', () => {
    assert.equal(ctx.res.status, 200);
    assert.equal(ctx.res.headers.get('content-type'), 'application/json');
    assert.equal(ctx.res.headers.get('cache-control'), 'public, max-age=300');
    assert.deepEqual(ctx.doc, SOURCE);
  });

  test('it is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(ctx.doc));
    assert.equal(validator.version, '3.1');
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  test('it describes every route of the contract', () => {
    const routes = {
      '/': ['get'], '/health': ['get'], '/health/ready': ['get'], '/me': ['get'],
      '/products': ['get', 'head'], '/products/{sku}': ['get', 'head', 'put', 'delete'],
      '/cart': ['get', 'delete'], '/cart/items/{sku}': ['put', 'delete'], '/orders': ['get', 'post'],
      '/orders/{id}': ['get'], '/orders/{id}/cancel': ['post'], '/orders/{id}/fulfilment': ['post'],
      '/dev/token': ['post'], '/openapi.json': ['get'], '/problems/{kind}': ['get'],
    };
    for (const [path, methods] of Object.entries(routes)) {
      for (const m of methods) assert.ok(ctx.doc.paths[path]?.[m], `${m.toUpperCase()} ${path}`);
    }
  });

  test('it names the schemas, headers and security scheme of the contract', () => {
    const c = ctx.doc.components;
    for (const s of ['Product', 'ProductList', 'Cart', 'CartLine', 'Order', 'OrderList', 'Me', 'Problem', 'Health', 'Ready']) {
      assert.ok(c.schemas[s], `schema ${s}`);
    }
    for (const h of ['ETag', 'Idempotent-Replayed', 'Cache-Status', 'Retry-After', 'Location', 'WWW-Authenticate', 'X-Request-Id', 'Edgecart-Bookmark']) {
      assert.ok(c.headers[h], `header ${h}`);
    }
    for (const p of ['If-Match', 'If-None-Match', 'Idempotency-Key', 'Edgecart-Bookmark']) assert.equal(c.parameters[p]?.in, 'header', p);
    assert.deepEqual(c.securitySchemes.bearerAuth, { ...c.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
  });

  test('every listed problem type is explained by GET /problems/{kind}', async () => {
    const types = ctx.doc['x-problem-types'];
    assert.ok(types.length >= 17);
    assert.deepEqual(ctx.doc.components.schemas.Problem.properties.type.enum, types.map((t) => t.type));
    for (const { type, status } of types) {
      const res = await w.fetch(type);
      const text = await conforms(ctx, res, 'GET', '/problems/{kind}');
      assert.equal(res.status, 200, type);
      assert.match(text, new RegExp(`\\(${status}\\)`));
    }
  });

  test('health and readiness answers match their schemas', async () => {
    const h = await conforms(ctx, await w.fetch('/health'), 'GET', '/health');
    assert.equal(h.status, 'ok');
    const r = await w.fetch('/health/ready');
    assert.equal(r.status, 200);
    await conforms(ctx, r, 'GET', '/health/ready');
  });

  test('problem answers match the Problem schema and their documented statuses', async () => {
    await conforms(ctx, await w.fetch('/products/NOT_A_SKU'), 'GET', '/products/{sku}'); // 400
    await conforms(ctx, await w.fetch('/products/no-such-thing'), 'GET', '/products/{sku}'); // 404
    const noToken = await w.fetch('/cart');
    assert.equal(noToken.status, 401);
    await conforms(ctx, noToken, 'GET', '/cart');
    const badToken = await w.fetch('/me', { headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(badToken.status, 401);
    await conforms(ctx, badToken, 'GET', '/me');
    const wrongMethod = await w.fetch('/orders/x', { method: 'DELETE' });
    assert.equal(wrongMethod.status, 405);
    const body = await wrongMethod.json();
    const validate = ctx.ajv.getSchema('edgecart#/$defs/Problem');
    assert.ok(validate(body), ctx.ajv.errorsText(validate.errors));
  });

  test('catalogue, identity, cart and order answers match their schemas', async () => {
    const admin = await devToken(w, { sub: 'openapi-admin', scope: 'catalog:write' });
    const user = await devToken(w, { sub: 'openapi-user' });
    const auth = (t) => ({ authorization: `Bearer ${t}` });

    for (const [sku, price] of [['oa-tea', 1250], ['oa-cup', 800]]) {
      const put = await w.fetch(`/products/${sku}`, {
        method: 'PUT',
        headers: { ...auth(admin), 'content-type': 'application/json' },
        body: JSON.stringify({ sku, name: `Product ${sku}`, description: 'For the schema test.', price_minor: price, currency: 'EUR', stock: 10 }),
      });
      assert.equal(put.status, 201);
      await conforms(ctx, put, 'PUT', '/products/{sku}');
    }
    const list = await conforms(ctx, await w.fetch('/products?limit=1'), 'GET', '/products');
    assert.equal(list.items.length, 1);
    assert.equal(typeof list.next_cursor, 'string');
    await conforms(ctx, await w.fetch(`/products?limit=1&cursor=${encodeURIComponent(list.next_cursor)}`), 'GET', '/products');
    const product = await conforms(ctx, await w.fetch('/products/oa-tea'), 'GET', '/products/{sku}');
    assert.equal(product.price_minor, 1250);

    const me = await conforms(ctx, await w.fetch('/me', { headers: auth(user) }), 'GET', '/me');
    assert.equal(me.sub, 'openapi-user');

    await conforms(ctx, await w.fetch('/cart', { headers: auth(user) }), 'GET', '/cart');
    const setLine = (sku, quantity) => w.fetch(`/cart/items/${sku}`, {
      method: 'PUT', headers: { ...auth(user), 'content-type': 'application/json' }, body: JSON.stringify({ quantity }),
    });
    await conforms(ctx, await setLine('oa-tea', 2), 'PUT', '/cart/items/{sku}');
    const cart = await conforms(ctx, await setLine('oa-cup', 1), 'PUT', '/cart/items/{sku}');
    assert.equal(cart.subtotal_minor, 2 * 1250 + 800);
    const invalid = await setLine('oa-tea', -1);
    assert.equal(invalid.status, 422);
    await conforms(ctx, invalid, 'PUT', '/cart/items/{sku}');

    const checkout = (version, key) => w.fetch('/orders', {
      method: 'POST',
      headers: { ...auth(user), 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
      body: JSON.stringify({ cart_version: version }),
    });
    const stale = await checkout(cart.version - 1, 'openapi-stale');
    assert.equal(stale.status, 409);
    assert.equal((await conforms(ctx, stale, 'POST', '/orders')).type, '/problems/cart-changed');
    const placed = await checkout(cart.version, 'openapi-1');
    assert.equal(placed.status, 201);
    const order = await conforms(ctx, placed, 'POST', '/orders');
    const replay = await checkout(cart.version, 'openapi-1');
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await conforms(ctx, replay, 'POST', '/orders'), order);

    const orders = await conforms(ctx, await w.fetch('/orders', { headers: auth(user) }), 'GET', '/orders');
    assert.equal(orders.items[0].id, order.id);
    await conforms(ctx, await w.fetch(`/orders/${order.id}`, { headers: auth(user) }), 'GET', '/orders/{id}');
    const other = await devToken(w, { sub: 'openapi-other' });
    await conforms(ctx, await w.fetch(`/orders/${order.id}`, { headers: auth(other) }), 'GET', '/orders/{id}');
    await conforms(ctx, await w.fetch('/cart', { method: 'DELETE', headers: auth(user) }), 'DELETE', '/cart');

    // After checkout: the merchant's view with events, fulfilment, and the refused cancel.
    const merchant = await devToken(w, { sub: 'openapi-merchant', scope: 'orders:write' });
    const seen = await conforms(ctx, await w.fetch(`/orders/${order.id}`, { headers: auth(merchant) }), 'GET', '/orders/{id}');
    assert.equal(seen.events[0].type, 'order.confirmed');
    const post = (path, t) => w.fetch(path, { method: 'POST', headers: auth(t) });
    await conforms(ctx, await post(`/orders/${order.id}/fulfilment`, user), 'POST', '/orders/{id}/fulfilment');
    const fulfilled = await conforms(ctx, await post(`/orders/${order.id}/fulfilment`, merchant), 'POST', '/orders/{id}/fulfilment');
    assert.equal(fulfilled.status, 'fulfilled');
    const refused = await post(`/orders/${order.id}/cancel`, user);
    assert.equal(refused.status, 409);
    assert.equal((await conforms(ctx, refused, 'POST', '/orders/{id}/cancel')).type, '/problems/order-not-cancellable');
    await conforms(ctx, await post(`/orders/${order.id}/cancel`, other), 'POST', '/orders/{id}/cancel');
    await setLine('oa-cup', 1);
    const again = await conforms(ctx, await w.fetch('/cart', { headers: auth(user) }), 'GET', '/cart');
    const second = await conforms(ctx, await checkout(again.version, 'openapi-2'), 'POST', '/orders');
    const cancelled = await conforms(ctx, await post(`/orders/${second.id}/cancel`, user), 'POST', '/orders/{id}/cancel');
    assert.equal(cancelled.status, 'cancelled');
    const notFulfillable = await post(`/orders/${second.id}/fulfilment`, merchant);
    assert.equal((await conforms(ctx, notFulfillable, 'POST', '/orders/{id}/fulfilment')).type, '/problems/order-not-fulfillable');
  });

  test('the webhook is described: headers, the event schema, and a body it matches', () => {
    const hook = ctx.doc.webhooks?.orderEvent?.post;
    assert.ok(hook);
    assert.deepEqual(hook.parameters.map((p) => [p.in, p.name]), [
      ['header', 'webhook-id'], ['header', 'webhook-timestamp'], ['header', 'webhook-signature'],
    ]);
    const validate = ctx.ajv.getSchema('edgecart#/$defs/OrderEvent');
    assert.ok(validate({
      type: 'order.cancelled', timestamp: '2026-12-07T08:01:00Z',
      data: { id: `ord_${'a'.repeat(32)}`, status: 'cancelled', total_minor: 2500, currency: 'EUR' },
    }), ctx.ajv.errorsText(validate.errors));
    assert.ok(!validate({ type: 'order.lost', timestamp: 'x', data: {} }));
  });
});
