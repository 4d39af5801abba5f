-- wrk script for the write scenario: POSTs the mutation in $QUERY_FILE, with __TASK_ID__
-- replaced by the next id from $TASKS_FILE (one per line). Each thread walks its own stride of
-- the list, so no two requests in flight touch the same task (versioned writes would refuse
-- the second). GraphQL errors are counted, since they come back as HTTP 200.
local function lines(path)
  local found = {}
  for line in io.lines(path) do if line ~= "" then found[#found + 1] = line end end
  return found
end

local threads = {}
local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
  threads[#threads + 1] = thread
end

local template, tasks, cursor
function init(args)
  local f = assert(io.open(os.getenv("QUERY_FILE"), "r")); template = f:read("*a"); f:close()
  tasks = lines(os.getenv("TASKS_FILE"))
  cursor = thread_index
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("AUTH")
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
  errors = 0
end

function request()
  local id = tasks[(cursor % #tasks) + 1]
  cursor = cursor + next_thread_count()
  return wrk.format(nil, nil, nil, (template:gsub("__TASK_ID__", id)))
end

function next_thread_count()
  return tonumber(os.getenv("WRK_THREADS") or "2")
end

function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then errors = errors + 1 end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + (thread:get("errors") or 0) end
  io.write(string.format("graphql: %d requests, p50 %.2f ms, p99 %.2f ms, graphql errors %d\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
