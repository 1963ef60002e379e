// The client side of bench/edge/wrap.mjs, shared by `npm run bench:edge` and
// tests/worker/trips.test.mjs: one request under a profile, then its call report.
import { randomUUID } from 'node:crypto';

let seq = 0;

/**
 * Sends one request to a wrapped worker at `base` and reads the wrapper's report of its
 * binding calls once its waitUntil work has settled (so the next request starts clean).
 * Returns { status, headers, text, ms, trips, calls, primaryTrips }: `ms` is the wall-clock
 * time until the whole body arrived.
 */
export async function traced(base, method, path, { headers = {}, body, profile = 'zero' } = {}) {
  const id = `${process.pid}-${++seq}-${randomUUID().slice(0, 8)}`;
  const started = performance.now();
  const res = await fetch(base + path, {
    method,
    body,
    redirect: 'manual',
    headers: { ...headers, 'x-edge-profile': profile, 'x-edge-trace': id },
  });
  const text = await res.text();
  const ms = performance.now() - started;
  const rep = await fetch(`${base}/__edge/trips/${encodeURIComponent(id)}`);
  if (rep.status !== 200) throw new Error(`no trip report for ${method} ${path}: ${rep.status} ${await rep.text()}`);
  const report = await rep.json();
  if (!report.settled) throw new Error(`${method} ${path}: its waitUntil work did not settle in 15 s`);
  return {
    status: res.status,
    headers: res.headers,
    text,
    ms,
    trips: report.trips,
    calls: report.calls,
    primaryTrips: report.trips.d1_primary ?? 0,
  };
}
