-- What bench/post_json.lua and bench/hub88_bets.lua share: per-thread counts of the answers
-- and, after wrk's summary, the one line bench/wrk.py reads:
--   bench-script: responses N, unexpected M, non-2xx K, first-unexpected STATUS BODY
-- Each script loads it with dofile (every wrk thread has its own Lua state and so its own
-- counts, kept in globals for done() to read with thread:get).

responses, unexpected, non_2xx, first_status, first_body = 0, 0, 0, 0, ""

-- Runs in the main Lua state, once per thread, before that thread's init().
threads = {}
function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
   for _, t in ipairs(threads) do
      t:set("thread_count", #threads)
   end
end

-- Count one answer; `ok` says whether it is the one measured, `note` (or nil) why it is not.
function count(status, answer, ok, note)
   responses = responses + 1
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
   if not ok then
      unexpected = unexpected + 1
      if first_status == 0 then
         first_status = status
         first_body = string.gsub(string.sub(answer or "", 1, 300), "%s+", " ")
         if note then
            first_body = note .. " " .. first_body
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
