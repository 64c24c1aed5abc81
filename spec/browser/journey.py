"""The gate as a person meets it, in a real browser: headless Chromium
(Debian's chromium + chromium-driver, python3-selenium) against what
`make demo-gate` starts (TFAUTH_DEMO_URL). Prints TAP.

Visit a protected page, land on the sign-in page, sign in, arrive at the
page first asked for, sign out, be sent back to sign in; on the way: a wrong
password is shown as such, and the admin page tells a user with the role
from one without.

Every page of the gate (issue 18) is visited at two window sizes, desktop
and a 390x844 phone: its screenshot is saved under build/browser/ for a
reviewer, and axe-core (spec/browser/node_modules, `npm ci` from
spec/support/deps.sh) finds no violation tagged wcag2a, wcag2aa, wcag21a or
wcag21aa.

Run: make demo-gate DEMO_CMD="/usr/bin/python3 spec/browser/journey.py"
Waits are explicit and generous (a loaded 2-core machine runs this while
other suites run): nothing here depends on timing.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import check, report  # noqa: E402 (beside this file)

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["TFAUTH_DEMO_URL"]
BACKEND = os.environ["TFAUTH_TEST_URL"]
WAIT = 60  # seconds: generous, explicit waits only
HERE = os.path.dirname(os.path.abspath(__file__))
SHOTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "browser")
AXE = os.path.join(HERE, "node_modules", "axe-core", "axe.min.js")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = (("desktop", 1280, 900), ("phone", 390, 844))



def browser():
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-extensions", "--window-size=1024,768"):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    profile = tempfile.mkdtemp(prefix="tfauth-chromium-")
    options.add_argument("--user-data-dir=" + profile)
    if os.path.exists("/usr/bin/chromium"):
        options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver, profile


def path_of(url):
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def wait_for_path(driver, path, why):
    try:
        WebDriverWait(driver, WAIT).until(lambda d: urlsplit(d.current_url).path == path)
    except TimeoutException:
        raise AssertionError("%s: still at %s" % (why, driver.current_url))


def sign_in(driver, user, password):
    form_user = WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.NAME, "user")))
    form_user.clear()
    form_user.send_keys(user)
    field = driver.find_element(By.NAME, "password")
    field.clear()
    field.send_keys(password)
    field.submit()


def text_of(driver, element_id):
    return WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.ID, element_id))).text


def tfauth_cookies(driver):
    return [c for c in driver.get_cookies() if c["name"] in ("__Host-tfauth", "tfauth_sid")]


def fetch(url, body=None, headers=None):
    """(status, text) of a request made without the browser."""
    req = urllib.request.Request(url, data=body, headers=headers or {})
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with direct.open(req, timeout=WAIT) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refusal:
        return refusal.code, refusal.read().decode()


def axe_violations(driver):
    """axe-core's violations of the WCAG 2.0/2.1 A and AA rules on the page, injected
    through WebDriver (the pages' CSP allows no script: the driver's own is not theirs)."""
    with open(AXE, encoding="utf-8") as f:
        driver.execute_script(f.read())
    result = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(function (r) { done(r.violations); }, function (e) { done([{id: 'axe-error', help: String(e)}]); });",
        WCAG)
    return ["%s: %s (%s)" % (v["id"], v["help"], ", ".join(n["target"][0] if isinstance(n["target"][0], str)
                                                         else str(n["target"]) for n in v.get("nodes", [])[:3]))
            for v in result]


def look_at(driver, name):
    """The page as shown, at each window size: a screenshot under build/browser/,
    no WCAG A/AA violation, and on the phone a margin on both sides, nothing wider than the window."""
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
    problems = []
    for size, width, height in SIZES:
        driver.set_window_size(width, height)
        driver.save_screenshot(os.path.join(SHOTS, "%s-%s.png" % (name, size)))
        problems += ["%s: %s" % (size, v) for v in axe_violations(driver)]
        if size == "phone":
            inner, scroll = driver.execute_script(
                "return [window.innerWidth, document.documentElement.scrollWidth]")
            assert scroll <= inner, "%s: wider than the phone (%d > %d)" % (name, scroll, inner)
            box = driver.execute_script(
                "var m = document.querySelector('main'); if (!m) return null;"
                "var r = m.getBoundingClientRect(); return [r.left, window.innerWidth - r.right]")
            if box:
                assert min(box) >= 8, "%s: the card touches the edge on a phone (%r)" % (name, box)
    driver.set_window_size(SIZES[0][1], SIZES[0][2])
    assert not problems, "%s: %s" % (name, "; ".join(problems))


def backend(path, body):
    status, text = fetch(BACKEND + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 200, (path, status, text)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    if not os.path.exists(AXE):
        print("1..1\nnot ok 1 - browser: axe-core is missing: run bash spec/support/deps.sh test (npm ci)")
        return 1
    driver, profile = browser()
    first = "/app/journey?from=browser&x=1"
    try:
        @check("axe-core works here: it finds the violations of a page without lang and labels")
        def _():
            driver.get("data:text/html,<!DOCTYPE html><html><head><title>bad</title></head>"
                       "<body><main><input id=x></main></body></html>")
            found = " ".join(axe_violations(driver))
            assert "html-has-lang" in found and "label" in found, found

        @check("a protected page, visited without a session, lands on the sign-in page, rd carried")
        def _():
            driver.get(URL + first)
            wait_for_path(driver, "/login", "no redirect to the sign-in page")
            rd = parse_qs(urlsplit(driver.current_url).query).get("rd")
            assert rd == [first], "rd is %r" % (rd,)
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.NAME, "password")))

        @check("the sign-in page names the product, shows the logo, offers \"Forgot password?\"")
        def _():
            assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in to Acme Notes"
            assert driver.title == "Sign in to Acme Notes \u2013 tfauth demo", driver.title
            logo = driver.find_element(By.CSS_SELECTOR, ".brand img")
            assert driver.execute_script("return arguments[0].naturalWidth", logo) > 0, "the logo did not load"
            driver.find_element(By.LINK_TEXT, "Forgot password?")
            assert driver.switch_to.active_element.get_attribute("id") == "user"
            look_at(driver, "signin")

        @check("a wrong password keeps the person on the sign-in page, told so, without a cookie")
        def _():
            sign_in(driver, "alice", "not-her-password-9")
            alert = WebDriverWait(driver, WAIT).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
            assert alert.text.strip() != "", "no reason shown"
            assert urlsplit(driver.current_url).path == "/login", driver.current_url
            assert "not-her-password-9" not in driver.page_source, "the password is echoed"
            assert tfauth_cookies(driver) == [], driver.get_cookies()
            assert driver.switch_to.active_element.get_attribute("id") == "password", "the focus is not on the password"
            look_at(driver, "signin-failed")

        @check("signing in arrives at the page first asked for, as alice, with an HttpOnly cookie")
        def _():
            driver.get(URL + first)
            wait_for_path(driver, "/login", "no redirect to the sign-in page")
            sign_in(driver, "alice", "alice-Secret-1")
            wait_for_path(driver, "/app/journey", "not sent to the page first asked for")
            assert path_of(driver.current_url) == first, driver.current_url
            assert text_of(driver, "user") == "alice", driver.page_source
            assert text_of(driver, "page") == "Protected page"
            cookies = tfauth_cookies(driver)
            assert len(cookies) == 1 and cookies[0]["httpOnly"], cookies
            assert "eyJ" not in cookies[0]["value"], "a token in the cookie"
            assert "user" in text_of(driver, "roles").split(","), text_of(driver, "roles")

        @check("the admin page refuses alice with the 403 page: who, a way back, sign out, someone else")
        def _():
            driver.get(URL + "/admin/")
            WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
            assert "Admin page" not in driver.page_source, driver.page_source[:300]
            text = driver.find_element(By.TAG_NAME, "main").text
            assert "You are signed in as alice" in text, text
            for label in ("Back to the start page", "Change password"):
                driver.find_element(By.LINK_TEXT, label)
            buttons = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "form button")]
            assert buttons == ["Sign out", "Sign out, then sign in as someone else"], buttons
            look_at(driver, "forbidden")

        @check("auth_request's 403 through error_page = @forbidden is the same page")
        def _():
            driver.get(URL + "/reports/")
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
            assert driver.find_element(By.TAG_NAME, "h1").text == "No access", driver.page_source[:300]
            look_at(driver, "forbidden-auth-request")

        @check("\"Sign out, then sign in as someone else\" signs out and comes back to the page, via the sign-in page")
        def _():
            driver.get(URL + "/admin/")
            WebDriverWait(driver, WAIT).until(EC.element_to_be_clickable(
                (By.XPATH, "//button[text()='Sign out, then sign in as someone else']"))).click()
            wait_for_path(driver, "/login", "not sent to sign in")
            assert "You have signed out." in driver.find_element(By.TAG_NAME, "main").text
            sign_in(driver, "admin", "admin-Secret-3")
            wait_for_path(driver, "/admin/", "not back at the admin page")
            assert text_of(driver, "user") == "admin"

        @check("GET /logout asks first; its button signs out; the sign-in page says so")
        def _():
            driver.get(URL + "/logout")
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
            assert "You are signed in as admin" in driver.find_element(By.TAG_NAME, "main").text
            look_at(driver, "signout")
            driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
            wait_for_path(driver, "/login", "not sent to sign in")
            assert tfauth_cookies(driver) == [], driver.get_cookies()
            assert "You have signed out." in driver.find_element(By.TAG_NAME, "main").text
            look_at(driver, "signin-signed-out")
            driver.get(URL + "/login")
            assert "You have signed out." not in driver.find_element(By.TAG_NAME, "main").text

        @check("signing out sends the person back to the sign-in page, and the session is gone")
        def _():
            driver.get(URL + "/app/")
            wait_for_path(driver, "/login", "the sign-out above did not end the session")
            sign_in(driver, "alice", "alice-Secret-1")
            wait_for_path(driver, "/app/", "not signed in")
            look_at(driver, "application")
            WebDriverWait(driver, WAIT).until(EC.element_to_be_clickable((By.ID, "signout"))).click()
            wait_for_path(driver, "/login", "not sent back to sign in")
            assert parse_qs(urlsplit(driver.current_url).query).get("rd") == ["/app/"], driver.current_url
            assert tfauth_cookies(driver) == [], driver.get_cookies()
            driver.get(URL + "/app/again")
            wait_for_path(driver, "/login", "the protected page is reachable after signing out")

        @check("admin signs in and reaches the admin page")
        def _():
            driver.get(URL + "/admin/")
            wait_for_path(driver, "/login", "no redirect to the sign-in page")
            sign_in(driver, "admin", "admin-Secret-3")
            wait_for_path(driver, "/admin/", "not sent to the admin page")
            assert text_of(driver, "page") == "Admin page"
            assert text_of(driver, "user") == "admin"
            assert "admin" in text_of(driver, "roles").split(",")

        @check("a rule with a typo: the gate's own 500 page, not nginx's")
        def _():
            driver.get(URL + "/typo/")
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
            assert driver.find_element(By.TAG_NAME, "h1").text == "Something went wrong", driver.page_source[:300]
            look_at(driver, "error")

        @check("\"Forgot password?\": the form, then the same answer for anyone; the reset is sent")
        def _():
            driver.get(URL + "/login")
            driver.find_element(By.LINK_TEXT, "Forgot password?").click()
            wait_for_path(driver, "/login/reset", "not at the reset page")
            look_at(driver, "reset")
            field = driver.find_element(By.NAME, "user")
            field.send_keys("bob")
            field.submit()
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=status]")))
            assert "email to reset its password is on its way" in driver.find_element(By.TAG_NAME, "main").text
            look_at(driver, "reset-sent")
            for _ in range(100):
                if "bob" in json.loads(fetch(BACKEND + "/_test/resets")[1]):
                    break
                time.sleep(0.1)
            assert "bob" in json.loads(fetch(BACKEND + "/_test/resets")[1]), "no reset reached the auth API"

        @check("change password: a wrong current one is shown as such, then the change, still signed in")
        def _():
            driver.get(URL + "/account/password")
            wait_for_path(driver, "/account/password", "not at the change-password page")
            look_at(driver, "password")
            def submit(current, new):
                for name, value in (("current_password", current), ("new_password", new),
                                    ("new_password_again", new)):
                    driver.find_element(By.NAME, name).send_keys(value)
                driver.find_element(By.CSS_SELECTOR, "form button").click()
            submit("not-the-Password-1", "admin-New-Secret-4")
            alert = WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
            assert alert.text == "The current password is wrong.", alert.text
            look_at(driver, "password-wrong")
            submit("admin-Secret-3", "admin-New-Secret-4")
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=status]")))
            look_at(driver, "password-changed")
            driver.get(URL + "/admin/")
            assert text_of(driver, "user") == "admin"

        @check("the auth API unreachable when the session must refresh: the 503 page")
        def _():
            backend("/_test/config", {"access_ttl": 2})
            try:
                driver.delete_all_cookies()
                driver.get(URL + "/app/unavailable")
                wait_for_path(driver, "/login", "no redirect to the sign-in page")
                sign_in(driver, "alice", "alice-Secret-1")
                wait_for_path(driver, "/app/unavailable", "not signed in")
                time.sleep(3)  # the access token expires
                backend("/_test/script", {"path": "/api/iam/refresh", "close_without_answer": True, "times": 10})
                driver.get(URL + "/app/unavailable")
                WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
                assert driver.find_element(By.TAG_NAME, "h1").text == "Not possible right now", driver.page_source[:300]
                look_at(driver, "unavailable")
            finally:
                backend("/_test/config", {"access_ttl": 300})
                fetch(BACKEND + "/_test/reset", b"")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    @check("the demo's /metrics counts the journey's sign-ins (Prometheus text, parsed)")
    def _():
        families = {f.name: f for f in text_string_to_metric_families(fetch(URL + "/metrics")[1])}
        logins = {s.labels["result"]: s.value for s in families["tfauth_logins"].samples
                  if s.name == "tfauth_logins_total"}
        assert logins.get("ok", 0) >= 2 and logins.get("failed", 0) >= 1, logins

    @check("the demo takes the realm's bearer tokens: alice's reaches the protected page, not the admin page")
    def _():
        body = json.dumps({"user": "alice", "password": "alice-Secret-1"}).encode()
        token = json.loads(fetch(os.environ["TFAUTH_TEST_URL"] + "/api/iam/login", body,
                                 {"Content-Type": "application/json"})[1])["access_token"]
        status, page = fetch(URL + "/app/bearer", headers={"Authorization": "Bearer " + token})
        assert status == 200 and 'id="user">alice<' in page, (status, page[:200])
        assert fetch(URL + "/admin/", headers={"Authorization": "Bearer " + token})[0] == 403

    return report()


if __name__ == "__main__":
    sys.exit(main())
