-- tfauth.gate.options and tfauth.gate.templates (issue 18), in plain Lua:
-- `page`, `messages`, `templates`, `account`, `logout_url` and `rules`
-- checked as gate.init checks them (nginx refuses to start on any of these:
-- spec/gate/config_spec.lua, brand_spec.lua, mistakes_spec.lua prove it there).
local options = require "tfauth.gate.options"
local templates = require "tfauth.gate.templates"
local h = require "spec.helper"

local function built_from(cfg)
  local built = {}
  options.build(built, cfg)
  return built
end

local function refusal(cfg)
  local ok, err = pcall(built_from, cfg)
  assert.is_false(ok, "accepted")
  return tostring(err)
end

local temp_dir = h.temp_dir

describe("tfauth.gate.options", function()
  it("has defaults without any of its keys: English, no brand, no account, /logout, no rules", function()
    local built = built_from {}
    assert.equal("en", built.page.lang)
    assert.same({}, built.page.footer)
    assert.is_nil(built.account)
    assert.equal("/logout", built.logout_url)
    assert.same({}, built.rules)
    assert.equal("Wrong user name or password.", built.messages.signin_invalid)
  end)

  it("checks account: the reset interval defaults to 15 minutes", function()
    local built = built_from { account = { x_org = "acme", reset_url = "/login/reset" } }
    assert.same({ x_org = "acme", reset_url = "/login/reset", reset_interval = 900 }, built.account)
  end)

  it("allows a logo and a stylesheet by their URL in the CSP ('self' for a local path)", function()
    local built = built_from { page = { logo_url = "/logo.png", stylesheet_url = "https://cdn.example/a.css" } }
    assert.equal("'self'", built.page.img_src)
    assert.equal("https://cdn.example/a.css", built.page.style_src)
  end)

  local refused = {
    { "an http logo", { page = { logo_url = "http://cdn.example/logo.svg" } },
      "'page.logo_url': expected a local path or an https URL" },
    { "a protocol-relative logo", { page = { logo_url = "//cdn.example/logo.svg" } }, "'page.logo_url'" },
    { "a javascript: link", { page = { footer = { { text = "x", url = "javascript:alert(1)" } } } },
      "'page.footer[1].url': expected a local path or an https URL" },
    { "a footer link without text", { page = { footer = { { url = "/x" } } } }, "'page.footer[1]'" },
    { "a footer that is not a list", { page = { footer = { a = { text = "x", url = "/x" } } } }, "'page.footer'" },
    { "a quote in a URL", { page = { stylesheet_url = "/x.css' 'unsafe-inline" } }, "'page.stylesheet_url'" },
    { "a space in a URL", { page = { stylesheet_url = "/x.css https://evil.example" } }, "'page.stylesheet_url'" },
    { "an unknown page key", { page = { colour = "red" } }, "'page.colour': is not a known key" },
    { "a bad lang", { page = { lang = 'de"><script>' } }, "'page.lang': expected a language tag" },
    { "a title with a newline", { page = { title = "a\nb" } }, "'page.title'" },
    { "an unknown message", { messages = { sigin_button = "x" } }, "'messages.sigin_button': is not a known message" },
    { "an empty message", { messages = { signin_button = "" } }, "'messages.signin_button'" },
    { "an unknown account key", { account = { reset_ur = "/r" } }, "'account.reset_ur': is not a known key" },
    { "a reset_interval below 1 s", { account = { reset_interval = 0 } }, "'account.reset_interval'" },
    { "an external change_password_url of http", { account = { change_password_url = "http://x.example/" } },
      "'account.change_password_url'" },
    { "an absolute logout_url", { logout_url = "https://x.example/logout" }, "'logout_url': expected a local path" },
    { "a rule with an unknown key", { rules = { admin = { role = { "admin" } } } },
      "'rules.admin.role': is not a known key (roles, client_roles)" },
    { "a rule whose roles are not a list", { rules = { admin = { roles = "admin" } } }, "'rules.admin.roles'" },
    { "a rule whose client roles are not lists", { rules = { ed = { client_roles = { api = "editor" } } } },
      "'rules.ed.client_roles.api'" },
    { "a missing templates directory", { templates = "/nonexistent/tfauth" },
      "'templates': no directory /nonexistent/tfauth" },
  }
  for _, case in ipairs(refused) do
    it("refuses " .. case[1] .. ", naming the key", function()
      assert.matches("tfauth: gate.init: argument " .. case[3], refusal(case[2]), 1, true)
    end)
  end

  describe("a templates directory", function()
    local bad = {
      { "an unknown variable", { ["forbidden.html"] = "<p>{{usr}}</p>" }, "forbidden.html: {{usr}} is not a known variable" },
      { "an unclosed variable", { ["signout.html"] = "<p>{{user</p>" }, "signout.html: has an unclosed {{" },
      { "an expression", { ["error.html"] = "<p>{{ user .. x }}</p>" }, "error.html: {{ user .. x }} is not a variable" },
      { "a file for no page", { ["sigin.html"] = "<p></p>" }, "sigin.html: not a page's template" },
    }
    for _, case in ipairs(bad) do
      it("is refused for " .. case[1] .. ", naming the file", function()
        local dir = temp_dir(case[2])
        local err = refusal { templates = dir }
        os.execute("rm -rf " .. dir)
        assert.matches("argument 'templates': " .. dir .. "/" .. case[3], err, 1, true)
      end)
    end

    it("is loaded at start: the pages it has, by name", function()
      local dir = temp_dir { ["signin.html"] = "<h1>{{heading}}</h1>", ["README"] = "not a template" }
      local built = built_from { templates = dir }
      os.execute("rm -rf " .. dir)
      assert.same({ signin = "<h1>{{heading}}</h1>" }, built.templates)
    end)
  end)
end)

describe("tfauth.gate.templates", function()
  it("escapes every variable except the gate's own *_html pieces", function()
    local out = templates.fill('<p title="{{user}}">{{ user }}</p>{{notice_html}}{{rd}}',
      { user = [[<a href="x">'&]], notice_html = "<b>ok</b>" })
    assert.equal('<p title="&lt;a href=&quot;x&quot;&gt;&#39;&amp;">&lt;a href=&quot;x&quot;&gt;&#39;&amp;</p><b>ok</b>',
      out)
  end)

  it("takes a product name with % in it (no pattern anywhere)", function()
    local built = built_from { page = { product = "100% Notes" }, messages = { signin_to = "Sign in to {product}" } }
    assert.equal("100% Notes", built.page.product)
    assert.equal("Sign in to 100% Notes", templates.text(built.messages, "signin_to", { product = built.page.product }))
  end)

  it("fills a message's {names}, escaped, and escapes the message itself", function()
    local messages = { forbidden_text = "<i>{user}</i> has no access" }
    assert.equal("&lt;i&gt;&lt;script&gt;&lt;/i&gt; has no access",
      templates.text(messages, "forbidden_text", { user = "<script>" }))
  end)

  it("has a default for every message a page uses (each documented in docs/gate.md)", function()
    local doc = assert(io.open("docs/gate.md")):read("*a")
    local built = built_from {}
    for key in pairs(built.messages) do
      assert.matches("`" .. key .. "`", doc, 1, true)
    end
  end)
end)
