"""The gate as a person meets it, in a real browser: headless Chromium
(Debian's chromium + chromium-driver, python3-selenium) against what
`make demo-gate` starts (TFAUTH_DEMO_URL). Prints TAP.

Visit a protected page, land on the sign-in page, sign in, arrive at the
page first asked for, sign out, be sent back to sign in; on the way: a wrong
password is shown as such, and the admin page tells a user with the role
from one without.

Run: make demo-gate DEMO_CMD="/usr/bin/python3 spec/browser/journey.py"
Waits are explicit and generous (a loaded 2-core machine runs this while
other suites run): nothing here depends on timing.
"""
import json
import os
import shutil
import sys
import tempfile
import traceback
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from prometheus_client.parser import text_string_to_metric_families

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["TFAUTH_DEMO_URL"]
WAIT = 60  # seconds: generous, explicit waits only

results = []


def check(description):
    """Decorator: runs a step as one TAP test; a failed step fails alone."""
    def run(step):
        try:
            step()
            results.append((True, description, ""))
        except Exception:  # report it in TAP and go on with the next step
            results.append((False, description, traceback.format_exc()))
        return step
    return run


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


def main():
    driver, profile = browser()
    first = "/app/journey?from=browser&x=1"
    try:
        @check("a protected page, visited without a session, lands on the sign-in page, rd carried")
        def _():
            driver.get(URL + first)
            wait_for_path(driver, "/login", "no redirect to the sign-in page")
            rd = parse_qs(urlsplit(driver.current_url).query).get("rd")
            assert rd == [first], "rd is %r" % (rd,)
            WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.NAME, "password")))

        @check("a wrong password keeps the person on the sign-in page, told so, without a cookie")
        def _():
            sign_in(driver, "alice", "not-her-password-9")
            alert = WebDriverWait(driver, WAIT).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
            assert alert.text.strip() != "", "no reason shown"
            assert urlsplit(driver.current_url).path == "/login", driver.current_url
            assert "not-her-password-9" not in driver.page_source, "the password is echoed"
            assert tfauth_cookies(driver) == [], driver.get_cookies()

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

        @check("the admin page refuses alice (no admin role)")
        def _():
            driver.get(URL + "/admin/")
            WebDriverWait(driver, WAIT).until(lambda d: d.execute_script("return document.readyState") == "complete")
            assert "Admin page" not in driver.page_source, driver.page_source[:300]
            assert "insufficient_scope" in driver.page_source or "forbidden" in driver.page_source.lower(), \
                driver.page_source[:300]

        @check("signing out sends the person back to the sign-in page, and the session is gone")
        def _():
            driver.get(URL + "/app/")
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

    print("1..%d" % len(results))
    for n, (ok, description, detail) in enumerate(results, 1):
        print("%s %d - browser: %s" % ("ok" if ok else "not ok", n, description))
        for line in detail.splitlines():
            print("# " + line)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
