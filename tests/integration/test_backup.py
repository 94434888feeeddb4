#!/usr/bin/python3
"""mxguard backup while the engine runs, restore into a new state dir, refusals (issue 16)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mxg import MXGUARD, Daemon  # noqa: E402


class BackupRestore(unittest.TestCase):
    def test_backup_live_restore_new_dir(self):
        d = Daemon()
        tmp = tempfile.mkdtemp(prefix="mxg-bk-")
        try:
            d.console("list", "allow", "add", "ip", "127.0.9.9")
            d.start()
            archive = os.path.join(tmp, "state.tar")
            d.console("backup", archive, "--with-spools")
            # Restoring onto the state dir of the running engine is refused even with --force.
            live = d.console("restore", archive, "--force", check=False)
            self.assertNotEqual(live.returncode, 0)
            self.assertIn("in use", live.stderr)
            cfg2 = os.path.join(tmp, "b.toml")
            state2 = os.path.join(tmp, "state2")
            with open(cfg2, "w") as f:
                f.write('hostname = "mx.test.local"\nstate_dir = "%s"\n[smtp]\nshards = 2\n' % state2)
            bad = os.path.join(tmp, "bad.tar")
            with open(archive, "rb") as f:
                data = bytearray(f.read())
            data[4000] ^= 0xFF
            with open(bad, "wb") as f:
                f.write(data)
            r = subprocess.run([MXGUARD, "--config", cfg2, "restore", bad], capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("restore refused", r.stderr)
            self.assertFalse(os.path.exists(state2))
            # Cut short (a copy that did not finish): refused too, nothing written.
            short = os.path.join(tmp, "short.tar")
            with open(archive, "rb") as f:
                whole = f.read()
            with open(short, "wb") as f:
                f.write(whole[:len(whole) // 2])
            r = subprocess.run([MXGUARD, "--config", cfg2, "restore", short], capture_output=True, text=True,
                               timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("truncated archive", r.stderr)
            self.assertFalse(os.path.exists(state2))
            r = subprocess.run([MXGUARD, "--config", cfg2, "restore", archive], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("warning", r.stderr)
            # Into a configuration with fewer shards than spools: said on stderr.
            cfg3 = os.path.join(tmp, "c.toml")
            with open(cfg3, "w") as f:
                f.write('hostname = "mx.test.local"\nstate_dir = "%s"\n[smtp]\nshards = 1\n'
                        % os.path.join(tmp, "state3"))
            r3 = subprocess.run([MXGUARD, "--config", cfg3, "restore", archive], capture_output=True, text=True,
                                timeout=60)
            self.assertEqual(r3.returncode, 0, r3.stderr)
            self.assertIn("runs 1 shard(s); the mail in spool-1 is delivered only by an engine with more", r3.stderr)
            out = subprocess.run([MXGUARD, "--config", cfg2, "domain", "list"], capture_output=True, text=True,
                                 timeout=60).stdout
            self.assertIn("example.com", out)
            out = subprocess.run([MXGUARD, "--config", cfg2, "list", "allow", "show"], capture_output=True,
                                 text=True, timeout=60).stdout
            self.assertIn("127.0.9.9", out)
        finally:
            d.stop()
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_restore_as_root_keeps_the_engine_user_as_owner(self):
        """root's console restoring into the engine's state dir leaves the envs
        to the dir's owner (the engine runs as its own user and could not open
        root-owned files)."""
        if os.geteuid() != 0:
            self.skipTest("needs root")
        d = Daemon()
        tmp = tempfile.mkdtemp(prefix="mxg-bk-")
        try:
            archive = os.path.join(tmp, "state.tar")
            d.console("backup", archive)
            cfg2 = os.path.join(tmp, "b.toml")
            state2 = os.path.join(tmp, "state2")
            os.mkdir(state2)
            with open(os.path.join(state2, "old-file"), "w") as f:
                f.write("x")
            os.chown(state2, 65534, 65534)
            with open(cfg2, "w") as f:
                f.write('hostname = "mx.test.local"\nstate_dir = "%s"\n' % state2)
            r = subprocess.run([MXGUARD, "--config", cfg2, "restore", archive, "--force"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            for p in (state2, os.path.join(state2, "config"), os.path.join(state2, "config", "data.mdb")):
                st = os.stat(p)
                self.assertEqual((st.st_uid, st.st_gid), (65534, 65534), p)
        finally:
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
