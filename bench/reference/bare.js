// The floor of `npm run bench`: the least a JS worker can do per request (no router, no
// JSON, no storage). Any worker's throughput on this machine is bounded by this one's.
export default {
  fetch() {
    return new Response('hello', { headers: { 'content-type': 'text/plain' } });
  },
};
