"""mxguard-web: a domain's recipients, allow/block lists and MX check over
HTTPS, per role, against the console's view of the same store; the changes
take effect in a running mxguardd (smtplib RCPT and MAIL FROM), and the MX
check asks a real Knot DNS server."""
import json
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
from knot import Knot  # noqa: E402
from test_web import Client, Web, add_user  # noqa: E402

OUR_MX = ["mx1.mxguard.test", "mx2.mxguard.test"]
# acme.example prefers a foreign MX over ours: mail bypasses the filter.
ZONES = {
    "acme.example": ["@ MX 5 mail.elsewhere.test.", "@ MX 10 mx1.mxguard.test."],
    "mxguard.test": ["mx1 A 127.0.0.1", "mx2 A 127.0.0.1"],
    "elsewhere.test": ["mail A 192.0.2.25"],
}


def configure(d, knot):
    with open(d.config, "a") as f:
        f.write('\n[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n[onboarding]\nmx_hosts = %s\n'
                % (knot.port, json.dumps(OUR_MX)))


def console_json(d, *args):
    return [json.loads(line) for line in d.console(*args, "--json").stdout.splitlines()]


def rcpt(d, to, sender="someone@client.test"):
    """(code of MAIL FROM or, when that passed, of RCPT TO, text)."""
    with smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.test", timeout=10) as s:
        s.ehlo()
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode()
        code, text = s.rcpt(to)
        return code, text.decode()


def state(d):
    """Everything these endpoints could change, as the console shows it."""
    return (d.console("recipient", "list", "acme.example", "--json").stdout,
            d.console("recipient", "list", "globex.example", "--json").stdout,
            d.console("list", "block", "show", "globex.example", "--json").stdout,
            d.console("list", "allow", "show", "globex.example", "--json").stdout,
            d.console("list", "block", "show", "--json").stdout,
            len(d.console("audit", "--json").stdout.splitlines()))


def test_recipients(d, alice, pete, gina, una):
    base = "/api/v1/domains/acme.example/recipients"
    status, b = alice("POST", base, {"addresses": ["Ann", "bert@ACME.example"]})
    assert status == 200, (status, b)
    assert [(x["address"], x["added"]) for x in b["recipients"]] == [("Ann@acme.example", True),
                                                                    ("bert@acme.example", True)], b
    status, b = pete("POST", base, {"address": "ann"})
    assert status == 200 and b["recipients"][0]["added"] is False, (status, b)
    status, b = pete("GET", base)
    assert status == 200, (status, b)
    assert b["recipients"] == console_json(d, "recipient", "list", "acme.example"), b
    assert b["domain"] == "acme.example"
    print("ok: POST/GET recipients as customer-admin and postmaster; the same objects as `recipient list --json`")

    before = state(d)
    status, b = una("GET", base)
    assert status == 404 and b["code"] == "not_found", (status, b)
    for who in (alice, pete):
        for method, path, body in (("GET", "/api/v1/domains/globex.example/recipients", None),
                                   ("POST", "/api/v1/domains/globex.example/recipients", {"address": "x"}),
                                   ("DELETE", "/api/v1/domains/globex.example/recipients/gus@globex.example", None),
                                   ("POST", "/api/v1/domains/globex.example/recipients/import",
                                    {"text": "x@globex.example\n"})):
            status, b = who(method, path, body)
            assert status == 404 and b["code"] == "not_found", (method, path, status, b)
            missing_status, missing = who(method, path.replace("globex", "nosuch"),
                                          body if not isinstance(body, dict) or "text" not in body
                                          else {"text": "x@nosuch.example\n"})
            assert missing_status == 404 and \
                missing["error"].replace("nosuch", "X") == b["error"].replace("globex", "X"), (missing, b)
    for body, field, says in (({"address": "not an address"}, "address", "not an address"),
                              ({"address": "eve@globex.example"}, "address", "is not in acme.example"),
                              ({"addresses": []}, "address", "no address"),
                              ({"addresses": "ann"}, "addresses", "list"),
                              ({"colour": "blue"}, "colour", "unknown field")):
        status, b = alice("POST", base, body)
        assert status == 400 and b["code"] == "usage" and b["field"] == field and says in b["error"], (body, status, b)
    status, b = alice("POST", "/api/v1/domains/bad..example/recipients", {"address": "x"})
    assert status == 400 and b["field"] == "domain", (status, b)
    assert state(d) == before
    print("ok: another tenant's or a missing domain is 404 alike (user role too); bad input is 400 naming the "
          "field; nothing written")

    # An import with errors names each line and writes nothing; a clean one adds all.
    text = "# staff\ncarl@acme.example\n\nnot valid\nann@acme.example\neve@globex.example\ncarl@acme.example\n"
    status, b = alice("POST", base + "/import", {"text": text, "file": "staff.txt"})
    assert status == 400 and b["code"] == "usage" and b["field"] == "text", (status, b)
    assert [x["line"] for x in b["lines"]] == [4, 6, 7], b
    assert "duplicate" in b["lines"][2]["problem"] and "line 4:" in b["error"], b
    assert state(d) == before
    # A plain text body works too (curl --data-binary @file).
    r, raw = alice.w.request("POST", base + "/import", "dora@acme.example\r\nann@acme.example\r\n",
                             headers={"Cookie": alice.cookie, "X-CSRF-Token": alice.csrf, "Content-Type": "text/plain"})
    b = json.loads(raw)
    assert r.status == 200 and b == {"domain": "acme.example", "file": "upload", "addresses": 2, "new": 1}, (r.status, b)
    audit = console_json(d, "audit")[-1]
    assert audit["action"] == "recipient.import" and audit["principal"] == "alice", audit
    print("ok: import with bad lines -> 400 with lines 4, 6, 7 and nothing written; a text body imports")

    status, b = pete("DELETE", base + "/dora@acme.example")
    assert status == 200 and b == {"address": "dora@acme.example", "domain": "acme.example", "kind": "mailbox",
                                   "removed": True}, (status, b)
    status, b = pete("DELETE", base + "/dora@acme.example")
    assert status == 200 and b["removed"] is False, (status, b)
    assert "dora@acme.example" not in d.console("recipient", "list", "acme.example").stdout
    print("ok: DELETE a recipient (again: removed false, as the console's 'was not present')")


def test_lists(d, alice, pete, gina, carol):
    base = "/api/v1/domains/acme.example/lists"
    status, b = pete("POST", base, {"list": "block", "kind": "sender", "value": "Spammer@Bad.test"})
    assert status == 201 and b["added_now"] is True and b["value"] == "spammer@bad.test", (status, b)
    status, b = alice("POST", base, {"list": "allow", "kind": "ip", "value": "192.0.2.0/24"})
    assert status == 201, (status, b)
    status, b = alice("POST", base, {"list": "allow", "kind": "ip", "value": "192.0.2.0/24"})
    assert status == 200 and b["added_now"] is False, (status, b)
    status, b = alice("GET", base)
    assert status == 200 and b["scope"] == "acme.example", (status, b)
    assert b["block"] == console_json(d, "list", "block", "show", "acme.example"), b
    assert b["allow"] == console_json(d, "list", "allow", "show", "acme.example"), b
    print("ok: POST/GET lists; the entries are `list ... show --json`'s")

    before = state(d)
    entry = {"list": "block", "kind": "sender", "value": "x@y.test"}
    for who in (alice, pete):
        for method, path, body in (("GET", "/api/v1/domains/globex.example/lists", None),
                                   ("POST", "/api/v1/domains/globex.example/lists", entry),
                                   ("DELETE", "/api/v1/domains/globex.example/lists/block/sender/gus@rival.test", None)):
            status, b = who(method, path, body)
            assert status == 404 and b["code"] == "not_found", (method, path, status, b)
    for who in (alice, pete):
        for method, body in (("GET", None), ("POST", entry)):
            status, b = who(method, "/api/v1/lists", body)
            assert status == 403 and b["code"] == "not_permitted", (status, b)
    for body, field in (({"list": "grey", "kind": "sender", "value": "x@y.test"}, "list"),
                        ({"list": "block", "kind": "mailbox", "value": "x@y.test"}, "kind"),
                        ({"list": "block", "kind": "ip", "value": "300.1.1.1"}, "value"),
                        ({"list": "block", "kind": "sender", "value": 7}, "value"),
                        ({"list": "block", "kind": "sender", "value": "x@y.test", "why": "no"}, "why")):
        status, b = alice("POST", base, body)
        assert status == 400 and b["code"] == "usage" and b["field"] == field, (body, status, b)
    status, b = alice("DELETE", base + "/block/sender/nobody@bad.test")
    assert status == 404 and "is not on the acme.example block list" in b["error"], (status, b)
    assert state(d) == before
    print("ok: another tenant's lists 404, the global lists 403 for tenants, bad list/kind/value 400 by field, "
          "nothing written")

    # The global lists, for operators; a CIDR's slash stays in the path's value.
    status, b = carol("POST", "/api/v1/lists", {"list": "block", "kind": "ip", "value": "198.51.100.0/24"})
    assert status == 201 and b["scope"] == "global", (status, b)
    assert console_json(d, "list", "block", "show")[0]["value"] == "198.51.100.0/24"
    status, b = carol("DELETE", "/api/v1/lists/block/ip/198.51.100.0/24")
    assert status == 200 and b["removed"] is True, (status, b)
    status, b = alice("DELETE", base + "/allow/ip/192.0.2.0/24")
    assert status == 200 and b["removed"] is True and "added" not in b, (status, b)
    assert console_json(d, "list", "allow", "show", "acme.example") == []
    print("ok: operators' global lists; DELETE of an ip entry by its CIDR")


def test_mx_check(d, alice, pete, gina):
    status, b = pete("GET", "/api/v1/domains/acme.example/mx-check")
    assert status == 200 and b["ok"] is False, (status, b)
    p = d.console("domain", "check-mx", "acme.example", "--json", check=False)
    console = json.loads(p.stdout)
    records = b.pop("records")
    assert b == console, (b, console)
    assert records == [{"type": "MX", "name": "acme.example", "preference": 10, "host": "mx1.mxguard.test"},
                       {"type": "MX", "name": "acme.example", "preference": 20, "host": "mx2.mxguard.test"}], records
    assert b["role"] == "backup" and any(w.startswith("BYPASS: MX 5 mail.elsewhere.test") for w in b["warnings"]), b
    status, b = gina("GET", "/api/v1/domains/acme.example/mx-check")
    assert status == 404, (status, b)
    status, b = alice("POST", "/api/v1/domains/acme.example/mx-check")
    assert status == 405, (status, b)
    print("ok: GET mx-check: the console's JSON plus the records to set; the bypass named; other tenant 404")


def test_effect(d, alice):
    """What the API changes, mxguardd does: list-mode RCPT and the block list."""
    d.console("domain", "set", "acme.example", "recipients=list")
    d.start()
    code, text = rcpt(d, "newbie@acme.example")
    assert code == 550 and text.startswith("5.1.1"), (code, text)
    status, b = alice("POST", "/api/v1/domains/acme.example/recipients", {"address": "newbie"})
    assert status == 200, (status, b)
    assert rcpt(d, "newbie@acme.example")[0] == 250
    status, b = alice("DELETE", "/api/v1/domains/acme.example/recipients/newbie@acme.example")
    assert status == 200
    assert rcpt(d, "newbie@acme.example")[0] == 550
    print("ok: a recipient added through the API is accepted by mxguardd (550 before, 250 after, 550 once removed)")

    assert rcpt(d, "ann@acme.example", sender="pest@nuisance.test")[0] == 250
    status, b = alice("POST", "/api/v1/domains/acme.example/lists",
                      {"list": "block", "kind": "sender-domain", "value": "nuisance.test"})
    assert status == 201, (status, b)
    code, text = rcpt(d, "ann@acme.example", sender="pest@nuisance.test")
    assert code == 550, (code, text)
    status, b = alice("DELETE", "/api/v1/domains/acme.example/lists/block/sender-domain/nuisance.test")
    assert status == 200
    assert rcpt(d, "ann@acme.example", sender="pest@nuisance.test")[0] == 250
    print("ok: a sender domain blocked through the API is refused by mxguardd (550), accepted once removed")


def main():
    d = mxg.Daemon(domains=("acme.example",))
    w = knot = None
    try:
        os.mkdir(os.path.join(d.dir, "knot"))
        knot = Knot(os.path.join(d.dir, "knot"), ZONES)
        configure(d, knot)
        d.console("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        d.console("recipient", "add", "globex.example", "gus")
        d.console("list", "block", "add", "globex.example", "sender", "gus@rival.test")
        add_user(d, "alice", "alice-password", "--role", "customer-admin", "--customer", "acme")
        add_user(d, "pete", "pete-password", "--role", "postmaster", "--domain", "acme.example")
        add_user(d, "gina", "gina-password", "--role", "customer-admin", "--customer", "globex")
        add_user(d, "una", "una-password", "--role", "user", "--address", "una@acme.example")
        add_user(d, "carol", "carol-password", "--role", "operator")
        w = Web(d)
        alice, pete = Client(w, "alice", "alice-password"), Client(w, "pete", "pete-password")
        gina, una = Client(w, "gina", "gina-password"), Client(w, "una", "una-password")
        carol = Client(w, "carol", "carol-password")
        test_recipients(d, alice, pete, gina, una)
        test_lists(d, alice, pete, gina, carol)
        test_mx_check(d, alice, pete, gina)
        test_effect(d, alice)
    finally:
        if w:
            w.stop()
        if knot:
            knot.stop()
        if d.proc:
            d.stop()
        d.cleanup()
    print("PASS")


if __name__ == "__main__":
    main()
