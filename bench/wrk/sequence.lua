-- wrk script for cache-miss runs: every request asks for a path never asked before,
-- `<prefix><n>` with n counting up from the start given by the harness:
--   wrk ... -s bench/wrk/sequence.lua <url> -- /products/miss- 1200
-- (one wrk thread, so one counter; the harness seeds enough rows and advances `start` by
-- the number of requests each run made, so no path is ever asked twice).
local prefix = "/"
local n = 0

function init(args)
  prefix = args[1] or "/"
  n = tonumber(args[2] or "0")
end

function request()
  n = n + 1
  return wrk.format("GET", prefix .. n)
end
