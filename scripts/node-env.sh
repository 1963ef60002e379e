# Sourced (not run) by the project's scripts, from the repository root: puts a Node.js new
# enough for wrangler first on PATH. A machine whose own `node` is at least EDGECART_NODE_MIN
# keeps it; otherwise the copy scripts/setup.sh installs under .tools/node22/ (the npm
# registry's `node` package, which ships the binary) comes first, so `node`, `npm`, `npx` and
# everything they start (wrangler, Miniflare, workerd's tests) run on it.
EDGECART_NODE_MIN=22.12.0
EDGECART_NODE_PROVIDED=22.23.3
EDGECART_NODE_BIN="$PWD/.tools/node22/node_modules/.bin"

# True when the version given (v22.12.0 or 22.12.0) is at least EDGECART_NODE_MIN.
edgecart_node_new_enough() {
  local v=${1#v} maj min
  IFS=. read -r maj min _ <<<"$v"
  [[ $maj =~ ^[0-9]+$ && $min =~ ^[0-9]+$ ]] || return 1
  local want_maj want_min
  IFS=. read -r want_maj want_min _ <<<"$EDGECART_NODE_MIN"
  ((maj > want_maj || (maj == want_maj && min >= want_min)))
}

if ! edgecart_node_new_enough "$(node --version 2>/dev/null)" && [ -x "$EDGECART_NODE_BIN/node" ]; then
  case ":$PATH:" in
    *":$EDGECART_NODE_BIN:"*) ;;
    *) export PATH="$EDGECART_NODE_BIN:$PATH" ;;
  esac
fi
