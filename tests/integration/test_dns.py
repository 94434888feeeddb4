#!/usr/bin/env python3
"""`mxguard domain verify` and `domain check-mx` against a real Knot DNS server.

knotd serves generated zones on a free loopback port; the console's resolver
forwards only to it. Domains are added first (their tokens are random), then
the zones are written from the tokens and knotd is started.

Run: MXGUARD_BIN=build/src/console/mxguard /usr/bin/python3 tests/integration/test_dns.py
"""

import json
import os
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from knot import KNOTD, Knot, free_udp_tcp_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MXGUARD_BIN", REPO / "build" / "src" / "console" / "mxguard"))
if not BIN.is_absolute():
    BIN = REPO / BIN

OUR_MX = ["mx1.mxguard.test", "mx2.mxguard.test"]

# Zones that are not customer domains: our MX hosts and a foreign provider.
STATIC_ZONES = {
    "mxguard.test": ["mx1 A 127.0.0.1", "mx2 A 127.0.0.2", "mx2 AAAA ::2"],
    "foreign.test": ["mail A 192.0.2.10", "noaddr TXT \"a host without addresses\""],
}

# Customer domains for `domain verify`: their verification records, where
# {token} is the domain's token and {head}/{tail} its two halves.
VERIFY_DOMAINS = {
    "verified.test": ['_mxguard-verify TXT "{token}"'],
    "missing.test": ["_mxguard-verify A 192.0.2.1"],
    "wrong.test": ['_mxguard-verify TXT "mxg-0000000000000000000000000000000w"'],
    "nx.test": ["www A 192.0.2.1"],
    "several.test": ['_mxguard-verify TXT "v=spf1 -all"', '_mxguard-verify TXT "{token}"',
                     '_mxguard-verify TXT "google-site-verification=abc"'],
    "split.test": ['_mxguard-verify TXT "{head}" "{tail}"'],
    "split-records.test": ['_mxguard-verify TXT "{head}"', '_mxguard-verify TXT "{tail}"'],
    "allwrong.test": ['_mxguard-verify TXT "first wrong"', '_mxguard-verify TXT "second wrong"',
                      '_mxguard-verify TXT "x{token}"'],
    "again.test": ['_mxguard-verify TXT "{token}"'],
}

# Customer domains for `domain check-mx`: their MX sets.
MX_DOMAINS = {
    "mx-good.test": ["@ MX 10 mx1.mxguard.test.", "@ MX 20 mx2.mxguard.test."],
    "mx-extra.test": ["@ MX 10 mx1.mxguard.test.", "@ MX 20 mx2.mxguard.test.", "@ MX 30 mail.foreign.test."],
    "mx-bypass.test": ["@ MX 5 mail.foreign.test.", "@ MX 10 mx1.mxguard.test."],
    "mx-equal.test": ["@ MX 10 mail.foreign.test.", "@ MX 10 mx1.mxguard.test."],
    "mx-ip.test": ["@ MX 10 mx1.mxguard.test.", "@ MX 20 192.0.2.25."],
    "mx-noaddr.test": ["@ MX 10 mx1.mxguard.test.", "@ MX 20 noaddr.foreign.test."],
    "mx-backup.test": ["@ MX 10 mail.foreign.test.", "@ MX 20 MX1.MxGuard.Test."],
    "mx-none.test": ["@ A 192.0.2.1"],
}

# A domain whose zone knotd does not serve: it answers REFUSED, the resolver SERVFAIL.
UNSERVED = "elsewhere.example"


class DnsOnboardingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(KNOTD, os.X_OK):
            raise RuntimeError("knotd not found: install the Debian package 'knot'")
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxguard-dns-")
        cls.dir = Path(cls.tmp.name)
        cls.knot = None
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        # Domains first: the zones publish the tokens `domain add` made up.
        cls.config = cls.write_config("mxguard.toml", "127.0.0.1:53")
        for name in [*VERIFY_DOMAINS, *MX_DOMAINS, UNSERVED]:
            cls.cli_ok("domain", "add", name, "--customer", "acme", "--backend", "mail.acme.test")
        zones = dict(STATIC_ZONES)
        for name, records in VERIFY_DOMAINS.items():
            token = cls.token(name)
            fill = {"token": token, "head": token[:15], "tail": token[15:]}
            zones[name] = [r.format(**fill) for r in records]
        zones.update(MX_DOMAINS)
        (cls.dir / "knot").mkdir()
        cls.knot = Knot(cls.dir / "knot", zones)
        cls.config = cls.write_config("mxguard.toml", f"127.0.0.1:{cls.knot.port}")

    @classmethod
    def tearDownClass(cls):
        if cls.knot:
            cls.knot.stop()
        cls.tmp.cleanup()

    @classmethod
    def write_config(cls, filename, server, timeout="2s"):
        path = cls.dir / filename
        path.write_text(
            'hostname = "mx1.mxguard.test"\n'
            f'state_dir = "{cls.dir}/state"\n'
            "[dns]\n"
            f'servers = ["{server}"]\n'
            f'timeout = "{timeout}"\n'
            "[onboarding]\n"
            f"mx_hosts = {json.dumps(OUR_MX)}\n"
        )
        return path

    @classmethod
    def cli(cls, *args, config=None):
        env = {k: v for k, v in os.environ.items() if k != "MXGUARD_CONFIG"}
        return subprocess.run([str(BIN), "--config", str(config or cls.config), *args],
                              capture_output=True, text=True, env=env, timeout=60)

    @classmethod
    def cli_ok(cls, *args):
        r = cls.cli(*args)
        if r.returncode != 0:
            raise AssertionError(f"{args}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    @classmethod
    def show(cls, name):
        return json.loads(cls.cli_ok("domain", "show", name, "--json"))

    @classmethod
    def token(cls, name):
        return cls.show(name)["verification"]["value"]

    # -- helpers ---------------------------------------------------------

    def verify_json(self, name, code):
        r = self.cli("domain", "verify", name, "--json")
        self.assertEqual(r.returncode, code, f"verify {name}: stdout={r.stdout!r} stderr={r.stderr!r}")
        out = json.loads(r.stdout)
        self.assertEqual(out["domain"], name)
        self.assertEqual(out["expected"], {"name": f"_mxguard-verify.{name}", "type": "TXT",
                                           "value": self.token(name)})
        return out

    def verify_human(self, name, code):
        r = self.cli("domain", "verify", name)
        self.assertEqual(r.returncode, code, f"verify {name}: stdout={r.stdout!r} stderr={r.stderr!r}")
        return r

    def check_mx(self, name, code):
        r = self.cli("domain", "check-mx", name, "--json")
        self.assertEqual(r.returncode, code, f"check-mx {name}: stdout={r.stdout!r} stderr={r.stderr!r}")
        out = json.loads(r.stdout)
        self.assertEqual(out["domain"], name)
        self.assertEqual(out["ok"], code == 0)
        return out

    def assert_pending(self, name):
        self.assertEqual(self.show(name)["status"], "pending_verification")

    def assert_one_stderr_line(self, r, contains):
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("mxguard: "), lines[0])
        self.assertIn(contains, lines[0])

    # -- domain verify ---------------------------------------------------

    def test_verify_succeeds_and_activates(self):
        self.assert_pending("verified.test")
        r = self.verify_human("verified.test", 0)
        self.assertIn("now active", r.stdout)
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.show("verified.test")["status"], "active")

    def test_verify_already_active_exits_zero(self):
        out = self.verify_json("again.test", 0)
        self.assertEqual(out["result"], "verified")
        self.assertEqual(out["status"], "active")
        out = self.verify_json("again.test", 0)
        self.assertEqual(out["result"], "already_active")
        self.assertIn("already active", self.verify_human("again.test", 0).stdout)

    def test_verify_missing_txt(self):
        out = self.verify_json("missing.test", 1)
        self.assertEqual(out["result"], "missing")
        self.assertEqual(out["found"], [])
        self.assertEqual(out["status"], "pending_verification")
        r = self.verify_human("missing.test", 1)
        self.assert_one_stderr_line(r, "no TXT record at _mxguard-verify.missing.test")
        self.assertIn("has no TXT record", r.stdout)
        self.assert_pending("missing.test")

    def test_verify_wrong_value(self):
        out = self.verify_json("wrong.test", 1)
        self.assertEqual(out["result"], "mismatch")
        self.assertEqual(out["found"], ["mxg-0000000000000000000000000000000w"])
        r = self.verify_human("wrong.test", 1)
        self.assertIn('"mxg-0000000000000000000000000000000w"', r.stdout)
        self.assertIn(self.token("wrong.test"), r.stdout)
        self.assert_one_stderr_line(r, "none of the TXT records")
        self.assert_pending("wrong.test")

    def test_verify_nxdomain(self):
        out = self.verify_json("nx.test", 1)
        self.assertEqual(out["result"], "nxdomain")
        self.assertEqual(out["found"], [])
        r = self.verify_human("nx.test", 1)
        self.assert_one_stderr_line(r, "does not exist in DNS (NXDOMAIN)")
        self.assert_pending("nx.test")

    def test_verify_one_of_several_records(self):
        out = self.verify_json("several.test", 0)
        self.assertEqual(out["result"], "verified")
        self.assertEqual(len(out["found"]), 3)
        self.assertEqual(self.show("several.test")["status"], "active")

    def test_verify_token_split_into_two_strings(self):
        out = self.verify_json("split.test", 0)
        self.assertEqual(out["result"], "verified")
        self.assertEqual(out["found"], [self.token("split.test")])
        self.assertEqual(self.show("split.test")["status"], "active")

    def test_verify_token_split_across_records_does_not_count(self):
        out = self.verify_json("split-records.test", 1)
        self.assertEqual(out["result"], "mismatch")
        token = self.token("split-records.test")
        self.assertEqual(sorted(out["found"]), sorted([token[:15], token[15:]]))
        self.assert_pending("split-records.test")

    def test_verify_several_wrong_records_are_all_listed(self):
        token = self.token("allwrong.test")
        out = self.verify_json("allwrong.test", 1)
        self.assertEqual(out["result"], "mismatch")
        self.assertEqual(sorted(out["found"]), sorted(["first wrong", "second wrong", "x" + token]))
        r = self.verify_human("allwrong.test", 1)
        self.assertIn("3 TXT records", r.stdout)
        for value in ("first wrong", "second wrong"):
            self.assertIn(f'"{value}"', r.stdout)
        self.assertIn("contains the token plus other text", r.stdout)
        self.assert_pending("allwrong.test")

    def test_verify_servfail(self):
        out = self.verify_json(UNSERVED, 1)
        self.assertEqual(out["result"], "servfail")
        self.assert_one_stderr_line(self.verify_human(UNSERVED, 1), "SERVFAIL")

    def test_verify_times_out_when_the_server_does_not_answer(self):
        dead = self.write_config("dead.toml", f"127.0.0.1:{free_udp_tcp_port()}", timeout="1s")
        started = time.monotonic()
        r = self.cli("domain", "verify", "wrong.test", "--json", config=dead)
        elapsed = time.monotonic() - started
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], "timeout")
        self.assertLess(elapsed, 5, "the timeout must bound the lookup")
        r = self.cli("domain", "verify", "wrong.test", config=dead)
        self.assert_one_stderr_line(r, "timed out after 1s")
        self.assert_pending("wrong.test")

    def test_verify_unknown_domain_is_usage_error(self):
        r = self.cli("domain", "verify", "unknown.test")
        self.assertEqual(r.returncode, 2)
        self.assert_one_stderr_line(r, "no such domain")
        r = self.cli("domain", "verify", "not a domain")
        self.assertEqual(r.returncode, 2)

    # -- domain check-mx -------------------------------------------------

    def test_check_mx_all_ours(self):
        out = self.check_mx("mx-good.test", 0)
        self.assertEqual(out["role"], "primary")
        self.assertEqual(out["warnings"], [])
        self.assertEqual(out["mx"], [
            {"preference": 10, "host": "mx1.mxguard.test", "ours": True, "ip_literal": False,
             "addresses": ["127.0.0.1"]},
            {"preference": 20, "host": "mx2.mxguard.test", "ours": True, "ip_literal": False,
             "addresses": ["127.0.0.2", "::2"]},
        ])
        r = self.cli("domain", "check-mx", "mx-good.test")
        self.assertEqual(r.returncode, 0)
        self.assertIn("primary", r.stdout)
        self.assertIn("OK:", r.stdout)

    def test_check_mx_extra_foreign_backup(self):
        out = self.check_mx("mx-extra.test", 1)
        self.assertEqual(out["role"], "primary")
        foreign = [m for m in out["mx"] if not m["ours"]]
        self.assertEqual([m["host"] for m in foreign], ["mail.foreign.test"])
        self.assertEqual(len(out["warnings"]), 1)
        self.assertIn("mail.foreign.test", out["warnings"][0])
        self.assertFalse(out["warnings"][0].startswith("BYPASS"))

    def test_check_mx_foreign_preferred_is_a_bypass(self):
        out = self.check_mx("mx-bypass.test", 1)
        self.assertEqual(out["role"], "backup")
        self.assertTrue(out["warnings"][0].startswith("BYPASS:"), out["warnings"])
        self.assertIn("mail.foreign.test", out["warnings"][0])
        r = self.cli("domain", "check-mx", "mx-bypass.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("!!! BYPASS", r.stdout)
        self.assert_one_stderr_line(r, "needs attention")

    def test_check_mx_equal_preference_is_a_bypass(self):
        out = self.check_mx("mx-equal.test", 1)
        self.assertEqual(out["role"], "primary")
        self.assertTrue(any(w.startswith("BYPASS:") and "same preference" in w for w in out["warnings"]))

    def test_check_mx_ip_literal_flagged(self):
        out = self.check_mx("mx-ip.test", 1)
        ip = [m for m in out["mx"] if m["ip_literal"]]
        self.assertEqual(len(ip), 1)
        self.assertEqual(ip[0]["host"], "192.0.2.25")
        self.assertFalse(ip[0]["ours"])
        self.assertTrue(any("must be host names" in w for w in out["warnings"]))

    def test_check_mx_target_without_address_flagged(self):
        out = self.check_mx("mx-noaddr.test", 1)
        target = [m for m in out["mx"] if m["host"] == "noaddr.foreign.test"][0]
        self.assertEqual(target["addresses"], [])
        self.assertTrue(any("noaddr.foreign.test has no A or AAAA" in w for w in out["warnings"]))

    def test_check_mx_ours_only_as_backup(self):
        out = self.check_mx("mx-backup.test", 1)
        self.assertEqual(out["role"], "backup")
        ours = [m for m in out["mx"] if m["ours"]]
        self.assertEqual([(m["preference"], m["host"]) for m in ours], [(20, "mx1.mxguard.test")])
        self.assertTrue(out["warnings"][0].startswith("BYPASS:"))

    def test_check_mx_backup_role_says_mail_goes_to_the_backend(self):
        # A backup MX here filters and delivers to the domain's backend; it
        # does not hold mail for the primary. People and the JSON say the same.
        out = self.check_mx("mx-backup.test", 1)
        self.assertEqual(out["delivers_to"], "mail.acme.test:25")
        self.assertIn("delivered to the configured backend mail.acme.test:25", out["role_description"])
        self.assertNotIn("forward", out["role_description"])
        r = self.cli("domain", "check-mx", "mx-backup.test")
        role = [l for l in r.stdout.splitlines() if l.startswith("Role:")]
        self.assertEqual(role, ["Role: " + out["role_description"]])
        self.assertNotIn("forwards it to the primary", r.stdout)

    def test_check_mx_no_mx_records(self):
        out = self.check_mx("mx-none.test", 1)
        self.assertEqual(out["role"], "not_in_mx")
        self.assertEqual(out["mx"], [])
        self.assertEqual(out["lookup"], "nodata")
        self.assertTrue(out["warnings"] and "no MX records" in out["warnings"][0])
        r = self.cli("domain", "check-mx", "mx-none.test")
        self.assertIn("not in the MX set", r.stdout)

    def test_check_mx_unknown_domain_is_usage_error(self):
        r = self.cli("domain", "check-mx", "unknown.test", "--json")
        self.assertEqual(r.returncode, 2)
        self.assert_one_stderr_line(r, "no such domain")


if __name__ == "__main__":
    unittest.main(verbosity=2)
