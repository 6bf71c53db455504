-- wrk script for bench/compare.sh: every answer is checked. A response that is not a 200, or
-- whose body lacks $BENCH_MARKER (the static upstream's page), is counted; so a sign-in
-- redirect (302), a sign-in page (200 without the marker) or a refusal can never pass for a
-- fast answer. With $PROOFS set, each request also carries the next pre-generated DPoP proof
-- (thread i reads $PROOFS.<i>, one proof per line, each good once), as bench/dpop-proofs.lua.
-- `done` prints one line of figures for bench/compare.sh to parse:
--   result requests=N duration_us=N p50_us=N p99_us=N not200=N nomarker=N sockerr=N
--   (sockerr: wrk's connect + read + write + timeout errors, also printed one by one)
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  marker = os.getenv("BENCH_MARKER")
  use_proofs = os.getenv("PROOFS") ~= nil and os.getenv("PROOFS") ~= ""
  proofs = {}
  if use_proofs then
    for line in io.lines(os.getenv("PROOFS") .. "." .. id) do
      proofs[#proofs + 1] = line
    end
  end
  next_proof = 1
  not200 = 0
  nomarker = 0
end

function request()
  if not use_proofs then
    return wrk.format()
  end
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  -- Out of proofs: send none, so the refusals show up instead of replays passing.
  headers["DPoP"] = proofs[next_proof]
  next_proof = next_proof + 1
  return wrk.format(nil, nil, headers)
end

function response(status, headers, body)
  if status ~= 200 then
    not200 = not200 + 1
  elseif body == nil or not string.find(body, marker, 1, true) then
    nomarker = nomarker + 1
  end
end

function done(summary, latency, requests)
  local n200, nmark = 0, 0
  for _, thread in ipairs(threads) do
    n200 = n200 + thread:get("not200")
    nmark = nmark + thread:get("nomarker")
  end
  local e = summary.errors
  io.write(string.format(
    "result requests=%d duration_us=%d p50_us=%d p99_us=%d not200=%d nomarker=%d sockerr=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    n200, nmark, e.connect + e.read + e.write + e.timeout))
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
end
