-- HTTPS against the reference backend, with a CA and certificates the test
-- run generated (spec/support/make-certs.sh): verification on by default,
-- ca_file and ca_path, client certificates, and verify = false.
local h = require "spec.helper"

local certs = assert(os.getenv("TFAUTH_TEST_CERTS"))
local TLS, MTLS, WRONGHOST = os.getenv("TFAUTH_TEST_TLS_URL"), os.getenv("TFAUTH_TEST_MTLS_URL"),
  os.getenv("TFAUTH_TEST_WRONGHOST_URL")
local CA = certs .. "/ca.pem"
local creds = { user = "alice", password = "alice-Secret-1" }

local function login(config)
  return h.client(config):login(creds)
end
local function tls_error(config)
  local c = h.client(config)
  local err = h.error_of(c.login, c, creds)
  assert.equal("tls", err.kind, tostring(err))
  assert.is_number(err.curl_code)
  assert.is_false(err.retryable)
  return err
end

describe("tls", function()
  before_each(h.reset)

  it("verifies the server by default: an untrusted CA is a tls error", function()
    local err = tls_error { server_url = TLS }
    assert.equal(60, err.curl_code)
    assert.equal(0, #h.requests())
  end)

  it("trusts a CA given as tls.ca_file", function()
    local t = login { server_url = TLS, tls = { ca_file = CA } }
    assert.is_string(t.access_token)
    local req = h.last_request()
    assert.equal("tls", req.listener)
    assert.equal("/api/iam/login", req.path)
  end)

  it("trusts a CA found in tls.ca_path", function()
    assert.is_string(login({ server_url = TLS, tls = { ca_path = certs .. "/capath" } }).access_token)
  end)

  it("refuses a server whose certificate another CA signed", function()
    tls_error { server_url = TLS, tls = { ca_file = certs .. "/other-ca.pem" } }
  end)

  it("refuses a certificate for another host name", function()
    local err = tls_error { server_url = WRONGHOST, tls = { ca_file = CA } }
    assert.equal(60, err.curl_code)
    assert.equal(0, #h.requests())
  end)

  it("presents a client certificate when the server requires one", function()
    local t = login { server_url = MTLS, tls = { ca_file = CA, cert = certs .. "/client.pem", key = certs .. "/client.key" } }
    assert.is_string(t.access_token)
    assert.equal("mtls", h.last_request().listener)
  end)

  it("fails with a tls error when the server requires a client certificate and none is given", function()
    tls_error { server_url = MTLS, tls = { ca_file = CA } }
    assert.equal(0, #h.requests())
  end)

  it("reports a missing client certificate file as a tls error", function()
    tls_error { server_url = MTLS, tls = { ca_file = CA, cert = certs .. "/no-such.pem", key = certs .. "/client.key" } }
  end)

  it("skips verification with verify = false (unsafe)", function()
    assert.is_string(login({ server_url = TLS, tls = { verify = false } }).access_token)
    assert.is_string(login({ server_url = WRONGHOST, tls = { verify = false } }).access_token)
  end)

  it("keeps the TLS connection alive between calls", function()
    local c = h.client { server_url = TLS, tls = { ca_file = CA } }
    for _ = 1, 3 do c:reset_password { username = "alice" } end
    local reqs = h.requests()
    assert.equal(reqs[1].client_port, reqs[2].client_port)
    assert.equal(reqs[2].client_port, reqs[3].client_port)
  end)
end)
