-- wrk script: each request carries the next pre-generated DPoP proof (a proof is good once),
-- plus the headers given with -H (the session cookies). Thread i reads $PROOFS.<i>, one proof
-- per line. Every answer must be a 200: wrk itself does not count 3xx as errors (a sign-in
-- redirect would look fast), so this script counts every other status and `done` prints
-- "not-200: N" for bench/load.sh to check.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  proofs = {}
  -- PROOFS unset: the same client-side work without a proof (the plain-session row, so both
  -- rows pay the same load-generator cost on the shared cores).
  if os.getenv("PROOFS") then
    for line in io.lines(os.getenv("PROOFS") .. "." .. id) do
      proofs[#proofs + 1] = line
    end
  end
  next_proof = 1
  not_ok = 0
end

function request()
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  -- Out of proofs: send none, so the refusals show up instead of replays passing.
  if os.getenv("PROOFS") then
    headers["DPoP"] = proofs[next_proof]
  end
  next_proof = next_proof + 1
  return wrk.format("GET", nil, headers)
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
