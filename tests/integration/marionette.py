"""A small client of Firefox's Marionette protocol (no geckodriver needed).

Firefox started with --marionette listens on loopback (the profile's
marionette.port). Each message is "<length>:<json>"; commands are
[0, id, "WebDriver:Name", params] and replies [1, id, error, result].
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the WebDriver element reference key
FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"


class MarionetteError(Exception):
    def __init__(self, error):
        self.error = error.get("error", "")
        super().__init__("%s: %s" % (self.error, error.get("message", "")))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Element:
    def __init__(self, ff, ref):
        self.ff, self.ref = ff, ref

    def click(self):
        self.ff.command("WebDriver:ElementClick", {"id": self.ref})

    def send_keys(self, text):
        self.ff.command("WebDriver:ElementSendKeys", {"id": self.ref, "text": text})

    def clear(self):
        self.ff.command("WebDriver:ElementClear", {"id": self.ref})

    @property
    def text(self):
        return self.ff.command("WebDriver:GetElementText", {"id": self.ref})["value"]

    def attribute(self, name):
        return self.ff.command("WebDriver:GetElementAttribute", {"id": self.ref, "name": name})["value"]

    def displayed(self):
        return self.ff.command("WebDriver:IsElementDisplayed", {"id": self.ref})["value"]

    def find_all(self, css):
        return self.ff.find_all(css, within=self)


class Firefox:
    """A headless Firefox with a fresh profile, driven over Marionette."""

    def __init__(self, log_path, width=1280, height=900, timeout=60):
        self.profile = tempfile.mkdtemp(prefix="mxg-ff-")
        self.port = free_port()
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in (("marionette.port", self.port), ("browser.shell.checkDefaultBrowser", False),
                         ("browser.startup.homepage_override.mstone", "ignore"), ("browser.startup.page", 0),
                         ("datareporting.policy.dataSubmissionEnabled", False),
                         ("toolkit.telemetry.reportingpolicy.firstRun", False), ("app.update.disabledForTesting", True),
                         ("browser.aboutwelcome.enabled", False), ("intl.accept_languages", "en-US"),
                         ("network.captive-portal-service.enabled", False), ("network.connectivity-service.enabled", False),
                         ("extensions.update.enabled", False), ("browser.safebrowsing.update.enabled", False),
                         ("services.settings.server", "http://127.0.0.1:9/"), ("network.proxy.type", 0)):
                f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
        self.log = open(log_path, "ab")
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1")
        self.proc = subprocess.Popen([FIREFOX, "--headless", "--marionette", "--no-remote", "-profile", self.profile,
                                      "about:blank"], stdout=self.log, stderr=self.log, env=env)
        self.sock = None
        self.next_id = 0
        self.buf = b""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("firefox exited with %s (log %s)" % (self.proc.returncode, log_path))
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.quit()
                    raise RuntimeError("Marionette never listened on port %d" % self.port)
                time.sleep(0.2)
        hello = self.receive()
        assert hello.get("marionetteProtocol") == 3, hello
        self.command("WebDriver:NewSession", {"acceptInsecureCerts": True, "pageLoadStrategy": "normal",
                                              "timeouts": {"implicit": 0, "pageLoad": 60000, "script": 30000}})
        self.command("WebDriver:SetWindowRect", {"width": width, "height": height})

    # --- The wire format. ---
    def receive(self):
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                n = int(self.buf[:colon])
                if len(self.buf) >= colon + 1 + n:
                    msg, self.buf = self.buf[colon + 1:colon + 1 + n], self.buf[colon + 1 + n:]
                    return json.loads(msg)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Marionette closed the connection")
            self.buf += chunk

    def command(self, name, params=None):
        self.next_id += 1
        data = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(data), data))
        while True:
            reply = self.receive()
            if isinstance(reply, list) and len(reply) == 4 and reply[0] == 1 and reply[1] == self.next_id:
                break
        if reply[2]:
            raise MarionetteError(reply[2])
        return reply[3]

    # --- WebDriver commands. ---
    def navigate(self, url):
        self.command("WebDriver:Navigate", {"url": url})

    def find_all(self, css, within=None):
        p = {"using": "css selector", "value": css}
        if within:
            p["element"] = within.ref
        res = self.command("WebDriver:FindElements", p)
        return [Element(self, e[ELEMENT]) for e in (res if isinstance(res, list) else res.get("value", []))]

    def find(self, css):
        res = self.command("WebDriver:FindElement", {"using": "css selector", "value": css})
        return Element(self, res["value"][ELEMENT])

    def script(self, body, *args):
        return self.command("WebDriver:ExecuteScript", {"script": body, "args": list(args)})["value"]

    def accept_alert(self):
        self.command("WebDriver:AcceptAlert")

    def screenshot(self, path):
        png = self.command("WebDriver:TakeScreenshot", {"full": False, "hash": False})["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))
        return path

    def quit(self):
        try:
            if self.sock:
                try:
                    self.command("Marionette:Quit", {"flags": ["eForceQuit"]})
                except (OSError, MarionetteError, ConnectionError):
                    pass
                self.sock.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        finally:
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
