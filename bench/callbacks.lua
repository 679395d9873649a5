-- wrk script: POST a widget callback with a distinct refId per request (<prefix>-<thread>-<n>), so
-- callbacks never coalesce, and print the figures as one JSON line at the end.
-- Usage: wrk -t2 -c8 -d10s -s bench/callbacks.lua http://127.0.0.1:8000/v1/callbacks -- <prefix>

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  prefix = args[1] or "bench"
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format('{"refId":"%s-%d-%d"}', prefix, id, counter))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
