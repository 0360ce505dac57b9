-- wrk's script for the rows of bench/run.py that POST JSON: G (a launch, expecting 200) and
-- P and Q (POST /v1/payments, expecting 201, every request a deposit under an
-- Idempotency-Key never sent before, so each one creates a payment: a key sent again would
-- be a replay from the ledger, a different and cheaper path).
--
--   wrk -s bench/post_json.lua -H 'X-API-Key: KEY' URL -- EXPECTED BODY [PREFIX]
--
-- With PREFIX, keys are PREFIX-THREAD-COUNTER. PREFIX must be new for every wrk run: the
-- ledger keeps the keys of the warm-up and of earlier attempts. THREAD tells wrk's threads
-- apart, as each has its own copy of this file (its own Lua state) and so its own COUNTER.
--
-- wrk itself counts only statuses above 399 as errors; this script counts every answer that
-- is not a fresh EXPECTED (for payments a 202 is an outcome the gateway could not learn, a
-- replayed 201 one it did not have to: neither is the path measured) and prints, after
-- wrk's summary, the one line bench/wrk.py reads:
--   bench-script: responses N, unexpected M, non-2xx K, first-unexpected STATUS BODY

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local EXPECTED = 0

-- Per thread (globals, so that done() can read them with thread:get).
responses, unexpected, non_2xx, first_status, first_body = 0, 0, 0, 0, ""
local counter = 0
local key_prefix, body

-- Runs in the main Lua state, once per thread, before that thread's init().
local threads = {}
function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

function init(args)
   assert(args[1] and args[2], "usage: -- EXPECTED BODY [PREFIX]")
   EXPECTED = tonumber(args[1])
   body = args[2]
   if args[3] then
      key_prefix = args[3] .. "-" .. thread_number .. "-"
   end
end

function request()
   if key_prefix then
      counter = counter + 1
      wrk.headers["Idempotency-Key"] = key_prefix .. counter
   end
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, answer)
   responses = responses + 1
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
   -- A replay is a 201 too, from the ledger alone: it would mean the keys repeat.
   local replayed = headers["Idempotent-Replayed"] ~= nil
   if status ~= EXPECTED or replayed then
      unexpected = unexpected + 1
      if first_status == 0 then
         first_status = status
         first_body = string.gsub(string.sub(answer or "", 1, 300), "%s+", " ")
         if replayed then
            first_body = "(Idempotent-Replayed) " .. first_body
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
