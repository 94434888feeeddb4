#!/usr/bin/env python3
"""The quarantine digest's links, followed as the mail's reader does: a real
mxguardd quarantines spam (EICAR) for a user and their shadow address,
`mxguard digest send` mails the digest to an aiosmtpd backend, the test reads
it with Python's email package and opens its links in headless Chromium on
the real mxguard-web. Opening a link changes nothing; confirming a release
delivers the message to the backend (Bayes learns it as ham, the audit log
names digest:<recipient>); the link then says it was used; an altered token,
a token under another action's path, a foreign Origin and (with the clock
moved by libfaketime) an expired link get a plain page and change nothing;
the delete link removes its message; release-and-allow is refused.

Screenshots of every page go to <build>/dashboard-screenshots-digest-links/.

Run: MXGUARDD_BIN=... MXGUARD_BIN=... MXGUARD_WEB_BIN=... /usr/bin/python3 tests/integration/test_digest_links.py
"""
import email
import email.policy
import json
import os
import re
import shutil
import smtplib
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
import test_dashboard  # noqa: E402
from test_delivery import Backend  # noqa: E402
from test_tracking import VIRUS  # noqa: E402
from test_web import Web  # noqa: E402

SUBJECTS = {
    # Markup in a subject is the sender's: the page must show it as text.
    "release": ("bob@example.com", 'Invoice <b>for bob</b> <script>window.__xss = 1</script> & co'),
    "shadow": ("bob@example.org", "Shadow copy for bob's alias"),
    "expire": ("bob@example.com", "Kept past its retention"),
}


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def wait_for(cond, what, timeout=30):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class Links:
    def __init__(self):
        self.backend = Backend()
        self.d = mxg.Daemon(domains=("example.com", "example.org"), verdicts=True)
        c = self.d.console
        for dom in ("example.com", "example.org"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100",
              "backend=127.0.0.1:%d" % self.backend.port)
        c("user", "add", "bob", "--role", "user", "--customer", "acme", "--address", "bob@example.com",
          "--shadow", "bob@example.org")
        self.w = Web(self.d)
        self.d.start()
        self.base = "https://127.0.0.1:%d" % self.w.port
        self.b = None

    def close(self):
        if self.b:
            self.b.quit()
        self.w.stop()
        self.d.stop()
        self.backend.stop()
        self.d.cleanup()

    def held(self):
        return {r["id"]: r for r in json_lines(self.d.console("quarantine", "list", "--json").stdout)}

    def send_virus(self, key):
        rcpt, subject = SUBJECTS[key]
        body = VIRUS.replace("Subject: invoice", "Subject: " + subject).replace("-N@", "-%s@" % key)
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
            s.ehlo("client.test")
            s.sendmail("spammer@bad.test", [rcpt], ("From: <spammer@bad.test>\r\nTo: <%s>\r\n" % rcpt + body).encode())

    def page(self, method, path, origin=None):
        """(status, state, html) of a link page fetched over HTTPS without a browser."""
        h = {"Origin": origin} if origin else {"Origin": None}
        r, raw = self.w.request(method, path, headers=h)
        html = raw.decode()
        assert r.getheader("Content-Type") == "text/html; charset=utf-8", (path, r.getheader("Content-Type"))
        csp = r.getheader("Content-Security-Policy")
        assert "script-src 'none'" in csp and "form-action 'self'" in csp, csp
        m = re.search(r'data-state="([a-z_]+)"', html)
        return r.status, m.group(1) if m else None, html

    def shown(self, b, state):
        """Waits for the page in Chromium to be in `state`; returns its visible text."""
        b.wait(lambda drv: drv.find_element(By.CSS_SELECTOR, "main").get_attribute("data-state") == state,
               what="page state %s" % state)
        return b.drv.find_element(By.TAG_NAME, "body").text


def main():
    global By
    if test_dashboard.webdriver is None or not os.path.exists(test_dashboard.CHROMIUM):
        print("SKIP: needs chromium, chromium-driver and python3-selenium")
        sys.exit(77)
    By = test_dashboard.By
    shots = test_dashboard.screenshot_dir() + "-digest-links"
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    t = Links()
    try:
        run(t, shots)
    finally:
        t.close()
    print("screenshots in", shots)


def run(t, shots):
    c = t.d.console
    for key in SUBJECTS:
        t.send_virus(key)
    wait_for(lambda: len(t.held()) == 3, "three quarantined messages")
    ids = {}
    for mid, r in t.held().items():
        for key, (rcpt, subject) in SUBJECTS.items():
            if r["subject"] == subject:
                ids[key] = mid
    assert set(ids) == set(SUBJECTS), ids

    # The digest, read from the backend as a mail reader does.
    sent = json_lines(c("digest", "send", "--settle", "0", "--json").stdout)
    assert [s["recipient"] for s in sent] == ["bob@example.com"], sent
    digest_mail = t.backend.rec.wait(1)[0]
    assert digest_mail["rcpts"] == ["bob@example.com"], digest_mail["rcpts"]
    msg = email.message_from_bytes(digest_mail["data"], policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    link_re = re.compile(re.escape(t.w.public_url) + r"(/digest/(release|release_allow|delete)/[A-Za-z0-9_.-]+)")
    links = {}  # (message id, action) -> path
    for path, action in link_re.findall(text):
        token = path.rsplit("/", 1)[1]
        v = json.loads(c("digest", "verify", token, "--json").stdout)
        links[(v["message_id"], action)] = path
    assert len(links) == 9, links  # three messages (the shadow's merged in), three actions each
    release = links[(ids["release"], "release")]
    print("ok: digest mailed to the backend, %d links for 3 messages (shadow merged)" % len(links))

    # An altered token (one character changed) is refused and changes nothing.
    token = release.rsplit("/", 1)[1]
    payload, sig = token.split(".")
    i = len(payload) // 2
    altered = "/digest/release/" + payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1:] + "." + sig
    before = t.held()
    status, state, html = t.page("GET", altered)
    assert status == 400 and state == "forged", (status, state, html)
    assert "altered or forged" in html, html
    status, state, _ = t.page("POST", altered, origin=t.base)
    assert status == 400 and state == "forged", (status, state)
    # The same token under another action's path.
    status, state, html = t.page("POST", release.replace("/release/", "/delete/"), origin=t.base)
    assert status == 400 and state == "wrong_action", (status, state, html)
    # Release-and-allow: a domain's allow list is its admins', not a digest reader's.
    status, state, html = t.page("GET", links[(ids["release"], "release_allow")])
    assert status == 403 and state == "not_permitted", (status, state, html)
    status, state, _ = t.page("POST", links[(ids["release"], "release_allow")], origin=t.base)
    assert status == 403 and state == "not_permitted", (status, state)
    # A POST from another site (or with no Origin) does nothing.
    status, state, _ = t.page("POST", release, origin="https://evil.example")
    assert status == 403 and state == "bad_origin", (status, state)
    status, state, _ = t.page("POST", release)
    assert status == 403 and state == "bad_origin", (status, state)
    assert t.held() == before and t.backend.rec.messages == [digest_mail]
    assert "list.add" not in c("audit", "--json").stdout
    print("ok: altered token 400 (forged), wrong action 400, release_allow 403, foreign Origin 403; nothing changed")

    # In Chromium: opening the link only shows the message and a button.
    b = t.b = test_dashboard.Browser(t.base, shots)
    b.get(release)
    page_text = t.shown(b, "confirm")
    b.shot("confirm")
    assert "Release this message?" in page_text, page_text
    assert SUBJECTS["release"][1] in page_text, page_text  # markup shown as text
    assert "spammer@bad.test" in page_text and "bob@example.com" in page_text, page_text
    assert b.drv.execute_script("return window.__xss === undefined") is True
    assert b.drv.find_elements(By.CSS_SELECTOR, "main b, main script") == []
    assert ids["release"] in t.held(), "a GET released the message"
    assert t.backend.rec.messages == [digest_mail]
    # A phone-sized screen: nothing wider than the screen.
    b.drv.set_window_size(390, 844)
    b.get(release)
    t.shown(b, "confirm")
    assert b.drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth") is True
    b.shot("confirm-phone")
    b.drv.set_window_size(1280, 900)
    b.get(release)
    t.shown(b, "confirm")
    print("ok: GET shows the confirm page (subject markup as text, no script ran); the message is still held")

    spam_before, ham_before = mxg.bayes_counts(t.d)
    b.drv.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    page_text = t.shown(b, "done")
    b.shot("done")
    assert "Message released" in page_text, page_text
    delivered = t.backend.rec.wait(2)[1]
    assert delivered["rcpts"] == ["bob@example.com"], delivered["rcpts"]
    assert SUBJECTS["release"][1].encode() in delivered["data"], delivered["data"][:400]
    assert ids["release"] not in t.held()
    assert mxg.bayes_counts(t.d) == (spam_before, ham_before + 2)  # the release and the probe
    audit = [e for e in json_lines(c("audit", "--json").stdout) if e["action"] == "quarantine.release"]
    assert [(e["principal"], e["object"]) for e in audit] == [("digest:bob@example.com", ids["release"])], audit
    print("ok: confirm (POST from the page) releases: delivered to the backend, learned as ham, "
          "audit principal digest:bob@example.com")

    # The link again: used, in the browser and for a second POST.
    b.get(release)
    page_text = t.shown(b, "used")
    b.shot("used")
    assert "already used" in page_text, page_text
    status, state, _ = t.page("POST", release, origin=t.base)
    assert status == 409 and state == "used", (status, state)
    b.get(altered)
    t.shown(b, "forged")
    b.shot("invalid")
    assert len(t.backend.rec.messages) == 2
    print("ok: the link then says it was used (GET and POST, 409); the altered one stays refused")

    # The shadow's delete link.
    delete = links[(ids["shadow"], "delete")]
    b.get(delete)
    page_text = t.shown(b, "confirm")
    assert "Delete this message?" in page_text and "bob@example.org" in page_text, page_text
    assert ids["shadow"] in t.held()
    b.drv.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    page_text = t.shown(b, "done")
    b.shot("deleted")
    assert "Message deleted" in page_text, page_text
    assert ids["shadow"] not in t.held()
    audit = [e for e in json_lines(c("audit", "--json").stdout) if e["action"] == "quarantine.delete"]
    assert [(e["principal"], e["object"]) for e in audit] == [("digest:bob@example.com", ids["shadow"])], audit
    # Its release link now finds nothing to release.
    status, state, _ = t.page("GET", links[(ids["shadow"], "release")])
    assert status == 404 and state == "gone", (status, state)
    print("ok: the shadow address's delete link removes it (audited as digest:bob@example.com); "
          "its release link then says it is gone (404)")

    # The clock 40 days on (the domain keeps mail 30): the link has expired.
    t.w.stop()
    t.w = Web(t.d, again=t.w, env={"LD_PRELOAD": mxg.FAKETIME_LIB, "FAKETIME": "+40d", "DONT_FAKE_MONOTONIC": "1"})
    expire = links[(ids["expire"], "release")]
    b.get(expire)
    page_text = t.shown(b, "expired")
    b.shot("expired")
    assert "expired" in page_text, page_text
    status, state, _ = t.page("POST", expire, origin=t.base)
    assert status == 400 and state == "expired", (status, state)
    assert ids["expire"] in t.held() and len(t.backend.rec.messages) == 2
    # The same link with the real clock still works: only the time refused it.
    t.w.stop()
    t.w = Web(t.d, again=t.w)
    status, state, _ = t.page("GET", expire)
    assert status == 200 and state == "confirm", (status, state)
    print("ok: with the clock moved past the retention (libfaketime +40d) the link has expired: 400, "
          "still held; with the real clock it is still valid")

    # The refusal pages' 4xx statuses are logged as failed loads; anything
    # else (a CSP violation, a script error) is a bug.
    errors = [e for e in b.logs() if e.get("level") == "SEVERE" and "Failed to load resource" not in e["message"]]
    assert errors == [], errors
    print("ok: no CSP violation or script error in Chromium's console")


if __name__ == "__main__":
    main()
