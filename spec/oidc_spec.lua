-- Against an OpenID Provider nobody here wrote: oidc-provider (npm, OpenID
-- Certified; spec/oidc/provider.mjs configures it, spec/support/oidc.sh
-- installs and starts it), one instance for the whole file. Its access
-- tokens are RFC 9068 JWTs (header typ at+jwt) from client_credentials with
-- resource indicators, in RS/PS/ES 256-512 and EdDSA; tokens named Ed25519
-- (which this provider version cannot issue) are signed by its own Ed25519
-- key through the harness. Tagged live: the provider starts once per make
-- test, in the Lua 5.4 suite (tfauth.jwks there, and the gate in nginx with
-- two workers).
local cjson = require "cjson"
local h = require "spec.helper"
local tfauth_jwks = require "tfauth.jwks"
local tfauth_jwt = require "tfauth.jwt"

local sh, http = h.sh, h.http

-- The harness's names (spec/oidc/provider.mjs).
local API, OTHER = "https://api.example.com", "https://other.example.com"
local CALLBACK = "http://127.0.0.1/callback"
local PROVIDER_ALGS = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA" }
local ALL_ALGS = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519" }
local TYPES = { "at+jwt", "Bearer" }

local provider = {} -- issuer, dir

local function start_provider()
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  os.execute(("env -u LD_PRELOAD bash %s/spec/support/oidc.sh %s/port >%s/log 2>&1 & echo $! >%s/pid")
    :format(h.root, dir, dir, dir))
  local port
  for _ = 1, 2400 do -- 120 s: the first run installs it (npm ci)
    local f = io.open(dir .. "/port")
    if f then
      port = f:read("*l")
      f:close()
      if port then break end
    end
    if sh(("kill -0 $(cat %s/pid) 2>/dev/null || echo gone"):format(dir)) ~= "" then break end
    os.execute("sleep 0.05")
  end
  assert(port, "oidc-provider did not start: " .. sh("cat " .. dir .. "/log"))
  provider.issuer, provider.dir = "http://127.0.0.1:" .. port, dir
end

local function stop_provider()
  if provider.dir then os.execute(("kill $(cat %s/pid); rm -rf %s"):format(provider.dir, provider.dir)) end
end

local function json_of(status, body, what)
  assert(status == 200, what .. ": HTTP " .. tostring(status) .. " " .. tostring(body))
  return cjson.decode(body)
end

-- An access token by client_credentials for client (svc-<alg> or svc-short),
-- for resource (its indicator, RFC 8707; default: the API).
local function access_token(client, resource)
  local status, _, body = http(provider.issuer .. "/token", { form = { grant_type = "client_credentials",
    client_id = client, client_secret = "secret", scope = "read", resource = resource or API } })
  return json_of(status, body, "token for " .. client).access_token
end

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- An ID token by the authorization code flow, as a browser would go through
-- it: the provider's development sign-in and consent pages, their forms
-- posted, its redirects followed until the callback gets the code.
local function id_token()
  local jar = os.tmpname()
  local url = ("%s/auth?client_id=%s&response_type=code&scope=openid&redirect_uri=%s&nonce=n-1&state=s-1")
    :format(provider.issuer, url_encode(API), url_encode(CALLBACK))
  for _ = 1, 12 do
    if url:sub(1, #CALLBACK) == CALLBACK then break end
    local status, headers, body = http(url, { jar = jar })
    if headers.location then
      url = headers.location[1]:gsub("^/", provider.issuer .. "/") -- its redirects name a path
    else -- a sign-in or consent page: its form posted
      local action, prompt = body:match('action="([^"]+)"'), body:match('name="prompt" value="(%w+)"')
      assert(action and prompt, "no form on the page at " .. url .. " (HTTP " .. tostring(status) .. ")")
      local form = { prompt = prompt }
      if prompt == "login" then form.login, form.password = "alice", "any" end
      local _, answer = http(action, { jar = jar, form = form })
      url = assert(answer.location, "the form at " .. action .. " did not redirect")[1]:gsub("^/", provider.issuer .. "/")
    end
  end
  os.remove(jar)
  local code = assert(url:match("^" .. CALLBACK:gsub("%p", "%%%0") .. "%?.-code=([^&]+)"), "no code: " .. url)
  local status, _, body = http(provider.issuer .. "/token", { form = { grant_type = "authorization_code",
    code = code, redirect_uri = CALLBACK, client_id = API, client_secret = "secret" } })
  return json_of(status, body, "code exchange").id_token
end

-- The harness's controls (spec/oidc/provider.mjs).
local function control(method, path, body)
  local status, _, answer = http(provider.issuer .. "/_test/" .. path,
    { method = method, body = body and cjson.encode(body), headers = { "Content-Type: application/json" } })
  return json_of(status, answer, path)
end
local function mint(claims, kid) return control("POST", "mint", { claims = claims, kid = kid }).token end
local function rotate() return control("POST", "rotate").kids end
local function jwks_requests() return control("GET", "count").jwks end

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

-- A token's JOSE header (decoded by base64 and cjson, unverified).
local function header_of(token)
  local part = token:match("^([^.]+)%."):gsub("-", "+"):gsub("_", "/")
  return cjson.decode(sh(("printf '%%s' '%s' | base64 -d"):format(part .. ("="):rep(-#part % 4))))
end

describe("oidc-provider #live", function()
  lazy_setup(start_provider)
  lazy_teardown(stop_provider)

  describe("and tfauth.jwks #once", function()
    local jwks, fetches, tokens
    local function opts() return { audience = API, algorithms = ALL_ALGS, types = TYPES } end

    lazy_setup(function()
      fetches = {}
      jwks = tfauth_jwks.new { issuer = provider.issuer, on_fetch = function(result) fetches[#fetches + 1] = result end }
      tokens = {}
      for _, alg in ipairs(PROVIDER_ALGS) do tokens[alg] = access_token("svc-" .. alg) end
    end)

    for _, alg in ipairs(PROVIDER_ALGS) do
      it("verifies its " .. alg .. " access tokens (RFC 9068: header typ at+jwt, no typ claim)", function()
        local claims, header = jwks:verify(tokens[alg], opts())
        assert.equal(alg, header.alg)
        assert.equal("at+jwt", header.typ)
        assert.is_nil(claims.typ)
        assert.equal(provider.issuer, claims.iss)
        assert.equal(API, claims.aud)
        assert.equal("svc-" .. alg, claims.client_id)
      end)
    end

    it("verifies a token named Ed25519 by the Ed25519 key published under that name", function()
      local eddsa, eddsa_header = jwks:verify(tokens.EdDSA, opts())
      local token = mint(eddsa)
      local claims, header = jwks:verify(token, opts())
      assert.equal("Ed25519", header.alg)
      assert.equal(eddsa_header.kid .. "-fs", header.kid)
      assert.same(eddsa, claims)
      -- names matched exactly: a list naming only EdDSA does not take it ...
      local err = h.error_of(jwks.verify, jwks, token, { audience = API, algorithms = { "EdDSA" }, types = TYPES })
      assert.equal("algorithm", err.reason)
      -- ... nor does the same key where the provider publishes it as "alg": "EdDSA"
      err = h.error_of(jwks.verify, jwks, mint(eddsa, eddsa_header.kid), opts())
      assert.equal("key", err.reason)
    end)

    it("found the keys by discovery with one fetch for every algorithm", function()
      for _, alg in ipairs(PROVIDER_ALGS) do jwks:verify(tokens[alg], opts()) end
      assert.same({ "ok" }, fetches)
      assert.equal(1, jwks_requests())
    end)

    it("refuses its ID tokens (header typ JWT, no typ claim), though signed, current and of this audience", function()
      local token = id_token()
      local claims, header = jwks:verify(token, { audience = API, algorithms = ALL_ALGS }) -- no types: taken
      assert.equal("JWT", header.typ)
      assert.is_nil(claims.typ)
      assert.equal("alice", claims.sub)
      assert.equal(API, claims.aud)
      local err = h.error_of(jwks.verify, jwks, token, opts())
      assert.equal("token", err.kind)
      assert.equal("type", err.reason)
    end)

    it("refuses its tokens for another resource (aud)", function()
      local token = access_token("svc-ES256", OTHER)
      assert.equal(OTHER, (jwks:verify(token, { audience = OTHER, algorithms = ALL_ALGS, types = TYPES })).aud)
      local err = h.error_of(jwks.verify, jwks, token, opts())
      assert.equal("token", err.kind)
      assert.equal("audience", err.reason)
    end)

    it("refuses its tokens once their exp has come (a 2-second token, verified at exp)", function()
      local token = access_token("svc-short")
      local claims = jwks:verify(token, opts())
      assert.equal(2, claims.exp - claims.iat)
      local at_exp = opts()
      at_exp.now = claims.exp
      local err = h.error_of(jwks.verify, jwks, token, at_exp)
      assert.equal("token", err.kind)
      assert.equal("expired", err.reason)
    end)

    it("picks up rotated keys with exactly one fetch; tokens of the old keys still verify", function()
      local seen = {}
      local fresh = tfauth_jwks.new { issuer = provider.issuer, on_fetch = function(result) seen[#seen + 1] = result end }
      local old = access_token("svc-RS256")
      fresh:verify(old, opts())
      assert.same({ "ok" }, seen)
      local before = jwks_requests()
      local kids = rotate()
      local claims
      for _, alg in ipairs { "PS512", "ES256", "ES384", "ES512", "EdDSA" } do -- one for each new key
        local header
        claims, header = fresh:verify(access_token("svc-" .. alg), opts())
        assert.truthy(contains(kids, header.kid), alg .. " signed with " .. header.kid)
      end
      local _, header = fresh:verify(mint(claims), opts())
      assert.equal(kids[5] .. "-fs", header.kid)
      assert.same({ "ok", "ok" }, seen)
      assert.equal(before + 1, jwks_requests())
      assert.equal("svc-RS256", (fresh:verify(old, opts())).client_id)
      assert.same({ "ok", "ok" }, seen)
    end)
  end)

  describe("and tfauth.gate in nginx, as docs/tokens.md configures it #nginx", function()
    local url, stop, tokens

    -- docs/tokens.md's bearer table as printed, its issuer this provider's.
    local function documented_bearer()
      local doc = assert(io.open(h.root .. "/docs/tokens.md")):read("*a")
      local section = assert(doc:find("## Standard OpenID Providers (RFC 9068)", 1, true), "the section")
      local block = assert(doc:match("```lua\n(.-)\n```", section), "its lua block")
      local bearer = assert(block:match("bearer = (%b{})"), "its bearer table")
      local i, j = bearer:find('"https://id.example.com"', 1, true)
      assert(i, "the documented issuer")
      return bearer:sub(1, i - 1) .. '"' .. provider.issuer .. '"' .. bearer:sub(j + 1)
    end

    lazy_setup(function()
      url, stop = h.start_nginx { workers = 2, env = { TFAUTH_BEARER = documented_bearer() } }
      tokens = {}
      for _, alg in ipairs(PROVIDER_ALGS) do tokens[alg] = access_token("svc-" .. alg) end
      tokens.Ed25519 = mint(tfauth_jwt.claims(tokens.EdDSA))
    end)
    lazy_teardown(function() if stop then stop() end end)

    -- Requests to /app/, `parallel` at a time, one for each token listed
    -- (a token may be listed many times): their statuses and bodies (the
    -- upstream echoes the headers it got and its worker's pid).
    local function requests(list, parallel)
      local dir = sh("mktemp -d"):gsub("%s+$", "")
      local f = assert(io.open(dir .. "/list", "w"))
      for i, token in ipairs(list) do f:write(i, " ", token, "\n") end
      f:close()
      f = assert(io.open(dir .. "/request.sh", "w")) -- request.sh N TOKEN
      f:write(("curl -s -o %s/$1 -w '%%{http_code}' -H \"Authorization: Bearer $2\" %s/app/x >%s/$1.status\n")
        :format(dir, url, dir))
      f:close()
      sh(("xargs -P %d -L 1 sh %s/request.sh <%s/list"):format(parallel, dir, dir))
      local answers = {}
      for i = 1, #list do
        local body, status = io.open(dir .. "/" .. i), io.open(dir .. "/" .. i .. ".status")
        answers[i] = { body = body and body:read("*a"), status = status and tonumber(status:read("*a")) }
        if body then body:close() end
        if status then status:close() end
      end
      sh("rm -rf " .. dir)
      return answers
    end
    local function workers_of(answers)
      local seen, n = {}, 0
      for _, answer in ipairs(answers) do
        local ok, got = pcall(cjson.decode, answer.body)
        if ok and got.worker and not seen[got.worker] then n, seen[got.worker] = n + 1, true end
      end
      return n
    end
    local function fetches() return h.metrics(url)['tfauth_jwks_fetches_total{result=ok}'] or 0 end

    it("lets its access tokens in, in every algorithm, through both workers, with one fetch of its keys", function()
      local before, list = jwks_requests(), {}
      for _, alg in ipairs(ALL_ALGS) do
        for _ = 1, 3 do list[#list + 1] = tokens[alg] end
      end
      local answers = requests(list, 6)
      for i, answer in ipairs(answers) do
        local alg = ALL_ALGS[math.ceil(i / 3)]
        assert.equal(200, answer.status, alg .. ": " .. tostring(answer.body))
        local got = cjson.decode(answer.body).headers
        assert.equal(alg == "Ed25519" and "svc-EdDSA" or "svc-" .. alg, got["x-auth-request-subject"], alg)
        assert.equal("Bearer " .. tokens[alg], got.authorization)
      end
      assert.is_true(workers_of(answers) >= 2, "the requests reached one worker")
      assert.equal(before + 1, jwks_requests())
      assert.equal(1, fetches())
    end)

    -- 401 invalid_token, counted under reason (once: each reason comes up
    -- once in this nginx's life).
    local function refused(token, reason)
      local status, headers, body = http(url .. "/app/x", { headers = { "Authorization: Bearer " .. token } })
      assert.equal(401, status, body)
      assert.equal('Bearer realm="tfauth", error="invalid_token"', headers["www-authenticate"][1])
      assert.equal(1, h.metrics(url)["tfauth_gate_bearer_refused_total{reason=" .. reason .. "}"], reason)
    end

    it("refuses its ID tokens, whose aud is the API's too (401 invalid_token, reason type)", function()
      refused(id_token(), "type")
    end)

    it("refuses its tokens for another resource (reason audience)", function()
      refused(access_token("svc-RS256", OTHER), "audience")
    end)

    it("takes a 2-second token, and refuses it once its exp has come (reason expired)", function()
      local token = access_token("svc-short")
      local exp = tfauth_jwt.claims(token).exp
      assert.equal(200, (http(url .. "/app/x", { headers = { "Authorization: Bearer " .. token } })))
      while os.time() <= exp do os.execute("sleep 0.2") end
      refused(token, "expired")
    end)

    it("picks up rotated keys with one fetch for both workers", function()
      local before, fetched = jwks_requests(), fetches()
      local kids = rotate()
      local token = access_token("svc-PS256")
      assert.truthy(contains(kids, header_of(token).kid), "signed with a new key")
      local list = {}
      for i = 1, 20 do list[i] = token end
      local answers = requests(list, 10)
      for _, answer in ipairs(answers) do assert.equal(200, answer.status, answer.body) end
      assert.is_true(workers_of(answers) >= 2, "the requests reached one worker")
      assert.equal(before + 1, jwks_requests())
      assert.equal(fetched + 1, fetches())
      assert.equal(200, (http(url .. "/app/x", { headers = { "Authorization: Bearer " .. tokens.RS256 } })))
    end)
  end)
end)
