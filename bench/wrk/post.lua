-- wrk script for POST runs with an Idempotency-Key:
--   wrk ... -s bench/wrk/post.lua <url> -- <path> <body> <authorization> <key-prefix> [start]
-- Without `start` every request sends the same key `<key-prefix>` (replays); with it, each
-- request sends a fresh key `<key-prefix><n>`, n counting up from `start`.
local path, body, auth, prefix = "/", "", "", "k"
local n = nil

function init(args)
  path = args[1] or "/"
  body = args[2] or ""
  auth = args[3] or ""
  prefix = args[4] or "k"
  if args[5] then n = tonumber(args[5]) end
end

function request()
  local key = prefix
  if n then
    n = n + 1
    key = prefix .. n
  end
  return wrk.format("POST", path, {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = '"' .. key .. '"',
  }, body)
end
