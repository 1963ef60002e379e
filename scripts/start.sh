#!/usr/bin/env bash
# `npm start`: set up what is missing, apply D1 migrations to local state, and serve on
# http://127.0.0.1:8787 (or EDGECART_PORT) with `wrangler dev` (which builds through the
# [build] command). Local state persists under .wrangler/.
set -euo pipefail
export WRANGLER_SEND_METRICS=false
# wrangler dev's Miniflare otherwise fetches the real `Request.cf` object from
# workers.cloudflare.com (cached 30 days under node_modules/.mf/); offline that only waits and
# warns. edgecart never reads request.cf, so the placeholder does. Set it to true to fetch.
export CLOUDFLARE_CF_FETCH_ENABLED="${CLOUDFLARE_CF_FETCH_ENABLED:-false}"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# wrangler on the Node setup.sh checked or provided (node-env.sh).
source scripts/node-env.sh
echo "[start] applying D1 migrations to local state (.wrangler/)"
CI=1 npx wrangler d1 migrations apply DB --local
port="${EDGECART_PORT:-8787}"
echo "[start] building and serving on http://127.0.0.1:$port"
exec npx wrangler dev --ip 127.0.0.1 --port "$port" "$@"
