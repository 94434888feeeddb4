#!/usr/bin/env python3
"""/api/v1/users and /api/v1/audit (issue 17) against the real mxguard-web,
with users made by the real console and spam quarantined by a real mxguardd:
each role's view, another tenant's user (404, nothing changed), bad input
(400 naming the field), an admin's password reset (the user's open sessions
end, the new password works and the old does not), self-service with the
current password, the digest switch as `mxguard digest send --dry-run`
sees it, and the audit log scoped per customer.

Run: MXGUARDD_BIN=... MXGUARD_BIN=... MXGUARD_WEB_BIN=... /usr/bin/python3 tests/integration/test_web_users.py
"""
import json
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from test_tracking import VIRUS  # noqa: E402
from test_web import Client, Web, add_user, js  # noqa: E402

PASSWORDS = {"olga": "olga-password", "alice": "alice-password", "gina": "gina-password", "pete": "pete-password",
             "ursula": "ursula-password", "gus": "gus-password"}


def console_users(d, *as_user):
    args = ("--as", as_user[0]) if as_user else ()
    out = d.console(*args, "user", "list", "--json").stdout
    return {json.loads(line)["name"]: json.loads(line) for line in out.splitlines()}


def send_virus(d, rcpt, n):
    body = VIRUS.replace("Subject: invoice", "Subject: held for %s" % rcpt).replace("-N@", "-u%d@" % n)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        s.sendmail("spammer@bad.test", [rcpt], ("From: <spammer@bad.test>\r\nTo: <%s>\r\n" % rcpt + body).encode())


def digest_recipients(d):
    out = d.console("digest", "send", "--settle", "0", "--dry-run", "--json").stdout
    return {json.loads(line)["recipient"] for line in out.splitlines() if line.strip()}


def test_roles_and_listing(d, c):
    everyone = console_users(d)
    status, body = c["olga"]("GET", "/api/v1/users")
    assert status == 200 and {u["name"] for u in body["users"]} == set(everyone), (status, body)
    assert body["users"] == [everyone[u["name"]] for u in body["users"]], "same JSON as `user list --json`"
    assert body["creatable_roles"] == ["operator", "customer-admin", "postmaster", "user"], body
    for admin, customer in (("alice", "acme"), ("gina", "globex")):
        status, body = c[admin]("GET", "/api/v1/users")
        assert status == 200, (admin, status, body)
        seen = {u["name"] for u in body["users"]}
        assert seen == set(console_users(d, admin)), (admin, seen)
        assert all(u["customer"] == customer and u["role"] != "operator" for u in body["users"]), body
        assert body["creatable_roles"] == ["postmaster", "user"], body
    for who in ("pete", "ursula"):
        status, body = c[who]("GET", "/api/v1/users")
        assert status == 403 and body["code"] == "not_permitted", (who, status, body)
    status, body = c["ursula"]("GET", "/api/v1/users/ursula")
    assert status == 200 and body["address"] == "ursula@acme.example" and "password_hash" not in body, body
    status, body = c["ursula"]("GET", "/api/v1/users/alice")
    assert status == 404, (status, body)
    print("ok: GET /api/v1/users per role (operator all, customer-admins their customer's, postmaster and user 403)")


def test_add_and_validation(d, c):
    before = console_users(d)
    bad = [
        ({"name": "bad name", "role": "user", "address": "x@acme.example"}, 400, "name"),
        ({"name": "uma", "role": "wizard"}, 400, "role"),
        ({"name": "uma", "role": "user", "address": "uma@acme.example", "shadows": ["gus2@globex.example"]}, 400,
         "shadows"),
        ({"name": "uma", "role": "user", "address": "uma@acme.example", "shadows": "uma2@acme.example"}, 400, "shadows"),
        ({"name": "uma", "role": "user", "address": "uma@acme.example", "shadows": ["not an address"]}, 400, "shadows"),
        ({"name": "uma", "role": "user", "address": "uma@acme.example", "password": "short"}, 400, "password"),
        ({"name": "uma", "role": "user", "address": "uma@acme.example", "colour": "red"}, 400, "colour"),
        ({"name": "uma", "role": "user", "address": "no-at-sign"}, 400, "address"),
        ({"name": "uma", "role": 7}, 400, "role"),
        ({"name": "boss", "role": "customer-admin"}, 403, None),
        ({"name": "uma", "role": "user", "address": "uma@globex.example"}, 404, None),
    ]
    for body, status, field in bad:
        got, answer = c["alice"]("POST", "/api/v1/users", body)
        assert got == status, (body, got, answer)
        if field:
            assert answer.get("field") == field, (body, answer)
    assert console_users(d) == before, "a refused add wrote nothing"
    status, body = c["alice"]("POST", "/api/v1/users", {
        "name": "uma", "role": "user", "address": "uma@acme.example", "shadows": ["Uma.Alias@acme.example"],
        "password": "uma-password"})
    assert status == 201, (status, body)
    assert body == console_users(d)["uma"] and body["shadows"] == ["uma.alias@acme.example"], body
    assert "uma-password" not in json.dumps(body)
    status, body = c["alice"]("POST", "/api/v1/users", {"name": "uma", "role": "user", "address": "uma@acme.example"})
    assert status == 409, (status, body)
    status, body = c["gina"]("POST", "/api/v1/users", {"name": "gwen", "role": "postmaster", "domain": "globex.example"})
    assert status == 201 and body["customer"] == "globex", (status, body)
    status, body = c["ursula"]("POST", "/api/v1/users", {"name": "u2", "role": "user", "address": "u2@acme.example"})
    assert status == 403, (status, body)
    print("ok: POST /api/v1/users: 201 as the console shows it; bad input 400 by field, nothing written; 403/404/409")


def test_other_tenant(d, w, c):
    gus_before = console_users(d)["gus"]
    for who in ("alice", "pete", "ursula"):
        for method, path, body in (("GET", "/api/v1/users/gus", None),
                                   ("PATCH", "/api/v1/users/gus", {"digest": "off"}),
                                   ("PATCH", "/api/v1/users/gus", {"shadows": ["x@acme.example"]}),
                                   ("POST", "/api/v1/users/gus/password", {"password": "taken-over-1"}),
                                   ("DELETE", "/api/v1/users/gus", None)):
            status, answer = c[who](method, path, body)
            assert status == 404, (who, method, path, status, answer)
    status, answer = c["alice"]("DELETE", "/api/v1/users/gina")
    assert status == 404, (status, answer)
    assert console_users(d)["gus"] == gus_before
    Client(w, "gus", PASSWORDS["gus"])  # the password is still his
    print("ok: another tenant's user is 404 for customer-admin, postmaster and user on every endpoint; nothing changed")


def test_patch(d, c):
    status, body = c["alice"]("PATCH", "/api/v1/users/ursula", {"shadows": ["ursula.alias@acme.example"]})
    assert status == 200 and body["shadows"] == ["ursula.alias@acme.example"], (status, body)
    assert console_users(d)["ursula"]["shadows"] == ["ursula.alias@acme.example"]
    for body, field in (({"shadows": ["x@globex.example"]}, "shadows"), ({"digest": "maybe"}, "digest"),
                        ({"digest": 1}, "digest"), ({"shadows": [1]}, "shadows"), ({"role": "operator"}, "role")):
        status, answer = c["alice"]("PATCH", "/api/v1/users/ursula", body)
        assert status == 400 and answer.get("field") == field, (body, status, answer)
    status, answer = c["alice"]("PATCH", "/api/v1/users/pete", {"digest": "off"})
    assert status == 400 and answer["field"] == "digest", answer  # a postmaster gets no digest
    status, answer = c["ursula"]("PATCH", "/api/v1/users/ursula", {"shadows": []})
    assert status == 403, (status, answer)
    assert console_users(d)["ursula"]["shadows"] == ["ursula.alias@acme.example"]
    print("ok: PATCH shadows by the customer-admin (same checks as add); a user may not choose their own")


def test_digest_switch(d, c):
    for n, rcpt in enumerate(("ursula@acme.example", "uma@acme.example")):
        send_virus(d, rcpt, n)
    deadline = time.time() + 30
    while time.time() < deadline:
        held = {r for line in d.console("quarantine", "list", "--json").stdout.splitlines()
                for r in json.loads(line)["recipients"]}
        if {"ursula@acme.example", "uma@acme.example"} <= held:
            break
        time.sleep(0.1)
    assert digest_recipients(d) >= {"ursula@acme.example", "uma@acme.example"}
    status, body = c["ursula"]("PATCH", "/api/v1/users/ursula", {"digest": "off"})
    assert status == 200 and body["digest"] == "off", (status, body)
    got = digest_recipients(d)
    assert "ursula@acme.example" not in got and "uma@acme.example" in got, got
    print("ok: digest off through the API: `digest send --dry-run --json` leaves the user out, others still get one")


def test_passwords(d, w, c):
    # An admin's reset: the user's open sessions end, the new password works, the old one does not.
    old = c["ursula"]
    status, body = old("GET", "/api/v1/me")
    assert status == 200
    status, body = c["alice"]("POST", "/api/v1/users/ursula/password", {"password": "short"})
    assert status == 400 and body["field"] == "password", body
    status, body = c["alice"]("POST", "/api/v1/users/ursula/password", {"password": "reset-by-alice"})
    assert status == 200 and body == {"name": "ursula", "password_changed": True}, body
    status, body = old("GET", "/api/v1/me")
    assert status == 401, (status, body)
    r, raw = w.login("ursula", PASSWORDS["ursula"])
    assert r.status == 401, r.status
    ursula = Client(w, "ursula", "reset-by-alice")
    # The admin's own session is untouched by the reset.
    assert c["alice"]("GET", "/api/v1/me")[0] == 200
    print("ok: a reset by the customer-admin ends the user's sessions; the new password logs in, the old one not")

    # Oneself: the current password is required and must be right.
    other = Client(w, "ursula", "reset-by-alice")
    for body, field in (({"password": "mine-now-123"}, "current"),
                        ({"current": "wrong-password", "password": "mine-now-123"}, "current"),
                        ({"current": "reset-by-alice", "password": "short"}, "password"),
                        ({"current": 5, "password": "mine-now-123"}, "current")):
        status, answer = ursula("POST", "/api/v1/users/ursula/password", body)
        assert status == 400 and answer.get("field") == field, (body, status, answer)
    Client(w, "ursula", "reset-by-alice")  # unchanged so far
    status, answer = ursula("POST", "/api/v1/users/ursula/password",
                            {"current": "reset-by-alice", "password": "mine-now-123"})
    assert status == 200, (status, answer)
    assert ursula("GET", "/api/v1/me")[0] == 200, "the session that changed its password stays"
    assert other("GET", "/api/v1/me")[0] == 401, "her other session ended"
    assert w.login("ursula", "reset-by-alice")[0].status == 401
    c["ursula"] = Client(w, "ursula", "mine-now-123")
    # An admin changing their own password also needs the current one.
    status, answer = c["alice"]("POST", "/api/v1/users/alice/password", {"password": "alice-new-pass"})
    assert status == 400 and answer["field"] == "current", answer
    status, answer = c["alice"]("POST", "/api/v1/users/ursula/password",
                                {"current": "mine-now-123", "password": "alice-new-pass"})
    assert status == 400 and answer["field"] == "current", answer
    print("ok: changing one's own password needs the right current one; that session stays, the others end")


def test_audit(d, w, c):
    status, body = c["olga"]("GET", "/api/v1/audit")
    assert status == 200, (status, body)
    entries = body["entries"]
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True), "newest first"
    mine = [(e["principal"], e["action"], e["object"]) for e in entries]
    for expected in (("alice", "user.add", "uma"), ("alice", "user.set", "ursula"), ("ursula", "user.set", "ursula"),
                     ("alice", "user.passwd", "ursula"), ("ursula", "user.passwd", "ursula"),
                     ("gina", "user.add", "gwen")):
        assert expected in mine, (expected, mine)
    digest_off = next(e for e in entries if e["principal"] == "ursula" and e["action"] == "user.set")
    assert digest_off["before"] == {"digest": "on"} and digest_off["after"] == {"digest": "off"}, digest_off
    text = json.dumps(body)
    for pw in ("reset-by-alice", "mine-now-123", "uma-password"):
        assert pw not in text, pw
    # Console entries are there too, and an operator's change to acme's domain is acme's.
    d.console("domain", "set", "acme.example", "digest_from=quarantine@acme.example")

    status, body = c["alice"]("GET", "/api/v1/audit")
    assert status == 200
    assert all(e["customer"] == "acme" for e in body["entries"]), body
    objects = {e["object"] for e in body["entries"]}
    assert {"uma", "ursula", "acme.example"} <= objects and not objects & {"gwen", "gus", "globex.example"}, objects
    status, body = c["gina"]("GET", "/api/v1/audit")
    objects = {e["object"] for e in body["entries"]}
    assert "gwen" in objects and not objects & {"uma", "ursula", "acme.example"}, objects
    status, body = c["pete"]("GET", "/api/v1/audit")
    assert status == 200 and body["entries"], body
    assert all(e["domain"] == "acme.example" for e in body["entries"]), body
    status, body = c["ursula"]("GET", "/api/v1/audit")
    assert status == 403, (status, body)

    for query, field in (("limit=abc", "limit"), ("limit=0", "limit"), ("since=soon", "since"), ("until=x", "until")):
        status, body = c["olga"]("GET", "/api/v1/audit?" + query)
        assert status == 400 and body["field"] == field, (query, status, body)
    status, body = c["olga"]("GET", "/api/v1/audit?limit=2")
    assert len(body["entries"]) == 2 and body["entries"][0]["object"] == "acme.example", body
    status, body = c["olga"]("GET", "/api/v1/audit?until=@1")
    assert status == 200 and body["entries"] == [], body
    status, body = c["olga"]("GET", "/api/v1/audit?since=1h")
    assert len(body["entries"]) == len(entries) + 1, body
    # The console reads the same scope with --as.
    out = d.console("--as", "gina", "audit", "--json").stdout
    assert {json.loads(line)["object"] for line in out.splitlines()} == {"gwen"} | (
        {e["object"] for e in c["gina"]("GET", "/api/v1/audit")[1]["entries"]}), out
    print("ok: GET /api/v1/audit: the API's changes by the web user's name; each customer sees its own, "
          "postmasters their domain's, users 403; since/until/limit checked")


def test_remove(d, c):
    status, body = c["alice"]("DELETE", "/api/v1/users/uma")
    assert status == 200 and body["removed"] is True, (status, body)
    assert "uma" not in console_users(d)
    status, body = c["alice"]("DELETE", "/api/v1/users/uma")
    assert status == 404
    print("ok: DELETE /api/v1/users/{name}")


def main():
    d = mxg.Daemon(domains=("acme.example",), verdicts=True)
    w = None
    try:
        c = d.console
        c("domain", "set", "acme.example", "reject_threshold=100", "quarantine_threshold=5", "greylist_threshold=100")
        c("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        add_user(d, "olga", PASSWORDS["olga"], "--role", "operator")
        add_user(d, "alice", PASSWORDS["alice"], "--role", "customer-admin", "--customer", "acme")
        add_user(d, "gina", PASSWORDS["gina"], "--role", "customer-admin", "--customer", "globex")
        add_user(d, "pete", PASSWORDS["pete"], "--role", "postmaster", "--domain", "acme.example")
        add_user(d, "ursula", PASSWORDS["ursula"], "--role", "user", "--address", "ursula@acme.example")
        add_user(d, "gus", PASSWORDS["gus"], "--role", "user", "--address", "gus@globex.example")
        w = Web(d)
        d.start()
        clients = {name: Client(w, name, pw) for name, pw in PASSWORDS.items()}
        test_roles_and_listing(d, clients)
        test_add_and_validation(d, clients)
        test_other_tenant(d, w, clients)
        test_patch(d, clients)
        test_digest_switch(d, clients)
        test_passwords(d, w, clients)
        test_audit(d, w, clients)
        test_remove(d, clients)
        log = open(os.path.join(d.dir, "web.log")).read()
        for pw in list(PASSWORDS.values()) + ["reset-by-alice", "mine-now-123", "uma-password", "taken-over-1"]:
            assert pw not in log, "a password in the web log"
        print("ok: no password in mxguard-web's log")
    finally:
        if w:
            w.stop()
        d.stop()
    d.cleanup()
    print("web-users: all passed")


if __name__ == "__main__":
    main()
