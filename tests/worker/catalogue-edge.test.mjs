// The catalogue's reads at the edge, at the runtime tier: the built worker in workerd with
// Miniflare's real D1 and Cache API, wrapped by tests/worker/stand-in-edge.mjs (test
// infrastructure: a replica that refuses one kind of bookmark, and a stand-in Workers Cache
// `ctx.cache` that records purges).
//
// A miss reads D1 through a session: from the bookmark of the write that set the mirrored
// revision (never older than that write), else "first-unconstrained"; an answer older than the
// key it would be stored under, or a session that fails, is read again at the primary. A
// malformed mirror is ignored, never a 5xx. Miniflare's D1 is one database: it returns a
// bookmark after every query and ignores the one it is given, so "older than the key" is
// staged here with a mirror that names a revision D1 does not have yet.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Response as MiniflareResponse } from 'miniflare';
import { ROOT, devToken, startWorker } from './harness.mjs';

const STORED = 'edgecart; fwd=uri-miss; stored';
const BOOKMARK = /^[0-9a-f][0-9a-f-]{7,127}$/;

describe('catalogue reads through D1 sessions', () => {
  let w;
  let merchant;
  let caches;

  before(async () => {
    w = await startWorker({ scriptPath: join(ROOT, 'tests', 'worker', 'stand-in-edge.mjs'), modulesRoot: ROOT });
    merchant = await devToken(w, { sub: 'edge-merchant', scope: 'catalog:write' });
    caches = (await w.mf.getCaches()).default;
  });

  after(async () => {
    await w?.stop();
  });

  const standIn = async () => (await w.fetch('/__stand-in/log')).json();
  const mirrorKey = (sku) => `${w.url}/.edgecart-cache/revision/products/${sku}`;
  const mirrorText = async (key) => (await caches.match(key))?.text();
  async function plantMirror(sku, text) {
    await caches.put(mirrorKey(sku), new MiniflareResponse(text, { headers: { 'cache-control': 'public, max-age=30, s-maxage=30' } }));
  }
  async function revisionInD1(sku) {
    const db = await w.mf.getD1Database('DB');
    return (await db.prepare('SELECT revision FROM products WHERE sku = ?1').bind(sku).first())?.revision;
  }
  async function put(sku, fields = {}) {
    const res = await w.fetch(`/products/${sku}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${merchant}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Name of ${sku}`, price_minor: 500, currency: 'EUR', stock: 40, ...fields }),
    });
    assert.ok(res.status === 200 || res.status === 201, `${res.status} ${await res.clone().text()}`);
    return res.json();
  }
  async function get(sku) {
    const res = await w.fetch(`/products/${sku}`);
    return { res, status: res.status, cacheStatus: res.headers.get('cache-status'), body: await res.json() };
  }

  test('a write publishes its bookmark with the revision, and the next miss reads from it', async () => {
    await put('edge-bm', { price_minor: 510 });
    await standIn();
    const mirrored = await mirrorText(mirrorKey('edge-bm'));
    const [value, bookmark] = (mirrored ?? '').split(' ');
    assert.equal(Number(value), await revisionInD1('edge-bm'), mirrored);
    assert.match(bookmark ?? '', BOOKMARK, 'Miniflare returns a bookmark after the write');
    const generation = await mirrorText(`${w.url}/.edgecart-cache/generation`);
    assert.equal(generation?.split(' ')[1], bookmark, 'the listing generation carries the same write');

    const read = await get('edge-bm');
    assert.equal(read.status, 200);
    assert.equal(read.cacheStatus, STORED);
    assert.equal(read.body.price_minor, 510);
    assert.deepEqual((await standIn()).sessions, [bookmark], 'one session, from the write\'s bookmark');
  });

  test('without a mirror a miss reads "first-unconstrained" and mirrors the bookmark it saw', async () => {
    await put('edge-cold');
    await caches.delete(mirrorKey('edge-cold'));
    await standIn();
    const read = await get('edge-cold');
    assert.equal(read.status, 200);
    assert.deepEqual((await standIn()).sessions, ['first-unconstrained']);
    // The mirror is stored after the response (waitUntil): wait for it, bounded.
    let mirrored;
    for (let i = 0; i < 100 && !mirrored; i++) {
      mirrored = await mirrorText(mirrorKey('edge-cold'));
      if (!mirrored) await new Promise((r) => setTimeout(r, 20));
    }
    const [value, bookmark] = (mirrored ?? '').split(' ');
    assert.equal(Number(value), await revisionInD1('edge-cold'));
    assert.match(bookmark ?? '', BOOKMARK);
  });

  test('a malformed mirror is ignored, never a 5xx, and never reaches D1 as a bookmark', async () => {
    await put('edge-bad', { price_minor: 530 });
    const revision = await revisionInD1('edge-bad');
    for (const text of [`${revision} first-primary`, `${revision} <script>`, `${revision} ${'0'.repeat(500)}`, 'garbage', '']) {
      await plantMirror('edge-bad', text);
      await standIn();
      const read = await get('edge-bad');
      assert.equal(read.status, 200, `${JSON.stringify(text)}: ${JSON.stringify(read.body)}`);
      assert.equal(read.body.price_minor, 530);
      // A hit (an earlier iteration stored the entry) starts no session; a miss starts one
      // with no bookmark: the malformed text never reaches D1.
      const { sessions } = await standIn();
      assert.ok(sessions.length <= 1 && sessions.every((c) => c === 'first-unconstrained'), `${JSON.stringify(text)}: ${sessions}`);
    }
  });

  test('a bookmark the replica cannot serve is read again at the primary', async () => {
    await put('edge-foreign', { price_minor: 540 });
    const revision = await revisionInD1('edge-foreign');
    const foreign = 'ffffffff-00000000-00000000-00000000000000000000000000000000';
    await plantMirror('edge-foreign', `${revision + 1000} ${foreign}`);
    await standIn();
    const read = await get('edge-foreign');
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.price_minor, 540);
    assert.deepEqual((await standIn()).sessions, [foreign, 'first-primary']);
  });

  test('an answer older than the revision its key names is read again at the primary', async () => {
    await put('edge-behind', { price_minor: 550 });
    const revision = await revisionInD1('edge-behind');
    // The mirror names a revision D1 has not reached, as a replica behind the write would be.
    await plantMirror('edge-behind', String(revision + 1));
    await standIn();
    const read = await get('edge-behind');
    assert.equal(read.status, 200);
    assert.deepEqual((await standIn()).sessions, ['first-unconstrained', 'first-primary']);
  });
});
