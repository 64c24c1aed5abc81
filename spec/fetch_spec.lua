-- client:fetch (src/fetch.c): a GET of a JSON document at an absolute URL
-- through the client's libcurl transport, what tfauth.jwks reads JWKS and
-- discovery documents with; and prepare_fetch + map, for the nginx transport.
local cjson = require "cjson"
local h = require "spec.helper"

local count, error_of = h.count, h.error_of
local CERTS = h.certs_path
local certs = os.getenv("TFAUTH_TEST_CERTS")

describe("client:fetch", function()
  before_each(h.reset)

  it("GETs the URL with Accept only, and returns the decoded object and the body as sent", function()
    local c = h.client { http_headers = { ["X-Api-Key"] = "for-the-auth-api" }, bearer = "a-bearer-token" }
    local doc, body = c:fetch(h.issuer .. "/protocol/openid-connect/certs", "jwks.fetch")
    assert.equal("table", type(doc.keys))
    assert.same(doc, cjson.decode(body))
    local req, n = h.last_request()
    assert.equal(1, n)
    assert.equal("GET", req.method)
    assert.equal(CERTS, req.path)
    assert.equal("", req.body)
    assert.equal("application/json", req.headers.accept)
    assert.matches("^tfauth/", req.headers["user-agent"])
    assert.is_nil(req.headers["x-api-key"]) -- the auth API's headers are not for other hosts
    assert.is_nil(req.headers.authorization)
    assert.is_nil(req.headers["content-type"])
  end)

  it("keeps the query and leaves the operations working on the same handle", function()
    local c = h.client()
    c:fetch(h.issuer .. "/.well-known/openid-configuration?x=1")
    assert.equal("x=1", h.last_request().query)
    assert.equal("Bearer", h.login("alice", c).token_type)
    local req = h.last_request()
    assert.equal("POST", req.method)
    assert.equal("alice", cjson.decode(req.body).user)
  end)

  it("maps answers as the operations do: http, response, redirects not followed, no retries", function()
    local c = h.client { retries = { strategy = "backoff", retry_connection_errors = true,
      backoff = { initial_interval = 1, max_interval = 1, exponent = 1, max_elapsed_time = 5000 } } }
    local url = h.url .. "/doc"
    local cases = {
      { { status = 500, body = '{"error":"unknown_error"}' }, "http", 500 },
      { { status = 404, body = '{"detail":"Not Found"}' }, "http", 404 },
      { { status = 302, headers = { Location = h.url .. "/elsewhere" } }, "http", 302 },
      { { status = 200, body = "<html></html>", content_type = "text/html" }, "response", 200 },
      { { status = 200, body = "[1, 2]" }, "response", 200 },
    }
    for i, case in ipairs(cases) do
      h.reset()
      case[1].path = "/doc"
      h.script(case[1])
      local err = error_of(c.fetch, c, url, "jwks.fetch")
      assert.equal(case[2], err.kind, "case " .. i)
      assert.equal(case[3], err.status, "case " .. i)
      assert.equal("jwks.fetch", err.operation)
      assert.equal(1, err.attempts)
      assert.equal(1, #h.requests(), "case " .. i)
    end
    assert.equal("fetch", error_of(c.fetch, c, url).operation)
  end)

  it("stops at max_response_bytes", function()
    local c = h.client { max_response_bytes = 1000 }
    h.script { path = "/doc", body = '{"keys":"' .. string.rep("x", 5000) .. '"}' }
    local err = error_of(c.fetch, c, h.url .. "/doc")
    assert.equal("response", err.kind)
    assert.matches("max_response_bytes", err.message)
  end)

  it("reports network failures and timeouts", function()
    local c = h.client { timeout_ms = 300 }
    local err = error_of(c.fetch, c, h.closed_url .. "/doc")
    assert.equal("network", err.kind)
    assert.equal(7, err.curl_code)
    h.script { path = "/doc", delay_ms = 1500, body = "{}" }
    err = error_of(c.fetch, c, h.url .. "/doc")
    assert.equal("timeout", err.kind)
  end)

  it("uses the client's TLS options", function()
    local path = "/realms/fndtn/.well-known/openid-configuration"
    local trusting = h.client { tls = { ca_file = certs .. "/ca.pem" } }
    assert.equal(h.tls_issuer, trusting:fetch(os.getenv("TFAUTH_TEST_TLS_URL") .. path).issuer)
    assert.equal("tls", error_of(trusting.fetch, trusting, os.getenv("TFAUTH_TEST_WRONGHOST_URL") .. path).kind)
    local plain = h.client()
    assert.equal("tls", error_of(plain.fetch, plain, os.getenv("TFAUTH_TEST_TLS_URL") .. path).kind)
    local mtls = h.client { tls = { ca_file = certs .. "/ca.pem", cert = certs .. "/client.pem",
      key = certs .. "/client.key" } }
    assert.equal("string", type(mtls:fetch(os.getenv("TFAUTH_TEST_MTLS_URL") .. path).issuer))
  end)

  it("refuses bad URLs and closed clients before sending anything", function()
    local c = h.client()
    for _, url in ipairs { 42, "", "ftp://127.0.0.1/x", "/relative", "http://user:pw@127.0.0.1/x",
      "http://127.0.0.1/x#frag", "http://127.0.0.1/x y", "http://127.0.0.1/x\r\nX-Injected: 1" } do
      local err = error_of(c.fetch, c, url)
      assert.equal("argument", err.kind)
      assert.equal("url", err.field)
    end
    c:close()
    assert.equal("client", error_of(c.fetch, c, h.url .. "/doc").field)
    assert.equal(0, #h.requests())
  end)

  it("prepare_fetch gives the request for a Lua transport, and map judges its answer the same way", function()
    local c = h.client()
    local req = c:prepare_fetch(h.url .. "/doc", "jwks.fetch")
    assert.equal("GET", req.method)
    assert.equal(h.url .. "/doc", req.url)
    assert.equal("jwks.fetch", req.operation)
    assert.is_nil(req.body)
    assert.equal("application/json", req.headers.Accept)
    assert.matches("^tfauth/", req.headers["User-Agent"])
    assert.same({ keys = {} }, c:map(req, 200, {}, '{"keys":[]}'))
    local err = error_of(c.map, c, req, 503, { ["Content-Type"] = "application/json" }, '{"error":"down"}')
    assert.equal("http", err.kind)
    assert.equal("jwks.fetch", err.operation)
    assert.is_true(err.retryable)
    assert.equal("response", error_of(c.map, c, req, 200, {}, "not json").kind)
    assert.equal(0, count(CERTS))
    assert.equal(0, #h.requests())
  end)
end)
