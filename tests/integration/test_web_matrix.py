"""Every API endpoint for every role (issue 17), as one table.

For each endpoint of /api/v1 and each role (operator, customer-admin,
postmaster, user) the test asks three things of the real mxguard-web:
  - on the role's own objects, with valid input that changes nothing
    (reads): the role's expected status;
  - on the role's own objects, with bad input: 400 naming the field when the
    role may use the endpoint, its refusal (403, or 404 for an object it may
    not see) when it may not; nothing written;
  - on another tenant's objects: 404, or 403 where the role may not use the
    endpoint at all; nothing written (the console's isolation table).
"Nothing written" compares the console's view of the whole store (domains,
users, quarantine, audit log, lists) before and after. Then the session
checks the table leaves out: an expired session (idle limit), and that no
log line or audit entry holds a password or a session id."""
import json
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from test_web import Client, Web, add_user, console_quarantine, js, spam_message  # noqa: E402

OPERATOR, ADMIN, POSTMASTER, USER = "operator", "customer-admin", "postmaster", "user"
ROLES = (OPERATOR, ADMIN, POSTMASTER, USER)
ANY = {OPERATOR, ADMIN, POSTMASTER, USER}
MANAGERS = {OPERATOR, ADMIN, POSTMASTER}
# {user} is the role's own customer's mail user (ursula): a user reads and
# sets (digest, password) themself. A postmaster may add users but does not
# see them afterwards (admin::may_see_user): 404 for them.
USER_READERS = {OPERATOR, ADMIN, USER}

# One row per endpoint:
#   method, path (with {domain}, {message}, {user} filled from the role's own or
#   the other tenant's objects), who may use it, a valid read-only probe (None:
#   the endpoint always writes; its success is tested in the feature's own
#   file), and a bad input with the field its 400 must name.
# `tenant`: how another tenant's object is named: "path" (in the path),
# "query" (a filter parameter), or None (the endpoint has no object).
ENDPOINTS = [
    dict(name="me", method="GET", path="/api/v1/me", who=ANY, probe=True, tenant=None),
    # A user manages no domain: the list is empty for them, as `domain list --as` shows.
    dict(name="domains list", method="GET", path="/api/v1/domains", who=ANY, probe=True, tenant=None),
    dict(name="domain add", method="POST", path="/api/v1/domains", who={OPERATOR, ADMIN}, probe=None,
         bad=({"domain": "http://bad.example/", "backend": "127.0.0.1:2"}, "domain"), tenant="body",
         other_body={"domain": "new-in-other.example", "backend": "127.0.0.1:2", "customer": "{other_customer}"}),
    dict(name="domain show", method="GET", path="/api/v1/domains/{domain}", who=MANAGERS, probe=True,
         tenant="path"),
    dict(name="domain set", method="PATCH", path="/api/v1/domains/{domain}", who=MANAGERS, probe=None,
         bad=({"tls": "maybe"}, "tls"), tenant="path", other_body={"tls": "none"}),
    dict(name="domain remove", method="DELETE", path="/api/v1/domains/{domain}", who={OPERATOR, ADMIN},
         probe=None, tenant="path"),
    dict(name="domain verify", method="POST", path="/api/v1/domains/{domain}/verify", who=MANAGERS, probe=None,
         tenant="path"),
    dict(name="quarantine list", method="GET", path="/api/v1/quarantine", who=ANY, probe=True,
         bad=({"query": "since=yesterday-ish"}, "since"), tenant="query", other_query="domain={other_domain}"),
    dict(name="quarantine show", method="GET", path="/api/v1/quarantine/{message}", who=ANY, probe=True,
         tenant="path"),
    dict(name="quarantine release", method="POST", path="/api/v1/quarantine/{message}/release", who=ANY,
         probe=None, bad=({"allow_sender": "yes"}, "allow_sender"), tenant="path", other_body={}),
    dict(name="quarantine delete", method="POST", path="/api/v1/quarantine/{message}/delete", who=ANY,
         probe=None, bad=({"learn_spam": 1}, "learn_spam"), tenant="path", other_body={}),
    # Recipients, lists and the MX check (recipients_api.cpp; their effects are in test_web_lists.py).
    dict(name="recipients list", method="GET", path="/api/v1/domains/{domain}/recipients", who=MANAGERS,
         probe=True, tenant="path"),
    dict(name="recipient add", method="POST", path="/api/v1/domains/{domain}/recipients", who=MANAGERS,
         probe=None, bad=({"address": "not an address"}, "address"), tenant="path", other_body={"address": "x"}),
    dict(name="recipient remove", method="DELETE", path="/api/v1/domains/{domain}/recipients/nobody@{domain}",
         who=MANAGERS, probe=None, tenant="path"),
    dict(name="recipients import", method="POST", path="/api/v1/domains/{domain}/recipients/import",
         who=MANAGERS, probe=None, bad=({"text": "not valid\n"}, "text"), tenant="path",
         other_body={"text": "x@{domain}\n"}),
    dict(name="lists show", method="GET", path="/api/v1/domains/{domain}/lists", who=MANAGERS, probe=True,
         tenant="path"),
    dict(name="list add", method="POST", path="/api/v1/domains/{domain}/lists", who=MANAGERS, probe=None,
         bad=({"list": "block", "kind": "mailbox", "value": "x@y.test"}, "kind"), tenant="path",
         other_body={"list": "block", "kind": "sender", "value": "x@y.test"}),
    dict(name="list remove", method="DELETE", path="/api/v1/domains/{domain}/lists/block/sender/x@y.test",
         who=MANAGERS, probe=None, tenant="path"),
    dict(name="global lists show", method="GET", path="/api/v1/lists", who={OPERATOR}, probe=True, tenant=None),
    dict(name="global list add", method="POST", path="/api/v1/lists", who={OPERATOR}, probe=None,
         bad=({"list": "block", "kind": "ip", "value": "300.1.1.1"}, "value"), tenant=None),
    # Users and the audit log (users_api.cpp; their effects are in test_web_users.py).
    dict(name="users list", method="GET", path="/api/v1/users", who={OPERATOR, ADMIN}, probe=True, tenant=None),
    dict(name="user add", method="POST", path="/api/v1/users", who={OPERATOR, ADMIN, POSTMASTER}, probe=None,
         bad=({"name": "bad name", "role": "user", "address": "n@{domain}"}, "name"), tenant="body",
         other_body={"name": "newguy", "role": "user", "address": "newguy@{other_domain}"}),
    dict(name="user show", method="GET", path="/api/v1/users/{user}", who=USER_READERS, probe=True,
         tenant="path"),
    dict(name="user set", method="PATCH", path="/api/v1/users/{user}", who=USER_READERS, probe=None,
         bad=({"digest": "sometimes"}, "digest"), tenant="path", other_body={"digest": "off"}),
    dict(name="user remove", method="DELETE", path="/api/v1/users/{user}", who={OPERATOR, ADMIN}, probe=None,
         tenant="path"),
    # Oneself: the current password is required first (its field); an admin's reset: the new one's.
    dict(name="user password", method="POST", path="/api/v1/users/{user}/password", who=USER_READERS,
         probe=None, bad=({"password": "short"}, {OPERATOR: "password", ADMIN: "password", USER: "current"}),
         tenant="path",
         other_body={"password": "a-long-enough-password"}),
    dict(name="audit log", method="GET", path="/api/v1/audit", who=MANAGERS, probe=True,
         bad=({"query": "since=whenever"}, "since"), tenant=None),
    # The live feed, tracking and statistics (feed_api.cpp; their effects are in test_web_feed.py).
    dict(name="feed", method="GET", path="/api/v1/feed", who=ANY, probe=True,
         bad=({"query": "action=maybe"}, "action"), tenant="query", other_query="domain={other_domain}"),
    dict(name="track", method="GET", path="/api/v1/track", who=ANY, probe=True,
         bad=({"query": "since=whenever"}, "since"), tenant=None),
    dict(name="stats", method="GET", path="/api/v1/stats", who=ANY, probe=True,
         bad=({"query": "period=week"}, "period"), tenant=None),
    # No probe: a permitted check asks DNS; the refusals come before any lookup.
    dict(name="mx check", method="GET", path="/api/v1/domains/{domain}/mx-check", who=MANAGERS, probe=None,
         tenant="path"),
]


def store_state(d):
    """The console's view of everything an API call could change."""
    views = []
    for args in (("domain", "list", "--json"), ("user", "list", "--json"), ("quarantine", "list", "--json"),
                 ("audit", "--json"), ("list", "allow", "show", "--json"), ("list", "block", "show", "--json"),
                 ("customer", "list", "--json")):
        r = d.console(*args, check=False)
        views.append((args, r.returncode, r.stdout))
    return views


def fill(text, objects):
    return text.format(**objects) if isinstance(text, str) else text


def fill_body(body, objects):
    if isinstance(body, dict):
        return {k: fill(v, objects) for k, v in body.items()}
    return body


def call(client, ep, objects, body=None, query=None):
    path = fill(ep["path"], objects)
    if query:
        path += "?" + fill(query, objects)
    return client(ep["method"], path, body)


class Matrix:
    def __init__(self, d, w):
        self.d, self.w = d, w
        self.failures = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)

    def run(self, clients, own, other):
        """clients: role -> Client; own/other: role -> the objects it owns / another tenant's."""
        for ep in ENDPOINTS:
            for role in ROLES:
                c = clients[role]
                allowed = role in ep["who"]
                if ep.get("probe") and ep["method"] == "GET":
                    status, body = call(c, ep, own[role])
                    want = 200 if allowed else (403, 404)
                    self.check(status == want if allowed else status in want,
                               "%s as %s on own objects: %s %s (want %s)" % (ep["name"], role, status, body, want))
                if "bad" in ep:
                    before = store_state(self.d)
                    bad, field = ep["bad"]
                    if isinstance(field, dict):
                        field = field.get(role)
                    if "query" in bad:
                        status, body = call(c, ep, own[role], query=bad["query"])
                    else:
                        status, body = call(c, ep, own[role], body=fill_body(bad, own[role]))
                    if allowed:
                        self.check(status == 400 and body.get("field") == field,
                                   "%s as %s with bad %s: %s %s" % (ep["name"], role, field, status, body))
                    else:
                        self.check(status in (403, 404), "%s as %s (not allowed), bad input: %s %s"
                                   % (ep["name"], role, status, body))
                    self.check(store_state(self.d) == before, "%s as %s with bad input wrote" % (ep["name"], role))
                if role == OPERATOR or not ep["tenant"]:
                    continue
                before = store_state(self.d)
                if ep["tenant"] == "query":
                    status, body = call(c, ep, own[role], query=ep["other_query"].format(**other[role]))
                elif ep["tenant"] == "body":
                    status, body = call(c, ep, own[role], body=fill_body(ep["other_body"], other[role]))
                else:
                    status, body = call(c, ep, other[role], body=fill_body(ep.get("other_body"), other[role]))
                if ep["tenant"] == "body":
                    want = (403, 404)  # naming another customer is refused, never a write there
                else:
                    want = (404,) if allowed else (403, 404)
                self.check(status in want, "%s as %s on the other tenant's object: %s %s (want %s)"
                           % (ep["name"], role, status, body, want))
                self.check(store_state(self.d) == before,
                           "%s as %s on the other tenant's object wrote" % (ep["name"], role))
        return self.failures


def quarantine(d, messages):
    for n, (subject, rcpt) in enumerate(messages):
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.ehlo("client.sender.test")
            assert s.sendmail("mallory@sender.test", [rcpt], spam_message(subject, rcpt, n).encode()) == {}
    deadline = time.time() + 30
    while len(console_quarantine(d)) < len(messages):
        assert time.time() < deadline, console_quarantine(d)
        time.sleep(0.1)
    return {m["subject"]: i for i, m in console_quarantine(d).items()}


def secrets_absent(d, w, secrets):
    """No log file of the state dir, nor the audit log, holds any of `secrets`."""
    found = []
    texts = {"audit": d.console("audit", "--json").stdout}
    for name in os.listdir(d.dir):
        path = os.path.join(d.dir, name)
        if os.path.isfile(path) and name.endswith(".log"):
            with open(path, errors="replace") as f:
                texts[name] = f.read()
    # The engine's log and mxguard-web's are among them, with lines in them.
    assert texts.get("mxguardd.log") and texts.get("web.log"), sorted(texts)
    for s in secrets:
        for where, text in texts.items():
            if s in text:
                found.append((s[:6] + "...", where))
    return found


def main():
    d = mxg.Daemon(domains=("acme.example",))
    w = None
    try:
        c = d.console
        c("customer", "add", "acme", check=False)
        c("customer", "add", "globex", check=False)
        c("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        c("domain", "add", "acme2.example", "--customer", "acme", "--backend", "127.0.0.1:2", "--active")
        for dom in ("acme.example", "acme2.example", "globex.example"):
            c("domain", "set", dom, "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100")
        passwords = {"carol": "carol-operator-pw", "alice": "alice-admin-pw", "pete": "pete-postmaster-pw",
                     "ursula": "ursula-user-pw", "gina": "gina-admin-pw", "gpete": "gpete-postmaster-pw",
                     "gus": "gus-user-pw"}
        add_user(d, "carol", passwords["carol"], "--role", "operator")
        add_user(d, "alice", passwords["alice"], "--role", "customer-admin", "--customer", "acme")
        add_user(d, "pete", passwords["pete"], "--role", "postmaster", "--domain", "acme.example")
        add_user(d, "ursula", passwords["ursula"], "--role", "user", "--address", "ursula@acme.example")
        add_user(d, "gina", passwords["gina"], "--role", "customer-admin", "--customer", "globex")
        add_user(d, "gpete", passwords["gpete"], "--role", "postmaster", "--domain", "globex.example")
        add_user(d, "gus", passwords["gus"], "--role", "user", "--address", "gus@globex.example")
        d.start()
        ids = quarantine(d, (("for ursula", "ursula@acme.example"), ("for gus", "gus@globex.example")))
        d.stop()  # the web server needs no engine
        w = Web(d)
        clients = {OPERATOR: Client(w, "carol", passwords["carol"]), ADMIN: Client(w, "alice", passwords["alice"]),
                   POSTMASTER: Client(w, "pete", passwords["pete"]), USER: Client(w, "ursula", passwords["ursula"])}
        acme = {"domain": "acme.example", "message": ids["for ursula"], "user": "ursula",
                "other_customer": "globex", "other_domain": "globex.example"}
        globex = {"domain": "globex.example", "message": ids["for gus"], "user": "gus",
                  "other_customer": "globex", "other_domain": "globex.example"}
        own = {role: acme for role in ROLES}
        other = {role: globex for role in ROLES}
        failures = Matrix(d, w).run(clients, own, other)
        assert not failures, "\n".join(failures)
        print("ok: %d endpoints x %d roles: own objects, bad input (400 naming the field, nothing written), "
              "another tenant's objects (404/403, nothing written)" % (len(ENDPOINTS), len(ROLES)))

        # Bytes that are not UTF-8 in a path (libmicrohttpd hands over the
        # percent-decoded URL): the 404 names the path in JSON. It used to throw
        # in the JSON encoder and take the whole server down (found by fuzz_web).
        for path in ("/api/v1/%96mains", "/api/v1/domains/%ff%fe", "/api/v1/quarantine/%c3"):
            r, raw = w.request("GET", path, headers={"Cookie": clients[ADMIN].cookie})
            assert r.status in (400, 404) and "error" in js(raw), (path, r.status, raw)
        assert w.proc.poll() is None, "mxguard-web died on a path that is not UTF-8"
        status, _ = clients[ADMIN]("GET", "/api/v1/domains")
        assert status == 200, status
        print("ok: paths with bytes that are not UTF-8 get a JSON 404 or 400; the server stays up")

        # Nothing logs a password or a session id (cookie values of every client).
        sessions = [cl.cookie.split("=", 1)[1] for cl in clients.values()]
        csrf = [cl.csrf for cl in clients.values()]
        found = secrets_absent(d, w, list(passwords.values()) + sessions + csrf)
        assert not found, found
        print("ok: no log file and no audit entry holds a password, a session id or a CSRF token")
    finally:
        if w:
            w.stop()
        d.stop()
        d.cleanup()
    test_expired_session()
    print("test_web_matrix: all passed")


def test_expired_session():
    """web.session_idle: a session unused for longer is gone (401), and a
    fresh login works again."""
    d = mxg.Daemon(domains=("acme.example",))
    w = None
    try:
        add_user(d, "carol", "carol-operator-pw", "--role", "operator")
        w = Web(d, idle="2s")
        carol = Client(w, "carol", "carol-operator-pw")
        status, _ = carol("GET", "/api/v1/domains")
        assert status == 200, status
        time.sleep(1.2)
        status, _ = carol("GET", "/api/v1/domains")  # used within the idle limit: still alive
        assert status == 200, status
        time.sleep(2.6)
        status, body = carol("GET", "/api/v1/domains")
        assert status == 401, (status, body)
        status, body = carol("PATCH", "/api/v1/domains/acme.example", {"tls": "none"})
        assert status == 401, (status, body)
        again = Client(w, "carol", "carol-operator-pw")
        status, _ = again("GET", "/api/v1/domains")
        assert status == 200, status
        print("ok: a session idle past web.session_idle answers 401 (reads and writes); logging in again works")
    finally:
        if w:
            w.stop()
        d.stop()
        d.cleanup()


if __name__ == "__main__":
    main()
