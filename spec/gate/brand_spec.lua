-- tfauth.gate on real nginx (issue 18): brand and language. `page`,
-- `messages` and a templates directory (their checks at init: spec/gate/options_spec.lua).
local h = require "spec.helper"
local support = require "spec.gate.support"

local http, sh = h.http, h.sh
local first, start_with = support.first, support.start_with

local BRAND = [[page = { title = "Acme Portal", product = "Acme & 100%", logo_url = "https://cdn.example/logo.svg",
  stylesheet_url = "/brand.css", lang = "de",
  footer = { { text = "Impressum", url = "https://acme.example/impressum" }, { text = '<b>"Hilfe"</b>', url = "/help" } } },
messages = { signin_to = "Bei {product} anmelden", user_label = "Benutzername", password_label = "Passwort",
  signin_button = "Anmelden", signin_invalid = "Benutzername oder Passwort falsch.",
  forgot_password = "Passwort vergessen?" },
shared_dict = "tfauth_gate",]]

local function with_init(extra)
  return function(conf)
    local at, last = conf:find('shared_dict = "tfauth_gate",', 1, true)
    return conf:sub(1, at - 1) .. extra .. conf:sub(last + 1)
  end
end

local temp_dir = h.temp_dir

support.suite("tfauth.gate brand #nginx", function(t)
  it("names the product, carries the logo, stylesheet, language and footer, every value escaped; translated", function()
    local out, page, failed = start_with(t.prefix, with_init(BRAND), function(url)
      return { http(url .. "/login?rd=/app/") }, { http(url .. "/login", { headers = { "Accept: text/html" },
        form = { user = "alice", password = "wrong-Pass-1", rd = "/" } }) }
    end)
    assert.matches("rc=0", out)
    local status, headers, body = page[1], page[2], page[3]
    assert.equal(200, status)
    assert.matches('<html lang="de">', body, 1, true)
    assert.matches("<title>Bei Acme &amp; 100% anmelden – Acme Portal</title>", body, 1, true)
    assert.matches("<h1>Bei Acme &amp; 100% anmelden</h1>", body, 1, true)
    assert.matches('<p class="brand"><img src="https://cdn.example/logo.svg" alt=""><span>Acme &amp; 100%</span></p>',
      body, 1, true)
    assert.matches('<link rel="stylesheet" href="/brand.css">', body, 1, true)
    assert.matches('<label for="user">Benutzername</label>', body, 1, true)
    assert.matches('<button type="submit">Anmelden</button>', body, 1, true)
    assert.matches('<a href="/login/reset">Passwort vergessen?</a>', body, 1, true)
    assert.matches('<footer><ul><li><a href="https://acme.example/impressum">Impressum</a></li>'
      .. '<li><a href="/help">&lt;b&gt;&quot;Hilfe&quot;&lt;/b&gt;</a></li></ul></footer>', body, 1, true)
    local csp = first(headers, "content-security-policy")
    assert.matches("^default%-src 'none'; style%-src 'nonce%-%x+' 'self'; img%-src https://cdn%.example/logo%.svg; "
      .. "form%-action 'self'; frame%-ancestors 'none'; base%-uri 'none'$", csp)
    -- a failed attempt: the translated reason, the focus on the password
    status, body = failed[1], failed[3]
    assert.equal(401, status)
    assert.matches('role="alert">Benutzername oder Passwort falsch.</p>', body, 1, true)
    assert.matches('value="alice">', body, 1, true)
    assert.matches('autocomplete="current-password" required autofocus>', body, 1, true)
    assert.is_nil(body:find('autocomplete="username" required autofocus', 1, true))
  end)

  describe("templates directory", function()
    it("replaces a page whole, variables escaped, the CSP unchanged", function()
      local dir = temp_dir { ["signin.html"] = '<!DOCTYPE html>\n<html lang="{{lang}}"><head>{{head_html}}</head>'
        .. '<body><main><h1>{{heading}}</h1>{{notice_html}}<p id="who">{{user}}</p>{{content_html}}</main></body></html>\n' }
      local out, status, headers, body = start_with(t.prefix, with_init('templates = "' .. dir .. '",'
        .. ' shared_dict = "tfauth_gate",'), function(url)
        return http(url .. "/login", { headers = { "Accept: text/html" },
          form = { user = "<b>mallory</b>", password = "wrong-Pass-1", rd = "/" } })
      end)
      sh("rm -rf " .. dir)
      assert.matches("rc=0", out)
      assert.equal(401, status)
      assert.matches('<p id="who">&lt;b&gt;mallory&lt;/b&gt;</p>', body, 1, true)
      assert.matches('role="alert">Wrong user name or password.<', body, 1, true)
      assert.matches('<form method="post" action="/login">', body, 1, true)
      assert.is_nil(body:find("<b>mallory", 1, true))
      assert.matches("^default%-src 'none'; style%-src 'nonce%-%x+'; form%-action 'self'",
        first(headers, "content-security-policy"))
    end)

    -- (the other mistakes a template can hold: spec/gate/options_spec.lua)
    local bad = {
      { "an unknown variable", { ["forbidden.html"] = "<p>{{usr}}</p>" }, "forbidden.html: {{usr}} is not a known variable" },
    }
    for _, case in ipairs(bad) do
      it("stops nginx on " .. case[1] .. ", naming the file", function()
        local dir = temp_dir(case[2])
        local out = start_with(t.prefix, with_init('templates = "' .. dir .. '", shared_dict = "tfauth_gate",'))
        sh("rm -rf " .. dir)
        assert.matches("rc=1", out)
        assert.matches("argument 'templates': " .. dir .. "/" .. case[3], out, 1, true)
      end)
    end
  end)
end)
