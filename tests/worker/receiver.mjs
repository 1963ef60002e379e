// A loopback webhook receiver for the order-event tests and the load bench: a node http server
// on 127.0.0.1 that records every request and answers as planned per event id (`webhook-id`):
// 'ok' (204), a status number (e.g. 500), 'redirect' (302 to /elsewhere, which must never be
// followed), or 'hang' (never answers: the worker's timeout must end the attempt). Not a test
// file itself.
import { createServer } from 'node:http';

export async function startReceiver() {
  const requests = [];
  const plans = new Map();
  let fallback = 'ok';
  const hanging = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      const entry = { at: Date.now(), method: req.method, path: req.url, headers: { ...req.headers }, body, id };
      requests.push(entry);
      const plan = plans.get(id);
      const action = plan && plan.length ? plan.shift() : typeof fallback === 'function' ? fallback(entry) : fallback;
      entry.action = action;
      if (action === 'hang') {
        hanging.add(res);
        return;
      }
      if (action === 'redirect') {
        res.writeHead(302, { location: '/elsewhere' });
        res.end();
        return;
      }
      res.writeHead(action === 'ok' ? 204 : action);
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const r = {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    /** The answers to the next deliveries of event `id`, in order; then the fallback. */
    plan(id, actions) {
      plans.set(id, [...actions]);
    },
    /** The answer to any event without a plan (or a function of the request giving it). */
    answer(action) {
      fallback = action;
    },
    /** Requests of event `id`. */
    of(id) {
      return requests.filter((q) => q.id === id);
    },
    /** Waits until `pred(requests)` holds (polling), up to `ms`. */
    async until(pred, ms = 15_000, what = 'receiver condition') {
      for (const started = Date.now(); ; ) {
        if (pred(requests)) return;
        if (Date.now() - started > ms) throw new Error(`${what} not met in ${ms} ms; ${requests.length} requests`);
        await new Promise((res) => setTimeout(res, 25));
      }
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return r;
}
