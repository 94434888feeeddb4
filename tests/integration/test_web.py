"""mxguard-web (issue 17): the real server on loopback HTTPS with a self-signed
certificate, users made by the real console, requests by http.client/ssl.
The engine is never started: the web server reads the state dir's LMDB alone."""
import http.client
import json
import os
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from knot import Knot  # noqa: E402

WEB = os.environ.get("MXGUARD_WEB_BIN", os.path.join(mxg.ROOT, "build/src/web/mxguard-web"))
STATIC = os.path.join(mxg.ROOT, "src/web/static")


class Web:
    def __init__(self, d, again=None, idle=None):
        """again: a stopped Web whose config (port, certificate) this one reuses;
        idle: web.session_idle ("2s")."""
        self.d = d
        if again:
            self.port, self.cert, self.key, self.public_url = again.port, again.cert, again.key, again.public_url
        else:
            self.configure(d, idle)
        self.start()

    def configure(self, d, idle=None):
        self.port = mxg.free_port()
        self.cert, self.key = mxg.make_test_cert(d.dir)
        self.public_url = "https://mx.test.local:%d" % self.port
        with open(d.config, "a") as f:
            f.write('\n[web]\nlisten = ["127.0.0.1:%d"]\npublic_url = "%s"\ncertificate = "%s"\n'
                    'private_key = "%s"\nstatic_dir = "%s"\n' % (self.port, self.public_url, self.cert, self.key,
                                                                STATIC))
            if idle:
                f.write('session_idle = "%s"\n' % idle)

    def start(self):
        self.log = open(os.path.join(self.d.dir, "web.log"), "a")
        self.proc = subprocess.Popen([WEB, "--config", self.d.config], stdout=self.log, stderr=subprocess.STDOUT)
        self.ctx = ssl.create_default_context(cafile=self.cert)
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, "mxguard-web exited: %s" % open(self.log.name).read()
            try:
                self.request("GET", "/")
                break
            except (ConnectionError, ssl.SSLError, OSError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def request(self, method, path, body=None, headers=None, source="127.0.0.1"):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30,
                                        source_address=(source, 0))
        h = {"Origin": "https://127.0.0.1:%d" % self.port}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        data = json.dumps(body) if body is not None and not isinstance(body, str) else body
        if data is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        return r, raw

    def login(self, user, password, source="127.0.0.1", origin=None):
        return self.request("POST", "/api/v1/session", {"user": user, "password": password}, source=source,
                            headers={"Origin": origin} if origin else None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=20) == 0, "mxguard-web did not stop cleanly on SIGTERM"
        self.log.close()


def js(raw):
    return json.loads(raw.decode())


def add_user(d, name, password, *args):
    d.console("user", "add", name, *args, "--password-file", "-", input=password)


def cookie_of(r):
    sc = r.getheader("Set-Cookie")
    return sc.split(";")[0]  # "mxg_session=..."


class Client:
    """One logged-in dashboard user: the cookie and CSRF token on every request."""

    def __init__(self, w, user, password):
        self.w = w
        r, raw = w.login(user, password)
        assert r.status == 200, (user, r.status, raw)
        self.cookie, self.csrf = cookie_of(r), js(raw)["csrf_token"]

    def __call__(self, method, path, body=None, csrf=True, origin=True):
        h = {"Cookie": self.cookie}
        if csrf:
            h["X-CSRF-Token"] = self.csrf
        if not origin:
            h["Origin"] = "https://evil.example"
        r, raw = self.w.request(method, path, body, headers=h)
        assert r.getheader("Content-Type") == "application/json", (path, r.getheader("Content-Type"))
        return r.status, js(raw)


def console_domains(d, *as_user):
    args = ("--as", as_user[0]) if as_user else ()
    out = d.console(*args, "domain", "list", "--json").stdout
    return {json.loads(line)["domain"]: json.loads(line) for line in out.splitlines()}


def test_domains_api(d, w):
    """The domain endpoints as each role, against the console's view of the same store."""
    d.console("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
    add_user(d, "gina", "gina-password", "--role", "customer-admin", "--customer", "globex")
    add_user(d, "pete", "pete-password", "--role", "postmaster", "--domain", "acme.example")
    # bob is locked out by then (the rate limit test); carol is the operator here.
    alice, bob = Client(w, "alice", "alice-password"), Client(w, "carol", "carol-password")
    pete, gina = Client(w, "pete", "pete-password"), Client(w, "gina", "gina-password")

    # Each sees exactly what the console's --as shows it.
    for who, name in ((alice, "alice"), (pete, "pete"), (gina, "gina")):
        status, body = who("GET", "/api/v1/domains")
        assert status == 200, (name, status, body)
        seen = {x["domain"]: x for x in body["domains"]}
        assert seen == console_domains(d, name), (name, seen.keys())
    status, body = bob("GET", "/api/v1/domains")
    assert {x["domain"] for x in body["domains"]} == {"acme.example", "globex.example"}, body
    status, body = alice("GET", "/api/v1/domains/acme.example")
    assert status == 200 and body == console_domains(d)["acme.example"], (status, body)
    print("ok: GET /api/v1/domains: each role sees what `domain list --as` shows, same JSON fields")

    # Another tenant's domain is a 404, like a missing one; nothing changes.
    before = d.console("domain", "show", "globex.example", "--json").stdout
    for method, path, body in (("GET", "/api/v1/domains/globex.example", None),
                               ("PATCH", "/api/v1/domains/globex.example", {"tls": "none"}),
                               ("DELETE", "/api/v1/domains/globex.example", None),
                               ("POST", "/api/v1/domains/globex.example/verify", None)):
        for who in (alice, pete):
            status, b = who(method, path, body)
            assert status == 404 and b["code"] == "not_found", (method, path, status, b)
            # Worded as a missing object: a 404 that says "not permitted" tells the name exists.
            assert b["error"] == "no such domain: globex.example", b
        status, missing = alice(method, path.replace("globex.example", "nosuch.example"), body)
        assert status == 404 and missing["error"].replace("nosuch", "X") == b["error"].replace("globex", "X"), missing
    assert d.console("domain", "show", "globex.example", "--json").stdout == before
    print("ok: another customer's domain is 404 for GET, PATCH, DELETE and verify, worded as a missing one")

    # Role and input refusals write nothing.
    count = len(console_domains(d))
    status, b = pete("POST", "/api/v1/domains", {"domain": "pete.example", "backend": "127.0.0.1:2"})
    assert status == 403 and b["code"] == "not_permitted", (status, b)
    status, b = alice("POST", "/api/v1/domains", {"domain": "new.example", "customer": "globex",
                                                  "backend": "127.0.0.1:2"})
    assert status == 403, (status, b)
    status, b = alice("POST", "/api/v1/domains", {"domain": "http://bad.example/", "backend": "127.0.0.1:2"})
    assert status == 400 and b["code"] == "usage" and b["field"] == "domain" and "URL" in b["error"], (status, b)
    status, b = alice("POST", "/api/v1/domains", {"domain": "ok.example", "backend": "host:99999"})
    assert status == 400 and b["field"] == "backend", (status, b)
    status, b = alice("POST", "/api/v1/domains", "not json")
    assert status == 400, (status, b)
    assert len(console_domains(d)) == count
    before = d.console("domain", "show", "acme.example", "--json").stdout
    for patch, field in (({"quarantine_days": 0}, "quarantine_days"),
                         ({"quarantine_days": 30, "tls": "maybe"}, "tls"),
                         ({"reject_threshold": "abc"}, "reject_threshold"),
                         ({"colour": "blue"}, "colour"),
                         ({"backend": ["127.0.0.1"]}, "backend")):
        status, b = alice("PATCH", "/api/v1/domains/acme.example", patch)
        assert status == 400 and b["field"] == field, (patch, status, b)
    status, b = pete("PATCH", "/api/v1/domains/acme.example", {"tls": "none"}, csrf=False)
    assert status == 403 and b["code"] == "bad_csrf_token", (status, b)
    status, b = pete("PATCH", "/api/v1/domains/acme.example", {"tls": "none"}, origin=False)
    assert status == 403 and b["code"] == "bad_origin", (status, b)
    status, b = pete("DELETE", "/api/v1/domains/acme.example")
    assert status == 403 and b["code"] == "not_permitted", (status, b)
    assert d.console("domain", "show", "acme.example", "--json").stdout == before
    print("ok: postmaster cannot add (403); bad values are 400 naming the field; no CSRF/Origin 403; nothing written")

    # Settings: numbers and strings as in `domain set`; a blank password keeps the stored one.
    status, b = pete("PATCH", "/api/v1/domains/acme.example",
                     {"trust": "auth", "auth_user": "relay", "auth_password": "relay-secret", "quarantine_days": 21})
    assert status == 200 and b["backend"]["auth_password_set"] and b["quarantine_days"] == 21, (status, b)
    status, b = alice("PATCH", "/api/v1/domains/acme.example", {"tls": "encrypt", "auth_password": ""})
    assert status == 200 and b["backend"]["tls"] == "encrypt" and b["backend"]["auth_password_set"], (status, b)
    # Were the password gone, trust=auth would be refused as risky; it is still set.
    status, b = alice("PATCH", "/api/v1/domains/acme.example", {"trust": "auth"})
    assert status == 200, (status, b)
    shown = json.loads(d.console("domain", "show", "acme.example", "--json").stdout)
    assert shown["backend"]["tls"] == "encrypt" and shown["backend"]["auth_password_set"], shown
    status, b = alice("PATCH", "/api/v1/domains/acme.example", {"greylist_threshold": -1})
    assert status == 409 and b["code"] == "needs_force", (status, b)
    audit = d.console("audit", "--json").stdout
    assert "relay-secret" not in audit and '"principal":"pete","action":"domain.set"' in audit, audit[-400:]
    print("ok: PATCH applies settings as `domain set`, blank password keeps the stored one, audit names the user")

    # Add over the API, publish the token in a real DNS server, "Verify now".
    status, added = alice("POST", "/api/v1/domains", {"domain": "Shop.Acme-Corp.test", "backend": "127.0.0.1:2525"})
    assert status == 201 and added["domain"] == "shop.acme-corp.test", (status, added)
    assert added["customer"] == "acme" and added["status"] == "pending_verification", added
    status, other = alice("POST", "/api/v1/domains", {"domain": "wrong.acme-corp.test", "backend": "127.0.0.1:2525"})
    assert status == 201, (status, other)
    token = added["verification"]["value"]
    assert added["verification"]["name"] == "_mxguard-verify.shop.acme-corp.test", added
    knot_dir = os.path.join(d.dir, "knot")
    os.mkdir(knot_dir)
    knot = Knot(knot_dir, {"acme-corp.test": ['_mxguard-verify.shop TXT "%s"' % token,
                                              '_mxguard-verify.wrong TXT "%s-not"' % token]})
    try:
        with open(d.config, "a") as f:
            f.write('\n[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "3s"\n' % knot.port)
        w.stop()
        w = Web(d, again=w)
        alice = Client(w, "alice", "alice-password")
        status, v = alice("POST", "/api/v1/domains/wrong.acme-corp.test/verify")
        assert status == 200 and v["result"] == "mismatch" and v["found"] == [token + "-not"], (status, v)
        assert v["status"] == "pending_verification", v
        status, v = alice("POST", "/api/v1/domains/shop.acme-corp.test/verify")
        assert status == 200 and v["result"] == "verified" and v["status"] == "active", (status, v)
        assert v["expected"]["value"] == token, v
    finally:
        knot.stop()
    assert console_domains(d, "alice")["shop.acme-corp.test"]["status"] == "active"
    print("ok: POST domains -> pending; verify against knotd: mismatch shows what was found, the token activates")

    # An operator adds an active domain; the console lists it and a running mxguardd takes mail for it.
    bob = Client(w, "carol", "carol-password")
    status, b = bob("POST", "/api/v1/domains", {"domain": "api.example", "customer": "acme",
                                                "backend": "127.0.0.1:2", "active": True})
    assert status == 201 and b["status"] == "active", (status, b)
    status, b = bob("PATCH", "/api/v1/domains/api.example",
                    {"reject_threshold": 100, "quarantine_threshold": 100, "greylist_threshold": 100})
    assert status == 200 and b["thresholds"]["greylist"] == 100, (status, b)
    assert "api.example" in console_domains(d)
    d.start()
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        refused = s.sendmail("sender@client.test", ["someone@api.example"],
                             "From: sender@client.test\r\nTo: someone@api.example\r\nSubject: via api\r\n"
                             "Message-ID: <api-1@client.test>\r\n\r\nhello\r\n")
        assert refused == {}, refused
        # ...and not for just any domain.
        assert s.mail("sender@client.test")[0] == 250
        code, _ = s.rcpt("someone@nosuch-domain.example")
        assert code // 100 == 5, code
    d.stop()
    print("ok: a domain added over the API is in `mxguard domain list` and mxguardd accepts mail for it")
    return w


EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def spam_message(subject, rcpt, n):
    """Scored far above quarantine_threshold=5 by its EICAR attachment."""
    return ("From: Mallory <mallory@sender.test>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <wq%d@sender.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nparcel %d is waiting\r\n--b\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n%s\r\n--b--\r\n") % (
                rcpt, subject, n, n, EICAR)


def console_quarantine(d, *as_user):
    args = ("--as", as_user[0]) if as_user else ()
    out = d.console(*args, "quarantine", "list", "--json").stdout
    return {json.loads(line)["id"]: json.loads(line) for line in out.splitlines()}


def test_quarantine_api(d, w):
    """The quarantine endpoints as each role, against the console on the same store;
    a release over the API is delivered by a running mxguardd to an aiosmtpd backend."""
    from test_delivery import Backend
    backend = Backend()
    try:
        c = d.console
        c("domain", "add", "q.example", "--customer", "acme", "--backend", "127.0.0.1:%d" % backend.port,
          "--tls", "none", "--active")
        c("domain", "add", "qg.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        for dom in ("q.example", "qg.example"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100")
        add_user(d, "ursula", "ursula-password", "--role", "user", "--address", "ursula@q.example",
                 "--shadow", "ursula2@q.example")
        d.start()
        for n, (subject, rcpt) in enumerate((("parcel for bob", "bob@q.example"),
                                             ("shadow parcel", "ursula2@q.example"),
                                             ("globex parcel", "gus@qg.example"))):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
                s.ehlo("client.sender.test")
                assert s.sendmail("mallory@sender.test", [rcpt], spam_message(subject, rcpt, n).encode()) == {}
        deadline = time.time() + 30
        while len(console_quarantine(d)) < 3:
            assert time.time() < deadline, console_quarantine(d)
            time.sleep(0.1)
        ids = {m["subject"]: i for i, m in console_quarantine(d).items()}
        m1, m2, m3 = ids["parcel for bob"], ids["shadow parcel"], ids["globex parcel"]

        alice, carol = Client(w, "alice", "alice-password"), Client(w, "carol", "carol-password")
        pete, gina = Client(w, "pete", "pete-password"), Client(w, "gina", "gina-password")
        ursula = Client(w, "ursula", "ursula-password")
        roles = {"alice": alice, "carol": carol, "pete": pete, "gina": gina, "ursula": ursula}

        status, me = ursula("GET", "/api/v1/me")
        assert status == 200 and me["role"] == "user" and me["address"] == "ursula@q.example", me
        assert me["shadows"] == ["ursula2@q.example"] and me["csrf_token"] == ursula.csrf, me
        status, me = pete("GET", "/api/v1/me")
        assert status == 200 and me["role"] == "postmaster" and me["domain"] == "acme.example", me
        r, raw = w.request("GET", "/api/v1/me")
        assert r.status == 401, r.status
        print("ok: GET /api/v1/me names the user, role, customer/domain (401 logged out)")

        # Each role sees exactly what `quarantine list --as` shows, with the same JSON.
        expect = {"alice": {m1, m2}, "carol": {m1, m2, m3}, "pete": set(), "gina": {m3}, "ursula": {m2}}
        for name, who in roles.items():
            status, body = who("GET", "/api/v1/quarantine")
            assert status == 200, (name, status, body)
            seen = {m["id"]: m for m in body["messages"]}
            assert set(seen) == expect[name], (name, seen.keys())
            console = console_quarantine(d) if name == "carol" else console_quarantine(d, name)
            assert seen == console, (name, seen, console)
        status, body = alice("GET", "/api/v1/quarantine?search=BOB")
        assert [m["id"] for m in body["messages"]] == [m1], body
        status, body = alice("GET", "/api/v1/quarantine?domain=q.example&since=1d&until=%2B1d")
        assert {m["id"] for m in body["messages"]} == {m1, m2}, body
        status, body = alice("GET", "/api/v1/quarantine?recipient=ursula2@q.example")
        assert [m["id"] for m in body["messages"]] == [m2], body
        for query, field in (("since=yesterday-ish", "since"), ("until=2026-13-01", "until"),
                             ("recipient=not-an-address", "recipient"), ("domain=http://x/", "domain")):
            status, b = alice("GET", "/api/v1/quarantine?" + query)
            assert status == 400 and b["code"] == "usage" and b["field"] == field, (query, status, b)
        status, b = alice("GET", "/api/v1/quarantine?domain=qg.example")
        assert status == 404 and b["code"] == "not_found", (status, b)
        print("ok: GET /api/v1/quarantine per role = `quarantine list --as`; search/domain/recipient/since/until; "
              "bad values 400 naming the field")

        # The preview, as `quarantine show --json`.
        status, shown = alice("GET", "/api/v1/quarantine/" + m1)
        assert status == 200, (status, shown)
        assert shown == json.loads(d.console("quarantine", "show", m1, "--json").stdout), shown
        assert "parcel 0 is waiting" in shown["text"] and shown["attachments"][0]["filename"] == "eicar.com", shown
        print("ok: GET /api/v1/quarantine/{id} = `quarantine show --json` (headers, text, attachments not opened)")

        # Another tenant's message, and a missing one: 404 for each verb, nothing changes.
        before = console_quarantine(d)
        missing = "0000000000001." + m3.split(".")[1]
        for who, other in ((alice, m3), (pete, m1), (gina, m1), (ursula, m1), (ursula, m3)):
            for method, path, body in (("GET", "/api/v1/quarantine/%s", None),
                                       ("POST", "/api/v1/quarantine/%s/release", {}),
                                       ("POST", "/api/v1/quarantine/%s/release", {"allow_sender": True}),
                                       ("POST", "/api/v1/quarantine/%s/delete", {"learn_spam": True})):
                status, b = who(method, path % other, body)
                assert status == 404 and b["code"] == "not_found", (method, path, other, status, b)
                status, nb = who(method, path % missing, body)
                assert status == 404 and nb["error"].replace(missing, "X") == b["error"].replace(other, "X"), nb
        # CSRF and Origin on the POSTs; bad bodies.
        for kw in ({"csrf": False}, {"origin": False}):
            for action in ("release", "delete"):
                status, b = alice("POST", "/api/v1/quarantine/%s/%s" % (m1, action), {}, **kw)
                assert status == 403 and b["code"] in ("bad_csrf_token", "bad_origin"), (kw, status, b)
        for action, body, field in (("release", {"allow_sender": "yes"}, "allow_sender"),
                                    ("release", {"recipients": "bob@q.example"}, "recipients"),
                                    ("release", {"recipients": ["nobody@q.example"]}, "recipients"),
                                    ("delete", {"learn_spam": 1}, "learn_spam"),
                                    ("delete", {"colour": "blue"}, "colour")):
            status, b = alice("POST", "/api/v1/quarantine/%s/%s" % (m1, action), body)
            assert status == 400 and b["field"] == field, (action, body, status, b)
        status, b = ursula("POST", "/api/v1/quarantine/%s/release" % m2, {"allow_sender": True})
        assert status == 403 and b["code"] == "not_permitted", (status, b)
        assert console_quarantine(d) == before
        assert backend.rec.messages == []
        print("ok: another tenant's message is 404 (worded as a missing one) for GET, release, delete; "
              "CSRF/Origin 403; bad bodies 400; a user may not allow a sender; nothing changed")

        # Release over the API: queued, delivered by the running engine, learned as ham, audited.
        status, rel = alice("POST", "/api/v1/quarantine/%s/release" % m1, {"allow_sender": True})
        assert status == 200 and rel["recipients"] == ["bob@q.example"], (status, rel)
        assert rel["allowed_sender_in"] == ["q.example"] and rel["queued_id"], rel
        deadline = time.time() + 60
        while not backend.rec.messages:
            assert time.time() < deadline, "the released message never reached the backend: " + d.read_log()[-2000:]
            time.sleep(0.1)
        got = backend.rec.messages[0]
        assert got["rcpts"] == ["bob@q.example"] and b"parcel for bob" in got["data"], got
        assert m1 not in console_quarantine(d)
        allow = d.console("list", "allow", "show", "q.example", "--json").stdout
        assert '"value":"mallory@sender.test"' in allow, allow
        audit = d.console("audit", "--json").stdout
        assert '"principal":"alice","action":"quarantine.release"' in audit, audit[-600:]
        track = d.console("track", "--id", m1, "--json").stdout
        assert '"decision":"released"' in track, track
        print("ok: POST release (allow_sender) queues it; mxguardd delivers it to the aiosmtpd backend; "
              "sender on q.example's allow list; audit and tracking event written")

        # The user releases their shadow's message; globex's admin deletes theirs as spam.
        status, rel = ursula("POST", "/api/v1/quarantine/%s/release" % m2)
        assert status == 200 and rel["recipients"] == ["ursula2@q.example"], (status, rel)
        status, gone = gina("POST", "/api/v1/quarantine/%s/delete" % m3, {"learn_spam": True})
        assert status == 200 and gone["learned_spam"] is True and gone["recipients"] == ["gus@qg.example"], gone
        assert console_quarantine(d) == {}
        deadline = time.time() + 60
        while len(backend.rec.messages) < 2:
            assert time.time() < deadline, "the shadow's release never arrived"
            time.sleep(0.1)
        assert backend.rec.messages[1]["rcpts"] == ["ursula2@q.example"]
        print("ok: a user releases their shadow address's message (delivered); delete with learn_spam")
    finally:
        d.stop()
        backend.stop()


def test_refuses_without_certificate(d):
    cfg = os.path.join(d.dir, "plain.toml")
    with open(cfg, "w") as f:
        f.write('state_dir = "%s"\n[web]\nlisten = ["127.0.0.1:%d"]\n' % (d.state, mxg.free_port()))
    p = subprocess.run([WEB, "--config", cfg], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "no certificate" in p.stderr, (p.returncode, p.stderr)
    with open(cfg, "w") as f:
        f.write('state_dir = "%s"\n[web]\nlisten = ["0.0.0.0:%d"]\ninsecure_http = true\n' % (d.state,
                                                                                           mxg.free_port()))
    p = subprocess.run([WEB, "--config", cfg], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "web.insecure_http" in p.stderr, (p.returncode, p.stderr)
    print("ok: no certificate, no start (plain HTTP only on loopback with web.insecure_http)")


def main():
    d = mxg.Daemon(domains=("acme.example",))
    w = None
    try:
        test_refuses_without_certificate(d)
        add_user(d, "alice", "alice-password", "--role", "customer-admin", "--customer", "acme")
        add_user(d, "bob", "bob-password", "--role", "operator")
        add_user(d, "carol", "carol-password", "--role", "operator")
        w = Web(d)

        # Wrong password, then the right one.
        r, raw = w.login("alice", "not-her-password")
        assert r.status == 401 and js(raw)["code"] == "bad_credentials", (r.status, raw)
        assert r.getheader("Set-Cookie") is None
        r, raw = w.login("alice", "alice-password", origin=w.public_url)  # web.public_url is an accepted Origin
        assert r.status == 200, (r.status, raw)
        s = js(raw)
        assert s["user"] == "alice" and s["role"] == "customer-admin" and len(s["csrf_token"]) >= 40, s
        sc = r.getheader("Set-Cookie")
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            assert attr in sc, sc
        cookie = cookie_of(r)
        print("ok: login (wrong and right password), cookie", sc.split("=")[0], "with HttpOnly Secure SameSite")

        r, raw = w.request("GET", "/api/v1/session", headers={"Cookie": cookie})
        assert r.status == 200 and js(raw)["user"] == "alice", (r.status, raw)
        r, raw = w.request("GET", "/api/v1/session")
        assert r.status == 401 and js(raw)["code"] == "not_logged_in", (r.status, raw)
        r, raw = w.request("GET", "/api/v1/session", headers={"Cookie": "mxg_session=forged"})
        assert r.status == 401, r.status

        # Login from a foreign page, logout without the CSRF token or from a foreign Origin.
        r, raw = w.login("alice", "alice-password", origin="https://evil.example")
        assert r.status == 403 and js(raw)["code"] == "bad_origin", (r.status, raw)
        r, raw = w.request("DELETE", "/api/v1/session", headers={"Cookie": cookie})
        assert r.status == 403 and js(raw)["code"] == "bad_csrf_token", (r.status, raw)
        r, raw = w.request("DELETE", "/api/v1/session",
                           headers={"Cookie": cookie, "X-CSRF-Token": s["csrf_token"], "Origin": "https://evil.example"})
        assert r.status == 403 and js(raw)["code"] == "bad_origin", (r.status, raw)
        r, raw = w.request("DELETE", "/api/v1/session",
                           headers={"Cookie": cookie, "X-CSRF-Token": s["csrf_token"], "Origin": None})
        assert r.status == 403, r.status
        r, raw = w.request("GET", "/api/v1/session", headers={"Cookie": cookie})
        assert r.status == 200, "a refused logout must leave the session"
        print("ok: CSRF token and Origin required (403 bad_csrf_token, bad_origin)")

        r, raw = w.request("DELETE", "/api/v1/session", headers={"Cookie": cookie, "X-CSRF-Token": s["csrf_token"]})
        assert r.status == 200, (r.status, raw)
        assert "Max-Age=0" in r.getheader("Set-Cookie")
        r, raw = w.request("GET", "/api/v1/session", headers={"Cookie": cookie})
        assert r.status == 401, r.status
        print("ok: logout invalidates the session")

        # Per user: 5 failures from 5 addresses lock bob out everywhere, not alice.
        for i in range(5):
            r, _ = w.login("bob", "wrong-password", source="127.0.0.%d" % (10 + i))
            assert r.status == 401, r.status
        r, raw = w.login("bob", "bob-password", source="127.0.0.15")
        assert r.status == 429 and js(raw)["code"] == "too_many_attempts", (r.status, raw)
        assert int(r.getheader("Retry-After")) > 0
        r, _ = w.login("alice", "alice-password", source="127.0.0.15")
        assert r.status == 200, r.status
        # Per address: 5 failures for unknown users lock the address out, not carol elsewhere.
        for i in range(5):
            r, _ = w.login("nobody%d" % i, "whatever-pw", source="127.0.0.20")
            assert r.status == 401, r.status
        r, raw = w.login("carol", "carol-password", source="127.0.0.20")
        assert r.status == 429 and int(r.getheader("Retry-After")) > 0, (r.status, raw)
        r, _ = w.login("carol", "carol-password", source="127.0.0.21")
        assert r.status == 200, r.status
        print("ok: 5 failed logins -> 429 with Retry-After, per user and per client address")

        # Static files and their headers.
        for path, ctype, needle in (("/", "text/html", b"<form"), ("/login.js", "text/javascript", b"fetch("),
                                    ("/site.css", "text/css", b".card")):
            r, raw = w.request("GET", path)
            assert r.status == 200 and r.getheader("Content-Type").startswith(ctype), (path, r.status)
            assert needle in raw, path
            csp = r.getheader("Content-Security-Policy")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
            assert r.getheader("X-Content-Type-Options") == "nosniff"
            assert r.getheader("Referrer-Policy") == "no-referrer"
        with open(os.path.join(STATIC, "index.html"), "rb") as f:
            assert b"<script>" not in f.read(), "no inline script"
        print("ok: static files with CSP, nosniff, no-referrer and content types")

        secret = os.path.join(d.dir, "secret.txt")
        with open(secret, "w") as f:
            f.write("TOP-SECRET")
        rel = os.path.relpath(secret, STATIC)
        for path in ("/../" + rel, "/%2e%2e/" + rel, "/..%2f" + rel.replace("/", "%2f"), "/.hidden",
                     "/nothing-here.html"):
            r, raw = w.request("GET", path)
            assert r.status == 404 and b"TOP-SECRET" not in raw, (path, r.status, raw[:80])
        print("ok: path traversal refused (404)")

        r, raw = w.request("GET", "/api/v1/no-such-thing")
        assert r.status == 404 and r.getheader("Content-Type") == "application/json", r.status
        assert js(raw)["code"] == "not_found"
        r, raw = w.request("POST", "/api/v1/session", "not json")
        assert r.status == 400 and js(raw)["code"] == "bad_request", (r.status, raw)
        print("ok: unknown API path -> 404 JSON, bad body -> 400 JSON")

        w = test_domains_api(d, w)
        test_quarantine_api(d, w)

        # In memory only: a restart logs everyone out.
        r, raw = w.login("alice", "alice-password", source="127.0.0.30")
        cookie = cookie_of(r)
        w.stop()
        w = Web(d, again=w)
        r, _ = w.request("GET", "/api/v1/session", headers={"Cookie": cookie})
        assert r.status == 401, r.status
        print("ok: a restart of mxguard-web ends the sessions")
    finally:
        if w:
            w.stop()
        d.cleanup()
    print("test_web: all passed")


if __name__ == "__main__":
    main()
