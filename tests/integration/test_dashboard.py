"""The dashboard in a real headless Chromium (selenium), doing what a customer
does: a customer-admin logs in, adds a domain, sees the TXT record, which a
real Knot DNS then serves; "Verify now" turns the domain active; the backend
is changed to an aiosmtpd server; a spam message sent through a running
mxguardd is quarantined, found by its subject, previewed and released, and
arrives at the backend. A postmaster of another domain does not see it. A
message carrying <script> and markup is shown as text, and no script runs.

A screenshot of every page visited is saved as a PNG under
<build>/dashboard-screenshots/ (MXGUARD_SCREENSHOTS overrides)."""
import datetime
import json
import os
import shutil
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import knot as knot_mod  # noqa: E402
import mxg  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
HOSTILE = '<script>window.__xss = 1</script><b>bold</b><img src=x onerror="window.__xss = 2">'


def spam(subject, rcpt, text, n):
    return ("From: Mallory <mallory@sender.test>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <dash%d@sender.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--b\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n%s\r\n--b--\r\n") % (
                rcpt, subject, n, text, EICAR)


def screenshot_dir():
    if os.environ.get("MXGUARD_SCREENSHOTS"):
        return os.environ["MXGUARD_SCREENSHOTS"]
    # MXGUARD_BIN is <build>/src/console/mxguard.
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(mxg.MXGUARD)))),
                        "dashboard-screenshots")


class Browser:
    def __init__(self, base, shots):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--ignore-certificate-errors", "--window-size=1280,900", "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.base = base
        self.shots = shots
        self.n = 0
        self.console = []

    def get(self, path):
        """A fresh page load (about:blank first: a change of the #fragment alone would not reload)."""
        self.drv.get("about:blank")
        self.drv.get(self.base + path)

    def wait(self, cond, timeout=30, what=""):
        try:
            return WebDriverWait(self.drv, timeout).until(cond)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError("timed out waiting for %s on %s: %s" % (what, self.drv.current_url,
                                                                       self.drv.find_element(By.TAG_NAME, "body").text[:600]))

    def css(self, sel, timeout=30):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, sel)), timeout, sel)

    def text_in(self, sel, text, timeout=30):
        self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, sel), text), timeout, "%r in %s" % (text, sel))

    def fill(self, sel, value):
        e = self.css(sel)
        e.clear()
        e.send_keys(value)
        return e

    def shot(self, name):
        self.n += 1
        path = os.path.join(self.shots, "%02d-%s.png" % (self.n, name))
        self.drv.save_screenshot(path)
        return path

    def logs(self):
        self.console += self.drv.get_log("browser")
        return self.console

    def quit(self):
        self.drv.quit()


def login(b, user, password):
    b.get("/")
    b.fill("#user", user)
    b.fill("#password", password)
    b.css("#login button").click()
    b.css("#who")
    b.text_in("#who", user)


def logout(b):
    b.css("#logout").click()
    b.css("#login")


def main():
    if webdriver is None or not os.path.exists(CHROMIUM) or not os.path.exists(CHROMEDRIVER):
        print("SKIP: the dashboard test needs Debian's chromium, chromium-driver and python3-selenium "
              "(apt-get install chromium chromium-driver python3-selenium)")
        sys.exit(77)
    from test_delivery import Backend
    from test_web import Web, add_user

    shots = screenshot_dir()
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    d = mxg.Daemon(domains=("other.example",))
    backend = Backend()
    dns_port = knot_mod.free_udp_tcp_port()
    knot = None
    w = b = None

    def serve(value):
        """(Re)starts knotd on dns_port serving shop.example with `value` as the TXT record."""
        nonlocal knot
        if knot:
            knot.stop()
        kdir = os.path.join(d.dir, "knot-%d" % time.monotonic_ns())
        os.mkdir(kdir)
        knot_mod.free_udp_tcp_port = lambda: dns_port
        knot = knot_mod.Knot(kdir, {"shop.example": ['_mxguard-verify TXT "%s"' % value, "@ MX 10 mx.test.local."]})

    try:
        d.console("customer", "add", "globex")
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        add_user(d, "pat", "pat-password-1", "--role", "postmaster", "--domain", "other.example")
        with open(d.config, "a") as f:
            f.write('\n[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n' % dns_port)
        w = Web(d)
        d.start()
        b = Browser("https://127.0.0.1:%d" % w.port, shots)

        # Log in.
        b.get("/")
        b.css("#login")
        b.shot("login")
        b.fill("#user", "ada")
        b.fill("#password", "wrong-password")
        b.css("#login button").click()
        b.text_in("#error", "wrong user name or password")
        b.shot("login-failed")
        login(b, "ada", "ada-password-1")
        b.text_in("#domains", "other.example")
        b.shot("domains")
        print("ok: login (a wrong password says so), the domains list")

        # Add a domain: an error next to its field, as the API words it, then the real one.
        b.css("a[href='#/domains/new']").click()
        b.fill("#f-domain", "http://shop.example/")
        b.fill("#f-backend", "127.0.0.1:2")
        b.css("#add-domain button[type=submit]").click()
        b.text_in("#f-domain-error", "URL")
        r, raw = w.request("GET", "/")  # the server is still fine
        assert b.drv.find_element(By.ID, "f-domain").get_attribute("aria-invalid") == "true"
        b.shot("add-domain-error")
        b.fill("#f-domain", "shop.example")
        b.css("#add-domain button[type=submit]").click()
        b.css("#verify")
        b.text_in("h1", "shop.example")
        token = json.loads(d.console("domain", "show", "shop.example", "--json").stdout)["verification"]["value"]
        record = b.css("#verify dl.record").text
        assert "_mxguard-verify.shop.example" in record and token in record, record
        b.shot("domain-pending")
        print("ok: add domain (a bad name is refused next to its field), the TXT record to publish is shown")

        # Knot serves a wrong value first: the page says what it found; then the token: active.
        serve(token + "-typo")
        b.css("#verify-now").click()
        b.text_in("#verify-result", "Found instead")
        b.text_in("#verify-result", token + "-typo")
        b.shot("verify-mismatch")
        serve(token)
        b.css("#verify-now").click()
        b.text_in(".subtitle .badge", "Active")
        assert not b.drv.find_elements(By.ID, "verify")
        assert json.loads(d.console("domain", "show", "shop.example", "--json").stdout)["status"] == "active"
        b.shot("domain-active")
        print("ok: Verify now against knotd: a mismatch shows what was found; the token turns the domain active")

        # Settings: the backend becomes the aiosmtpd server; thresholds for the quarantine.
        b.fill("#f-backend", "127.0.0.1:%d" % backend.port)
        b.fill("#f-quarantine_threshold", "5")
        b.fill("#f-reject_threshold", "100")
        b.fill("#f-greylist_threshold", "100")
        b.css("#settings button[type=submit]").click()
        b.text_in("#notice", "Saved the settings of shop.example")
        shown = json.loads(d.console("domain", "show", "shop.example", "--json").stdout)
        assert shown["backend"]["port"] == backend.port and shown["thresholds"]["quarantine"] == 5, shown
        b.fill("#f-quarantine_days", "0")
        b.css("#settings button[type=submit]").click()
        b.css("#f-quarantine_days-error")
        b.wait(lambda drv: drv.find_element(By.ID, "f-quarantine_days-error").text != "", what="the field's error")
        b.shot("settings-error")
        print("ok: settings PATCH changes the backend and thresholds; a bad value is shown at its field")

        # Two messages through the engine: a spam and one carrying markup and script.
        for n, (subject, text) in enumerate((("Invoice 4711 overdue", "Please pay invoice 4711 today."),
                                             (HOSTILE, "Hello " + HOSTILE + " & <i>goodbye</i>"))):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                s.ehlo("client.sender.test")
                assert s.sendmail("mallory@sender.test", ["bob@shop.example"], spam(subject, "bob@shop.example",
                                                                                   text, n).encode("utf-8")) == {}
        deadline = time.time() + 30
        while len(d.console("quarantine", "list", "--json").stdout.splitlines()) < 2:
            assert time.time() < deadline, d.read_log()[-2000:]
            time.sleep(0.1)
        held = [json.loads(x) for x in d.console("quarantine", "list", "--json").stdout.splitlines()]
        ids = {m["subject"]: m["id"] for m in held}

        # One message a page: the newest first, "Older messages" to the next, "Newest messages" back.
        b.get("/app.html#/quarantine?limit=1")
        b.text_in("#messages", "<b>bold</b>")
        assert len(b.drv.find_elements(By.CSS_SELECTOR, "#messages tbody tr")) == 1
        assert not b.drv.find_elements(By.ID, "newest")
        b.shot("quarantine-page-1")
        b.css("#older").click()
        b.text_in("#messages", "Invoice 4711 overdue")
        assert len(b.drv.find_elements(By.CSS_SELECTOR, "#messages tbody tr")) == 1
        assert not b.drv.find_elements(By.ID, "older")
        b.shot("quarantine-page-2")
        b.css("#newest").click()
        b.text_in("#messages", "<b>bold</b>")
        print("ok: quarantine pages: newest first, Older messages, Newest messages")

        # Find the spam by subject, preview it, release it.
        b.css("a[data-section=quarantine]").click()
        b.fill("#f-search", "invoice 4711")
        b.css("#search button[type=submit]").click()
        b.text_in("#messages", "Invoice 4711 overdue")
        rows = b.drv.find_elements(By.CSS_SELECTOR, "#messages tbody tr")
        assert len(rows) == 1, [r.text for r in rows]
        b.shot("quarantine-search")
        # The date fields are the browser's local days (until includes its day).
        day = datetime.datetime.fromisoformat(held[0]["received"].replace("Z", "+00:00")).astimezone().date()
        for since, until, present in ((day, day, True), (day + datetime.timedelta(days=1), None, False),
                                      (None, day - datetime.timedelta(days=1), False)):
            query = "&".join("%s=%s" % (k, v) for k, v in (("since", since), ("until", until)) if v)
            b.get("/app.html#/quarantine?search=invoice+4711&" + query)
            b.css("#results table, #results .empty")
            assert bool(b.drv.find_elements(By.CSS_SELECTOR, "#messages tbody tr")) == present, (query, present)
        b.get("/app.html#/quarantine?search=invoice+4711")
        rows = [b.css("#messages tbody tr")]
        rows[0].find_element(By.CSS_SELECTOR, "td.subject a").click()
        b.text_in("#preview-text", "Please pay invoice 4711 today.")
        page = b.css("main").text
        assert "eicar.com" in page and "mallory@sender.test" in page, page
        b.shot("preview")
        b.css("#release").click()
        b.text_in("#notice", "Released 1 message")
        deadline = time.time() + 60
        while not backend.rec.messages:
            assert time.time() < deadline, "the release never reached the backend: " + d.read_log()[-2000:]
            time.sleep(0.1)
        got = backend.rec.messages[0]
        assert got["rcpts"] == ["bob@shop.example"] and b"Invoice 4711 overdue" in got["data"], got
        b.shot("quarantine-after-release")
        print("ok: found by subject, safe preview, Release: delivered by mxguardd to the aiosmtpd backend")

        # Markup and script in the subject and the text: shown as text, nothing runs.
        b.text_in("#messages", "<script>window.__xss = 1</script>")
        assert not b.drv.find_elements(By.CSS_SELECTOR, "#messages script, #messages b, #messages img")
        b.shot("quarantine-hostile-row")
        b.css("#messages td.subject a").click()
        b.text_in("#preview-text", "Hello <script>window.__xss = 1</script><b>bold</b>")
        b.text_in("h1", "<b>bold</b>")
        assert not b.drv.find_elements(By.CSS_SELECTOR, "main script, main b, main img, main i")
        assert b.drv.execute_script("return window.__xss === undefined") is True
        b.shot("preview-hostile")
        # Bulk: select it in the list, delete it.
        b.css("a[href='#/quarantine']").click()
        box = b.css("#messages tbody input[type=checkbox]")
        box.click()
        b.text_in("#selected-count", "1 selected")
        b.shot("quarantine-selected")
        b.css(".bulk button[data-action=delete]").click()
        b.wait(EC.alert_is_present(), what="the confirmation")
        b.drv.switch_to.alert.accept()
        b.text_in("#notice", "Deleted 1 message")
        b.css("#results .empty")
        assert d.console("quarantine", "list", "--json").stdout.strip() == ""
        assert b.drv.execute_script("return window.__xss === undefined") is True
        errors = [e for e in b.logs() if e.get("level") == "SEVERE"]
        assert not any("__xss" in e["message"] for e in errors), errors
        print("ok: <script> and markup in subject and text shown as text, no script run "
              "(window.__xss unset, no element made); bulk delete of a selection")

        # A phone-sized screen: the same page still works.
        b.drv.set_window_size(390, 844)
        b.drv.execute_script("location.hash = '#/domains/shop.example'")  # in-page navigation, as a click
        b.css("#settings")
        assert not b.drv.find_element(By.ID, "notice").is_displayed(), "a notice outlived its page"
        assert "null" not in b.css("main").text
        b.shot("phone-domain")
        b.get("/app.html#/quarantine")
        b.css("#results")
        b.shot("phone-quarantine")
        b.drv.set_window_size(1280, 900)

        # A postmaster of another domain sees none of it.
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.sendmail("mallory@sender.test", ["carol@shop.example"],
                       spam("Second invoice", "carol@shop.example", "again", 3).encode())
        deadline = time.time() + 30
        while not d.console("quarantine", "list", "--json").stdout.strip():
            assert time.time() < deadline
            time.sleep(0.1)
        secret_id = json.loads(d.console("quarantine", "list", "--json").stdout.splitlines()[0])["id"]
        logout(b)
        login(b, "pat", "pat-password-1")
        b.get("/app.html#/quarantine")
        b.css("#results .empty")
        assert "Second invoice" not in b.css("main").text
        b.shot("postmaster-quarantine")
        b.get("/app.html#/quarantine/" + secret_id)
        b.text_in("main .error", "not in your quarantine")
        assert "Second invoice" not in b.css("main").text
        b.shot("postmaster-other-message")
        b.get("/app.html#/domains")
        b.text_in("#domains", "other.example")
        assert "shop.example" not in b.css("main").text
        print("ok: a postmaster of another domain sees neither the message nor the domain")
        print("screenshots:", shots)
    finally:
        if b:
            b.quit()
        if w:
            w.stop()
        if knot:
            knot.stop()
        backend.stop()
        d.stop()
        d.cleanup()
    print("test_dashboard: all passed")


if __name__ == "__main__":
    main()
