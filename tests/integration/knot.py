"""A real Knot DNS server for integration tests: knotd on a free loopback
port serving zones generated from Python dicts, started and stopped per test
class. Shared by test_dns.py, test_auth.py and test_dnssec.py.

Zones named in `signed` are signed by knotd itself (automatic DNSSEC signing,
keys generated into its KASP database on load); trust_anchor() writes their
DS or DNSKEY records to a file libunbound takes as a trust anchor:

    knot = Knot(tmp, {"signed.test": [...], "plain.test": [...]}, signed=["signed.test"])
    anchor = knot.trust_anchor("signed.test")  # -> Path of "signed.test. DS ..." lines
"""

import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KEYMGR = shutil.which("keymgr") or "/usr/sbin/keymgr"

# The signing policy of `signed` zones: one algorithm every validator knows,
# keys that never roll during a test, NSEC so denials are easy to read.
SIGNING_POLICY = (
    "policy:\n"
    "  - id: mxg-test\n"
    "    algorithm: ecdsap256sha256\n"
    "    nsec3: off\n"
)


def free_udp_tcp_port():
    """A loopback port free for both UDP and TCP (knotd listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


def soa_query(name, qid=0x4d58):
    """A minimal DNS query packet (RFC 1035 4.1) for NAME SOA IN."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 6, 1)


def answers(port, name):
    """True once the server at PORT answers NAME SOA authoritatively with NOERROR."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(soa_query(name), ("127.0.0.1", port))
            reply, _ = s.recvfrom(4096)
        except OSError:
            return False
    flags = struct.unpack("!H", reply[2:4])[0]
    return reply[:2] == b"\x4d\x58" and flags & 0x000F == 0 and flags & 0x0400 != 0


def zone_text(origin, records):
    head = [
        f"$ORIGIN {origin}.",
        "$TTL 60",
        f"@ SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60",
        f"@ NS ns.{origin}.",
        "ns A 127.0.0.1",
    ]
    return "\n".join(head + records) + "\n"


class Knot:
    """One knotd on 127.0.0.1:<port> serving generated zones from a temp dir."""

    def __init__(self, directory, zones, signed=(), port=None):
        """port: serve on this one (a restart with new zones where a config already names it)."""
        self.dir = Path(directory)
        self.port = port or free_udp_tcp_port()
        wanted = set(signed)
        if wanted - set(zones):
            raise ValueError(f"signed zones {sorted(wanted - set(zones))} are not in `zones`")
        self.signed = [origin for origin in zones if origin in wanted]
        zone_dir = self.dir / "zones"
        zone_dir.mkdir()
        for origin, records in zones.items():
            (zone_dir / f"{origin}.zone").write_text(zone_text(origin, records))
        if self.signed:
            # Signing writes the keys and the signed changes to the database:
            # knotd does not create its storage directory itself.
            (self.dir / "db").mkdir()
        self.conf = self.dir / "knot.conf"
        self.conf.write_text(
            "server:\n"
            f"    listen: 127.0.0.1@{self.port}\n"
            f"    rundir: {self.dir}\n"
            f"    pidfile: {self.dir}/knot.pid\n"
            "database:\n"
            f"    storage: {self.dir}/db\n"
            + (SIGNING_POLICY if self.signed else "")
            + "template:\n"
            "  - id: default\n"
            f"    storage: {zone_dir}\n"
            '    file: "%s.zone"\n'
            "    zonefile-sync: -1\n"
            "zone:\n" + "".join(self.zone_conf(origin) for origin in zones)
        )
        self.log = open(self.dir / "knotd.log", "wb")
        self.proc = subprocess.Popen([KNOTD, "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready(next(iter(zones)))
        # A signed zone is served only once signed; wait for each of them.
        for origin in self.signed:
            self.wait_ready(origin)

    def zone_conf(self, origin):
        conf = f"  - domain: {origin}\n"
        if origin in self.signed:
            conf += "    dnssec-signing: on\n    dnssec-policy: mxg-test\n"
        return conf

    def trust_anchor(self, origin, path=None, kind="ds", owner=None):
        """Writes the trust anchor of the signed zone ORIGIN to PATH (default
        <dir>/<origin>.anchor) and returns the path: its KSK as DS records
        (kind="ds") or as a DNSKEY record (kind="dnskey"), zone-file lines
        ub_ctx_add_ta_file() accepts. OWNER puts the records under another
        name: an anchor for a zone these keys never signed."""
        if origin not in self.signed:
            raise ValueError(f"{origin} is not a signed zone of this server")
        if kind not in ("ds", "dnskey"):
            raise ValueError(f"trust anchor kind {kind!r}: ds or dnskey")
        out = subprocess.run([KEYMGR, "-c", str(self.conf), f"{origin}.", kind],
                             capture_output=True, text=True, timeout=30)
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"keymgr {origin} {kind} failed: {out.stderr.strip() or out.stdout.strip()}")
        if owner:
            lines = [f"{owner}. " + line.split(None, 1)[1] for line in lines]
        path = Path(path) if path else self.dir / f"{owner or origin}.anchor"
        path.write_text("\n".join(lines) + "\n")
        return path

    def wait_ready(self, zone, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"knotd exited: {self.read_log()}")
            if answers(self.port, zone):
                return
            time.sleep(0.05)
        raise RuntimeError(f"knotd did not answer within {timeout}s: {self.read_log()}")

    def read_log(self):
        return (self.dir / "knotd.log").read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
