/* fuzz_tfauth.c: libFuzzer harness for the request builder and the response
 * mapper, through the same entry points a Lua transport uses
 * (client:prepare, client:map).
 *
 * Input: byte 0 picks builder or mapper, byte 1 the operation, bytes 2-3
 * the status; the rest is split on NUL into strings (parameters, headers,
 * body). Invariants, beyond "no crash, no sanitizer report":
 *  - every failure is a tfauth.Error, never a raw Lua error;
 *  - no header value the builder makes holds a control character;
 *  - no string in a mapped error holds the request's secret. */
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
    "  local secret = 'fuzzsecret' .. (#pieces % 10)\n"
    "  local headers = {}\n"
    "  for i = 1, #pieces - 2, 2 do headers[pieces[i]] = pieces[i + 1] end\n"
    "  local body = (pieces[#pieces] or ''):gsub('SECRET', secret)\n"
    "  local ok, r = check(pcall(client.map, client, { operation = op, secrets = { secret } },\n"
    "                            status, headers, body))\n"
    "  if not ok then\n"
    "    local seen = {}\n"
    "    local function scan(v)\n"
    "      if type(v) == 'string' and v:find(secret, 1, true) then error('secret leaked: ' .. v) end\n"
    "      if type(v) == 'table' and not seen[v] then\n"
    "        seen[v] = true\n"
    "        for k, x in pairs(v) do scan(k); scan(x) end\n"
    "      end\n"
    "    end\n"
    "    scan(r); scan(tostring(r))\n"
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
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t i, start;
    int n = 0, top = lua_gettop(L);
    if (size < 4) return 0;
    lua_getglobal(L, "fuzz_driver");
    lua_getglobal(L, "fuzz_core");
    lua_getglobal(L, "fuzz_client");
    lua_pushinteger(L, data[0] & 1);
    lua_pushinteger(L, data[1]);
    lua_pushinteger(L, 100 + (((int)data[2] << 8 | data[3]) % 500));
    lua_newtable(L);
    for (i = start = 4; i <= size; i++) {
        if (i == size || data[i] == 0) {
            lua_pushlstring(L, (const char *)data + start, i - start);
            lua_rawseti(L, -2, ++n);
            start = i + 1;
        }
    }
    if (lua_pcall(L, 6, 0, 0) != LUA_OK) {
        fprintf(stderr, "invariant broken: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    return 0;
}
