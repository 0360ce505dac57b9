-- wrk's script for row W of bench/run.py: Hub88 bet callbacks to the gateway's wallet, each
-- with a transaction id never sent before and Hub88's signature, read from a file that
-- bench/hub88_bets.py signed before the run (one `signature<TAB>body` a line).
--
--   wrk -s bench/hub88_bets.lua URL -- FILE
--
-- Each of wrk's threads takes every Nth line (its own Lua state, its own share). An answer
-- other than HTTP 200 with "RS_OK" is counted as unexpected, and so is every request sent
-- after the file ran out (it would be a replay, answered from the ledger).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- The counts and the summary line (bench/wrk_counts.lua, beside this file).
dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "") .. "wrk_counts.lua")
local bodies, signatures = {}, {}
local next_line, ran_out = 1, false

function init(args)
   assert(args[1], "usage: -- FILE")
   local n, i = thread_count, 0
   for line in io.lines(args[1]) do
      if i % n == thread_number - 1 then
         local tab = string.find(line, "\t", 1, true)
         table.insert(signatures, string.sub(line, 1, tab - 1))
         table.insert(bodies, string.sub(line, tab + 1))
      end
      i = i + 1
   end
end

function request()
   if next_line > #bodies then
      next_line, ran_out = 1, true
   end
   local i = next_line
   next_line = next_line + 1
   wrk.headers["X-Hub88-Signature"] = signatures[i]
   return wrk.format(nil, nil, nil, bodies[i])
end

function response(status, headers, answer)
   local ok = status == 200 and string.find(answer or "", '"RS_OK"', 1, true) ~= nil
   count(status, answer, ok and not ran_out, ran_out and "(the signed bets ran out: replays)" or nil)
end
