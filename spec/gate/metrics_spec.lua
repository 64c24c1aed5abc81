-- tfauth.gate on real nginx: metrics, read with prometheus_client's parser.
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http, count, metrics = h.sh, h.http, h.count, h.metrics
local bearer_it = support.issuer and it or pending

support.suite("tfauth.gate #nginx", function(t)
  describe("metrics", function()
    it("counts outcomes, logins, refreshes and API time, summed over both workers", function()
      local before = metrics(t.url)
      local function delta(now, key) return (now[key] or 0) - (before[key] or 0) end
      h.configure_server { access_ttl = 31 }
      t.login("alice")
      http(t.url .. "/login", { form = { user = "alice", password = "wrong-pass-1" } })
      sh(("seq 40 | xargs -P 10 -I{} curl -s -o /dev/null -b %s %s/app/{}"):format(t.jar, t.url))
      sh(("seq 10 | xargs -P 10 -I{} curl -s -o /dev/null %s/app/{}"):format(t.url))
      t.get("/admin/x")
      os.execute("sleep 1.1")
      t.get("/app/x") -- refreshes
      local now = metrics(t.url)
      assert.equal(41, delta(now, 'tfauth_gate_requests_total{outcome=allowed,via=session}'))
      assert.equal(10, delta(now, 'tfauth_gate_requests_total{outcome=unauthenticated,via=none}'))
      assert.equal(1, delta(now, 'tfauth_gate_requests_total{outcome=forbidden,via=session}'))
      assert.equal(1, delta(now, 'tfauth_logins_total{result=ok}'))
      assert.equal(1, delta(now, "tfauth_logins_total{result=failed}"))
      local refreshes = count("/api/iam/refresh") -- 1, or 2 when the 40 took over a second
      assert.is_true(refreshes >= 1)
      assert.equal(refreshes, delta(now, 'tfauth_refreshes_total{result=ok}'))
      assert.equal(2, delta(now, 'tfauth_api_request_duration_seconds_count{operation=login}'))
      assert.equal(2, delta(now, 'tfauth_api_request_duration_seconds_bucket{le=+Inf,operation=login}'))
      assert.equal(refreshes, delta(now, 'tfauth_api_request_duration_seconds_count{operation=refresh}'))
      assert.is_true(delta(now, 'tfauth_api_request_duration_seconds_sum{operation=login}') > 0)
      local created = { "tfauth_jwks_fetches_total{result=ok}", "tfauth_jwks_fetches_total{result=failed}",
        "tfauth_gate_requests_total{outcome=unavailable,via=bearer}" }
      for _, reason in ipairs { "malformed", "algorithm", "key", "signature", "expired", "not_yet_valid", "issuer",
        "type", "audience", "error" } do
        created[#created + 1] = "tfauth_gate_bearer_refused_total{reason=" .. reason .. "}" -- at init, 0 until one
      end
      for _, key in ipairs(created) do assert.is_number(now[key], key) end
      local refused = 0
      for key, value in pairs(now) do
        if key:find("^tfauth_gate_bearer_refused_total{") then refused = refused + 1 assert.equal(0, value, key) end
      end
      assert.equal(10, refused) -- the fixed set only
    end)

    bearer_it("counts bearer outcomes and key-set fetches", function()
      local before = metrics(t.url)
      local token = h.login("alice").access_token
      t.get("/app/x", { jar = false, headers = { "Authorization: Bearer " .. token } })
      t.get("/app/x", { jar = false, headers = { "Authorization: Bearer a.b.c" } })
      local now = metrics(t.url)
      assert.equal(1, now["tfauth_gate_requests_total{outcome=allowed,via=bearer}"]
        - before["tfauth_gate_requests_total{outcome=allowed,via=bearer}"])
      assert.equal(1, now["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"]
        - before["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"])
      assert.is_true(now["tfauth_jwks_fetches_total{result=ok}"] >= 1)
    end)

    bearer_it("follows a key rotation at warn, where a refusal is lean: the new kid verified after one refetch",
      function()
      local function bearer(token)
        return (t.get("/app/x", { jar = false, headers = { "Authorization: Bearer " .. token } }))
      end
      assert.equal(200, bearer(h.login("alice").access_token)) -- the key set loaded
      local fetches = count(h.certs_path)
      h.rotate()
      local fresh = h.login("alice").access_token
      assert.equal(200, bearer(fresh))
      assert.equal(200, bearer(fresh))
      assert.equal(fetches + 1, count(h.certs_path))
    end)

    bearer_it("counts refused bearer tokens by reason at warn, where none is logged", function()
      local token = h.login("alice").access_token
      local claims = require("tfauth").jwt.claims(token)
      claims.exp = os.time() - 120
      local sig = token:match("([^.]+)$")
      local forged = token:sub(1, #token - #sig) .. (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2)
      local cases = {
        { "signature", forged }, { "signature", forged }, -- the second from the refused-signature memory
        { "key", h.sign { claims = claims, header = { kid = "not-in-the-realm" } } },
        { "expired", h.sign { claims = claims } },
        { "malformed", "a.b.c" },
      }
      local before, mark = metrics(t.url), #support.log_of(t.prefix)
      for _, case in ipairs(cases) do
        local status = t.get("/app/x", { jar = false, headers = { "Authorization: Bearer " .. case[2] } })
        assert.equal(401, status, case[1])
      end
      local now = metrics(t.url)
      local expected = { signature = 2, key = 1, expired = 1, malformed = 1 }
      for reason, n in pairs(expected) do
        local series = "tfauth_gate_bearer_refused_total{reason=" .. reason .. "}"
        assert.equal(n, now[series] - before[series], reason)
      end
      assert.equal(5, now["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"]
        - before["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"])
      assert.is_nil(support.log_of(t.prefix):sub(mark + 1):find("bearer token refused", 1, true))
    end)
  end)
end)
