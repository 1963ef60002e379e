#!/usr/bin/env bash
# `npm run bench`: edgecart's built worker against the JS reference worker, on workerd through
# Miniflare, loaded by wrk on 127.0.0.1. Prints a markdown table and writes it, with the raw
# figures as JSON, to bench/results/<date>.md / .json (git-ignored).
#
#   npm run bench                         # about 8 minutes: 3 s per run, 5 alternating rounds
#   BENCH_QUICK=1 npm run bench           # smoke run: 1 s per run, 1 round (under a minute)
#   BENCH_SECONDS=6 BENCH_ROUNDS=7 npm run bench
#   BENCH_ONLY=me,cart npm run bench      # scenarios whose name starts with these
#   BENCH_AA=1 npm run bench              # A/A: the reference against itself (noise floor)
#   BENCH_NO_BUILD=1 npm run bench        # use build/ as it is, even if src/ is newer
set -euo pipefail
cd "$(dirname "$0")/.."
# Miniflare needs the Node scripts/setup.sh checked or provided (scripts/node-env.sh).
source scripts/node-env.sh

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bench] installing wrk (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }
  else
    echo "[bench] wrk is missing: install it (e.g. sudo apt-get install -y wrk)" >&2
    exit 1
  fi
fi

# Measure what the sources say: rebuild when build/ is missing or older than the sources.
if [ "${BENCH_AA:-}" != 1 ] && [ "${BENCH_NO_BUILD:-}" != 1 ]; then
  if [ ! -f build/entry.mjs ] \
    || [ -n "$(find src Cargo.toml Cargo.lock -newer build/entry.mjs -print -quit 2>/dev/null)" ]; then
    echo "[bench] build/ is missing or older than src/: npm run build" >&2
    npm run build >&2
  fi
fi

# The stateless proofs (issue 8): resident memory over 20,000 users and a 60 s mixed load.
if [ "${BENCH_STATELESS:-}" = 1 ]; then
  node bench/memory.mjs
  node bench/load.mjs
fi

exec node bench/bench.mjs "$@"
