#!/usr/bin/env python3
"""The appliance image end to end: build it from scratch, boot it under
qemu-system-x86_64 (software emulation, OVMF) with user-mode networking
forwarding loopback ports to the guest's 25 and 22, and check what the
appliance issue asks; cut its power (SIGKILL of qemu) right after messages
were acknowledged and check that none is lost; then build a second image,
update the running appliance to it and check that it boots from the other
slot with its state;
drive the console menu on the serial line, its listings and its actions
that change something (a domain, an operator SSH key, a rule bundle); grow
the disk and check that the data partition follows; update to slots that
fail their trial boot (an engine that cannot start, a root that does not
verify, a root damaged where no boot reads it, an initramfs that does not
unpack, a hang in the initramfs that the hardware watchdog resets, a hang in
userspace that the trial deadline reboots) and check that each falls back to
the previous slot; hang PID 1 and check that the hardware watchdog resets
the box; and boot a pristine image with no seed.

Run as root: python3 tests/image/test_image.py, or meson test --suite image
(as another user it exits 77, meson's "skipped").
Environment: MXGUARD_IMAGE_WORK (work dir, default /var/tmp/mxguard-image-test),
MXGUARD_IMAGE_BUILD (meson build dir with --prefix=/usr, default build-image),
MXGUARD_BOOT_TIMEOUT (seconds per boot, default 1500), MXGUARD_IMAGE_FRESH=0 (image A
from the cached bootstrapped tree instead of a new debootstrap), MXGUARD_IMAGE_PHASES
(a comma-separated list of the optional phases to run, out of
%s; default all; empty: none, the image's contract only, as .ci/run does
unless MXGUARD_IMAGE_TEST=0 or full; building A, the first boot and its checks, the update to B and the
plain reboot always run).
Takes long (see appliance-image/README.md); prints the time of each phase.
"""
import http.client
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.environ.get("MXGUARD_IMAGE_WORK", "/var/tmp/mxguard-image-test")
MXBUILD = os.environ.get("MXGUARD_IMAGE_BUILD", os.path.join(REPO, "build-image"))
BOOT_TIMEOUT = int(os.environ.get("MXGUARD_BOOT_TIMEOUT", "1500"))
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
HOSTNAME = "mx-test.example.net"
DOMAIN = "appliance-test.example"
T0 = time.monotonic()
OPTIONAL_PHASES = ("power-cut", "rules", "watchdog", "menu", "menu-actions", "growth", "hung-pid1", "trial-engine",
                   "trial-verity", "trial-verity-late", "trial-initrd", "trial-hang-initramfs",
                   "trial-hang-userspace", "noseed")
PHASES = set(p.strip() for p in os.environ.get("MXGUARD_IMAGE_PHASES", ",".join(OPTIONAL_PHASES)).split(","))
__doc__ %= ", ".join(OPTIONAL_PHASES)


def wanted(name):
    assert name in OPTIONAL_PHASES, name
    if name not in PHASES:
        phase("SKIPPED (MXGUARD_IMAGE_PHASES): %s" % name)
    return name in PHASES


def phase(msg):
    print("[%5.0fs] %s" % (time.monotonic() - T0, msg), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def partition_offset(image, name):
    table = json.loads(subprocess.run(["sfdisk", "-J", image], capture_output=True, text=True,
                                      check=True).stdout)
    for p in table["partitiontable"]["partitions"]:
        if p.get("name") == name:
            return p["start"] * 512
    raise AssertionError("no partition %s in %s" % (name, image))


def build_image(out, version, fresh, env=None):
    start = time.monotonic()
    p = subprocess.run([os.path.join(REPO, "appliance-image/build"), "-o", out, "--version", version,
                        "--mxguard-build", MXBUILD] + (["--fresh"] if fresh else []),
                       text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, **(env or {})))
    print(p.stdout, flush=True)
    if p.returncode != 0:
        raise AssertionError("appliance-image/build failed")
    return time.monotonic() - start


class Appliance:
    """One qemu guest booted from a copy of the image."""

    def __init__(self, image, tag=""):
        self.tag = tag
        self.disk = os.path.join(WORK, "disk.raw")
        shutil.copyfile(image, self.disk)
        # A bigger disk than the image: the data partition must grow into it.
        os.truncate(self.disk, 3 << 30)
        self.vars = os.path.join(WORK, "OVMF_VARS.fd")
        shutil.copyfile(OVMF_VARS, self.vars)
        self.key = os.path.join(WORK, "operator_key")
        if not os.path.exists(self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator@test", "-f", self.key],
                           check=True)
        self.smtp_port, self.ssh_port, self.closed_port = free_port(), free_port(), free_port()
        self.web_port = free_port()
        self.serial = os.path.join(WORK, "serial.log")
        # The first serial port is a socket the test can talk to (the console
        # menu); qemu also logs everything the guest writes to it.
        self.serial_sock = os.path.join(WORK, "serial.sock")
        self.proc = None
        self.boots = 0

    def write_seed(self, sink_dns):
        seed = os.path.join(WORK, "mxguard-seed.txt")
        with open(self.key + ".pub") as f:
            pub = f.read().strip()
        with open(seed, "w") as f:
            f.write("# first-boot seed for the image test\nhostname = %s\nssh_key = %s\ndns = %s\n"
                    "network_checks = false\n" % (HOSTNAME, pub, sink_dns))
        esp = "%s@@%d" % (self.disk, partition_offset(self.disk, "esp"))
        subprocess.run(["mcopy", "-o", "-i", esp, seed, "::/mxguard-seed.txt"], check=True)

    def boot(self):
        """Powers the guest on. A reboot of the guest powers it off
        (-no-reboot) and wait_ssh powers it on again: after a warm reset
        OVMF under TCG is slow, and once hung for good, before the boot
        loader. NVRAM (vars file) and disk persist as on real hardware, so
        the one-shot boot entry and the default slot behave the same."""
        self.boots += 1
        self.serial = os.path.join(WORK, "serial-%s%d.log" % (self.tag, self.boots))
        if os.path.exists(self.serial_sock):
            os.unlink(self.serial_sock)
        fwd = ",".join("hostfwd=tcp:127.0.0.1:%d-:%d" % (h, g) for h, g in
                       [(self.smtp_port, 25), (self.ssh_port, 22), (self.closed_port, 8080),
                        (self.web_port, 443)])
        cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048",
               "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
               "-drive", "if=pflash,format=raw,unit=1,file=" + self.vars,
               "-drive", "file=%s,format=raw,if=virtio,cache=unsafe" % self.disk,
               "-netdev", "user,id=n0," + fwd, "-device", "virtio-net-pci,netdev=n0",
               "-chardev", "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s" % (self.serial_sock, self.serial),
               "-serial", "chardev:ser0", "-display", "none", "-vga", "std", "-monitor", "none",
               # The hardware watchdog the initramfs arms and systemd keeps;
               # its reset, like any reset here, stops qemu (-no-reboot). The
               # ICH9's own TCO watchdog stays disabled (qemu 7.2's default,
               # pinned), so i6300esb is always watchdog0.
               "-device", "i6300esb", "-action", "watchdog=reset", "-global", "ICH9-LPC.noreboot=true",
               "-no-reboot"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def ssh_args(self, password=False):
        args = ["ssh", "-p", str(self.ssh_port), "-o", "UserKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
                "-o", "BatchMode=yes"]
        if password:
            args += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"]
        else:
            args += ["-o", "IdentitiesOnly=yes", "-i", self.key]
        return args + ["root@127.0.0.1"]

    def ssh(self, command, check=True, input=None, timeout=300):
        p = subprocess.run(self.ssh_args() + [command], capture_output=True, text=True, input=input,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("ssh %r failed (%d): %s%s" % (command, p.returncode, p.stdout, p.stderr))
        return p.stdout

    def wait_ssh(self, timeout=BOOT_TIMEOUT, not_boot=None):
        """Waits until SSH works, on a boot other than not_boot (a boot id):
        after an update the old system may still answer while it shuts down."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self.proc.returncode != 0:
                    raise AssertionError("qemu failed (%d): %s" % (self.proc.returncode, self.serial_tail()))
                phase("guest rebooted (qemu exited); powering it on again")
                self.boot()
            try:
                p = subprocess.run(self.ssh_args() + ["cat /proc/sys/kernel/random/boot_id"], capture_output=True,
                                   text=True, timeout=60)
                if p.returncode == 0 and p.stdout.strip() and p.stdout.strip() != not_boot:
                    return p.stdout.strip()
            except subprocess.TimeoutExpired:
                pass
            time.sleep(5)
        raise AssertionError("no SSH within %d s:\n%s" % (timeout, self.serial_tail()))

    def wait_off(self, timeout):
        """Waits for the guest to power off or reboot (with -no-reboot, qemu exits either way)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("guest still up %d s later:\n%s" % (timeout, self.serial_tail()))
        if self.proc.returncode != 0:
            raise AssertionError("qemu failed (%d): %s" % (self.proc.returncode, self.serial_tail()))

    def reboot(self):
        try:
            self.ssh("systemctl reboot", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass  # the connection may die with the system instead of closing

    def boot_id(self):
        return self.ssh("cat /proc/sys/kernel/random/boot_id").strip()

    def console(self):
        return SerialConsole(self.serial_sock)

    def serial_text(self, boot):
        with open(os.path.join(WORK, "serial-%s%d.log" % (self.tag, boot)), errors="replace") as f:
            return f.read()

    def wait_running(self):
        state = self.ssh("systemctl is-system-running --wait", check=False, timeout=BOOT_TIMEOUT).strip()
        failed = self.ssh("systemctl --failed --no-legend --plain", check=False)
        return state, failed.strip()

    def serial_tail(self, n=60):
        try:
            with open(self.serial, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class SerialConsole:
    """The guest's first serial port as a terminal: the test types, and reads
    what comes back, through qemu's socket chardev. A thread reads all the
    time: qemu sends the serial output a byte per write, so a few hundred
    unread bytes fill the socket's buffer, and then the guest's console
    output (and with it a shutdown) waits until someone reads."""

    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)  # qemu makes the socket a moment after it starts
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.buf = ""
        self.closed = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.buf += data.decode(errors="replace")
                self.cond.notify_all()

    def send(self, text):
        self.sock.sendall(text.encode())

    def expect(self, pattern, timeout=120):
        """Waits until pattern matches; returns everything up to the end of
        the match (and keeps the rest for the next expect)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = re.search(pattern, self.buf)
                if m:
                    out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                    return out
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError("serial console: no %r within %d s%s; last output:\n%s" %
                                         (pattern, timeout, " (closed)" if self.closed else "", self.buf[-3000:]))
                self.cond.wait(left)

    def drain(self, quiet=2.0):
        """Drops output until the line has been quiet for `quiet` seconds."""
        with self.cond:
            while True:
                seen = len(self.buf)
                self.cond.wait(quiet)
                if len(self.buf) == seen:
                    break
            self.buf = ""

    def menu(self, timeout=300):
        """Presses Enter until the menu asks for a choice; returns the menu."""
        deadline = time.monotonic() + timeout
        while True:
            self.send("\r")
            try:
                out = self.expect(r"Choice: ", timeout=min(20, max(1, deadline - time.monotonic())))
                break
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
        # Enters typed before the menu read them each print the menu again.
        self.drain()
        return out

    def shell(self, command, n, timeout=120):
        """Runs command in the menu's shell; its output between markers that
        the echoed input cannot match ($((1000+n)) is expanded only in the output)."""
        self.send('echo "[$((1000+%d))[$(%s)]]"\r' % (n, command))
        marker = r"(?s)\[%d\[(.*?)\]\]" % (1000 + n)
        out = self.expect(marker, timeout=timeout)
        return re.search(marker, out).group(1).replace("\r", "").strip()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.join(timeout=10)
        self.sock.close()


class Sink:
    """Postfix's smtp-sink on host loopback, one file per received message."""

    def __init__(self, name="sink"):
        self.dir = os.path.join(WORK, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o1777)
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", self.dir + "/%H%M%S.",
                                      "127.0.0.1:%d" % self.port, "10"])

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), errors="replace") as f:
                out.append(f.read())
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class ImageTest(unittest.TestCase):
    def test_build_boot_update(self):
        os.makedirs(WORK, exist_ok=True)
        image_a = os.path.join(WORK, "a.raw")
        image_b = os.path.join(WORK, "b.raw")
        # A from scratch (debootstrap); B from the same bootstrapped tree.
        fresh = os.environ.get("MXGUARD_IMAGE_FRESH", "1") != "0"
        secs = build_image(image_a, "1.0-test-a", fresh)
        phase("image a built in %.1f min" % (secs / 60))

        app = Appliance(image_a)
        sink = Sink()
        self.addCleanup(sink.stop)
        self.addCleanup(app.stop)
        app.write_seed("10.0.2.3")
        app.boot()
        boot_start = time.monotonic()
        app.wait_ssh()
        phase("SSH answered %.1f min after power-on" % ((time.monotonic() - boot_start) / 60))
        state, failed = app.wait_running()
        phase("first boot: system %s %.1f min after power-on" % (state, (time.monotonic() - boot_start) / 60))
        self.assertEqual((state, failed), ("running", ""))

        # The console on both the serial port and the screen; the menu answers on serial.
        cmdline = app.ssh("cat /proc/cmdline")
        self.assertIn("console=tty0", cmdline)
        self.assertIn("console=ttyS0", cmdline)
        self.assertEqual(app.ssh("systemctl is-active mxguard-console@ttyS0.service mxguard-console@tty1.service")
                         .split(), ["active", "active"])
        phase("console menu on ttyS0 and tty1")

        # The hardware watchdog: armed in the initramfs, then kept by systemd.
        self.assertIn("MxGuard: hardware watchdog armed (i6300ESB", app.serial_text(app.boots))
        self.assertEqual(app.ssh("cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/state")
                         .split(), ["i6300ESB", "timer", "active"])
        self.assertEqual(app.ssh("systemctl show -p RuntimeWatchdogUSec -p RebootWatchdogUSec --value").split(),
                         ["1min", "5min"])
        phase("hardware watchdog: %s; systemd keeps it (RuntimeWatchdogSec 1min, RebootWatchdogSec 5min)" %
              re.search(r"MxGuard: hardware watchdog armed \([^)]*\)", app.serial_text(app.boots)).group(0))

        # SMTP banner on the forwarded port 25, with the seeded hostname.
        with socket.create_connection(("127.0.0.1", app.smtp_port), timeout=120) as s:
            banner = s.recv(512).decode()
        phase("banner: " + banner.strip())
        self.assertRegex(banner, r"^220 %s " % re.escape(HOSTNAME))

        # STARTTLS with the certificate first boot made (self-signed: not verified, but its name checked).
        tls_start = time.monotonic()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", app.smtp_port, timeout=120) as c:
            c.ehlo("client.test")
            self.assertTrue(c.has_extn("starttls"), "STARTTLS not advertised: %r" % c.ehlo_resp)
            code, _ = c.starttls(context=ctx)
            self.assertEqual(code, 220)
            tls_version, cipher = c.sock.version(), c.sock.cipher()[0]
            der = c.sock.getpeercert(binary_form=True)
            code, _ = c.ehlo("client.test")
            self.assertEqual(code, 250)
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                                 input=ssl.DER_cert_to_PEM_cert(der), capture_output=True, text=True,
                                 check=True).stdout
        self.assertIn("DNS:%s" % HOSTNAME, subject)
        phase("STARTTLS: advertised, %s %s, self-signed certificate for %s, EHLO after TLS 250 (%.1f s)" %
              (tls_version, cipher, HOSTNAME, time.monotonic() - tls_start))

        # SSH: the seeded key works, passwords are refused.
        self.assertEqual(app.ssh("hostname").strip(), HOSTNAME)
        p = subprocess.run(app.ssh_args(password=True) + ["true"], capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied (publickey)", p.stderr)
        self.assertIn("passwordauthentication no", app.ssh("sshd -T"))
        phase("SSH: key login works, password login refused")

        # Firewall: a real listener on 8080 in the guest stays unreachable, and the drop is counted.
        app.ssh("systemd-run --unit=probe-8080 systemd-socket-activate -l 0.0.0.0:8080 --inetd -a /bin/cat")
        deadline = time.monotonic() + 60
        while ":8080" not in app.ssh("ss -ltnH") and time.monotonic() < deadline:
            time.sleep(2)
        self.assertIn(":8080", app.ssh("ss -ltnH"))
        before = self.dropped(app)
        reached = False
        try:
            with socket.create_connection(("127.0.0.1", app.closed_port), timeout=20) as s:
                s.settimeout(20)
                s.sendall(b"ping\n")
                reached = s.recv(16) == b"ping\n"
        except OSError:
            pass
        self.assertFalse(reached, "port 8080 answered through the firewall")
        after = self.dropped(app)
        phase("firewall: 8080 closed; drop counter %d -> %d packets" % (before, after))
        self.assertGreater(after, before)
        app.ssh("systemctl stop probe-8080.service", check=False)

        # Root read-only and verified; state on the data partition, grown to the disk.
        self.assertIn("Read-only file system", app.ssh("touch /usr/probe 2>&1; true"))
        self.assertEqual(app.ssh("findmnt -no FSTYPE /").strip(), "squashfs")
        self.assertRegex(app.ssh("veritysetup status root"), r"status:\s+verified")
        self.assertEqual(app.ssh("findmnt -no SOURCE /var").strip(), "/dev/vda6")
        disk = int(app.ssh("cat /sys/class/block/vda/size"))
        start, size = (int(app.ssh("cat /sys/class/block/vda6/%s" % f)) for f in ("start", "size"))
        phase("data partition: %d MiB, ends %d KiB before the end of the disk" %
              (size >> 11, (disk - start - size) // 2))
        self.assertLess(disk - start - size, 4096)
        phase("root squashfs, read-only, verified; /var on the data partition")
        # Nothing that does not belong on an appliance.
        self.assertEqual(app.ssh("for c in gcc cc c++ g++ clang apt apt-get; do command -v $c; done; true").strip(), "")
        self.assertEqual(app.ssh("awk -F: '$2 !~ /^[!*]/' /etc/shadow").strip(), "")
        # The root as built (its /var is hidden under the data partition): no
        # package manager state, caches or lists.
        leftovers = app.ssh("mkdir -p /run/rootview && mount --bind / /run/rootview && "
                            "ls -d /run/rootview/var/cache/apt /run/rootview/var/lib/apt /run/rootview/usr/bin/apt* "
                            "/run/rootview/usr/bin/*gcc* /run/rootview/usr/bin/*clang* 2>/dev/null; "
                            "umount /run/rootview; true")
        self.assertEqual(leftovers.strip(), "")
        phase("no compilers, no apt or its caches, no passwords")

        # A domain added over SSH gets its mail delivered to the sink on the host.
        app.ssh("mxguard domain add %s --customer acme --backend 10.0.2.2:%d --active" % (DOMAIN, sink.port))
        app.ssh("mxguard domain set %s reject_threshold=100 quarantine_threshold=100 greylist_threshold=100" % DOMAIN)
        msg = ("From: Alice <alice@sender.example>\r\nTo: bob@%s\r\nSubject: appliance test\r\n"
               "Message-ID: <appliance-test@sender.example>\r\n\r\nHello from the image test.\r\n" % DOMAIN)
        with smtplib.SMTP("127.0.0.1", app.smtp_port, timeout=300) as c:
            c.sendmail("alice@sender.example", ["bob@%s" % DOMAIN], msg)
        # smtp-sink creates the file when DATA begins and writes it as the
        # message arrives: wait for the content, not for the file.
        deadline = time.monotonic() + 300
        got = sink.messages()
        while time.monotonic() < deadline and not any("appliance-test@sender.example" in m for m in got):
            time.sleep(2)
            got = sink.messages()
        self.assertEqual(len(got), 1, app.ssh("mxguard queue list; journalctl -u mxguardd --no-pager | tail -20",
                                              check=False))
        self.assertIn("appliance-test@sender.example", got[0])
        phase("message delivered to the host sink through the appliance")
        self.check_dashboard(app)

        if wanted("power-cut"):
            self.check_power_cut(app)
        if wanted("rules"):
            self.check_rules_push(app)
        if wanted("watchdog"):
            self.check_watchdog_restart(app)

        # Update to a second image: the inactive slot, a trial boot, the state kept.
        secs = build_image(image_b, "1.0-test-b", False)
        phase("image b built in %.1f min" % (secs / 60))
        self.assertIn("slot=a", app.ssh("/usr/lib/mxguard/appliance/slot status"))
        first_boot = app.ssh("cat /proc/sys/kernel/random/boot_id").strip()
        update_start = time.monotonic()
        up = subprocess.run([os.path.join(REPO, "appliance-image/update"), image_b] + app.ssh_args()[1:],
                            capture_output=True, text=True, timeout=1800)
        print(up.stdout + up.stderr, flush=True)
        self.assertEqual(up.returncode, 0)
        reboot_start = time.monotonic()
        phase("update streamed, written and verified in %.1f min; rebooting" % ((reboot_start - update_start) / 60))
        app.wait_ssh(not_boot=first_boot)
        phase("SSH answered %.1f min after the reboot" % ((time.monotonic() - reboot_start) / 60))
        state, failed = app.wait_running()
        phase("after update: system %s %.1f min after the reboot" % (state, (time.monotonic() - reboot_start) / 60))
        self.assertEqual((state, failed), ("running", ""))
        self.assertIn("mxguard.slot=b", app.ssh("cat /proc/cmdline"))
        self.assertIn("1.0-test-b", app.ssh("cat /usr/lib/mxguard/appliance/version"))
        self.assertIn(DOMAIN, app.ssh("mxguard domain list"))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = app.ssh("/usr/lib/mxguard/appliance/slot status")
            if "default=mxguard-b.conf" in status:
                break
            time.sleep(5)
        self.assertIn("default=mxguard-b.conf", status)
        # Before the commit the whole slot was read back through dm-verity.
        readback = app.ssh("journalctl -b -o cat --no-pager -u mxguard-slot-commit | grep 'read back through'")
        self.assertRegex(readback, r"slot: all \d+ MiB of slot b read back through dm-verity in \d+ s")
        phase("slot b committed as the default (%s); domain %s still there" % (readback.strip(), DOMAIN))

        # The commit is on the disk, not only in the ESP's page cache: an
        # ordinary reboot (no one-shot entry now) comes back on slot b.
        second_boot = app.ssh("cat /proc/sys/kernel/random/boot_id").strip()
        try:
            app.ssh("systemctl reboot", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass  # the connection may die with the system instead of closing
        reboot_start = time.monotonic()
        app.wait_ssh(not_boot=second_boot)
        self.assertIn("mxguard.slot=b", app.ssh("cat /proc/cmdline"))
        state, failed = app.wait_running()
        self.assertEqual((state, failed), ("running", ""))
        phase("plain reboot: slot b again, system %s %.1f min after the reboot" %
              (state, (time.monotonic() - reboot_start) / 60))

        if wanted("menu"):
            self.check_console_menu(app, sink)
        if wanted("menu-actions"):
            self.check_console_menu_actions(app, sink)
        if wanted("growth"):
            self.check_data_growth(app)
        if wanted("hung-pid1"):
            self.check_hung_pid1(app)

        # Trial boots that fail: each must come back on slot b, the default.
        if wanted("trial-engine"):
            image_c = os.path.join(WORK, "c.raw")
            secs = build_image(image_c, "1.0-test-c", False, {"MXGUARD_IMAGE_TEST_BROKEN_ENGINE": "1"})
            phase("image c (test only: an engine that cannot start) built in %.1f min" % (secs / 60))
            self.check_failed_trial_engine(app, image_c)
        if wanted("trial-verity"):
            self.check_failed_trial_verity(app, image_a)
        if wanted("trial-verity-late"):
            self.check_failed_trial_verity_late(app, image_a)
        if wanted("trial-initrd"):
            self.check_failed_trial_initrd(app, image_a)
        hang_initramfs, hang_userspace = wanted("trial-hang-initramfs"), wanted("trial-hang-userspace")
        if hang_initramfs or hang_userspace:
            image_d = os.path.join(WORK, "d.raw")
            secs = build_image(image_d, "1.0-test-d", False, {"MXGUARD_IMAGE_TEST_HANG": "1"})
            phase("image d (test only: hangs when its boot entry says so) built in %.1f min" % (secs / 60))
            if hang_initramfs:
                self.check_failed_trial_hang_initramfs(app, image_d)
            if hang_userspace:
                self.check_failed_trial_hang_userspace(app, image_d)
        app.stop()

        if wanted("noseed"):
            self.check_unseeded_boot(image_a)

    POWER_CUT_DOMAIN = "power-cut.example"

    def check_power_cut(self, app):
        """A 250 after DATA means the message is on the disk: a power cut
        (SIGKILL of qemu: whatever the guest had not written to its virtual
        disk is gone, its page cache with it) loses no acknowledged message.
        The domain's backend is a host port where nothing listens, so every
        accepted message stays queued; after each cut and power-on, `queue
        list` must hold every acknowledged one; then the backend is pointed
        at a sink, which must receive them all (duplicates allowed)."""
        dom = self.POWER_CUT_DOMAIN
        start = time.monotonic()
        app.ssh("mxguard domain add %s --customer acme --backend 10.0.2.2:%d --active" % (dom, free_port()))
        app.ssh("mxguard domain set %s reject_threshold=100 quarantine_threshold=100 greylist_threshold=100" % dom)
        all_acked = {}
        # 1: the cut right after the last 250; 2: the cut while the senders still send.
        for tag, cut_after in (("a", 300), ("b", 150)):
            acked, begun, cut, errors, secs = self.send_batch(app, tag, 300, 10, cut_after)
            if cut_after == 300:
                self.assertEqual(len(acked), 300, "not every message accepted: %s" % errors[:5])
            self.assertTrue(cut, "qemu was not killed (%d acked): %s" % (len(acked), errors[:5]))
            gap = cut - max(v[1] for v in acked.values() if v[1] <= cut)
            late = len([v for v in acked.values() if v[1] > cut])  # 250s the guest sent before the cut, read after it
            app.proc.wait(timeout=60)
            boot_start = time.monotonic()
            app.boot()
            app.wait_ssh()
            state, failed = app.wait_running()
            up = time.monotonic() - boot_start
            self.assertEqual((state, failed), ("running", ""))
            for m, v in acked.items():
                all_acked[m] = v
            # Every message acknowledged so far, the earlier cut's too.
            queued = self.power_cut_queue(app)
            missing = sorted(m for m in all_acked if m not in queued)
            wrong = sorted(m for m in all_acked if m in queued and
                           (queued[m]["subject"] != all_acked[m][2] or queued[m]["recipients"] != [all_acked[m][3]]))
            if missing or wrong:
                raise AssertionError(
                    "power cut %s: %d of %d acknowledged messages missing after the power cut: %s; with another "
                    "envelope: %s; their 250 replies: %s; queue: %d of ours, %d lines\n%s" %
                    (tag, len(missing), len(all_acked), missing[:20], wrong[:20],
                     [all_acked[m][0] for m in missing[:5]], len(queued),
                     len(app.ssh("mxguard queue list --json").splitlines()),
                     app.ssh("journalctl -b -1 -u mxguardd --no-pager | tail -20; "
                             "journalctl -b -u mxguardd --no-pager | tail -20", check=False)))
            extra = len([m for m in queued if m.startswith("power-cut-%s-" % tag)]) - len(acked)
            example = next(iter(acked.values()))[0] if acked else ""
            phase("power cut %s (%s): %d sent, %d acked in %.0f s, qemu SIGKILLed %.3f s after the last 250 read "
                  "before it (%d more 250s read after it), the last sender done %.0f s after the start; power-on "
                  "to %s %.1f min; all %d acked so far in the queue (and %d unacked of this batch); 250 reply: %r; "
                  "%d sessions ended in an error (%s)" %
                  (tag, "at the last 250" if cut_after == 300 else "at the %dth 250, senders still sending"
                   % cut_after, begun, len(acked), secs[0], gap, late, secs[1], state, up / 60, len(all_acked),
                   extra, example, len(errors), sorted(set(errors))))
        # Now a listening backend: every acknowledged message must arrive.
        deliver_start = time.monotonic()
        sink = Sink("sink-power-cut")
        try:
            app.ssh("mxguard domain set %s backend=10.0.2.2:%d" % (dom, sink.port))
            deadline = time.monotonic() + 600
            while True:
                app.ssh("mxguard queue retry --all --domain %s" % dom, check=False)
                time.sleep(15)
                got = {}
                for text in sink.messages():
                    m = re.search(r"(?im)^Message-ID: <([^>]+)>", text)
                    if m:
                        got[m.group(1)] = got.get(m.group(1), 0) + 1
                left = self.power_cut_queue(app)
                if not left and all(m in got for m in all_acked):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("power cut: %d of %d acknowledged messages not delivered within 600 s "
                                         "(%d still queued): %s" %
                                         (len([m for m in all_acked if m not in got]), len(all_acked), len(left),
                                          sorted(m for m in all_acked if m not in got)[:20]))
        finally:
            sink.stop()
        files = len(sink.messages())
        app.ssh("mxguard domain remove %s" % dom)
        phase("power cut: the backend pointed at a sink: all %d acked messages delivered (%d messages in the sink, "
              "%d duplicates) in %.1f min; the whole check %.1f min" %
              (len(all_acked), files, sum(got.values()) - len(got), (time.monotonic() - deliver_start) / 60,
               (time.monotonic() - start) / 60))

    def send_batch(self, app, tag, n, sessions, cut_after=None, time_limit=300):
        """Sends up to n messages over concurrent SMTP sessions to a domain
        whose backend does not answer. Returns (acked: Message-ID -> (250
        reply, when, subject, recipient), transactions begun, when qemu was
        killed, errors, (seconds to the cut, seconds until the last sender ended)). With cut_after the sender thread that reads
        the cut_after-th 250 SIGKILLs qemu at once (not after the sessions'
        QUITs: in one run a session took 115 s to end); without it, or if
        that many never come, this does when the senders are done."""
        lock = threading.Lock()
        acked, errors, cut = {}, [], []
        count = [0]
        deadline = time.monotonic() + time_limit

        def take():
            with lock:
                if count[0] >= n or cut or time.monotonic() > deadline:
                    return None
                count[0] += 1
                return count[0]

        def sender():
            try:
                with smtplib.SMTP("127.0.0.1", app.smtp_port, timeout=120) as c:
                    c.ehlo("client.test")
                    while True:
                        i = take()
                        if i is None:
                            return
                        mid = "power-cut-%s-%04d@sender.example" % (tag, i)
                        subject = "power cut %s %04d" % (tag, i)
                        rcpt = "u%04d@%s" % (i, self.POWER_CUT_DOMAIN)
                        body = "".join("line %d of message %s %d\r\n" % (k, tag, i) for k in range(i % 20 + 1))
                        msg = ("From: Alice <alice@sender.example>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
                               "\r\n%s" % (rcpt, subject, mid, body))
                        for code, reply in (c.mail("alice@sender.example"), c.rcpt(rcpt)):
                            if code != 250:
                                raise AssertionError("%s: %d %r" % (mid, code, reply))
                        code, reply = c.data(msg)
                        now = time.monotonic()
                        if code != 250:
                            raise AssertionError("%s: DATA %d %r" % (mid, code, reply))
                        with lock:
                            acked[mid] = (reply.decode(errors="replace"), now, subject, rcpt)
                            if cut_after and len(acked) == cut_after and not cut:
                                app.proc.kill()  # the power cut
                                cut.append(time.monotonic())
            except (OSError, smtplib.SMTPException, AssertionError) as e:
                with lock:
                    errors.append(repr(e))

        start = time.monotonic()
        threads = [threading.Thread(target=sender, daemon=True) for _ in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=time_limit + 300)
        if not cut:
            app.proc.kill()  # the power cut
            cut.append(time.monotonic())
        # Seconds from the start to the cut, and to the end of the last sender.
        return acked, count[0], cut[0] if cut else None, errors, (cut[0] - start, time.monotonic() - start)

    def power_cut_queue(self, app):
        """The power-cut test's messages in `mxguard queue list --json`, by Message-ID."""
        out = {}
        for line in app.ssh("mxguard queue list --json --domain %s" % self.POWER_CUT_DOMAIN).splitlines():
            if line.strip():
                j = json.loads(line)
                out[j["message_id"].strip().strip("<>")] = j
        return out

    def check_rules_push(self, app):
        """A rule bundle signed on the host with a key the operator made
        trusted over SSH (`mxguard rules trust`), pushed over SSH from stdin,
        becomes active in the engine; then `rules rollback` restores the
        factory bundle."""
        start = time.monotonic()
        bundle = self.make_test_bundle(app)
        with open(bundle, "rb") as f:
            p = subprocess.run(app.ssh_args() + ["mxguard rules push -"], stdin=f, capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        listed = [json.loads(x) for x in app.ssh("mxguard rules list --json").splitlines() if x.strip()]
        active = [b for b in listed if b.get("active")]
        self.assertEqual([b.get("name") for b in active], ["image-test"], listed)
        seq = active[0]["bundle"]
        # The engine's watcher polls once a second and logs the swap; loading the
        # bundle takes 1-2 min under TCG.
        want = "rules.active bundle=%d " % seq
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and want not in self.engine_log(app):
            time.sleep(2)
        self.assertIn(want, self.engine_log(app))
        pushed = time.monotonic() - start
        app.ssh("mxguard rules rollback")
        listed = [json.loads(x) for x in app.ssh("mxguard rules list --json").splitlines() if x.strip()]
        back = [b["bundle"] for b in listed if b.get("active")]
        self.assertEqual(len(back), 1, listed)
        self.assertNotEqual(back[0], seq)
        want = "rules.active bundle=%d " % back[0]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and want not in self.engine_log(app).split("rules.active bundle=%d " % seq)[-1]:
            time.sleep(2)
        self.assertIn(want, self.engine_log(app).split("rules.active bundle=%d " % seq)[-1])
        phase("rules: bundle %d (image-test, signed by a key trusted over SSH) pushed over SSH from stdin and "
              "active in the engine in %.1f s; rollback to bundle %d active in %.1f s" %
              (seq, pushed, back[0], time.monotonic() - start - pushed))

    def make_test_bundle(self, app):
        """Makes (once) a signing key and the shipped rules/ plus one test
        rule on the host, and trusts the key on the appliance over SSH, as an
        operator would; returns the path of a new bundle built from them."""
        if getattr(self, "_bundle", None):
            return self.build_test_bundle()
        d = os.path.join(WORK, "rules-push")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        mxguard = os.path.join(MXBUILD, "src/console/mxguard")
        key, rules = os.path.join(d, "signing.key"), os.path.join(d, "rules")
        out = subprocess.run([mxguard, "rules", "keygen", "-o", key], cwd=d, capture_output=True, text=True,
                             check=True).stdout
        pub = out.strip().splitlines()[-1].split()[-1]
        shutil.copytree(os.path.join(REPO, "rules"), rules)
        with open(os.path.join(rules, "99-image-test.rules"), "w") as f:
            f.write("rule IMAGE_TEST_PUSHED\n  description only in the bundle the image test pushes\n"
                    "  score 0.1\n  target subject\n  pattern /imagetestpush/i\n")
        app.ssh("mxguard rules trust image-test %s" % pub)
        self._bundle_src = (mxguard, d, key, rules)
        return self.build_test_bundle()

    def build_test_bundle(self):
        """A new build of the test bundle: each has a digest of its own (the
        build time is in it), since pushing a stored digest again is a no-op."""
        mxguard, d, key, rules = self._bundle_src
        self._bundle_builds = getattr(self, "_bundle_builds", 0) + 1
        bundle = os.path.join(d, "test-%d.bundle" % self._bundle_builds)
        subprocess.run([mxguard, "rules", "build", rules, "-o", bundle, "--key", key, "--name", "image-test"],
                       cwd=d, capture_output=True, text=True, check=True)
        self._bundle = bundle
        return bundle

    def check_watchdog_restart(self, app):
        """One shard thread stopped: its loop stops ticking, the engine stops
        its watchdog pings, and systemd kills and restarts the service. The
        thread is stopped alone with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT
        from perl, the one tool on the image that can make the call: no gdb);
        SIGSTOP, even sent to one thread id, stops the whole process, which
        would test a hung process rather than a stuck shard."""
        def show():
            out = app.ssh("systemctl show mxguardd -p NRestarts -p MainPID -p ActiveState")
            return dict(line.split("=", 1) for line in out.split())
        before = show()
        pid, restarts = int(before["MainPID"]), int(before["NRestarts"])
        self.assertGreater(pid, 0)
        timeouts = self.engine_log(app).count("Watchdog timeout")
        shards = app.ssh("grep -l '^mxg-shard-' /proc/%d/task/*/comm" % pid).split()
        self.assertTrue(shards, "no mxg-shard-N thread in /proc/%d/task" % pid)
        tid = int(shards[0].split("/")[4])
        name = app.ssh("cat /proc/%d/task/%d/comm" % (pid, tid)).strip()
        app.ssh("cat >/run/mxguard-test-freeze.pl", input=(
            "my $tid = $ARGV[0] + 0;\n"
            "# ptrace(2) is syscall 101 on x86-64; PTRACE_SEIZE 0x4206, PTRACE_INTERRUPT 0x4207.\n"
            "syscall(101, 0x4206, $tid, 0, 0) == 0 or die \"PTRACE_SEIZE $tid: $!\\n\";\n"
            "syscall(101, 0x4207, $tid, 0, 0) == 0 or die \"PTRACE_INTERRUPT $tid: $!\\n\";\n"
            "print \"stopped thread $tid\\n\";\n"
            "# Reap the thread's stops (left stopped) and, when it is killed, the thread itself:\n"
            "# a traced thread stays a zombie until its tracer waits for it, and so would the engine.\n"
            "my $st = \"\\0\" x 4;\n"
            "1 while syscall(61, $tid, $st, 0x40000000, 0) == $tid && (unpack('i', $st) & 0xff) == 0x7f;\n"))
        stop_start = time.monotonic()
        app.ssh("systemd-run --unit=mxguard-test-freeze --collect perl /run/mxguard-test-freeze.pl %d" % tid)

        def state(t):
            out = app.ssh("sed 's/.*) //' /proc/%d/task/%d/stat 2>/dev/null | cut -d' ' -f1; true" % (pid, t))
            return out.strip()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and state(tid) != "t":
            time.sleep(1)
        if state(tid) == "t" and state(pid) not in ("t", "T"):
            how = "thread %d (%s) alone stopped with ptrace, the other threads running" % (tid, name)
        else:
            # ptrace was refused: stop the whole engine instead ("the engine is stuck").
            app.ssh("systemctl stop mxguard-test-freeze.service", check=False)
            app.ssh("kill -STOP %d" % pid)
            how = "ptrace failed (%s), whole process stopped with SIGSTOP" % app.ssh(
                "journalctl -u mxguard-test-freeze -o cat --no-pager | tail -1", check=False).strip()
        deadline = time.monotonic() + 240
        now = before
        while time.monotonic() < deadline:
            now = show()
            if (int(now["NRestarts"]) > restarts and int(now["MainPID"]) not in (0, pid)
                    and now["ActiveState"] == "active"):
                break
            time.sleep(3)
        restarted = time.monotonic() - stop_start
        app.ssh("systemctl stop mxguard-test-freeze.service", check=False)
        self.assertGreater(int(now["NRestarts"]), restarts, now)
        self.assertNotIn(int(now["MainPID"]), (0, pid), now)
        self.assertEqual(now["ActiveState"], "active", now)
        self.assertGreater(self.engine_log(app).count("Watchdog timeout"), timeouts)
        with socket.create_connection(("127.0.0.1", app.smtp_port), timeout=120) as s:
            banner = s.recv(512).decode()
        self.assertRegex(banner, r"^220 %s " % re.escape(HOSTNAME))
        phase("watchdog: %s; systemd logged the watchdog timeout and restarted mxguardd (NRestarts %d -> %s, "
              "MainPID %d -> %s) in %.0f s; banner again" %
              (how, restarts, now["NRestarts"], pid, now["MainPID"], restarted))

    def check_dashboard(self, app):
        """mxguard-web on 443 with the first-boot certificate, through the
        firewall: the login page, an operator's login and the domain list."""
        start = time.monotonic()
        app.ssh("mxguard user add ops --role operator --password-file -", input="image test password 1\n")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the self-signed first-boot certificate

        def request(method, path, body=None, headers=None):
            conn = http.client.HTTPSConnection("127.0.0.1", app.web_port, context=ctx, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                return r.status, dict(r.getheaders()), r.read(), conn.sock.getpeercert(binary_form=True)
            finally:
                conn.close()

        deadline = time.monotonic() + 120
        while True:
            try:
                status, headers, page, cert = request("GET", "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers.get("Content-Type", ""))
        self.assertIn("Content-Security-Policy", headers)
        served = ssl.DER_cert_to_PEM_cert(cert)
        self.assertEqual(served.strip(), app.ssh("cat /var/lib/appliance/tls/cert.pem").strip())
        origin = "https://127.0.0.1:%d" % app.web_port
        status, headers, body, _ = request("POST", "/api/v1/session",
                                           json.dumps({"user": "ops", "password": "image test password 1"}),
                                           {"Content-Type": "application/json", "Origin": origin})
        self.assertEqual(status, 200, body)
        login = json.loads(body)
        self.assertEqual(login["role"], "operator")
        cookie = headers["Set-Cookie"].split(";")[0]
        self.assertIn("Secure", headers["Set-Cookie"])
        status, _, body, _ = request("GET", "/api/v1/domains", headers={"Cookie": cookie})
        self.assertEqual(status, 200, body)
        self.assertIn(DOMAIN, body.decode())
        self.assertEqual(app.ssh("systemctl is-active mxguard-web.service", check=False).strip(), "active")
        phase("dashboard: login page and an operator's login over HTTPS on 443 with the first-boot "
              "certificate, domain list through the API (%.1f s)" % (time.monotonic() - start))

    def check_console_menu(self, app, sink):
        """The menu on ttyS0 driven over the serial line, as an operator at the
        console would: status, domains, network, operator SSH keys, rule
        bundles, the live feed, the shell, and quitting (systemd starts it
        again). Each action returns to the menu."""
        start = time.monotonic()
        con = app.console()
        self.addCleanup(con.close)
        head = con.menu()
        self.assertIn("MxGuard console on %s -- %s" % (HOSTNAME, HOSTNAME), head)
        for item in ("1) Status", "2) Live feed", "3) Domains", "4) Network settings", "5) Operator SSH keys",
                     "6) Rule bundles", "7) Shell", "8) Reboot"):
            self.assertIn(item, head)

        # Status: the engine, its shard threads (counted over SSH too), the queue.
        con.send("1\r")
        line = r"Engine: (\S+)\s+shards: (\d+)\s+queue: (\S+)"
        engine, shards, queue = re.search(line, con.expect(line)).groups()
        con.expect(r"Choice: ")
        pid = app.ssh("systemctl show -p MainPID --value mxguardd").strip()
        threads = len(app.ssh("grep -l '^mxg-shard-' /proc/%s/task/*/comm" % pid).split())
        queued = len([x for x in app.ssh("mxguard queue list --json").splitlines() if x.strip()])
        self.assertEqual((engine, int(shards), queue), ("active", threads, str(queued)))
        self.assertGreater(threads, 0)

        # Domains: the one added over SSH; Enter returns to the menu.
        con.send("3\r")
        out = con.expect(r"\(Enter to return\): ")
        self.assertIn(DOMAIN, out)
        con.send("\r")
        con.expect(r"Choice: ")

        # Network: the address DHCP gave (qemu's user network).
        con.send("4\r")
        out = con.expect(r"\(Enter to return\): ")
        self.assertIn("10.0.2.15/24", out)
        con.send("\r")
        con.expect(r"Choice: ")

        # Operator SSH keys: the seeded one, and only it.
        with open(app.key + ".pub") as f:
            ktype, blob, comment = f.read().split()[:3]
        con.send("5\r")
        out = con.expect(r"\(Enter to return\): ")
        self.assertRegex(out, r"1\) %s %s\.\.\. ?%s" % (ktype, re.escape(blob[:16]), re.escape(comment)))
        self.assertNotRegex(out, r"2\) ssh-")
        con.send("\r")
        con.expect(r"Choice: ")

        # Rule bundles: the one pushed over SSH is listed, the factory one active again.
        con.send("6\r")
        out = con.expect(r"\(Enter to return\): ")
        self.assertIn("image-test", out)
        self.assertRegex(out, r"\*\s+factory")
        con.send("\r")
        con.expect(r"Choice: ")

        # Live feed: a message sent while it follows shows up; Ctrl-C returns to the menu.
        con.send("2\r")
        time.sleep(5)
        subject = "live feed on the serial console"
        msg = ("From: Alice <alice@sender.example>\r\nTo: bob@%s\r\nSubject: %s\r\n"
               "Message-ID: <console-feed@sender.example>\r\n\r\nFeed me.\r\n" % (DOMAIN, subject))
        with smtplib.SMTP("127.0.0.1", app.smtp_port, timeout=300) as c:
            c.sendmail("alice@sender.example", ["bob@%s" % DOMAIN], msg)
        feed = con.expect(re.escape(subject), timeout=180)
        con.send("\x03")
        con.expect(r"Choice: ")

        # Shell: root on the appliance; exit returns to the menu.
        con.send("7\r")
        con.expect(r"Type exit to return to the menu\.")
        self.assertEqual(con.shell("id -un; hostname", 1).split(), ["root", HOSTNAME])
        con.send("exit\r")
        con.expect(r"Choice: ")

        # Quit: systemd starts the menu again (a new process).
        before = app.ssh("systemctl show -p MainPID --value mxguard-console@ttyS0").strip()
        con.send("q\r")
        con.menu(timeout=120)
        after = app.ssh("systemctl show -p MainPID --value mxguard-console@ttyS0").strip()
        self.assertNotEqual(before, after)
        con.close()
        phase("console menu over the serial line: status (engine %s, %s shards, queue %s), domain %s listed, "
              "network 10.0.2.15/24, the seeded key listed, bundles listed, live feed showed %r, shell as root, "
              "quit and started again (pid %s -> %s); %.1f min" %
              (engine, shards, queue, DOMAIN, " ".join(feed.strip().splitlines()[-1].split()), before, after,
               (time.monotonic() - start) / 60))

    def check_console_menu_actions(self, app, sink):
        """The menu's actions that change something, typed on the serial line:
        a domain added and removed (seen over SSH with `mxguard domain list`);
        a second operator SSH key added (it can log in) and removed (it
        cannot), a line that is not a key refused; a rule bundle pushed from
        a file and rolled back. Each returns to the menu."""
        start = time.monotonic()
        con = app.console()
        self.addCleanup(con.close)
        con.menu()

        def domains():
            return app.ssh("mxguard domain list")

        # A domain added from the menu, then removed; a bad name changes nothing.
        dom = "menu-added.example"
        self.assertNotIn(dom, domains())
        for name in (dom, "not a domain!"):
            con.send("3\r")
            con.expect(r"a\) add  r\) remove  \(Enter to return\): ")
            con.send("a\r")
            con.expect(r"Domain: ")
            con.send(name + "\r")
            con.expect(r"Customer: ")
            con.send("acme\r")
            con.expect(r"Backend host\[:port\]: ")
            con.send("10.0.2.2:%d\r" % sink.port)
            out = con.expect(r"Choice: ", timeout=180)
        self.assertIn(dom, domains())
        self.assertNotIn("not a domain!", domains())
        # The command's one line on what is wrong (after the echo of the backend typed).
        refused_domain = next((l.strip() for l in out.replace("\r", "").splitlines()
                               if l.strip() and "10.0.2.2" not in l), "")
        con.send("3\r")
        con.expect(r"\(Enter to return\): ")
        con.send("r\r")
        con.expect(r"Domain to remove: ")
        con.send(dom + "\r")
        con.expect(r"\[y/N\]: ")
        con.send("y\r")
        con.expect(r"Choice: ", timeout=180)
        self.assertNotIn(dom, domains())
        self.assertIn(DOMAIN, domains())

        # A second operator key: added from the menu it logs in; removed, it no longer does.
        key2 = os.path.join(WORK, "operator_key2")
        if not os.path.exists(key2):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator2@test", "-f", key2],
                           check=True)
        with open(key2 + ".pub") as f:
            pub2 = f.read().strip()
        args2 = [a if a != app.key else key2 for a in app.ssh_args()]

        def login2():
            return subprocess.run(args2 + ["hostname"], capture_output=True, text=True, timeout=120)
        p = login2()
        self.assertNotEqual(p.returncode, 0)
        for line, reply in (("ssh-ed25519 AAAAnot-a-key operator3@test", r"Not a valid public key; nothing changed\."),
                            (pub2, r"Operator keys saved\.")):
            con.send("5\r")
            con.expect(r"a\) add a key  r\) remove a key  \(Enter to return\): ")
            con.send("a\r")
            con.expect(r"comment\): ")
            con.send(line + "\r")
            con.expect(reply)
            con.expect(r"Choice: ")
        p = login2()
        self.assertEqual((p.returncode, p.stdout.strip()), (0, HOSTNAME), p.stderr)
        ktype, blob, comment = pub2.split()[:3]
        con.send("5\r")
        out = con.expect(r"\(Enter to return\): ")
        self.assertRegex(out, r"2\) %s %s\.\.\. ?%s" % (ktype, re.escape(blob[:16]), re.escape(comment)))
        con.send("r\r")
        con.expect(r"Number of the key to remove: ")
        con.send("2\r")
        con.expect(r"Operator keys saved\.")
        con.expect(r"Choice: ")
        p = login2()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied (publickey)", p.stderr)
        self.assertEqual(app.ssh("hostname").strip(), HOSTNAME)  # the seeded key still works
        self.assertEqual(app.ssh("grep -c . /var/lib/appliance/ssh/authorized_keys").strip(), "1")

        # Rule bundles: one pushed from a file copied over SSH, then rolled back.
        bundle = self.make_test_bundle(app)
        with open(bundle, "rb") as f:
            subprocess.run(app.ssh_args() + ["cat >/tmp/menu.bundle && chmod 644 /tmp/menu.bundle"], stdin=f,
                           check=True, capture_output=True, timeout=300)

        def bundles():
            listed = [json.loads(x) for x in app.ssh("mxguard rules list --json").splitlines() if x.strip()]
            return listed, [b for b in listed if b.get("active")]
        listed, was_active = bundles()
        con.send("6\r")
        con.expect(r"p\) push a bundle file  b\) roll back  \(Enter to return\): ")
        con.send("p\r")
        con.expect(r"rules\.bundle\): ")
        con.send("/tmp/menu.bundle\r")
        pushed_line = re.search(r"Bundle \d+ \([^\r\n]*is now active\.", con.expect(r"is now active\.", timeout=300))
        con.expect(r"Choice: ")
        after, active = bundles()
        seq = max(b["bundle"] for b in after)
        self.assertEqual([(b["bundle"], b["name"]) for b in active], [(seq, "image-test")], after)
        self.assertEqual(len(after), len(listed) + 1)
        con.send("6\r")
        con.expect(r"\(Enter to return\): ")
        con.send("b\r")
        con.expect(r"\[y/N\]: ")
        con.send("y\r")
        con.expect(r"Choice: ", timeout=300)
        _, active = bundles()
        # The bundle that was active before the push: not the next lower
        # number, which check_rules_push pushed and rolled back already.
        self.assertEqual([b["bundle"] for b in active], [b["bundle"] for b in was_active])
        app.ssh("rm -f /tmp/menu.bundle")
        con.close()
        phase("console menu actions over the serial line: domain %s added and removed (a bad name refused: %r); "
              "a second SSH key added (it logged in) and removed (refused), a bad key refused; bundle pushed from a "
              "file (%s) and rolled back to bundle %d; %.1f min" %
              (dom, refused_domain, pushed_line.group(0) if pushed_line else "?", active[0]["bundle"],
               (time.monotonic() - start) / 60))

    def check_hung_pid1(self, app):
        """PID 1 hangs: its cgroup (init.scope) is frozen, so systemd neither
        runs nor pings the hardware watchdog it keeps (RuntimeWatchdogSec=60s).
        The watchdog must reset the box (with -no-reboot, qemu exits), with no
        shutdown on the way: the kernel never prints its "reboot: Restarting
        system"; and the box must come back by itself on the default slot,
        running, its state kept."""
        hung_boot, boot_nr = app.boot_id(), app.boots
        # The boot before this one ended with a reboot asked for: the kernel said so on the serial line.
        self.assertIn("reboot: Restarting system", app.serial_text(boot_nr - 1))
        start = time.monotonic()
        # One command: after the freeze a new SSH login may wait for logind, which waits for PID 1.
        events = app.ssh("echo 1 >/sys/fs/cgroup/init.scope/cgroup.freeze; sleep 2; "
                         "cat /sys/fs/cgroup/init.scope/cgroup.events", timeout=120)
        self.assertIn("frozen 1", events)
        app.wait_off(timeout=600)
        reset_after = time.monotonic() - start
        serial = app.serial_text(boot_nr)
        self.assertNotIn("reboot: Restarting system", serial)
        self.assertNotIn("reboot: Power down", serial)
        # A hang is no reset: longer than systemd's pings can leave out (half of 60 s) ...
        self.assertGreater(reset_after, 30)
        power_on = time.monotonic()
        app.wait_ssh(not_boot=hung_boot)
        state, failed = app.wait_running()
        self.assertEqual((state, failed), ("running", ""))
        self.assertIn("mxguard.slot=b", app.ssh("cat /proc/cmdline"))
        self.assertIn("default=mxguard-b.conf", app.ssh("/usr/lib/mxguard/appliance/slot status"))
        self.assertIn(DOMAIN, app.ssh("mxguard domain list"))
        # The hung boot's journal (kept on the data partition) ends without a shutdown.
        last = app.ssh("journalctl -b -1 -o cat --no-pager | tail -n 200")
        for word in ("Reached target reboot.target", "Reached target System Reboot", "Shutting down."):
            self.assertNotIn(word, last)
        phase("hung PID 1 (init.scope frozen): reset by the hardware watchdog %.0f s later, no shutdown "
              "(no 'reboot: Restarting system'); back on slot b, running, domain kept, %.1f min after power-on" %
              (reset_after, (time.monotonic() - power_on) / 60))

    def check_data_growth(self, app):
        """The disk grows while the appliance is off: at the next boot the data
        partition is grown to the new end of the disk and /var's file system
        with it, the state kept. The appliance is taken down with the console
        menu's reboot (with -no-reboot, a power-off for qemu)."""
        def sizes():
            disk = int(app.ssh("cat /sys/class/block/vda/size"))
            start, size = (int(app.ssh("cat /sys/class/block/vda6/%s" % f)) for f in ("start", "size"))
            count, block = app.ssh("dumpe2fs -h /dev/vda6 2>/dev/null | "
                                   "sed -n 's/^Block count: *//p; s/^Block size: *//p'").split()
            avail = int(app.ssh("df -B1 --output=size /var | tail -n 1"))
            return disk * 512, start * 512, size * 512, int(count) * int(block), avail
        disk0, start0, part0, fs0, df0 = sizes()
        con = app.console()
        con.menu()
        con.send("8\r")
        con.expect(r"\[y/N\]: ")
        con.send("y\r")
        down = time.monotonic()
        app.wait_off(600)
        con.close()
        phase("rebooted from the console menu (8, y): down in %.0f s" % (time.monotonic() - down))
        grow = 512 << 20
        os.truncate(app.disk, os.path.getsize(app.disk) + grow)
        app.boot()
        boot_start = time.monotonic()
        app.wait_ssh()
        state, failed = app.wait_running()
        self.assertEqual((state, failed), ("running", ""))
        disk1, start1, part1, fs1, df1 = sizes()
        mib = lambda n: n >> 20
        phase("disk grown by %d MiB while off: disk %d -> %d MiB, data partition %d -> %d MiB (ends %d KiB before "
              "the end), ext4 %d -> %d MiB, df size of /var %d -> %d MiB; system %s %.1f min after power-on" %
              (mib(grow), mib(disk0), mib(disk1), mib(part0), mib(part1), (disk1 - start1 - part1) >> 10,
               mib(fs0), mib(fs1), mib(df0), mib(df1), state, (time.monotonic() - boot_start) / 60))
        self.assertEqual(disk1, disk0 + grow)
        self.assertEqual(start1, start0)
        self.assertLess(disk1 - start1 - part1, 2 << 20)
        self.assertGreaterEqual(part1 - part0, grow - (2 << 20))
        self.assertLess(part1 - fs1, 4 << 20)
        self.assertGreaterEqual(df1 - df0, grow - (64 << 20))
        self.assertIn(DOMAIN, app.ssh("mxguard domain list"))
        if getattr(self, "_bundle", None):
            self.assertIn("image-test", app.ssh("mxguard rules list"))

    def failed_trial(self, app, image, damage=None, trial_timeout=900):
        """Updates the appliance from image (damage(slot), when given, breaks the
        slot just written and verified, before the reboot). The trial boot must
        reboot by itself, and the next boot come back on the slot, version and
        default from before, healthy and with its state. Returns the trial's
        slot and its serial log."""
        status = app.ssh("/usr/lib/mxguard/appliance/slot status")
        cur = re.search(r"slot=([ab]) ", status).group(1)
        new = "b" if cur == "a" else "a"
        self.assertIn("default=mxguard-%s.conf" % cur, status)
        version = app.ssh("cat /usr/lib/mxguard/appliance/version").strip()
        start = time.monotonic()
        up = subprocess.run([os.path.join(REPO, "appliance-image/update")] + (["--no-reboot"] if damage else []) +
                            [image] + app.ssh_args()[1:], capture_output=True, text=True, timeout=1800)
        print(up.stdout + up.stderr, flush=True)
        self.assertEqual(up.returncode, 0)
        self.assertIn("slot %s written and verified" % new, up.stdout + up.stderr)
        written = time.monotonic()
        if damage:
            damage(new)
            app.reboot()
        app.wait_off(600)
        app.boot()
        trial = app.boots
        trial_start = time.monotonic()
        # The trial must end in a reboot of its own (qemu exits); a trial that
        # stayed up would be a failed slot kept.
        app.wait_off(trial_timeout)
        trial_secs = time.monotonic() - trial_start
        app.boot()
        back_start = time.monotonic()
        app.wait_ssh()
        state, failed = app.wait_running()
        back_secs = time.monotonic() - back_start
        self.assertEqual((state, failed), ("running", ""))
        self.assertIn("mxguard.slot=%s " % cur, app.ssh("cat /proc/cmdline") + " ")
        self.assertEqual(app.ssh("cat /usr/lib/mxguard/appliance/version").strip(), version)
        self.assertEqual(app.ssh("grep '^default' /efi/loader/loader.conf").split(),
                         ["default", "mxguard-%s.conf" % cur])
        self.assertIn("slot=%s default=mxguard-%s.conf booted=mxguard-%s.conf" % (cur, cur, cur),
                      app.ssh("/usr/lib/mxguard/appliance/slot status"))
        self.assertEqual(app.ssh("systemctl is-active mxguardd").strip(), "active")
        # A boot of the default slot has no deadline (it would reboot-loop).
        self.assertEqual(app.ssh("systemctl is-active mxguard-slot-deadline", check=False).strip(), "inactive")
        self.assertIn(DOMAIN, app.ssh("mxguard domain list"))
        # systemd-boot's menu on the serial line highlights the entry it boots:
        # the trial's one-shot entry, then the default again.
        self.assertEqual(self.boot_menu_choice(app, trial), {new})
        self.assertEqual(self.boot_menu_choice(app, app.boots), {cur})
        return new, cur, version, app.serial_text(trial), (written - start, trial_secs, back_secs)

    @staticmethod
    def boot_menu_choice(app, boot):
        # The highlighted entry is drawn black on light grey (ESC[30m ESC[47m).
        return set(re.findall(r"\x1b\[47m\s+MxGuard \(slot ([ab])\)", app.serial_text(boot)))

    def check_failed_trial_engine(self, app, image):
        """An update whose engine cannot start (image c, built with the
        test-only MXGUARD_IMAGE_TEST_BROKEN_ENGINE=1): the trial boot comes up,
        mxguard-slot-commit sees the engine down and reboots."""
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(app, image)
        self.assertIn("slot: trial boot of mxguard-%s.conf is " % new, serial)
        self.assertIn("back to mxguard-%s.conf" % cur, serial)
        self.assertIn("1.0-test-c", app.ssh("cat /efi/%s/version" % new))
        # The trial's own journal (on the data partition, kept across boots).
        commit = app.ssh("journalctl -m -o cat --no-pager -u mxguard-slot-commit | grep '^slot: trial boot of' | tail -n 1")
        self.assertIn("trial boot of mxguard-%s.conf" % new, commit)
        self.assertIn("engine made to fail", app.ssh("journalctl -m -o cat --no-pager -u mxguardd | "
                                                     "grep 'engine made to fail' | tail -n 1"))
        phase("failed trial (engine cannot start): update to slot %s in %.1f min; trial boot up and rebooted by "
              "slot commit in %.1f min (%r); back on slot %s, %s, default unchanged, running, domain kept, "
              "%.1f min after power-on" % (new, upd / 60, trial / 60, commit.strip(), cur, version, back / 60))

    def check_failed_trial_verity(self, app, image):
        """A good update whose slot is damaged after `slot install` verified it:
        the initramfs cannot read the root through dm-verity and panics, and
        panic=10 reboots."""
        how = {}

        def corrupt_root(slot):
            part = "/dev/disk/by-partlabel/root-%s" % slot
            t = time.monotonic()
            app.ssh("head -c 512 /dev/urandom | dd of=%s bs=512 seek=2 conv=fsync status=none" % part)
            roothash = app.ssh("sed -n 's/.*mxguard\\.roothash=\\([0-9a-f]*\\).*/\\1/p' "
                               "/efi/loader/entries/mxguard-%s.conf" % slot).strip()
            self.assertRegex(roothash, r"^[0-9a-f]{64}$")
            out = app.ssh("veritysetup verify %s %s-verity %s 2>&1; echo rc=$?" % (part, part, roothash))
            self.assertNotIn("rc=0", out)
            how["verify"] = "%s (%.0f s)" % (out.strip().splitlines()[0], time.monotonic() - t)
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(app, image, corrupt_root, 600)
        self.assertIn("MxGuard: root slot %s does not verify against its root hash" % new, serial)
        self.assertIn("Rebooting automatically due to panic= boot argument", serial)
        phase("failed trial (root slot %s overwritten at byte 1024 after install; veritysetup verify then: %s): "
              "update in %.1f min; trial panicked in the initramfs and rebooted in %.1f min; back on slot %s, %s, "
              "default unchanged, running, domain kept, %.1f min after power-on" %
              (new, how["verify"], upd / 60, trial / 60, cur, version, back / 60))

    def damage_late_block(self, app, image, slot, how):
        """Overwrites one 4 KiB block of the slot just installed that no boot
        reads: 256 KiB before squashfs's inode table, i.e. in the last file
        data of the root as built, which is /var's (mksquashfs lays files out
        in directory order, and /var sorts last); the root's /var is hidden
        under the data partition. veritysetup verify must then fail."""
        with open(image, "rb") as f:
            f.seek(partition_offset(image, "root-a"))
            sb = f.read(96)
        self.assertEqual(sb[:4], b"hsqs")
        inode_table = struct.unpack_from("<Q", sb, 64)[0]
        block = (inode_table - (256 << 10)) // 4096
        part = "/dev/disk/by-partlabel/root-%s" % slot
        t = time.monotonic()
        app.ssh("head -c 4096 /dev/urandom | dd of=%s bs=4096 seek=%d conv=fsync status=none" % (part, block))
        roothash = app.ssh("sed -n 's/.*mxguard\\.roothash=\\([0-9a-f]*\\).*/\\1/p' "
                           "/efi/loader/entries/mxguard-%s.conf" % slot).strip()
        self.assertRegex(roothash, r"^[0-9a-f]{64}$")
        out = app.ssh("veritysetup verify %s %s-verity %s 2>&1; echo rc=$?" % (part, part, roothash))
        self.assertNotIn("rc=0", out)
        how["block"] = "block %d of %d (byte %d; the inode table at %d)" % (block, inode_table // 4096, block * 4096,
                                                                         inode_table)
        how["verify"] = "%s (%.0f s)" % (out.strip().splitlines()[0], time.monotonic() - t)

    def check_failed_trial_verity_late(self, app, image):
        """A good update whose slot is then damaged in a block that the boot
        never reads: the initramfs's check (the superblock) passes and the
        system comes up, but `slot commit` reads the whole root through
        dm-verity before keeping the trial, gets an I/O error, says so on the
        console and reboots."""
        how = {}
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(
            app, image, lambda slot: self.damage_late_block(app, image, slot, how), 900)
        self.assertIn("MxGuard: slot %s verified" % new, serial)
        m = re.search(r"slot: trial boot of mxguard-%s\.conf is running, but slot %s does not read back through "
                      r"dm-verity \([^\r\n]*Input/output error; after (\d+) s\); back to mxguard-%s\.conf" %
                      (new, new, cur), serial)
        self.assertTrue(m, "no read-back failure from slot commit on the trial's serial log")
        phase("failed trial (slot %s damaged at %s after install, a block no boot reads; veritysetup verify then: %s): "
              "update in %.1f min; the trial booted (initramfs check passed) and slot commit's full read failed "
              "after %s s: %r; rebooted %.1f min after power-on; back on slot %s, %s, default unchanged, running, "
              "domain kept, %.1f min after power-on" %
              (new, how["block"], how["verify"], upd / 60, m.group(1), m.group(0), trial / 60, cur, version,
               back / 60))

    @staticmethod
    def hang_entry(app, slot, where):
        """Adds mxguard.test_hang=WHERE to the slot's boot entry (image d only
        acts on it)."""
        entry = "/efi/loader/entries/mxguard-%s.conf" % slot
        app.ssh("sed -i '/^options /s/$/ mxguard.test_hang=%s/' %s && sync -f %s" % (where, entry, entry))
        assert "mxguard.test_hang=%s" % where in app.ssh("grep ^options %s" % entry)

    def check_failed_trial_hang_initramfs(self, app, image):
        """A trial boot that hangs in the initramfs, after the hardware
        watchdog was armed and before systemd: no panic, nothing in userspace;
        the watchdog (i6300esb, 180 s) resets the machine, and the boot loader
        falls back. Image d, test only (MXGUARD_IMAGE_TEST_HANG=1)."""
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(
            app, image, lambda slot: self.hang_entry(app, slot, "initramfs"), 900)
        self.assertIn("MxGuard: hardware watchdog armed (i6300ESB", serial)
        self.assertIn("MxGuard TEST: hanging in the initramfs", serial)
        self.assertNotIn("Kernel panic", serial)
        self.assertNotIn("slot: trial boot", serial)
        self.assertGreater(trial, 180, "the trial ended before the watchdog's 180 s")
        self.assertIn("1.0-test-d", app.ssh("cat /efi/%s/version" % new))
        phase("failed trial (hang in the initramfs, image d): update in %.1f min; trial reset by the hardware "
              "watchdog %.1f min after power-on (no panic, no userspace); back on slot %s, %s, default unchanged, "
              "running, domain kept, %.1f min after power-on" % (upd / 60, trial / 60, cur, version, back / 60))

    def check_failed_trial_hang_userspace(self, app, image):
        """A trial boot whose userspace never finishes starting (a unit that
        multi-user.target waits for forever, so `slot commit` never runs):
        systemd keeps the hardware watchdog fed, and mxguard-slot-deadline
        reboots it after its deadline (240 s in image d, 600 s shipped)."""
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(
            app, image, lambda slot: self.hang_entry(app, slot, "userspace"), 900)
        self.assertIn("MxGuard TEST: hanging the boot", serial)
        pattern = (r"slot: trial boot of mxguard-%s\.conf was not kept within 240 s \(system \w+\); back to "
                   r"mxguard-%s\.conf" % (new, cur))
        m = re.search(pattern, serial)
        self.assertTrue(m, "no deadline reboot on the trial's serial log")
        line = m.group(0)
        self.assertNotIn("Kernel panic", serial)
        journal = app.ssh("journalctl -m -o cat --no-pager -u mxguard-slot-deadline | grep 'was not kept' | tail -n 1")
        self.assertRegex(journal, pattern)
        phase("failed trial (userspace hang, image d): update in %.1f min; trial rebooted by mxguard-slot-deadline "
              "%.1f min after power-on (%r); back on slot %s, %s, default unchanged, running, domain kept, "
              "%.1f min after power-on" % (upd / 60, trial / 60, line, cur, version, back / 60))

    def check_failed_trial_initrd(self, app, image):
        """A good update whose initramfs on the ESP is then overwritten: the
        kernel cannot unpack it, has no root, panics, and panic=10 reboots."""
        def corrupt_initrd(slot):
            app.ssh("head -c 1048576 /dev/urandom >/efi/%s/initrd.img && sync -f /efi/%s/initrd.img" % (slot, slot))
        new, cur, version, serial, (upd, trial, back) = self.failed_trial(app, image, corrupt_initrd, 600)
        self.assertIn("Kernel panic - not syncing", serial)
        panic = re.search(r"Kernel panic - not syncing: [^\r\n]*", serial).group(0)
        phase("failed trial (slot %s's initramfs overwritten): update in %.1f min; trial kernel: %r, rebooted "
              "%.1f min after power-on; back on slot %s, %s, default unchanged, running, domain kept, "
              "%.1f min after power-on" % (new, upd / 60, panic, trial / 60, cur, version, back / 60))

    def check_unseeded_boot(self, image):
        """The pristine image booted with no seed: it comes up, with the
        default hostname, the engine running and no operator key, so SSH lets
        no one in and the console menu on the serial line is the way in."""
        app = Appliance(image, tag="noseed-")
        self.addCleanup(app.stop)
        app.boot()
        start = time.monotonic()
        con = app.console()
        self.addCleanup(con.close)
        # Connected from power-on: the menu's first prompt comes by itself
        # (no key pressed at the firmware or the boot menu); then Enter.
        con.expect(r"Choice: ", timeout=BOOT_TIMEOUT)
        menu_secs = time.monotonic() - start
        head = con.menu()
        self.assertIn("MxGuard console on mxguard -- mxguard", head)
        con.send("7\r")
        con.expect(r"Type exit to return to the menu\.")
        state = con.shell("systemctl is-system-running --wait", 1, timeout=BOOT_TIMEOUT)
        running_secs = time.monotonic() - start
        failed = con.shell("systemctl --failed --no-legend --plain", 2)
        facts = con.shell("hostname; systemctl is-active mxguardd ssh; "
                          "test -s /var/lib/appliance/ssh/authorized_keys && echo keys || echo no-keys; "
                          "test -s /var/lib/appliance/ssh/ssh_host_ed25519_key && echo host-key; "
                          "ls /efi | grep -c seed", 3).split()
        con.send("exit\r")
        con.expect(r"Choice: ")
        con.send("1\r")
        line = r"Engine: (\S+)\s+shards: (\d+)"
        engine, shards = re.search(line, con.expect(line)).groups()
        con.expect(r"Choice: ")
        self.assertEqual((state, failed), ("running", ""))
        self.assertEqual(facts, ["mxguard", "active", "active", "no-keys", "host-key", "0"])
        self.assertEqual(engine, "active")
        # SSH answers but lets no one in: there is no operator key.
        p = subprocess.run(app.ssh_args() + ["true"], capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied (publickey)", p.stderr)
        with socket.create_connection(("127.0.0.1", app.smtp_port), timeout=120) as s:
            banner = s.recv(512).decode()
        self.assertRegex(banner, r"^220 mxguard ")
        phase("no seed: menu on the serial line %.1f min after power-on, system %s at %.1f min, hostname mxguard, "
              "engine %s (%s shards), banner %r, SSH host keys made, no operator key: SSH refuses the test key" %
              (menu_secs / 60, state, running_secs / 60, engine, shards, banner.strip()))
        con.close()
        app.stop()

    @staticmethod
    def engine_log(app):
        return app.ssh("journalctl -u mxguardd -o cat --no-pager", check=False)

    @staticmethod
    def dropped(app):
        out = app.ssh("nft list counter inet filter dropped")
        return int(re.search(r"packets (\d+)", out).group(1))


if __name__ == "__main__":
    if os.geteuid() != 0:
        # 77: meson's "skipped", so a plain `meson test` as a user passes over it.
        print("test_image: needs root (debootstrap, chroot); skipped", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
