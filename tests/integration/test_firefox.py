"""The dashboard in a real headless Firefox (firefox-esr), driven over its
own Marionette protocol (tests/integration/marionette.py; Debian has no
geckodriver): a customer-admin logs in, adds a domain and sees the TXT
record to publish; a spam message sent through a running mxguardd with
smtplib is found in the quarantine, previewed (markup shown as text) and
released to an aiosmtpd backend; the quarantine's page links (newest /
older) work.

Screenshots: <build>/firefox-screenshots/ (MXGUARD_SCREENSHOTS overrides)."""
import json
import os
import shutil
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import marionette  # noqa: E402
import mxg  # noqa: E402
from test_dashboard import HOSTILE, spam  # noqa: E402


def screenshot_dir():
    if os.environ.get("MXGUARD_SCREENSHOTS"):
        return os.environ["MXGUARD_SCREENSHOTS"]
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(mxg.MXGUARD)))),
                        "firefox-screenshots")


class Page:
    """The dashboard in Firefox: waits on conditions, bounded in time."""

    def __init__(self, ff, base, shots):
        self.ff, self.base, self.shots, self.n = ff, base, shots, 0

    def get(self, path):
        self.ff.navigate("about:blank")
        self.ff.navigate(self.base + path)

    def wait(self, cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = cond()
            except marionette.MarionetteError as e:
                if e.error not in ("no such element", "stale element reference"):
                    raise
                got = None
            if got:
                return got
            if time.monotonic() > deadline:
                self.shot("timeout")
                raise AssertionError("timed out waiting for %s: %s" % (what, self.ff.script(
                    "return document.body ? document.body.innerText.slice(0, 600) : ''")))
            time.sleep(0.1)

    def css(self, sel, timeout=30):
        def shown():
            found = self.ff.find_all(sel)
            return next((e for e in found if e.displayed()), None)
        return self.wait(shown, sel, timeout)

    def text_in(self, sel, text, timeout=30):
        self.wait(lambda: any(text in e.text for e in self.ff.find_all(sel)), "%r in %s" % (text, sel), timeout)

    def fill(self, sel, value):
        e = self.css(sel)
        e.clear()
        e.send_keys(value)
        return e

    def shot(self, name):
        self.n += 1
        return self.ff.screenshot(os.path.join(self.shots, "%02d-%s.png" % (self.n, name)))


def main():
    if not os.path.exists(marionette.FIREFOX):
        print("SKIP: the Firefox test needs Debian's firefox-esr (apt-get install firefox-esr)")
        sys.exit(77)
    from test_delivery import Backend
    from test_web import Web, add_user

    shots = screenshot_dir()
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    d = mxg.Daemon(domains=("other.example",))
    backend = Backend()
    w = ff = None
    try:
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        d.console("domain", "add", "mail.example", "--customer", "acme", "--backend", "127.0.0.1:%d" % backend.port,
                  "--tls", "none", "--active")
        d.console("domain", "set", "mail.example", "reject_threshold=100", "quarantine_threshold=5",
                  "greylist_threshold=100")
        w = Web(d)
        d.start()
        ff = marionette.Firefox(os.path.join(d.dir, "firefox.log"))
        p = Page(ff, "https://127.0.0.1:%d" % w.port, shots)

        # Log in: a wrong password says so, then the domains list.
        p.get("/")
        p.css("#login")
        p.fill("#user", "ada")
        p.fill("#password", "wrong-password")
        p.css("#login button").click()
        p.text_in("#error", "wrong user name or password")
        p.shot("login-failed")
        p.fill("#password", "ada-password-1")
        p.css("#login button").click()
        p.text_in("#who", "ada")
        p.text_in("#domains", "other.example")
        p.shot("domains")
        print("ok: Firefox: login (a wrong password says so), the domains list")

        # Add a domain; the TXT record to publish is shown with the token the store holds.
        p.css("a[href='#/domains/new']").click()
        p.fill("#f-domain", "shop.example")
        p.fill("#f-backend", "127.0.0.1:2")
        p.css("#add-domain button[type=submit]").click()
        p.text_in("h1", "shop.example")
        token = json.loads(d.console("domain", "show", "shop.example", "--json").stdout)["verification"]["value"]
        record = p.css("#verify dl.record").text
        assert "_mxguard-verify.shop.example" in record and token in record, record
        p.shot("domain-pending")
        print("ok: Firefox: add domain, the TXT record (name and token) is shown")

        # Two spam messages through mxguardd; the second carries markup and script.
        for n, (subject, text) in enumerate((("Invoice 4711 overdue", "Please pay invoice 4711 today."),
                                             (HOSTILE, "Hello " + HOSTILE))):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                s.ehlo("client.sender.test")
                assert s.sendmail("mallory@sender.test", ["bob@mail.example"],
                                  spam(subject, "bob@mail.example", text, n).encode("utf-8")) == {}
        deadline = time.time() + 30
        while len(d.console("quarantine", "list", "--json").stdout.splitlines()) < 2:
            assert time.time() < deadline, d.read_log()[-2000:]
            time.sleep(0.1)

        # The quarantine one message a page: newest first, then "Older messages", then back.
        p.get("/app.html#/quarantine?limit=1")
        p.text_in("#messages", "<script>window.__xss = 1</script>")
        assert len(ff.find_all("#messages tbody tr")) == 1
        assert not ff.find_all("#newest")
        assert not ff.find_all("#messages script, #messages b, #messages img")
        p.shot("quarantine-page-1")
        p.css("#older").click()
        p.text_in("#messages", "Invoice 4711 overdue")
        assert len(ff.find_all("#messages tbody tr")) == 1 and not ff.find_all("#older")
        p.shot("quarantine-page-2")
        p.css("#newest").click()
        p.text_in("#messages", "<b>bold</b>")
        print("ok: Firefox: quarantine pages (newest first, Older messages, Newest messages), markup as text")

        # Search by subject, open the safe preview, release.
        p.get("/app.html#/quarantine")
        p.fill("#f-search", "invoice 4711")
        p.css("#search button[type=submit]").click()
        p.wait(lambda: len(ff.find_all("#messages tbody tr")) == 1 and "Invoice 4711" in p.css("#messages").text,
               "one row found")
        p.shot("quarantine-search")
        p.css("#messages td.subject a").click()
        p.text_in("#preview-text", "Please pay invoice 4711 today.")
        main_text = p.css("main").text
        assert "eicar.com" in main_text and "mallory@sender.test" in main_text, main_text
        p.shot("preview")
        p.css("#release").click()
        p.text_in("#notice", "Released 1 message")
        deadline = time.time() + 60
        while not backend.rec.messages:
            assert time.time() < deadline, "the release never reached the backend: " + d.read_log()[-2000:]
            time.sleep(0.1)
        got = backend.rec.messages[0]
        assert got["rcpts"] == ["bob@mail.example"] and b"Invoice 4711 overdue" in got["data"], got
        p.text_in("#messages", "<script>window.__xss = 1</script>")
        assert "Invoice 4711" not in p.css("#messages").text
        p.shot("quarantine-after-release")
        assert ff.script("return window.__xss === undefined") is True
        print("ok: Firefox: found by subject, safe preview, Release: delivered by mxguardd to the aiosmtpd backend")

        # The hostile message's preview: text, not markup; nothing ran.
        p.css("#messages td.subject a").click()
        p.text_in("#preview-text", "Hello <script>window.__xss = 1</script><b>bold</b>")
        assert not ff.find_all("main script, main b, main img")
        assert ff.script("return window.__xss === undefined") is True
        p.shot("preview-hostile")
        print("ok: Firefox: markup in subject and text shown as text, no script run")
        print("screenshots:", shots)
    finally:
        if ff:
            ff.quit()
        if w:
            w.stop()
        backend.stop()
        d.stop()
        d.cleanup()
    print("test_firefox: all passed")


if __name__ == "__main__":
    main()
