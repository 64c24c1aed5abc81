-- The nginx transport over https, as the example's /_tfauth location sets it
-- up (proxy_ssl_verify on, trusted CAs, SNI, the URL's host checked),
-- against the reference backend's TLS listeners: the outcomes tls_spec.lua
-- asserts for libcurl, asserted here for nginx, side by side with libcurl
-- running in the same nginx. The nginx trusting the other CA resolves
-- `localhost` (the name the test certificates carry) through a loopback DNS
-- stub and its `resolver`; the two others need none.
local cjson = require "cjson"
local h = require "spec.helper"

local certs = assert(os.getenv("TFAUTH_TEST_CERTS"))
local TLS, MTLS, WRONGHOST = os.getenv("TFAUTH_TEST_TLS_URL"), os.getenv("TFAUTH_TEST_MTLS_URL"),
  os.getenv("TFAUTH_TEST_WRONGHOST_URL")
local CA, OTHER_CA = certs .. "/ca.pem", certs .. "/other-ca.pem"

describe("nginx transport over https #nginx", function()
  local resolver, stop_dns
  local nginx = {} -- trusting: "system" (the default bundle), "ca", "other"

  setup(function()
    resolver, stop_dns = h.start_dns()
    -- No resolver: `localhost` is dialled as 127.0.0.1 (nginx never reads
    -- /etc/hosts), its certificate still checked for the name localhost.
    nginx.system = { h.start_nginx { workers = 1 } }
    nginx.ca = { h.start_nginx { workers = 1, ca_file = CA } }
    nginx.other = { h.start_nginx { workers = 1, resolver = resolver, ca_file = OTHER_CA } }
  end)
  teardown(function()
    for _, n in pairs(nginx) do n[2]() end
    stop_dns()
  end)
  before_each(h.reset)

  -- One login against url from inside nginx `trusting`, through transport
  -- (libcurl trusting ca, for comparison).
  local function try(trusting, url, transport, ca)
    local query = ("url=%s&transport=%s"):format(url, transport or "nginx")
    if ca then query = query .. "&ca=" .. ca end
    return cjson.decode(h.sh(("curl -s '%s/t/try?%s'"):format(nginx[trusting][1], query)))
  end

  -- The refusal as nginx and as libcurl report it: kind tls, not retryable,
  -- nothing reached the API.
  local function refused(trusting, url, ca)
    local via_nginx = try(trusting, url)
    assert.equal("tls", via_nginx.kind, cjson.encode(via_nginx))
    assert.is_false(via_nginx.retryable)
    assert.equal(0, #h.requests())
    local via_curl = try(trusting, url, "curl", ca)
    assert.equal(via_curl.kind, via_nginx.kind)
    assert.equal(via_curl.retryable, via_nginx.retryable)
    assert.equal(0, #h.requests())
    local log = h.sh("cat " .. nginx[trusting][3] .. "/logs/error.log")
    assert.matches("while SSL handshaking to upstream", log, 1, true)
    assert.is_nil(log:find("alice-Secret-1", 1, true), "the password is not in nginx's log")
    return via_nginx
  end

  it("works with a CA the location trusts (SNI and name checked)", function()
    local out = try("ca", TLS)
    assert.is_true(out.ok, cjson.encode(out))
    assert.equal("Bearer", out.token_type)
    assert.matches("^tfauth.client%[nginx%]", out.transport)
    local req = h.last_request()
    assert.equal("tls", req.listener)
    assert.equal("/api/iam/login", req.path)
    assert.same(try("ca", TLS, "curl", CA).shape, out.shape)
  end)

  it("verifies by default: the system's CA bundle does not trust the test CA", function()
    local err = refused("system", TLS) -- libcurl's default is the system's bundle too
    assert.matches("^TLS handshake failed: nginx refused the certificate or handshake of https://localhost:%d+",
      err.message)
  end)

  it("refuses a server whose certificate another CA signed", function()
    refused("other", TLS, OTHER_CA)
  end)

  it("refuses a certificate for another host name", function()
    refused("ca", WRONGHOST, CA)
    assert.matches('upstream SSL certificate does not match "localhost"',
      h.sh("cat " .. nginx.ca[3] .. "/logs/error.log"), 1, true)
  end)

  it("still reports a server that does not answer as a network error, not tls", function()
    local out = try("ca", "https://localhost:1")
    assert.equal("network", out.kind)
    assert.is_true(out.retryable)
    assert.equal(try("ca", "https://localhost:1", "curl", CA).kind, out.kind)
  end)

  it("reports a trusted server that closes without answering as a network error, not tls", function()
    -- the handshake and the certificate are fine: the probe must not blame TLS
    h.script { path = "/api/iam/login", close_without_answer = true, times = 2, listener = "tls" }
    local out = try("ca", TLS)
    assert.equal("network", out.kind, cjson.encode(out))
    assert.is_true(out.retryable)
    assert.equal(try("ca", TLS, "curl", CA).kind, out.kind)
  end)

  it("refuses to check an IP address (nginx checks DNS names only): tls, documented", function()
    local ip = TLS:gsub("localhost", "127.0.0.1")
    assert.equal("tls", try("ca", ip).kind)
  end)

  it("a server that requires a client certificate, none configured: refused", function()
    local out = try("ca", MTLS)
    assert.is_nil(out.ok)
    assert.equal(0, #h.requests())
    assert.is_false(out.retryable, cjson.encode(out))
    assert.equal(try("ca", MTLS, "curl", CA).kind, out.kind)
  end)
end)
