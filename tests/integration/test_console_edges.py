#!/usr/bin/env python3
"""Rough edges of the console a new operator hit (issue 16): --version, a
suggestion for a mistyped command, customer remove/rename, user passwd,
wildcard allow/block entries and check-mx wording for a backup role."""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402

PROJECT_VERSION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "meson.build")


def project_version():
    with open(PROJECT_VERSION_FILE) as f:
        text = f.read()
    start = text.index("version")
    quote = text.index("'", start)
    return text[quote + 1:text.index("'", quote + 1)]


class ConsoleEdges(unittest.TestCase):
    def setUp(self):
        # The engine is not needed: every command here works on the config store.
        self.d = mxg.Daemon(domains=("example.com",))
        self.addCleanup(lambda: shutil.rmtree(self.d.dir, ignore_errors=True))

    def cli(self, *args, input=None):
        return self.d.console(*args, check=False, input=input)

    def test_demo_configuration_is_announced(self):
        """No --config, no $MXGUARD_CONFIG, no /etc/mxguard/mxguard.toml: the
        console says on stderr that it uses the demo configuration, and its
        stdout stays as it was."""
        if os.path.exists("/etc/mxguard/mxguard.toml"):
            self.skipTest("/etc/mxguard/mxguard.toml exists on this machine")
        work = self.d.dir
        env = {k: v for k, v in os.environ.items() if k != "MXGUARD_CONFIG"}
        p = subprocess.run([os.path.abspath(mxg.MXGUARD), "domain", "list", "--json"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("using the demo configuration (state in ./mxguard-state)", p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertTrue(os.path.isdir(os.path.join(work, "mxguard-state")))
        # With a configuration named, nothing is said.
        p = self.d.console("domain", "list")
        self.assertNotIn("demo configuration", p.stderr)

    def test_version_and_suggestions(self):
        p = self.cli("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "mxguard %s" % project_version())
        p = self.cli("domian", "list")
        self.assertEqual(p.returncode, 2)
        self.assertIn("mxguard: unknown command 'domian'; did you mean 'domain'?", p.stderr)
        p = self.cli("domain", "lsit")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'lsit'; did you mean 'list'?", p.stderr)
        # Nothing close: no suggestion, still a usage error.
        p = self.cli("zzzzzzzz")
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("did you mean", p.stderr)

    def test_customer_remove_and_rename(self):
        # acme owns example.com (from the harness) and a customer-admin.
        self.d.console("user", "add", "boss", "--role", "customer-admin", "--customer", "acme")
        p = self.cli("customer", "remove", "acme")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("still has 1 domain and 1 user", p.stderr)
        p = self.cli("--as", "boss", "customer", "rename", "acme", "other")
        self.assertEqual(p.returncode, 5, p.stderr)
        self.d.console("customer", "add", "taken")
        p = self.cli("customer", "rename", "acme", "taken")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("customer taken already exists", p.stderr)
        self.d.console("customer", "rename", "acme", "globex")
        domains = [json.loads(l) for l in self.d.console("domain", "list", "--json").stdout.splitlines()]
        self.assertEqual([d["customer"] for d in domains], ["globex"])
        users = [json.loads(l) for l in self.d.console("user", "list", "--json").stdout.splitlines()]
        self.assertEqual([u["customer"] for u in users if u["name"] == "boss"], ["globex"])
        names = [json.loads(l)["name"] for l in self.d.console("customer", "list", "--json").stdout.splitlines()]
        self.assertEqual(sorted(names), ["globex", "taken"])
        self.d.console("customer", "remove", "taken")
        p = self.cli("customer", "remove", "taken")
        self.assertIn("no such customer: taken", p.stderr)
        actions = [json.loads(l)["action"] for l in self.d.console("audit", "--json").stdout.splitlines()]
        self.assertIn("customer.rename", actions)
        self.assertIn("customer.remove", actions)

    def test_user_passwd_from_stdin(self):
        self.d.console("domain", "add", "other.test", "--customer", "rival", "--backend", "127.0.0.1:2")
        self.d.console("user", "add", "boss", "--role", "customer-admin", "--customer", "acme")
        self.d.console("user", "add", "pm", "--role", "postmaster", "--domain", "example.com")
        self.d.console("user", "add", "stranger", "--role", "postmaster", "--domain", "other.test")
        def has_password(name):
            for line in self.d.console("user", "list", "--json").stdout.splitlines():
                u = json.loads(line)
                if u["name"] == name:
                    return u["has_password"]
        self.assertFalse(has_password("pm"))
        self.d.console("user", "passwd", "pm", input="correct horse battery\n")
        self.assertTrue(has_password("pm"))
        p = self.cli("user", "passwd", "pm", input="short\n")
        self.assertEqual(p.returncode, 2)
        self.d.console("--as", "boss", "user", "passwd", "pm", input="another long one\n")
        p = self.cli("--as", "boss", "user", "passwd", "stranger", input="another long one\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no such user: stranger", p.stderr)
        self.assertFalse(has_password("stranger"))
        actions = [json.loads(l)["action"] for l in self.d.console("audit", "--json").stdout.splitlines()]
        self.assertEqual(actions.count("user.passwd"), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
