"""A cookie planted by a sibling subdomain, in a real browser (issue 15.5).
Headless Chromium (Debian's chromium + chromium-driver, python3-selenium)
against the gate behind HTTPS, as app.example.test, with a sibling,
evil.example.test, on the same nginx; `--host-resolver-rules` sends
*.example.test to loopback. The certificate is made here by a throwaway
test CA (openssl), trusted by Chromium through an NSS database (certutil,
libnss3-tools) in a temporary HOME: no --ignore-certificate-errors, so the
pages are a secure context and `__Host-` cookies hold exactly as they do on
a real site. Prints TAP.

1. The gate's default cookie, `__Host-tfauth`: the sibling plants
   `pref=x,__Host-tfauth=<the attacker's session>; Domain=example.test;
   Path=/app/`. Chromium sends it first (longer Path); nginx's
   `$cookie___Host-tfauth` would split on `,` and take it. The gate reads
   pairs split on `;` only: the victim stays who they are, and the upstream
   gets pref as it came, without the victim's session cookie.
2. A cookie named without the `__Host-` prefix (`cookie.name`): the sibling
   plants a second `tfauth_sid` for Domain=example.test, Path=/app/. Two
   cookies of the gate's name: no session (neither is taken), and the
   sign-in page tells the person to clear this site's cookies, although
   the planted cookie is not sent to /login (its Path is /app/).

Run under spec/support/with-backend.sh (the reference backend), after
`make jit`: /usr/bin/python3 spec/browser/planted_cookie.py
"""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import check, failed, report  # noqa: E402 (beside this file)

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BACKEND = os.environ["TFAUTH_TEST_URL"]
WAIT = 60  # seconds: generous, explicit waits only
APP, EVIL = "app.example.test", "evil.example.test"



def run(*argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_certs(folder):
    """A test CA and one certificate for both names (and 127.0.0.1)."""
    ext = os.path.join(folder, "ext.cnf")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,DNS:%s,IP:127.0.0.1\n" % (APP, EVIL))
    p = lambda name: os.path.join(folder, name)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=tfauth test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=" + APP)
    run("openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", p("server.pem"))
    return p("ca.pem")


def trusting_home(folder, ca):
    """A HOME whose NSS database (Chromium's on Linux) trusts the test CA."""
    home = os.path.join(folder, "home")
    nssdb = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nssdb)
    run("certutil", "-d", "sql:" + nssdb, "-N", "--empty-password")
    run("certutil", "-d", "sql:" + nssdb, "-A", "-t", "C,,", "-n", "tfauth-test-ca", "-i", ca)
    return home


CONF = r"""
%(user)s
worker_processes 1;
daemon off;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log info;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
events { worker_connections 256; }
http {
    access_log off;
    absolute_redirect off;
    client_body_temp_path %(prefix)s/tmp;
    proxy_temp_path %(prefix)s/tmp;
    lua_package_path "%(root)s/lua/?.lua;%(root)s/lua/?/init.lua;;";
    lua_package_cpath "%(root)s/build/jit/?.so;;";
    lua_shared_dict tfauth_sessions 1m;
    lua_shared_dict tfauth_gate 1m;
    init_by_lua_block {
        require("tfauth.gate").init {
            server_url = "%(backend)s",
            keys = { "%(key)s" },
            cookie = %(cookie)s,
        }
    }
    ssl_certificate %(certs)s/server.pem;
    ssl_certificate_key %(certs)s/server.key;
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name %(app)s;
        location = /_tfauth {
            internal;
            set $tfauth_url "";
            set $tfauth_host "";
            rewrite_by_lua_block { require("tfauth.openresty").subrequest() }
            proxy_pass $tfauth_url;
            proxy_http_version 1.1;
            proxy_redirect off;
        }
        location = /login { content_by_lua_block { require("tfauth.gate").login() } }
        # what the upstream would get: the guard has already changed the request
        location /app/ {
            default_type text/html;
            access_by_lua_block { require("tfauth.gate").guard() }
            content_by_lua_block {
                local function esc(s) return (tostring(s or ""):gsub("[&<>\"']", function(c)
                    return ("&#%%d;"):format(c:byte()) end)) end
                ngx.say('<p id="user">', esc(ngx.var.http_x_auth_request_user), '</p>',
                    '<p id="cookie">', esc(ngx.var.http_cookie or "(none)"), '</p>')
            }
        }
    }
    # The sibling: plants a cookie with the session id it is given, for the
    # whole registrable domain, on the app's /app/ (a longer Path than the gate's).
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name %(evil)s;
        location = /plant-pref {
            default_type text/html;
            add_header Set-Cookie "pref=x,__Host-tfauth=$arg_sid; Domain=example.test; Path=/app/; Secure" always;
            return 200 "<p id=planted>planted</p>";
        }
        location = /plant-sid {
            default_type text/html;
            add_header Set-Cookie "tfauth_sid=$arg_sid; Domain=example.test; Path=/app/; Secure" always;
            return 200 "<p id=planted>planted</p>";
        }
    }
}
"""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(folder, certs, cookie):
    prefix = tempfile.mkdtemp(prefix="tfauth-planted-", dir=folder)
    os.makedirs(os.path.join(prefix, "tmp"))
    port = free_port()
    conf = CONF % {"user": "user root;" if os.geteuid() == 0 else "", "prefix": prefix, "root": ROOT,
                   "backend": BACKEND, "key": os.urandom(32).hex(), "cookie": cookie, "certs": certs,
                   "port": port, "app": APP, "evil": EVIL}
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", "nginx.conf"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
        try:
            https(port, "GET", "/login")
            return proc, port, prefix
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("nginx did not start: " + proc.stderr.read().decode())
            time.sleep(0.05)
    raise RuntimeError("nginx did not answer")


CONTEXT = None


def https(port, method, path, body=None, headers=None):
    """(status, headers, text) of a request to app.example.test, without the browser."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=CONTEXT, timeout=WAIT)
    conn.request(method, path, body=body, headers=dict(headers or {}, Host=APP))
    answer = conn.getresponse()
    return answer.status, answer.getheaders(), answer.read().decode()


def session_of(port, user, password):
    """A session id, signed in without the browser (the attacker's)."""
    body = urllib.parse.urlencode({"user": user, "password": password})
    status, headers, _ = https(port, "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, status
    cookie = [v for k, v in headers if k.lower() == "set-cookie"][0]
    return cookie.split(";", 1)[0].split("=", 1)


def browser(home):
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-extensions", "--no-proxy-server", "--host-resolver-rules=MAP *.example.test 127.0.0.1"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    options.add_argument("--user-data-dir=" + os.path.join(home, "profile"))
    options.binary_location = "/usr/bin/chromium"
    env = dict(os.environ, HOME=home)  # its NSS database trusts the test CA
    service = Service(executable_path="/usr/bin/chromedriver", env=env)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


def text_of(driver, element_id):
    return WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.ID, element_id))).text


def sign_in(driver, base, path, user, password):
    driver.get(base + path)
    WebDriverWait(driver, WAIT).until(lambda d: urlsplit(d.current_url).path == "/login")
    WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.NAME, "user"))).send_keys(user)
    field = driver.find_element(By.NAME, "password")
    field.send_keys(password)
    field.submit()
    WebDriverWait(driver, WAIT).until(lambda d: urlsplit(d.current_url).path == path)


def all_cookies(driver):
    return driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]


def journeys(home, certs):
    driver = browser(home)
    procs = []
    try:
        proc, port, _ = start_nginx(home, certs, '{ same_site = "Lax" }')
        procs.append(proc)
        base, evil = "https://%s:%d" % (APP, port), "https://%s:%d" % (EVIL, port)

        @check("__Host-tfauth: a sibling plants pref=x,__Host-tfauth=<attacker>; the victim stays who they are")
        def _():
            name, attacker = session_of(port, "admin", "admin-Secret-3")
            assert name == "__Host-tfauth", name
            sign_in(driver, base, "/app/whoami", "alice", "alice-Secret-1")
            assert text_of(driver, "user") == "alice", driver.page_source
            mine = [c for c in all_cookies(driver) if c["name"] == "__Host-tfauth"]
            assert len(mine) == 1 and mine[0]["secure"] and mine[0]["domain"] == APP, mine
            driver.get(evil + "/plant-pref?sid=" + attacker)
            text_of(driver, "planted")
            planted = [c for c in all_cookies(driver) if c["name"] == "pref"]
            assert planted and planted[0]["value"] == "x,__Host-tfauth=" + attacker, all_cookies(driver)
            assert planted[0]["domain"] == ".example.test" and planted[0]["path"] == "/app/", planted
            driver.get(base + "/app/whoami")
            assert text_of(driver, "user") == "alice", "the session was swapped: " + driver.page_source
            # the upstream: pref as the browser sent it, the victim's session cookie removed
            seen = text_of(driver, "cookie")
            assert seen == "pref=x,__Host-tfauth=" + attacker, seen
            assert mine[0]["value"] not in driver.page_source

        driver.delete_all_cookies()
        driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        proc, port, prefix = start_nginx(home, certs, '{ same_site = "Lax", name = "tfauth_sid" }')
        procs.append(proc)
        base, evil = "https://%s:%d" % (APP, port), "https://%s:%d" % (EVIL, port)

        @check("a name without __Host-: a planted duplicate is no session, and the sign-in page says to clear cookies")
        def _():
            name, attacker = session_of(port, "admin", "admin-Secret-3")
            assert name == "tfauth_sid", name
            sign_in(driver, base, "/app/whoami", "alice", "alice-Secret-1")
            assert text_of(driver, "user") == "alice"
            driver.get(evil + "/plant-sid?sid=" + attacker)
            text_of(driver, "planted")
            assert len([c for c in all_cookies(driver) if c["name"] == "tfauth_sid"]) == 2, all_cookies(driver)
            driver.get(base + "/app/whoami")
            WebDriverWait(driver, WAIT).until(lambda d: urlsplit(d.current_url).path == "/login")
            query = parse_qs(urlsplit(driver.current_url).query)
            assert query.get("rd") == ["/app/whoami"] and query.get("cookies") == ["duplicate"], driver.current_url
            alert = WebDriverWait(driver, WAIT).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))).text
            assert "Clear this site's cookies" in alert, alert
            assert "admin" not in driver.page_source
            # signing in again does not help while the planted cookie lives: it is still refused
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.NAME, "user"))).send_keys("alice")
            field = driver.find_element(By.NAME, "password")
            field.send_keys("alice-Secret-1")
            field.submit()
            WebDriverWait(driver, WAIT).until(EC.staleness_of(field))
            WebDriverWait(driver, WAIT).until(lambda d: urlsplit(d.current_url).path == "/login")
            assert parse_qs(urlsplit(driver.current_url).query).get("cookies") == ["duplicate"], driver.current_url
            with open(os.path.join(prefix, "error.log")) as f:
                log = f.read()
            assert "more than one tfauth_sid cookie in the request: no session" in log
            # (nginx's own info lines quote the sibling's /plant-sid?sid=... request line; the gate's never do)
            assert not [line for line in log.splitlines() if "tfauth: " in line and attacker in line]
    finally:
        driver.quit()
        for proc in procs:
            proc.terminate()
            proc.wait()


def main():
    global CONTEXT
    folder = tempfile.mkdtemp(prefix="tfauth-planted-")
    try:
        certs = os.path.join(folder, "certs")
        os.makedirs(certs)
        ca = make_certs(certs)
        CONTEXT = ssl.create_default_context(cafile=ca)
        CONTEXT.check_hostname = False  # https() dials 127.0.0.1 and names app.example.test in Host
        home = trusting_home(folder, ca)
        journeys(home, certs)
    except Exception:
        failed("setting up the journey")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report()


if __name__ == "__main__":
    sys.exit(main())
