-- wrk script: every request is the next pre-built body of a file, so a run sends many patients.
--
-- BENCH_BODIES names a file of one request per line: "<path> <JSON body>" (compact JSON has no
-- newline). Each wrk thread loads the file and starts at its own share of it, offset by BENCH_OFFSET
-- (the requests already sent to this server by earlier runs), so no two runs of a benchmark send the
-- same patient while the pool lasts. Lines stay in file order within a thread: a chart session's five
-- requests (bench/generate.py chart_session) go out one after another on that thread's connections.
-- At the end the thread-summed figures are printed as one line: "BENCH_JSON {...}".

local threads = {}
local paths, bodies = {}, {}
local index = 1
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(os.getenv("BENCH_BODIES")) do
      local space = line:find(" ", 1, true)
      table.insert(paths, line:sub(1, space - 1))
      table.insert(bodies, line:sub(space + 1))
   end
   local group = tonumber(os.getenv("BENCH_GROUP") or "1")  -- keep a session's lines together
   local share = math.floor(#bodies / (tonumber(os.getenv("BENCH_THREADS") or "1") * group)) * group
   index = ((tonumber(os.getenv("BENCH_OFFSET") or "0") + tid * share) % #bodies) + 1
end

function request()
   local i = index
   index = index % #bodies + 1
   return wrk.format("POST", paths[i], headers, bodies[i])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
      '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
      '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
      latency.mean))
end
