-- wrk script for the write scenario. $TASKS_FILE holds one task per line: its id, then
-- (after a tab) the Authorization value of one of its executors. Each request posts the
-- mutation in $QUERY_FILE with __TASK_ID__ replaced, and the line's credential when
-- $PER_TASK_AUTH=1. Each thread walks its own stride of the lines, so requests in flight
-- touch distinct tasks (a versioned write would refuse the second). GraphQL errors come back
-- as HTTP 200, so they are counted here, by their extensions.code.
local threads = {}
local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

local template, tasks, cursor, stride, per_task_auth
function init(args)
  local f = assert(io.open(os.getenv("QUERY_FILE"), "r")); template = f:read("*a"); f:close()
  tasks = {}
  for line in io.lines(os.getenv("TASKS_FILE")) do
    local id, auth = line:match("^([^\t]+)\t?(.*)$")
    if id then tasks[#tasks + 1] = { id = id, auth = auth } end
  end
  cursor = thread_index
  stride = tonumber(os.getenv("WRK_THREADS") or "2")
  per_task_auth = os.getenv("PER_TASK_AUTH") == "1"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  errors = 0
  codes = {}
end

function request()
  local task = tasks[(cursor % #tasks) + 1]
  cursor = cursor + stride
  -- Headers given to wrk.format replace wrk.headers, so the defaults are copied in.
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  if per_task_auth then headers["Authorization"] = task.auth end
  return wrk.format(nil, nil, headers, (template:gsub("__TASK_ID__", task.id)))
end

function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    errors = errors + 1
    local code = body:match('"code":"([A-Z_]+)"') or ("HTTP " .. status)
    codes[code] = (codes[code] or 0) + 1
  end
end

function done(summary, latency, requests)
  local failed, by_code = 0, {}
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("errors") or 0)
    for code, n in pairs(thread:get("codes") or {}) do by_code[code] = (by_code[code] or 0) + n end
  end
  local listed = {}
  for code, n in pairs(by_code) do listed[#listed + 1] = code .. "=" .. n end
  table.sort(listed)
  io.write(string.format("graphql: %d requests, p50 %.2f ms, p99 %.2f ms, graphql errors %d %s\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed,
    table.concat(listed, ",")))
end
