-- wrk script: every answer must be a 200. wrk itself does not count 3xx as errors (a sign-in
-- redirect would look fast), so this counts every other status; `done` prints
-- "not-200: N" for the calling script to check.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("not_ok")
  end
  io.write(string.format("not-200: %d\n", total))
end
