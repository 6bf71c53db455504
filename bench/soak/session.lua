-- wrk script for the soak: a proxied page with a session's cookies ($SOAK_COOKIE), kept valid
-- the way a browser keeps it: when an answer re-issues the session cookie (the JWT is past
-- half its TTL), the following requests send the new one. Every answer must be a 200 (wrk
-- does not count 3xx as errors): `done` prints "not-200: N", the first bad statuses and
-- "refreshes: N" for bench/soak.sh.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  cookie = os.getenv("SOAK_COOKIE")
  not_ok = 0
  refreshes = 0
  bad = ""
end

function request()
  return wrk.format("GET", nil, { ["Cookie"] = cookie })
end

local names = { "__Host%-session", "portcullis_session" }

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
    if #bad < 60 then bad = bad .. status .. " " end
  end
  local sc = headers["set-cookie"] or headers["Set-Cookie"]
  if sc then
    for _, name in ipairs(names) do
      local v = sc:match(name .. "=([^;]+)")
      if v then
        cookie = cookie:gsub("(" .. name .. "=)[^;]*", "%1" .. v)
        refreshes = refreshes + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local total, refreshed, statuses = 0, 0, ""
  for _, thread in ipairs(threads) do
    total = total + thread:get("not_ok")
    refreshed = refreshed + thread:get("refreshes")
    statuses = statuses .. thread:get("bad")
  end
  io.write(string.format("not-200: %d\nrefreshes: %d\nbad-statuses: %s\n", total, refreshed, statuses))
end
