#!/usr/bin/env python3
"""The `mxguard` console end to end: the real binary against a temporary state dir.

Run: MXGUARD_BIN=build/src/console/mxguard python3 tests/integration/test_console.py
(MXGUARD_BIN defaults to build/src/console/mxguard relative to the repository.)
"""

import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MXGUARD_BIN", REPO / "build" / "src" / "console" / "mxguard"))
if not BIN.is_absolute():
    BIN = REPO / BIN

TOKEN_RE = re.compile(r"^mxg-[A-Za-z0-9]{32}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class ConsoleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mxguard-console-")
        self.addCleanup(self.tmp.cleanup)
        self.config = Path(self.tmp.name) / "mxguard.toml"
        self.config.write_text(
            'hostname = "mx1.example.net"\n'
            f'state_dir = "{self.tmp.name}/state"\n'
            "[onboarding]\n"
            'mx_hosts = ["mx1.example.net", "mx2.example.net"]\n'
        )

    # -- helpers ---------------------------------------------------------

    def run_cli(self, *args):
        env = {k: v for k, v in os.environ.items() if k != "MXGUARD_CONFIG"}
        return subprocess.run(
            [str(BIN), "--config", str(self.config), *args],
            capture_output=True, text=True, env=env, timeout=30,
        )

    def ok(self, *args):
        r = self.run_cli(*args)
        self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
        return r.stdout

    def json_lines(self, *args):
        return [json.loads(line) for line in self.ok(*args).splitlines()]

    def snapshot(self):
        return (self.ok("customer", "list", "--json"), self.ok("domain", "list", "--json"))

    def refused(self, *args, code=2, contains=None):
        """Asserts a clean refusal: exit code, one stderr line, no state change."""
        before = self.snapshot()
        r = self.run_cli(*args)
        self.assertEqual(r.returncode, code, f"{args}: stdout={r.stdout!r} stderr={r.stderr!r}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"{args}: stderr={r.stderr!r}")
        self.assertTrue(lines[0].startswith("mxguard: "), lines[0])
        self.assertEqual(r.stdout, "", f"{args}: a refusal prints nothing on stdout")
        if contains:
            self.assertIn(contains, lines[0])
        self.assertEqual(self.snapshot(), before, f"{args} changed the state")
        return lines[0]

    def add_domain(self, name, *extra, customer="acme", backend="mail.example.org"):
        return self.ok("domain", "add", "--customer", customer, "--backend", backend, *extra, "--", name)

    def show(self, name):
        return self.json_lines("domain", "show", name, "--json")[0]

    # -- general ---------------------------------------------------------

    def test_help_exits_zero(self):
        for args in ([], ["domain"], ["domain", "add"], ["customer", "list"], ["queue", "show"]):
            r = subprocess.run([str(BIN), *args, "--help"], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("Usage:", r.stdout)

    def test_missing_subcommand_is_usage_error(self):
        for args in ([], ["domain"], ["queue"]):
            r = self.run_cli(*args)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(len(r.stderr.splitlines()), 1)
            self.assertTrue(r.stderr.startswith("mxguard: "))
            self.assertIn("Usage:", r.stdout)

    def test_unknown_option_and_bad_config(self):
        self.refused("domain", "list", "--bogus")
        r = subprocess.run([str(BIN), "--config", "/nonexistent/mxguard.toml", "domain", "list"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.splitlines()), 1)

    # -- customers -------------------------------------------------------

    def test_customer_add_and_list(self):
        self.ok("customer", "add", "acme")
        self.ok("customer", "add", "Beta_2.x-y")
        names = [c["name"] for c in self.json_lines("customer", "list", "--json")]
        self.assertEqual(sorted(names), ["Beta_2.x-y", "acme"])
        self.assertIn("acme", self.ok("customer", "list"))
        self.refused("customer", "add", "acme", code=4, contains="already exists")  # taken: 4, as for users and domains
        self.refused("customer", "add", "bad name")
        self.refused("customer", "add", "a" * 65)
        self.refused("customer", "add", "")
        self.refused("customer", "add", "x/y")

    # -- domain add ------------------------------------------------------

    def test_domain_add_pending_with_token(self):
        self.ok("customer", "add", "acme")
        out = self.add_domain("Example.COM", backend="mail.example.org:2525")
        self.assertIn("_mxguard-verify.example.com", out)
        d = self.show("example.com")
        self.assertEqual(d["domain"], "example.com")
        self.assertEqual(d["customer"], "acme")
        self.assertEqual(d["status"], "pending_verification")
        v = d["verification"]
        self.assertEqual(v["name"], "_mxguard-verify.example.com")
        self.assertEqual(v["type"], "TXT")
        self.assertEqual(v["ttl"], 300)
        self.assertRegex(v["value"], TOKEN_RE)
        self.assertEqual(d["backend"], {"host": "mail.example.org", "port": 2525, "tls": "may",
                                        "trust": "ip", "auth_user": "", "auth_password_set": False})
        self.assertEqual(d["recipients"], "accept-all")
        self.assertRegex(d["created"], ISO_RE)

    def test_domain_add_creates_missing_customer(self):
        out = self.add_domain("example.com", customer="newco")
        self.assertIn("newco", out)
        self.assertIn("created", out)
        self.assertEqual([c["name"] for c in self.json_lines("customer", "list", "--json")], ["newco"])

    def test_domain_add_active_and_options(self):
        # trust=auth without a password is a risk (issue 16), confirmed with --force.
        self.add_domain("example.net", "--active", "--tls", "encrypt", "--recipients", "callout",
                        "--trust", "auth", "--auth-user", "relay@example.net", "--force",
                        backend="[2001:db8::1]:587")
        d = self.show("example.net")
        self.assertEqual(d["status"], "active")
        self.assertEqual(d["backend"], {"host": "2001:db8::1", "port": 587, "tls": "encrypt",
                                        "trust": "auth", "auth_user": "relay@example.net", "auth_password_set": False})
        self.assertEqual(d["recipients"], "callout")

    def test_tokens_differ(self):
        self.add_domain("one.example")
        self.add_domain("two.example")
        self.assertNotEqual(self.show("one.example")["verification"]["value"],
                            self.show("two.example")["verification"]["value"])

    def test_duplicate_refused(self):
        self.add_domain("example.com")
        token = self.show("example.com")["verification"]["value"]
        self.refused("domain", "add", "--customer", "acme", "--backend", "h.example", "example.com",
                     code=4, contains="already exists")
        line = self.refused("domain", "add", "--customer", "other", "--backend", "h.example",
                            "EXAMPLE.com", code=4, contains="another customer")
        self.assertNotIn("acme", line)
        self.assertEqual(self.show("example.com")["verification"]["value"], token)
        # The refused add must not have created its customer either.
        self.assertNotIn("other", self.ok("customer", "list"))

    def test_idn_stored_as_a_label(self):
        self.add_domain("bücher.example")
        self.assertEqual(self.show("xn--bcher-kva.example")["domain"], "xn--bcher-kva.example")

    def test_high_value_blocklist_needs_force(self):
        self.refused("domain", "add", "--customer", "acme", "--backend", "h.example", "mail.gmail.com",
                     code=3, contains="high-value blocklist")
        self.refused("domain", "add", "--customer", "acme", "--backend", "h.example", "hmrc.gov.uk",
                     code=3, contains="under gov.uk")
        self.ok("domain", "add", "--customer", "acme", "--backend", "h.example", "--force", "hmrc.gov.uk")
        self.assertEqual(self.show("hmrc.gov.uk")["domain"], "hmrc.gov.uk")

    def test_invalid_domains_refused(self):
        self.ok("customer", "add", "acme")
        bad = [
            "",                                   # empty
            "localhost",                          # no dot
            "-bad.example.com",                   # leading hyphen label
            "a.-b.example",                       # leading hyphen inner label
            "bad-.example.com",                   # trailing hyphen
            ("a" * 63 + ".") * 3 + "a" * 62,      # 254 characters
            "a" * 64 + ".example",                # label of 64
            "exa mple.com",                       # space
            "example.com.",                       # trailing dot
            "example..com",                       # empty label
            "ex_ample.com",                       # underscore
            "192.0.2.1",                          # an IP address
            "https://example.com",                # a URL, not a name
            "www.example.com",                    # www. prefix
            "example.com/",                       # trailing slash
        ]
        self.assertEqual(len(bad[5]), 254)
        for name in bad:
            with self.subTest(name=name):
                self.refused("domain", "add", "--customer", "acme", "--backend", "mail.example.org",
                             "--", name)
        self.assertEqual(self.json_lines("domain", "list", "--json"), [])

    def test_253_characters_accepted(self):
        name = ("a" * 63 + ".") * 3 + "a" * 61
        self.assertEqual(len(name), 253)
        self.add_domain(name)
        self.assertEqual(self.show(name)["domain"], name)

    def test_bad_backends_refused(self):
        for backend in ["", "mail.example.org:0", "mail.example.org:65536", "mail.example.org:abc",
                        "mail.example.org:", "[2001:db8::1", "[mail.example.org]:25", "bad host",
                        "2001:db8::zz", "1.2.3"]:
            with self.subTest(backend=backend):
                self.refused("domain", "add", "--customer", "newco", "--backend", backend, "example.com")
        self.assertEqual(self.json_lines("customer", "list", "--json"), [])

    def test_good_backends(self):
        cases = {"a.example": ("mail.example.org", 25), "b.example": ("192.0.2.1", 2525),
                 "c.example": ("2001:db8::2", 25), "d.example": ("2001:db8::3", 465),
                 "e.example": ("mail.example.org", 65535)}
        specs = {"a.example": "Mail.Example.Org", "b.example": "192.0.2.1:2525",
                 "c.example": "2001:db8::2", "d.example": "[2001:db8::3]:465",
                 "e.example": "mail.example.org:65535"}
        for name, spec in specs.items():
            self.add_domain(name, backend=spec)
            b = self.show(name)["backend"]
            self.assertEqual((b["host"], b["port"]), cases[name])

    def test_bad_options_refused(self):
        base = ["domain", "add", "--customer", "acme", "--backend", "mail.example.org"]
        self.refused(*base, "--tls", "always", "example.com")
        self.refused(*base, "--recipients", "some", "example.com")
        self.refused(*base, "--trust", "magic", "example.com")
        self.refused(*base, "--trust", "auth", "example.com")
        self.refused(*base, "--auth-user", "u", "example.com")
        self.refused("domain", "add", "--customer", "acme", "example.com")  # no --backend
        self.refused("domain", "add", "--backend", "h.example", "example.com")  # no --customer

    # -- list, show, remove ----------------------------------------------

    def test_domain_list(self):
        self.add_domain("example.com")
        self.add_domain("example.org", "--active", customer="beta")
        rows = self.json_lines("domain", "list", "--json")
        self.assertEqual([r["domain"] for r in rows], ["example.com", "example.org"])
        self.assertEqual([r["status"] for r in rows], ["pending_verification", "active"])
        for r in rows:
            for key in ("domain", "customer", "status", "verification", "backend", "recipients", "created"):
                self.assertIn(key, r)
        human = self.ok("domain", "list")
        self.assertIn("example.org", human)
        self.assertIn("pending_verification", human)

    def test_domain_show_human(self):
        self.add_domain("example.com")
        token = self.show("example.com")["verification"]["value"]
        out = self.ok("domain", "show", "example.com")
        self.assertIn("status:", out)
        self.assertIn(f'_mxguard-verify.example.com. 300 IN TXT "{token}"', out)
        self.assertIn("example.com. IN MX 10 mx1.example.net.", out)
        self.assertIn("example.com. IN MX 20 mx2.example.net.", out)

    def test_domain_show_and_remove_missing(self):
        self.refused("domain", "show", "nope.example", contains="no such domain")
        self.refused("domain", "show", "nope.example", "--json")
        self.refused("domain", "remove", "nope.example")
        self.refused("domain", "show", "not a domain")

    def test_domain_remove(self):
        self.add_domain("example.com")
        self.add_domain("example.org")
        self.ok("domain", "remove", "Example.com")
        self.assertEqual([r["domain"] for r in self.json_lines("domain", "list", "--json")], ["example.org"])
        self.refused("domain", "show", "example.com")
        self.refused("domain", "remove", "example.com")

    # -- queue -----------------------------------------------------------

    def test_queue_empty(self):
        r = self.run_cli("queue", "list", "--json")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertIn("0 messages", self.ok("queue", "list"))

    def test_queue_unknown_ids(self):
        self.refused("queue", "show", "not-an-id")
        self.refused("queue", "show", "0190f3c2a1b2c3.s0", contains="no such message")
        self.refused("queue", "show", "0190f3c2a1b2c3.s0", "--raw")
        self.refused("queue", "delete", "0190f3c2a1b2c3.s0")
        self.refused("queue", "show", "0190f3c2a1b2c3.s0", "--raw", "--json")


if __name__ == "__main__":
    if not BIN.exists():
        raise SystemExit(f"mxguard binary not found at {BIN} (set MXGUARD_BIN)")
    unittest.main(verbosity=2)
