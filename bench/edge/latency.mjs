// The one table of modelled latencies for `npm run bench:edge`: milliseconds per binding call,
// per location profile. The wrapper (bench/edge/wrap.mjs) sleeps this long before it forwards
// each call to Miniflare's simulator, so a route's modelled latency is its local time plus the
// delays of the calls on its critical path (calls made concurrently overlap, as they would).
//
// Every number says where it comes from. Where nothing is published, the entry says it is a
// modelling assumption and what it is derived from. The figures are quoted from
// /work/shared/docs/platform.md ("Figures to model latency with", checked 2026-12-07) and
// /work/shared/docs/semantics.md §5; the original sources are named there.
//
// The two profiles:
// - near: a Cloudflare location next to the D1 primary (say the primary is in WEUR and the
//   user in London).
// - far: a location on another continent with a D1 read replica in its region (say Sydney:
//   D1 has replicas in OC), the user's Durable Object created near the user.
// A third profile, `zero`, injects nothing: tests/worker/trips.test.mjs counts calls with it.

/** Binding kinds the wrapper counts, in the order trip strings list them. */
export const KINDS = [
  'kv_read',
  'kv_write',
  'cache_match',
  'cache_put',
  'cache_delete',
  'do_call',
  'd1_primary',
  'd1_replica',
  'queue_send',
  'ratelimit',
];

// Sydney ↔ Western Europe: "light in fibre needs about 170 ms for a Sydney ↔ Western Europe
// round trip (17,000 km each way at about 200,000 km/s)" (semantics.md §5; platform.md:
// "cross-continent round trips are bounded below by light in fibre (Sydney ↔ London ≈ 170 ms)").
// A lower bound: real paths are longer.
const CROSS_CONTINENT_RTT = 170;

export const SOURCES = {
  kv_read:
    'KV hot read: "KV hot reads under 1 ms, about half of all reads" (Cloudflare, platform.md). ' +
    'Modelled as 1 ms in both profiles: a cart is read by its own user, at the location that user ' +
    'is served from, so it is assumed hot there (modelling assumption; a cold read goes to the ' +
    'central stores and is not modelled).',
  kv_write:
    'KV write: no latency is published. "When you write to KV, your data is written to central ' +
    'data stores" (developers.cloudflare.com/kv/concepts/how-kv-works). Modelling assumption: ' +
    'a write is one round trip to a central store on the primary\'s continent: near 25 ms ' +
    '("20-30 ms from elsewhere in the region", Smart Placement docs via platform.md), far 170 ms ' +
    '(the cross-continent round trip).',
  cache_match:
    'Cache API lookup: "Cache API ~5-15 ms" (community figure, platform.md); semantics.md §5 "a ' +
    'Cache API lookup a few ms". Modelled as 5 ms (the low end: a lookup in the location\'s own ' +
    'cache), the same in both profiles: the cache is per location.',
  cache_put:
    'Cache API store: not published separately. Modelling assumption: as a lookup, 5 ms, both ' +
    'profiles (the same per-location cache).',
  cache_delete:
    'Cache API delete: not published separately. Modelling assumption: as a lookup, 5 ms, both ' +
    'profiles.',
  do_call:
    'Durable Object call: no figure published. The user\'s object is created near the user ' +
    '(the location of its first request). Modelling assumption: a call to a nearby location is ' +
    'like "a database next to the worker 1-3 ms per query" (Smart Placement docs, platform.md): ' +
    '3 ms (the high end), both profiles.',
  d1_primary:
    'D1 query at the primary: near "a database next to the worker 1-3 ms per query" (Smart ' +
    'Placement docs, platform.md), modelled as 2 ms; far: one cross-continent round trip, ' +
    '170 ms ("Sydney <-> London ~ 170 ms", platform.md / semantics.md §5; a lower bound).',
  d1_replica:
    'D1 query at a regional read replica: D1 has replicas in ENAM, WNAM, WEUR, EEUR, APAC and OC ' +
    '(platform.md). far: the replica is in the user\'s region but not necessarily in the same ' +
    'location: "20-30 ms from elsewhere in the region" (Smart Placement docs, platform.md), ' +
    'modelled as 25 ms. near: the primary or a replica in the same region is next to the worker, ' +
    '2 ms as the primary (modelling assumption).',
  queue_send:
    'Queue send: no figure published. Modelling assumption: a send is acknowledged by the ' +
    'queue\'s storage, placed near where the queue was created (the primary\'s region): near ' +
    '3 ms (as a nearby Durable Object), far 170 ms (the cross-continent round trip).',
  ratelimit:
    'Rate Limiting binding: "Counters are per Cloudflare location, kept on the machine (no ' +
    'network wait)" (semantics.md §7). Modelled as 0 ms; counted all the same.',
};

/** Milliseconds per call, per profile. */
export const PROFILES = {
  zero: Object.fromEntries(KINDS.map((k) => [k, 0])),
  near: {
    kv_read: 1,
    kv_write: 25,
    cache_match: 5,
    cache_put: 5,
    cache_delete: 5,
    do_call: 3,
    d1_primary: 2,
    d1_replica: 2,
    queue_send: 3,
    ratelimit: 0,
  },
  far: {
    kv_read: 1,
    kv_write: CROSS_CONTINENT_RTT,
    cache_match: 5,
    cache_put: 5,
    cache_delete: 5,
    do_call: 3,
    d1_primary: CROSS_CONTINENT_RTT,
    d1_replica: 25,
    queue_send: CROSS_CONTINENT_RTT,
    ratelimit: 0,
  },
};

/** The profiles the bench reports (zero is for counting only). */
export const BENCH_PROFILES = ['near', 'far'];
