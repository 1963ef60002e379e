#!/usr/bin/env bash
# Builds the worker (build/index.js + wasm) with worker-build, using the wasm-bindgen and
# wasm-opt installed by scripts/setup.sh, so no step downloads anything, then puts the entry
# module (src/entry.mjs → build/entry.mjs, wrangler.toml's `main`) beside it. Called by
# `npm run build`, by `wrangler dev` / `wrangler deploy` (the [build] command) and by tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
# Tests and the dev server restart wrangler often; they set this to reuse a fresh build.
if [ -n "${EDGECART_SKIP_BUILD:-}" ] && [ -f build/index.js ]; then
  cp src/entry.mjs build/entry.mjs
  exit 0
fi
worker-build --release
cp src/entry.mjs build/entry.mjs
