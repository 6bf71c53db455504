-- wrk script: each request carries the next pre-generated DPoP proof (a proof is good once).
-- Thread i reads $PROOFS.<i> (one proof per line); the Cookie header comes from -H.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  proofs = {}
  for line in io.lines(os.getenv("PROOFS") .. "." .. id) do
    proofs[#proofs + 1] = line
  end
  next_proof = 1
end

function request()
  local p = proofs[next_proof]
  -- Out of proofs: send none, so the 401s show up as non-2xx instead of replays passing.
  next_proof = next_proof + 1
  if p == nil then
    return wrk.format("GET", nil, {})
  end
  return wrk.format("GET", nil, { ["DPoP"] = p })
end
