-- wrk's script for row W of bench/run.py: Hub88 bet callbacks to the gateway's wallet, each
-- with a transaction id never sent before and Hub88's signature, read from a file that
-- bench/hub88_bets.py signed before the run (one `signature<TAB>body` a line).
--
--   wrk -s bench/hub88_bets.lua URL -- FILE
--
-- Each of wrk's threads takes every Nth line (its own Lua state, its own share). An answer
-- other than HTTP 200 with "RS_OK" is counted as unexpected, and so is every request sent
-- after the file ran out (it would be a replay, answered from the ledger). After wrk's
-- summary it prints the line bench/wrk.py reads:
--   bench-script: responses N, unexpected M, non-2xx K, first-unexpected STATUS BODY

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

responses, unexpected, non_2xx, first_status, first_body = 0, 0, 0, 0, ""
local bodies, signatures = {}, {}
local next_line, ran_out = 1, false

local threads = {}
function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
   thread:set("thread_count", 0)
   for _, t in ipairs(threads) do
      t:set("thread_count", #threads)
   end
end

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
   responses = responses + 1
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
   local ok = status == 200 and string.find(answer or "", '"RS_OK"', 1, true) ~= nil
   if not ok or ran_out then
      unexpected = unexpected + 1
      if first_status == 0 then
         first_status = status
         first_body = string.gsub(string.sub(answer or "", 1, 300), "%s+", " ")
         if ran_out then
            first_body = "(the signed bets ran out: replays) " .. first_body
         end
      end
   end
end

function done(summary, latency, requests)
   local total, wrong, errors, status, text = 0, 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      total = total + thread:get("responses")
      wrong = wrong + thread:get("unexpected")
      errors = errors + thread:get("non_2xx")
      if status == 0 and thread:get("first_status") ~= 0 then
         status, text = thread:get("first_status"), thread:get("first_body")
      end
   end
   io.write(string.format(
      "bench-script: responses %d, unexpected %d, non-2xx %d, first-unexpected %d %s\n",
      total, wrong, errors, status, text))
end
