-- The release rockspec: the repository at the tag v1.2.0. `make dist` makes
-- its source rock from a checkout. tfauth-scm-1.rockspec is the same for the
-- default branch.
rockspec_format = "3.0"
package = "tfauth"
version = "1.2.0-1"
source = {
  url = "git+https://github.com/fndtn/tfauth.git",
  tag = "v1.2.0",
}
description = {
  summary = "Client of the FNDTN authentication API: login, refresh, logout, password changes",
  detailed = [[
A C module on libcurl and lua-cjson for the FNDTN backend's auth API: all six
operations, structured errors, secrets never echoed, self-refreshing sessions,
an OpenResty transport. Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1.
]],
  homepage = "https://github.com/fndtn/tfauth",
  license = "MIT",
}
supported_platforms = { "unix" }
dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson >= 2.1",
}
external_dependencies = {
  -- The library only: Debian keeps curl.h under a multiarch include folder
  -- that luarocks does not search, but the compiler does.
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" }, -- OpenSSL's libcrypto (AES-256-GCM), which libcurl brings
}
build = {
  type = "builtin",
  modules = {
    ["tfauth.core"] = {
      -- One C file a line: spec/support/lint.sh fails if a src/*.c is missing.
      sources = {
        "src/b64url.c",
        "src/bridge.c",
        "src/buf.c",
        "src/check.c",
        "src/client.c",
        "src/core.c",
        "src/error.c",
        "src/fetch.c",
        "src/hooks.c",
        "src/json.c",
        "src/jwk.c",
        "src/jwt.c",
        "src/jws.c",
        "src/luax.c",
        "src/ops.c",
        "src/redact.c",
        "src/request.c",
        "src/response.c",
        "src/retry.c",
        "src/seal.c",
        "src/transport_curl.c",
        "src/url.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)" },
      libraries = { "curl", "crypto" },
    },
    -- The Lua face, one module a line.
    ["tfauth"] = "lua/tfauth/init.lua",
    ["tfauth.gate"] = "lua/tfauth/gate/init.lua",
    ["tfauth.gate.account"] = "lua/tfauth/gate/account.lua",
    ["tfauth.gate.answers"] = "lua/tfauth/gate/answers.lua",
    ["tfauth.gate.config"] = "lua/tfauth/gate/config.lua",
    ["tfauth.gate.handoff"] = "lua/tfauth/gate/handoff.lua",
    ["tfauth.gate.identity"] = "lua/tfauth/gate/identity.lua",
    ["tfauth.gate.judge"] = "lua/tfauth/gate/judge.lua",
    ["tfauth.gate.metrics"] = "lua/tfauth/gate/metrics.lua",
    ["tfauth.gate.options"] = "lua/tfauth/gate/options.lua",
    ["tfauth.gate.pages"] = "lua/tfauth/gate/pages.lua",
    ["tfauth.gate.password"] = "lua/tfauth/gate/password.lua",
    ["tfauth.gate.request"] = "lua/tfauth/gate/request.lua",
    ["tfauth.gate.sessions"] = "lua/tfauth/gate/sessions.lua",
    ["tfauth.gate.templates"] = "lua/tfauth/gate/templates.lua",
    ["tfauth.ids"] = "lua/tfauth/ids.lua",
    ["tfauth.jwt"] = "lua/tfauth/jwt.lua",
    ["tfauth.jwks"] = "lua/tfauth/jwks.lua",
    ["tfauth.openresty"] = "lua/tfauth/openresty.lua",
    ["tfauth.runtime"] = "lua/tfauth/runtime.lua",
    ["tfauth.safe"] = "lua/tfauth/safe.lua",
    ["tfauth.seal"] = "lua/tfauth/seal.lua",
    ["tfauth.session"] = "lua/tfauth/session.lua",
    ["tfauth.store"] = "lua/tfauth/store/init.lua",
    ["tfauth.store.check"] = "lua/tfauth/store/check.lua",
    ["tfauth.store.connection"] = "lua/tfauth/store/connection.lua",
    ["tfauth.store.shared_dict"] = "lua/tfauth/store/shared_dict.lua",
    ["tfauth.store.redis"] = "lua/tfauth/store/redis.lua",
    ["tfauth.store.sentinel"] = "lua/tfauth/store/sentinel.lua",
    ["tfauth.store.cluster"] = "lua/tfauth/store/cluster.lua",
  },
}
