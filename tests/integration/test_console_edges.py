#!/usr/bin/env python3
"""Rough edges of the console a new operator hit (issue 16): --version, a
suggestion for a mistyped command, customer remove/rename, user passwd,
wildcard allow/block entries and check-mx wording for a backup role."""

import json
import os
import shutil
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
