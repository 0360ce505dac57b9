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
-- replayed 201 one it did not have to: neither is the path measured).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local EXPECTED = 0

-- The counts and the summary line (bench/wrk_counts.lua, beside this file).
dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "") .. "wrk_counts.lua")
local counter = 0
local key_prefix, body

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
   -- A replay is a 201 too, from the ledger alone: it would mean the keys repeat.
   local replayed = headers["Idempotent-Replayed"] ~= nil
   count(status, answer, status == EXPECTED and not replayed, replayed and "(Idempotent-Replayed)" or nil)
end
