"""STARTTLS policy against the real mxguardd with openssl s_client: only
ECDHE key exchange with AEAD suites by default (no static RSA, no CBC),
tls.ciphers for operators who need more, warnings for expired, expiring and
world-readable credentials, and --check-config loading them as a start does."""
import os
import re
import subprocess
import sys
import shutil
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import MXGUARDD, Daemon  # noqa: E402

WARNINGS = ("tls.certificate_expired", "tls.certificate_expiring", "tls.certificate_not_yet_valid",
            "tls.private_key_permissions")


def make_cert(directory, name, days=365, fake_start=None, key_type="rsa:2048"):
    """An RSA certificate (static-RSA and ECDHE-RSA suites need an RSA key);
    fake_start makes one issued in the past (faketime), to be expired now."""
    cert = os.path.join(directory, name + "-cert.pem")
    key = os.path.join(directory, name + "-key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", key_type, "-nodes", "-keyout", key, "-out", cert,
           "-days", str(days), "-subj", "/CN=mx.test.local"]
    if fake_start:
        cmd = ["faketime", fake_start] + cmd
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def tls_section(cert, key, extra=""):
    return '\n[tls]\ncertificate = "%s"\nprivate_key = "%s"\n%s' % (cert, key, extra)


def s_client(port, *args):
    """One STARTTLS handshake; returns (negotiated cipher or None, protocol, output)."""
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % port,
                        "-name", "client.example", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    # The handshake summary and errors, without the certificate dump.
    out = "\n".join(l for l in (p.stdout + p.stderr).splitlines()
                    if "Cipher" in l or "error" in l.lower() or "alert" in l or l.startswith(("New,", "Protocol")))
    m = re.search(r"New, (\S+), Cipher is (\S+)", out)
    if p.returncode != 0 or not m or m.group(2) == "(NONE)":
        return None, None, out
    return m.group(2), m.group(1), out


def check_config(config):
    return subprocess.run([MXGUARDD, "--check-config", "--config", config], capture_output=True, text=True,
                          timeout=60)


class DefaultCiphers(unittest.TestCase):
    """The default list, with an RSA certificate so that every suite tried
    could be negotiated by the key: a refusal is the policy's."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.cert, cls.key = make_cert(cls.d.dir, "rsa")
        with open(cls.d.config, "a") as f:
            f.write(tls_section(cls.cert, cls.key))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        log = cls.d.read_log()
        cls.d.cleanup()
        assert code == 0, "mxguardd exit %s\n%s" % (code, log)

    def test_static_rsa_key_exchange_refused(self):
        cipher, _, out = s_client(self.d.port, "-tls1_2", "-cipher", "AES128-GCM-SHA256")
        self.assertIsNone(cipher, "static RSA (no forward secrecy) was negotiated:\n" + out)

    def test_cbc_suite_refused(self):
        cipher, _, out = s_client(self.d.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")
        self.assertIsNone(cipher, "a CBC suite was negotiated:\n" + out)

    def test_ecdhe_aead_accepted(self):
        cipher, proto, out = s_client(self.d.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertEqual((cipher, proto), ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), out)
        cipher, proto, out = s_client(self.d.port, "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305")
        self.assertEqual((cipher, proto), ("ECDHE-RSA-CHACHA20-POLY1305", "TLSv1.2"), out)

    def test_tls13_accepted(self):
        cipher, proto, out = s_client(self.d.port, "-tls1_3")
        self.assertEqual(proto, "TLSv1.3", out)
        self.assertTrue(cipher.startswith("TLS_"), out)

    def test_good_credentials_give_no_warning(self):
        log = self.d.wait_log("engine.ready")
        self.assertIn("engine.ready", log)
        for w in WARNINGS:
            self.assertNotIn(w, log)


class ConfiguredCiphers(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.cert, self.key = make_cert(self.d.dir, "rsa")

    def tearDown(self):
        self.d.cleanup()

    def test_operator_list_is_used(self):
        # An operator who must take mail from an old sender opts in to static RSA.
        with open(self.d.config, "a") as f:
            f.write(tls_section(self.cert, self.key, 'ciphers = "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256"\n'
                                                    'ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"\n'))
        self.d.start()
        cipher, _, out = s_client(self.d.port, "-tls1_2", "-cipher", "AES128-GCM-SHA256")
        self.assertEqual(cipher, "AES128-GCM-SHA256", out)
        cipher, _, out = s_client(self.d.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")
        self.assertIsNone(cipher, out)
        cipher, _, out = s_client(self.d.port, "-tls1_3")
        self.assertEqual(cipher, "TLS_CHACHA20_POLY1305_SHA256", out)
        self.assertEqual(self.d.stop(), 0)

    def test_unknown_ciphers_stop_check_and_start(self):
        for key, value in (("ciphers", "NO-SUCH-CIPHER"), ("ciphersuites", "TLS_NO_SUCH_SUITE")):
            with self.subTest(key=key):
                with open(self.d.config) as f:
                    base = f.read().split("\n[tls]")[0]
                with open(self.d.config, "w") as f:
                    f.write(base + tls_section(self.cert, self.key, '%s = "%s"\n' % (key, value)))
                p = check_config(self.d.config)
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertIn("tls." + key, p.stderr)
                self.assertIn(value, p.stderr)
                self.assertNotIn("configuration OK", p.stdout)
                start = subprocess.run([MXGUARDD, "--config", self.d.config], capture_output=True, text=True,
                                       timeout=60)
                self.assertEqual(start.returncode, 1, start.stderr)
                self.assertIn("tls." + key, start.stderr)


class Credentials(unittest.TestCase):
    """Certificates and keys that work but should not: a warning each, at
    start and from --check-config."""

    def setUp(self):
        self.d = Daemon()

    def tearDown(self):
        self.d.cleanup()

    def start_with(self, cert, key):
        with open(self.d.config, "a") as f:
            f.write(tls_section(cert, key))
        self.d.start()
        log = self.d.wait_log("engine.ready")
        self.assertEqual(self.d.stop(), 0)
        return log

    def test_expired_certificate_and_world_readable_key(self):
        cert, key = make_cert(self.d.dir, "old", days=1, fake_start="2020-01-01 00:00:00")
        os.chmod(key, 0o644)
        log = self.start_with(cert, key)
        self.assertRegex(log, r"tls\.certificate_expired file=\S*old-cert\.pem not_after=2020-01-02T00:00:\d\dZ")  # faketime ticks on
        self.assertRegex(log, r"tls\.private_key_permissions file=\S*old-key\.pem mode=0644")
        self.assertNotIn("tls.certificate_expiring", log)
        p = check_config(self.d.config)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stdout)
        self.assertIn("tls.certificate_expired", p.stderr)
        self.assertIn("tls.private_key_permissions", p.stderr)

    def test_certificate_expiring_soon(self):
        cert, key = make_cert(self.d.dir, "soon", days=5)
        log = self.start_with(cert, key)
        m = re.search(r"tls\.certificate_expiring file=\S*soon-cert\.pem not_after=\S+ days_left=(\d+)", log)
        self.assertTrue(m, log)
        self.assertIn(int(m.group(1)), (4, 5))
        self.assertNotIn("tls.certificate_expired", log)
        self.assertNotIn("tls.private_key_permissions", log)  # 0600

    def test_certificate_valid_for_three_weeks_is_quiet(self):
        cert, key = make_cert(self.d.dir, "ok", days=21)
        log = self.start_with(cert, key)
        for w in WARNINGS:
            self.assertNotIn(w, log)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mxg-tls-")
        self.config = os.path.join(self.dir, "mxguard.toml")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, cert, key):
        with open(self.config, "w") as f:
            f.write('hostname = "mx.test.local"\nstate_dir = "%s/state"\n[smtp]\nlisten = ["127.0.0.1:1"]\n%s'
                    % (self.dir, tls_section(cert, key)))

    def test_good_files(self):
        self.write(*make_cert(self.dir, "good"))
        p = check_config(self.config)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stdout)

    def test_missing_certificate(self):
        _, key = make_cert(self.dir, "good")
        missing = os.path.join(self.dir, "nowhere.pem")
        self.write(missing, key)
        p = check_config(self.config)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("configuration OK", p.stdout)
        self.assertIn("tls.certificate %s: No such file or directory" % missing, p.stderr)

    def test_missing_key(self):
        cert, _ = make_cert(self.dir, "good")
        missing = os.path.join(self.dir, "nowhere-key.pem")
        self.write(cert, missing)
        p = check_config(self.config)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("tls.private_key %s: No such file or directory" % missing, p.stderr)

    def test_key_not_matching_certificate(self):
        cert, _ = make_cert(self.dir, "one")
        _, other_key = make_cert(self.dir, "two")
        self.write(cert, other_key)
        p = check_config(self.config)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("configuration OK", p.stdout)
        self.assertIn("does not match", p.stderr)
        self.assertIn(other_key, p.stderr)

    def test_not_a_certificate(self):
        cert, key = make_cert(self.dir, "good")
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        self.write(cert, key)
        p = check_config(self.config)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("tls.certificate " + cert, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
