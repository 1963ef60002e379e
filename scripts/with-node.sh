#!/usr/bin/env bash
# Runs a command with the project's Node.js first on PATH (see scripts/node-env.sh), from the
# repository root. npm scripts go through it because npm itself may run on an older system
# Node: `npm run wrangler -- deploy`, `npm run test:worker`, `npm run bench:load`, …
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh
exec "$@"
