// Order events at the runtime tier: the outbox rows of checkout, cancel and fulfilment go
// through Miniflare's ORDER_EVENTS queue to a loopback receiver (receiver.mjs) as Standard
// Webhooks, verified with the npm `standardwebhooks` library. The receiver fails, times out,
// redirects or is down; the event is delivered once it answers 2xx, always under the same
// webhook-id; after the last attempt the message goes to the dead-letter queue and the event
// is marked undelivered; a worker restarted before the first good delivery still delivers it
// (the outbox sweep); with no ORDER_WEBHOOK_URL events are kept.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { devToken, sha256Parts, startWorker } from './harness.mjs';
import { shop, sleep } from './checkout-helpers.mjs';
import { startReceiver } from './receiver.mjs';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

/** The worker's event id: `evt_` + 32 hex of SHA-256 over the length-prefixed parts. */
export function eventId(orderId, type) {
  return 'evt_' + sha256Parts('edgecart order event', orderId, type).slice(0, 32);
}

function webhookVars(receiver, extra = {}) {
  return {
    ORDER_WEBHOOK_URL: receiver.url,
    ORDER_WEBHOOK_SECRET: secret,
    ORDER_WEBHOOK_TIMEOUT_SECONDS: '1',
    ORDER_WEBHOOK_RETRY_BASE_SECONDS: '0',
    ...extra,
  };
}

async function placeOrder(s, sub, sku, qty = 1) {
  const cart = await s.add(sub, sku, qty);
  const res = await s.checkout(sub, { body: { cart_version: cart.version } });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

/** Asserts a delivery is a valid Standard Webhook of `id` and returns its parsed body. */
function verified(delivery, id) {
  assert.equal(delivery.method, 'POST');
  assert.equal(delivery.path, '/hook');
  assert.equal(delivery.headers['content-type'], 'application/json');
  assert.equal(delivery.headers['webhook-id'], id);
  assert.match(delivery.headers['webhook-timestamp'], /^\d+$/);
  assert.ok(Math.abs(Number(delivery.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
  assert.match(delivery.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
  return new Webhook(secret).verify(delivery.body, delivery.headers);
}

describe('order events', () => {
  let receiver;
  let w;
  let s;
  let merchant;

  const eventsSeen = async (orderId) => {
    const res = await w.fetch(`/orders/${orderId}`, { headers: merchant });
    assert.equal(res.status, 200);
    return (await res.json()).events;
  };
  const untilDelivery = async (orderId, type, delivery) => {
    for (const started = Date.now(); ; ) {
      const e = (await eventsSeen(orderId)).find((x) => x.type === type);
      if (e?.delivery === delivery) return e;
      if (Date.now() - started > 15_000) throw new Error(`${type} of ${orderId} never ${delivery}: ${JSON.stringify(e)}`);
      await sleep(50);
    }
  };

  before(async () => {
    receiver = await startReceiver();
    w = await startWorker({ vars: webhookVars(receiver), queues: { maxRetries: 3 } });
    s = shop(w);
    merchant = { authorization: `Bearer ${await devToken(w, { sub: 'merchant', scope: 'orders:write' })}` };
    await s.stock('ev-tea', { price: 1250, stock: 1000 });
  });

  after(async () => {
    await w?.stop();
    await receiver?.stop();
  });

  test('a checkout\'s order.confirmed is delivered once, signed as Standard Webhooks', async () => {
    const order = await placeOrder(s, 'alice', 'ev-tea', 2);
    const id = eventId(order.id, 'order.confirmed');
    await receiver.until(() => receiver.of(id).length >= 1, 10_000, 'confirmed delivery');
    const [delivery] = receiver.of(id);
    const body = verified(delivery, id);
    assert.deepEqual(Object.keys(body).sort(), ['data', 'timestamp', 'type']);
    assert.equal(body.type, 'order.confirmed');
    assert.deepEqual(body.data, { id: order.id, status: 'confirmed', total_minor: 2500, currency: 'EUR' });
    assert.equal(body.timestamp, order.created_at);
    // A tampered body or another secret does not verify.
    assert.throws(() => new Webhook(secret).verify(delivery.body.replace('2500', '2501'), delivery.headers));
    assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(delivery.body, delivery.headers));

    const e = await untilDelivery(order.id, 'order.confirmed', 'delivered');
    assert.equal(e.id, id);
    assert.equal(e.attempts, 1);
    assert.equal(e.last_status, 204);
    await sleep(300);
    assert.equal(receiver.of(id).length, 1, 'a 2xx is not sent again');
  });

  test('fails, times out, redirects: retried with the same webhook-id until a 2xx', async () => {
    const cart = await s.add('bob', 'ev-tea', 1);
    // The event id is known before the checkout: plan its answers first.
    const res = await s.checkout('bob', { body: { cart_version: cart.version }, key: 'bob-key-1' });
    const order = await res.json();
    const id = eventId(order.id, 'order.confirmed');
    // (The first attempt may already have happened; plan the cancel's answers instead.)
    const cancelId = eventId(order.id, 'order.cancelled');
    receiver.plan(cancelId, [500, 'hang', 'redirect']);
    const cancel = await w.fetch(`/orders/${order.id}/cancel`, { method: 'POST', headers: await s.auth('bob') });
    assert.equal(cancel.status, 200);
    await receiver.until(() => receiver.of(cancelId).some((q) => q.action === 'ok'), 15_000, 'cancel delivered');
    const tries = receiver.of(cancelId);
    assert.deepEqual(tries.map((q) => q.action), [500, 'hang', 'redirect', 'ok']);
    const bodies = tries.map((q) => verified(q, cancelId));
    for (const b of bodies) assert.deepEqual(b, bodies[0], 'the same body on every attempt');
    assert.equal(bodies[0].type, 'order.cancelled');
    assert.equal(bodies[0].data.status, 'cancelled');
    assert.ok(tries[2].at - tries[1].at >= 900, 'the hung attempt ended by the 1 s timeout');
    assert.equal(receiver.requests.filter((q) => q.path === '/elsewhere').length, 0, 'redirects are not followed');
    const e = await untilDelivery(order.id, 'order.cancelled', 'delivered');
    assert.equal(e.attempts, 4);
    assert.equal((await untilDelivery(order.id, 'order.confirmed', 'delivered')).id, id);
  });

  test('after the last attempt the message goes to the dead-letter queue: undelivered', async () => {
    const order = await placeOrder(s, 'carol', 'ev-tea', 1);
    const fulfilId = eventId(order.id, 'order.fulfilled');
    receiver.plan(fulfilId, [503, 503, 503, 503, 503, 503]);
    const res = await w.fetch(`/orders/${order.id}/fulfilment`, { method: 'POST', headers: merchant });
    assert.equal(res.status, 200);
    const e = await untilDelivery(order.id, 'order.fulfilled', 'undelivered');
    assert.equal(e.attempts, 4, 'maxRetries 3: four attempts');
    assert.equal(e.last_status, 503);
    assert.equal(receiver.of(fulfilId).length, 4);
    await w.logLine((l) => l.includes('order event undelivered') && l.includes(fulfilId));
    // The sweep leaves an undelivered event alone (it is the merchant's to see).
    await w.scheduled();
    await sleep(300);
    assert.equal(receiver.of(fulfilId).length, 4);
    // Failures are logged by event id; never the secret or the signature.
    assert.ok(w.logs.some((l) => l.includes('order event delivery failed') && l.includes(fulfilId)));
    const secretKey = secret.slice('whsec_'.length);
    assert.ok(!w.logs.some((l) => l.includes(secretKey) || l.includes(receiver.of(fulfilId)[0].headers['webhook-signature'])));
  });

  test('two cancels at once: one order.cancelled event, delivered under one id', async () => {
    const order = await placeOrder(s, 'dave', 'ev-tea', 3);
    const auth = await s.auth('dave');
    const all = await Promise.all(Array.from({ length: 5 }, () => w.fetch(`/orders/${order.id}/cancel`, { method: 'POST', headers: auth })));
    assert.deepEqual(all.map((r) => r.status), [200, 200, 200, 200, 200]);
    const cancelId = eventId(order.id, 'order.cancelled');
    await untilDelivery(order.id, 'order.cancelled', 'delivered');
    await sleep(300);
    const cancels = receiver.requests.filter((q) => q.body.includes(order.id) && q.body.includes('order.cancelled'));
    assert.deepEqual([...new Set(cancels.map((q) => q.id))], [cancelId]);
    assert.equal(cancels.length, 1);
    assert.equal((await eventsSeen(order.id)).length, 2);
  });
});

describe('order events across a restart and without a webhook', () => {
  test('a worker restarted before the first good delivery still delivers (the sweep), same id', async () => {
    const receiver = await startReceiver();
    // A long backoff: after the failed first attempt the message waits in the (in-memory)
    // queue, which the restart loses; only the outbox sweep can bring the event back.
    const w = await startWorker({
      vars: webhookVars(receiver, { ORDER_WEBHOOK_RETRY_BASE_SECONDS: '600', ORDER_EVENTS_SWEEP_AFTER_SECONDS: '0' }),
    });
    try {
      const s = shop(w);
      await s.stock('rs-tea', { price: 100, stock: 10 });
      receiver.answer(500);
      const order = await placeOrder(s, 'erin', 'rs-tea', 1);
      const id = eventId(order.id, 'order.confirmed');
      await receiver.until(() => receiver.of(id).length >= 1, 10_000, 'first attempt');
      await w.restart();
      receiver.answer('ok');
      await sleep(500);
      assert.equal(receiver.of(id).length, 1, 'nothing delivered before the sweep');
      await w.scheduled();
      await receiver.until(() => receiver.of(id).some((q) => q.action === 'ok'), 10_000, 'delivery after restart');
      const tries = receiver.of(id);
      for (const q of tries) verified(q, id);
      const merchant = { authorization: `Bearer ${await devToken(w, { sub: 'm', scope: 'orders:write' })}` };
      for (const started = Date.now(); ; await sleep(50)) {
        const [e] = (await (await w.fetch(`/orders/${order.id}`, { headers: merchant })).json()).events;
        if (e.delivery === 'delivered') {
          assert.equal(e.attempts, 2);
          break;
        }
        assert.ok(Date.now() - started < 5000, JSON.stringify(e));
      }
    } finally {
      await w.stop();
      await receiver.stop();
    }
  });

  test('a receiver that is down: the event stays pending and is delivered once it is up', async () => {
    const receiver = await startReceiver();
    const port = receiver.port;
    await receiver.stop();
    const w = await startWorker({
      vars: {
        ORDER_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
        ORDER_WEBHOOK_SECRET: secret,
        ORDER_WEBHOOK_RETRY_BASE_SECONDS: '600',
        ORDER_EVENTS_SWEEP_AFTER_SECONDS: '0',
      },
    });
    try {
      const s = shop(w);
      await s.stock('dn-tea', { price: 100, stock: 10 });
      const order = await placeOrder(s, 'fay', 'dn-tea', 1);
      const merchant = { authorization: `Bearer ${await devToken(w, { sub: 'm', scope: 'orders:write' })}` };
      const state = async () => (await (await w.fetch(`/orders/${order.id}`, { headers: merchant })).json()).events[0];
      for (const started = Date.now(); (await state()).attempts < 1; await sleep(50)) {
        assert.ok(Date.now() - started < 10_000, 'no attempt made');
      }
      const e = await state();
      assert.equal(e.delivery, 'pending');
      assert.equal(e.last_status, undefined, 'no answer from a receiver that is down');
      // Up again on the same port; the sweep re-sends.
      const { createServer } = await import('node:http');
      const got = [];
      const up = createServer((req, res) => {
        let b = '';
        req.on('data', (c) => (b += c));
        req.on('end', () => {
          got.push({ headers: req.headers, body: b });
          res.writeHead(200).end();
        });
      });
      await new Promise((r) => up.listen(port, '127.0.0.1', r));
      try {
        await w.scheduled();
        for (const started = Date.now(); got.length < 1; await sleep(25)) assert.ok(Date.now() - started < 10_000);
        assert.equal(got[0].headers['webhook-id'], eventId(order.id, 'order.confirmed'));
        new Webhook(secret).verify(got[0].body, got[0].headers);
      } finally {
        up.closeAllConnections();
        await new Promise((r) => up.close(r));
      }
    } finally {
      await w.stop();
    }
  });

  test('with ORDER_WEBHOOK_URL unset, events are kept pending, not delivered', async () => {
    const w = await startWorker({ vars: { ORDER_EVENTS_SWEEP_AFTER_SECONDS: '0' } });
    try {
      const s = shop(w);
      await s.stock('nw-tea', { price: 100, stock: 10 });
      const order = await placeOrder(s, 'gus', 'nw-tea', 1);
      await sleep(500);
      await w.scheduled();
      const merchant = { authorization: `Bearer ${await devToken(w, { sub: 'm', scope: 'orders:write' })}` };
      const [e] = (await (await w.fetch(`/orders/${order.id}`, { headers: merchant })).json()).events;
      assert.equal(e.delivery, 'pending');
      assert.equal(e.attempts, 0);
    } finally {
      await w.stop();
    }
  });

  test('a malformed webhook URL or secret, or a URL without a secret, is a misconfiguration naming the variable', async () => {
    for (const [vars, name, value] of [
      [{ ORDER_WEBHOOK_URL: 'http://hooks.example/x', ORDER_WEBHOOK_SECRET: secret }, 'ORDER_WEBHOOK_URL', 'hooks.example'],
      [{ ORDER_WEBHOOK_SECRET: 'not-a-whsec' }, 'ORDER_WEBHOOK_SECRET', 'not-a-whsec'],
      [{ ORDER_WEBHOOK_URL: 'http://127.0.0.1:9/hook' }, 'ORDER_WEBHOOK_SECRET', '127.0.0.1:9'],
    ]) {
      const w = await startWorker({ vars: { ENVIRONMENT: 'development', ...vars } });
      try {
        const res = await w.fetch('/orders', { headers: { authorization: 'Bearer x' } });
        assert.equal(res.status, 500);
        const body = await res.json();
        assert.equal(body.type, '/problems/misconfigured');
        assert.match(body.detail, new RegExp(name));
        assert.ok(!body.detail.includes(value));
      } finally {
        await w.stop();
      }
    }
  });
});
