-- wrk script: GET a path with a random customer id from IDS (one per line, the first 100 000
-- read), with the bearer TOKEN. bench/run.sh runs it beside its own load tool, so that the
-- read's ratio to `pgbench -S` is also measured with a C client as light as pgbench's.
--   IDS=bench/data/customer_ids.txt TOKEN=… wrk -t2 -c16 -d15s --latency -s bench/wrk_ids.lua URL
local ids = {}
for line in io.lines(os.getenv("IDS")) do
    ids[#ids + 1] = line
    if #ids >= 100000 then break end
end
local headers = { ["Authorization"] = "Bearer " .. os.getenv("TOKEN") }

function init(args)
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
    return wrk.format("GET", "/v1/customers/" .. ids[math.random(#ids)], headers)
end
