-- wrk script: every request is a DELETE (headers from -H, path from the URL):
--   wrk ... -s bench/wrk/delete.lua <url>
wrk.method = "DELETE"
