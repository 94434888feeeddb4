#!/usr/bin/env python3
"""DNSSEC through MxGuard's resolver, the ground DANE (RFC 7672) stands on:
TLSA records from a zone knotd signs are secure, from an unsigned zone
insecure, and answers that fail validation are errors, never records.

knotd serves the zones below and signs signed.test; its key is the trust
anchor. `dns-probe` asks through the AsyncResolver (as a shard does) or the
blocking Resolver (as the console does) and prints the answer as JSON. A UDP
relay in front of knotd flips one byte of one TLSA record on the way, as an
attacker on the path would, so its signature no longer matches.

Run: DNS_PROBE_BIN=build/tests/tools/dns-probe /usr/bin/python3 tests/integration/test_dnssec.py
"""

import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import unittest
from pathlib import Path

from knot import KEYMGR, KNOTD, Knot

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(os.environ.get("DNS_PROBE_BIN", REPO / "build" / "tests" / "tools" / "dns-probe"))
if not PROBE.is_absolute():
    PROBE = REPO / PROBE

# SHA2-256 digests as a DANE-EE(3) SPKI(1) record carries them.
GOOD = hashlib.sha256(b"mail.signed.test key").hexdigest()
SECOND = hashlib.sha256(b"mail.signed.test next key").hexdigest()
# The record the relay tampers with: its bytes appear in no other answer.
BAIT = hashlib.sha256(b"tampered on the path").hexdigest()

ZONES = {
    "signed.test": [
        "@ MX 10 mail.signed.test.",
        "mail A 192.0.2.25",
        "mail AAAA 2001:db8::25",
        f"_25._tcp.mail TLSA 3 1 1 {GOOD}",
        f"_25._tcp.mail TLSA 2 0 1 {SECOND}",
        "tampered A 192.0.2.26",
        f"_25._tcp.tampered TLSA 3 1 1 {BAIT}",
        "nodane A 192.0.2.27",
    ],
    "plain.test": [
        "@ MX 10 mail.plain.test.",
        "mail A 192.0.2.35",
        f"_25._tcp.mail TLSA 3 1 1 {GOOD}",
    ],
    # Served unsigned, but the trust anchor says it is signed: what a
    # resolver sees when someone strips the signatures off a signed zone.
    "stripped.test": [
        "mail A 192.0.2.45",
        f"_25._tcp.mail TLSA 3 1 1 {GOOD}",
    ],
}


class TamperRelay:
    """UDP relay to knotd that flips one byte of the BAIT record data in every reply."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.bait = bytes.fromhex(BAIT)
        self.forged = bytes([self.bait[0] ^ 0x01]) + self.bait[1:]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tampered = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                packet, client = self.sock.recvfrom(4096)
            except OSError:
                continue
            threading.Thread(target=self.forward, args=(packet, client), daemon=True).start()

    def forward(self, packet, client):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(2)
            try:
                up.sendto(packet, self.upstream)
                reply, _ = up.recvfrom(65535)
                if self.bait in reply:
                    self.tampered += 1
                    reply = reply.replace(self.bait, self.forged)
                self.sock.sendto(reply, client)
            except OSError:
                pass

    def stop(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class DnssecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in (KNOTD, KEYMGR):
            if not os.access(tool, os.X_OK):
                raise RuntimeError(f"{tool} not found: install the Debian package 'knot'")
        if not os.access(PROBE, os.X_OK):
            raise RuntimeError(f"dns-probe not built: {PROBE}")
        cls.tmp = tempfile.TemporaryDirectory(prefix="mxguard-dnssec-")
        cls.dir = Path(cls.tmp.name)
        cls.knot = None
        cls.relay = None
        try:
            (cls.dir / "knot").mkdir()
            cls.knot = Knot(cls.dir / "knot", ZONES, signed=["signed.test"])
            cls.relay = TamperRelay(cls.knot.port)
            # One file, two anchors: the real key of signed.test, and the same
            # key claimed for stripped.test.
            ds = cls.knot.trust_anchor("signed.test").read_text()
            stripped = cls.knot.trust_anchor("signed.test", owner="stripped.test").read_text()
            cls.anchor = cls.dir / "anchors"
            cls.anchor.write_text(ds + stripped)
            cls.dnskey_anchor = cls.knot.trust_anchor("signed.test", path=cls.dir / "dnskey", kind="dnskey")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.relay:
            cls.relay.stop()
        if cls.knot:
            cls.knot.stop()
        cls.tmp.cleanup()

    # -- helpers ---------------------------------------------------------

    def run_probe(self, *args, port=None, anchor="default", blocking=False):
        cmd = [str(PROBE), "--server", f"127.0.0.1:{port or self.knot.port}", "--timeout", "3000"]
        anchor = self.anchor if anchor == "default" else anchor
        if anchor:
            cmd += ["--trust-anchor", str(anchor)]
        if blocking:
            cmd.append("--blocking")
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)

    def ask(self, rrtype, name, **kw):
        r = self.run_probe(rrtype, name, **kw)
        self.assertEqual(r.returncode, 0, f"{rrtype} {name}: stdout={r.stdout!r} stderr={r.stderr!r}")
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        return json.loads(lines[0])

    def tlsa(self, name, **kw):
        return self.ask("tlsa", name, **kw)

    def write(self, name, text):
        path = self.dir / name
        path.write_text(text)
        return path

    def assert_bogus(self, out):
        self.assertEqual(out["status"], "error", out)
        self.assertFalse(out["secure"], out)
        self.assertEqual(out["records"], [], out)
        self.assertIn("DNSSEC validation failed", out["error"], out)

    # -- secure ------------------------------------------------------------

    def test_signed_tlsa_is_secure(self):
        for blocking in (False, True):
            out = self.tlsa("_25._tcp.mail.signed.test", blocking=blocking)
            self.assertEqual(out["status"], "ok", out)
            self.assertTrue(out["secure"], out)
            self.assertEqual(out["error"], "", out)
            records = sorted(out["records"], key=lambda r: r["usage"])
            self.assertEqual(records, [
                {"usage": 2, "selector": 0, "matching_type": 1, "data": SECOND},
                {"usage": 3, "selector": 1, "matching_type": 1, "data": GOOD},
            ])

    def test_dnskey_anchor_validates_as_the_ds_does(self):
        out = self.tlsa("_25._tcp.mail.signed.test", anchor=self.dnskey_anchor)
        self.assertEqual(out["status"], "ok", out)
        self.assertTrue(out["secure"], out)

    def test_denial_of_existence_is_secure_too(self):
        # RFC 7672 2.2.2: a validated "no TLSA records" means no DANE, not a failure.
        out = self.tlsa("_25._tcp.nodane.signed.test")
        self.assertEqual(out["status"], "nxdomain", out)
        self.assertTrue(out["secure"], out)
        out = self.tlsa("mail.signed.test")
        self.assertEqual(out["status"], "nodata", out)
        self.assertTrue(out["secure"], out)

    def test_other_lookups_carry_the_verdict(self):
        out = self.ask("mx", "signed.test")
        self.assertEqual(out["records"], [{"preference": 10, "host": "mail.signed.test"}], out)
        self.assertTrue(out["secure"], out)
        out = self.ask("addresses", "mail.signed.test")
        self.assertEqual(out["records"], ["192.0.2.25", "2001:db8::25"], out)
        self.assertTrue(out["secure"], out)
        out = self.ask("addresses", "mail.plain.test")
        self.assertEqual(out["records"], ["192.0.2.35"], out)
        self.assertFalse(out["secure"], out)

    # -- insecure ----------------------------------------------------------

    def test_unsigned_zone_is_insecure(self):
        for blocking in (False, True):
            out = self.tlsa("_25._tcp.mail.plain.test", blocking=blocking)
            self.assertEqual(out["status"], "ok", out)
            self.assertFalse(out["secure"], out)
            self.assertEqual(out["records"], [{"usage": 3, "selector": 1, "matching_type": 1, "data": GOOD}])

    def test_without_a_trust_anchor_nothing_is_secure(self):
        out = self.tlsa("_25._tcp.mail.signed.test", anchor=None)
        self.assertEqual(out["status"], "ok", out)
        self.assertFalse(out["secure"], out)
        self.assertEqual(len(out["records"]), 2, out)

    # -- bogus -------------------------------------------------------------

    def test_tampered_record_is_an_error(self):
        before = self.relay.tampered
        for blocking in (False, True):
            self.assert_bogus(self.tlsa("_25._tcp.tampered.signed.test", port=self.relay.port, blocking=blocking))
        self.assertGreater(self.relay.tampered, before)
        # The relay changes nothing else: the same zone still validates through it.
        out = self.tlsa("_25._tcp.mail.signed.test", port=self.relay.port)
        self.assertEqual(out["status"], "ok", out)
        self.assertTrue(out["secure"], out)
        # Without validation the forged record passes, which is why DANE needs it.
        out = self.tlsa("_25._tcp.tampered.signed.test", port=self.relay.port, anchor=None)
        self.assertEqual(out["status"], "ok", out)
        self.assertNotEqual(out["records"][0]["data"], BAIT, out)

    def test_stripped_signatures_are_an_error(self):
        self.assert_bogus(self.tlsa("_25._tcp.mail.stripped.test"))
        self.assert_bogus(self.ask("addresses", "mail.stripped.test"))

    def test_wrong_anchor_is_an_error(self):
        # The DS names the right zone but a key it does not have.
        wrong = self.dir / "wrong-anchor"
        ds = self.anchor.read_text().splitlines()[0].split()
        ds[-1] = ("0" if ds[-1][0] != "0" else "1") + ds[-1][1:]
        wrong.write_text(" ".join(ds) + "\n")
        self.assert_bogus(self.tlsa("_25._tcp.mail.signed.test", anchor=wrong))

    def test_unreadable_anchor_fails_at_start(self):
        # Every lookup shares the resolver: a bad anchor must stop start-up,
        # not fail SPF, DNSBL and delivery lookups one by one.
        for anchor in (self.dir / "missing-anchor", self.write("garbage-anchor", "this is no trust anchor\n")):
            r = self.run_probe("tlsa", "_25._tcp.mail.signed.test", anchor=anchor)
            self.assertEqual(r.returncode, 2, f"{anchor}: stdout={r.stdout!r} stderr={r.stderr!r}")
            self.assertIn("trust anchor", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
