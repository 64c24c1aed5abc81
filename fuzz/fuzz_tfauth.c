/* fuzz_tfauth.c: libFuzzer harness for the request builder and the response
 * mapper, through the same entry points a Lua transport uses
 * (client:prepare, client:map), and for JWS: keyset parsing and token
 * verification (core.jwt_keyset, core.jwt_verify).
 *
 * Input: byte 0 picks the target: below 0xC0, builder (even) or mapper
 * (odd), with byte 1 the operation, bytes 2-3 the status; 0xC0 and above,
 * JWS, with byte 1 choosing options and byte 2 the leeway. The rest is split
 * on NUL into strings (parameters, headers, body; for JWS: the JWKS text,
 * empty for the RFC examples' keys, then tokens). Invariants, beyond "no
 * crash, no sanitizer report":
 *  - every failure is a tfauth.Error, never a raw Lua error;
 *  - no header value the builder makes holds a control character;
 *  - no string in a mapped error holds the request's secret in any form
 *    (as sent, JSON-escaped, percent-encoded, HTML-escaped: the body's @R,
 *    @J, @U, @P, @Q, @H, @X), and with a secret under 8 characters the
 *    error has none of the API's text (body, json, detail, error...);
 *  - a refused token's error is of kind token (with a reason) and holds no
 *    run of 16 characters of the token (one holding a capital or a digit
 *    that no fixed message has: the fuzzer does spell the messages); a keyset failure is an argument
 *    error on `jwks`; a verified token gives back two tables. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_tfauth_core(lua_State *L);

static const char driver[] =
    "local core, client, mode, opi, status, pieces = ...\n"
    "local ops = { 'login', 'refresh', 'logout', 'reset_password', 'change_password',\n"
    "              'admin_change_password' }\n"
    "local names = { 'user', 'password', 'remember_me', 'refresh_token', 'username', 'x_org',\n"
    "                'x_org_override', 'current_password', 'new_password', 'user_id', 'bogus' }\n"
    "local op = ops[opi % #ops + 1]\n"
    "local function check(ok, r)\n"
    "  if not ok and not core.is_error(r) then error('raw error: ' .. tostring(r)) end\n"
    "  return ok, r\n"
    "end\n"
    "if mode == 0 then\n"
    "  local params, overrides = {}, { http_headers = {} }\n"
    "  for i = 1, #pieces - 1, 2 do\n"
    "    local key = names[#pieces[i] % #names + 1]\n"
    "    params[key] = key == 'remember_me' and #pieces[i + 1] % 2 == 0 or pieces[i + 1]\n"
    "  end\n"
    "  if #pieces >= 2 then overrides.http_headers[pieces[1]] = pieces[2] end\n"
    "  local ok, req = check(pcall(client.prepare, client, op, params, overrides))\n"
    "  if ok then\n"
    "    for _, v in pairs(req.headers) do\n"
    "      if v:find('[%z\\1-\\31\\127]') then error('control character in a header') end\n"
    "    end\n"
    "  end\n"
    "else\n"
    "  -- The secret is long (redacted wherever the body spells it, in any\n"
    "  -- form) or, for one input in ten, under 8 characters (then none of the\n"
    "  -- API's text may be in the error at all). '@R' '@J' '@U' '@P' '@Q' '@H'\n"
    "  -- '@X' in the body become the secret as sent, JSON-escaped, JSON-escaped\n"
    "  -- to ASCII, percent-encoded, form-encoded, HTML-escaped by name and by\n"
    "  -- number; the error must hold none of these forms.\n"
    "  local short = #pieces % 10 == 9\n"
    "  local secret = short and 'p<w\"1' or ('fuzz se<cr\"et&/' .. (#pieces % 9))\n"
    "  local function hex(c) return ('%%%02X'):format(c:byte()) end\n"
    "  local named = { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['\"'] = '&quot;', [\"'\"] = '&#39;' }\n"
    "  local forms = {\n"
    "    R = secret,\n"
    "    J = (secret:gsub('[\\\\\"/]', '\\\\%0')),\n"
    "    U = (secret:gsub('[^%w ]', function(c) return ('\\\\u%04x'):format(c:byte()) end)),\n"
    "    P = (secret:gsub('[^%w%-%._~]', hex)),\n"
    "    Q = (secret:gsub('[^%w%-%._~ ]', hex):gsub(' ', '+')),\n"
    "    H = (secret:gsub('[&<>\"\\']', named)),\n"
    "    X = (secret:gsub('[^%w]', function(c) return ('&#x%x;'):format(c:byte()) end)),\n"
    "  }\n"
    "  local headers = {}\n"
    "  for i = 1, #pieces - 2, 2 do headers[pieces[i]] = pieces[i + 1] end\n"
    "  local body = (pieces[#pieces] or ''):gsub('@(%u)', function(k) return forms[k] end)\n"
    "  local ok, r = check(pcall(client.map, client, { operation = op, secrets = { secret } },\n"
    "                            status, headers, body))\n"
    "  if not ok then\n"
    "    local seen = {}\n"
    "    local function scan(v)\n"
    "      if type(v) == 'string' then\n"
    "        for name, form in pairs(forms) do\n"
    "          if v:find(form, 1, true) then error('secret leaked (form ' .. name .. '): ' .. v) end\n"
    "        end\n"
    "      elseif type(v) == 'table' and not seen[v] then\n"
    "        seen[v] = true\n"
    "        for k, x in pairs(v) do scan(k); scan(x) end\n"
    "      end\n"
    "    end\n"
    "    scan(r); scan(tostring(r))\n"
    "    if short and r.kind ~= 'argument' then\n"
    "      for _, field in ipairs { 'body', 'json', 'detail', 'error', 'error_description' } do\n"
    "        if r[field] ~= nil then error('the API text in ' .. field .. ' with a short secret') end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n";

/* The RFC 7515 A.2 (RSA) and A.3 (P-256) keys and the RFC 8037 A.4
 * (Ed25519) key: a keyset tokens can actually verify against. */
static const char rfc_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26"
    "mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxX"
    "FvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static const char jws_driver[] =
    "local core, rfc_keys, sel, leeway, pieces = ...\n"
    "local function check(ok, r)\n"
    "  if not ok and not core.is_error(r) then error('raw error: ' .. tostring(r)) end\n"
    "  return ok, r\n"
    "end\n"
    "local keys = rfc_keys\n"
    "if pieces[1] and pieces[1] ~= '' then\n"
    "  local ok, k = check(pcall(core.jwt_keyset, pieces[1]))\n"
    "  if not ok and (k.kind ~= 'argument' or k.field ~= 'jwks') then error('keyset: ' .. tostring(k)) end\n"
    "  if ok then\n"
    "    if type(k:kids()) ~= 'table' or k:count() < 1 or #k ~= k:count() then error('keyset methods') end\n"
    "    keys = k\n"
    "  end\n"
    "end\n"
    "local opts = { issuer = sel % 2 == 0 and 'joe' or false, now = 1300819300, leeway = leeway,\n"
    "  algorithms = { 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',\n"
    "    'Ed25519' } }\n"
    "if sel % 4 >= 2 then opts.audience = { 'a', 'b' } end\n"
    "if sel % 8 >= 4 then opts.types = { 'Bearer', 'application/at+jwt' } end\n"
    "if sel >= 128 then opts.algorithms = nil end\n"
    "for i = 2, #pieces do\n"
    "  local token = pieces[i]\n"
    "  local ok, claims, header = pcall(core.jwt_verify, token, keys, opts)\n"
    "  check(ok, claims)\n"
    "  if ok then\n"
    "    if type(claims) ~= 'table' or type(header) ~= 'table' then error('verified, but not two tables') end\n"
    "  else\n"
    "    local err = claims\n"
    "    if err.kind ~= 'token' or type(err.reason) ~= 'string' then error('not a token error: ' .. tostring(err)) end\n"
    "    for _, name in ipairs { 'kid', 'alg', 'iss' } do\n"
    "      if err[name] ~= nil and type(err[name]) ~= 'string' then error(name .. ' is not a string') end\n"
    "    end\n"
    "    local seen = {}\n"
    "    local function scan(v)\n"
    "      if type(v) == 'string' then\n"
    "        for j = 1, #token - 15 do\n"
    "          local run = token:sub(j, j + 15)\n"
    "          -- only runs that no fixed message could contain (the fuzzer does spell messages)\n"
    "          if run:find('[AC-IL-MP-RT-Z02357-9]') and v:find(run, 1, true) then\n"
    "            error('token leaked: ' .. v)\n"
    "          end\n"
    "        end\n"
    "      elseif type(v) == 'table' and not seen[v] then\n"
    "        seen[v] = true\n"
    "        for k, x in pairs(v) do scan(k); scan(x) end\n"
    "      end\n"
    "    end\n"
    "    -- kid, alg and iss are what the token claims, decoded: the rest must hold none of it\n"
    "    for k, x in pairs(err) do\n"
    "      if k ~= 'kid' and k ~= 'alg' and k ~= 'iss' then scan(k); scan(x) end\n"
    "    end\n"
    "    scan(tostring(err))\n"
    "  end\n"
    "end\n";

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "tfauth.core", luaopen_tfauth_core, 0);
    lua_getfield(L, -1, "new");
    lua_newtable(L);
    lua_pushliteral(L, "http://127.0.0.1:9");
    lua_setfield(L, -2, "server_url");
    lua_pushliteral(L, "fuzz.bearer-token");
    lua_setfield(L, -2, "bearer");
    lua_pushinteger(L, 4096);
    lua_setfield(L, -2, "max_response_bytes");
    lua_call(L, 1, 1);
    lua_setglobal(L, "fuzz_client");
    lua_setglobal(L, "fuzz_core");
    if (luaL_loadbuffer(L, driver, sizeof driver - 1, "driver") != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "fuzz_driver");
    lua_getglobal(L, "fuzz_core");
    lua_getfield(L, -1, "jwt_keyset");
    lua_pushstring(L, rfc_jwks);
    lua_call(L, 1, 1);
    lua_setglobal(L, "fuzz_rfc_keys");
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, jws_driver, sizeof jws_driver - 1, "jws_driver") != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setglobal(L, "fuzz_jws_driver");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t i, start;
    int n = 0, top = lua_gettop(L);
    int nargs = 6;
    if (size < 4) return 0;
    if (data[0] >= 0xC0) {
        lua_getglobal(L, "fuzz_jws_driver");
        lua_getglobal(L, "fuzz_core");
        lua_getglobal(L, "fuzz_rfc_keys");
        lua_pushinteger(L, data[1]);
        lua_pushinteger(L, data[2] % 128);
        nargs = 5;
    } else {
        lua_getglobal(L, "fuzz_driver");
        lua_getglobal(L, "fuzz_core");
        lua_getglobal(L, "fuzz_client");
        lua_pushinteger(L, data[0] & 1);
        lua_pushinteger(L, data[1]);
        lua_pushinteger(L, 100 + (((int)data[2] << 8 | data[3]) % 500));
    }
    lua_newtable(L);
    for (i = start = 4; i <= size; i++) {
        if (i == size || data[i] == 0) {
            lua_pushlstring(L, (const char *)data + start, i - start);
            lua_rawseti(L, -2, ++n);
            start = i + 1;
        }
    }
    if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
        fprintf(stderr, "invariant broken: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    return 0;
}
