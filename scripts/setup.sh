#!/usr/bin/env bash
# One idempotent set-up for a fresh machine, run by `npm start` and `npm test`. It checks each
# requirement and provides only what is missing:
#   - the pinned Rust toolchain's wasm32 target and rustfmt/clippy components;
#   - worker-build and wasm-bindgen-cli at pinned versions (compiled from crates.io: on a
#     2-core machine the first run takes about 15 minutes);
#   - Node.js >= 22.12 (what wrangler needs): the system's when new enough, else Node 22 from
#     the npm registry's `node` package into .tools/node22/ (git-ignored; see node-env.sh);
#   - npm packages (`npm ci` on that Node, skipped while package-lock.json is unchanged since
#     the last one);
#   - the local .dev.vars (development mode with a fresh dev key pair) when none exists;
#   - with --browser: Debian's chromium for the browser tests;
#   - with --fuzz: schemathesis and its dependencies at the versions pinned in
#     tests/api-fuzz/requirements.txt, in a virtual environment .venv-fuzz/ (pip from PyPI;
#     skipped while the requirements are unchanged since the last install).
# Nothing here downloads a prebuilt binary from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
say() { printf '[setup] %s\n' "$*"; }

want_browser=0
want_fuzz=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --fuzz) want_fuzz=1 ;;
  esac
done

command -v cargo >/dev/null || { say "cargo not found: install Rust with rustup first"; exit 1; }
command -v node >/dev/null || { say "node not found: install Node.js (20 or later) first"; exit 1; }

# 1. Rust target and components for the toolchain pinned in rust-toolchain.toml.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain"; then
  say "installing Rust toolchain $toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
installed_targets=$(rustup target list --installed --toolchain "$toolchain")
if ! grep -q wasm32-unknown-unknown <<<"$installed_targets"; then
  say "adding the wasm32-unknown-unknown target to $toolchain"
  rustup target add wasm32-unknown-unknown --toolchain "$toolchain"
fi
installed_components=$(rustup component list --installed --toolchain "$toolchain")
for c in rustfmt clippy; do
  if ! grep -q "^$c" <<<"$installed_components"; then
    say "adding the $c component to $toolchain"
    rustup component add "$c" --toolchain "$toolchain"
  fi
done

# 2. worker-build and wasm-bindgen-cli, pinned. `--locked` first; if the registry no longer
#    serves a locked dependency version, resolve afresh.
cargo_install() {
  local crate=$1 version=$2
  say "compiling $crate $version from crates.io (several minutes on 2 cores; once per machine)"
  cargo +stable install --locked "$crate" --version "$version" ||
    cargo +stable install "$crate" --version "$version"
}
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  cargo_install worker-build "$WORKER_BUILD_VERSION"
fi
# The CLI must be exactly the wasm-bindgen version in Cargo.lock (pinned with `=` in Cargo.toml).
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $NF}')" != "$bindgen_version" ]; then
  cargo_install wasm-bindgen-cli "$bindgen_version"
fi

# 3. Node.js for wrangler. An older system Node (20 on these machines) only runs npm once, to
#    fetch Node 22 from the registry into .tools/node22/; from then on it comes first on PATH
#    here and in every script that sources node-env.sh. The `node` package is not a project
#    dependency: machines with a new enough Node download nothing, and the lockfile stays the
#    same for everyone.
# shellcheck source=scripts/node-env.sh
source scripts/node-env.sh
if ! edgecart_node_new_enough "$(node --version)"; then
  say "node $(node --version) is older than wrangler needs ($EDGECART_NODE_MIN): installing Node $EDGECART_NODE_PROVIDED into .tools/node22/"
  rm -rf .tools/node22
  mkdir -p .tools/node22
  npm install --prefix .tools/node22 --no-save --no-package-lock --no-audit --no-fund \
    "node@$EDGECART_NODE_PROVIDED" >/dev/null
  source scripts/node-env.sh
  edgecart_node_new_enough "$(node --version 2>/dev/null)" ||
    { say "the node package did not give a working Node $EDGECART_NODE_PROVIDED in $EDGECART_NODE_BIN"; exit 1; }
fi

# 4. npm packages, only when the lockfile changed since the last install (or the Node that
#    installed them did).
mkdir -p .setup-stamps
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
if [ ! -d node_modules ] || [ "$(cat .setup-stamps/npm 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
  echo "$lock_hash" >.setup-stamps/npm
fi

# 5. Local development variables (development mode, a fresh dev key pair). Never committed.
if [ ! -f .dev.vars ]; then
  say "writing .dev.vars (development mode with a new dev signing key)"
  node scripts/dev-keys.mjs --write .dev.vars
elif ! grep -q '^GUEST_TOKEN_KEY=' .dev.vars; then
  say "adding a GUEST_TOKEN_KEY (guest sessions) to .dev.vars"
  node -e "import('./scripts/dev-keys.mjs').then((m) => console.log('GUEST_TOKEN_KEY=' + m.newGuestTokenKey()))" >>.dev.vars
fi

# 6. A browser for the end-to-end tests.
if [ "$want_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi
# 7. schemathesis for the API-against-its-document tier of `npm test` (tests/api-fuzz), pinned.
if [ "$want_fuzz" = 1 ]; then
  req_hash=$(sha256sum tests/api-fuzz/requirements.txt | cut -d' ' -f1)
  if [ ! -x .venv-fuzz/bin/schemathesis ] || [ "$(cat .setup-stamps/fuzz 2>/dev/null)" != "$req_hash" ]; then
    command -v python3 >/dev/null || { say "python3 not found: install Python 3.10 or later first"; exit 1; }
    say "installing schemathesis into .venv-fuzz/ (pip, versions pinned in tests/api-fuzz/requirements.txt)"
    if [ ! -x .venv-fuzz/bin/pip ]; then
      rm -rf .venv-fuzz
      if ! python3 -m venv .venv-fuzz; then
        # Debian and Ubuntu ship venv's pip bootstrap separately.
        rm -rf .venv-fuzz
        say "python3 -m venv failed: installing Debian's python3-venv"
        if [ "$(id -u)" = 0 ]; then
          apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        else
          sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv >/dev/null
        fi
        python3 -m venv .venv-fuzz
      fi
    fi
    .venv-fuzz/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
      -r tests/api-fuzz/requirements.txt
    echo "$req_hash" >.setup-stamps/fuzz
  fi
fi
say "ready (node $(node --version))"
