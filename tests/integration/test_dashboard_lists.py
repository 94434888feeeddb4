"""The dashboard's recipients, allow/block lists and MX check pages in
headless Chromium, as a customer-admin's task: from the domain's page add a
recipient, import a file with one bad line and read its line number, block
a sender, run the MX check, fix DNS (a real Knot) and check again; the same
pages on a phone-sized screen. Screenshots go to <build>/dashboard-screenshots-lists/."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
import test_dashboard as dash  # noqa: E402
from knot import Knot  # noqa: E402

BAD_MX = {
    "acme.example": ["@ MX 5 mail.elsewhere.test.", "@ MX 10 mx1.mxguard.test."],
    "mxguard.test": ["mx1 A 127.0.0.1"],
    "elsewhere.test": ["mail A 192.0.2.25"],
}
GOOD_MX = dict(BAD_MX, **{"acme.example": ["@ MX 10 mx1.mxguard.test."]})


def recipients(d):
    return [json.loads(line)["address"] for line in
            d.console("recipient", "list", "acme.example", "--json").stdout.splitlines()]


def fits_the_screen(b):
    return b.drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


def main():
    if dash.webdriver is None or not os.path.exists(dash.CHROMIUM) or not os.path.exists(dash.CHROMEDRIVER):
        print("SKIP: needs Debian's chromium, chromium-driver and python3-selenium")
        sys.exit(77)
    from selenium.webdriver.common.by import By
    from test_web import Web, add_user

    # Beside test_dashboard's directory, which that test empties when it starts.
    shots = dash.screenshot_dir().rstrip("/") + "-lists"
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    d = mxg.Daemon(domains=("acme.example",))
    knots = []
    w = b = None

    def serve(zones):
        """(Re)starts Knot on the port the config names, serving `zones`."""
        port = knots[-1].port if knots else None
        if knots:
            knots[-1].stop()
        kdir = os.path.join(d.dir, "knot-%d" % len(knots))
        os.mkdir(kdir)
        knots.append(Knot(kdir, zones, port=port))

    try:
        serve(BAD_MX)
        with open(d.config, "a") as f:
            f.write('\n[dns]\nservers = ["127.0.0.1:%d"]\ntimeout = "2s"\n[onboarding]\nmx_hosts = ["mx1.mxguard.test"]\n'
                    % knots[0].port)
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        d.console("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        add_user(d, "gil", "gil-password-1", "--role", "postmaster", "--domain", "globex.example")
        w = Web(d)
        b = dash.Browser("https://127.0.0.1:%d" % w.port, shots)

        # From the domain's page to its recipients.
        dash.login(b, "ada", "ada-password-1")
        b.css("#domains a[href='#/domains/acme.example']").click()
        b.css("#settings")
        b.css("nav.tabs a[href='#/lists/acme.example/recipients']").click()
        b.css("#add-recipient")
        b.text_in("h1", "Recipients of acme.example")
        assert b.drv.execute_script("return document.activeElement.tagName") == "H1", "the heading takes the focus"
        b.css("#no-recipients")
        b.shot("recipients-empty")

        # A foreign address is refused next to the field, as typed; then a local part is added.
        b.fill("#f-address", "eve@globex.example")
        b.css("#add-recipient button[type=submit]").click()
        b.text_in("#f-address-error", "is not in acme.example")
        assert b.css("#f-address").get_attribute("value") == "eve@globex.example", "the form keeps what was typed"
        assert b.css("#f-address").get_attribute("aria-invalid") == "true"
        b.shot("recipient-error")
        b.fill("#f-address", "alice")
        b.css("#add-recipient button[type=submit]").click()
        b.text_in("#notice", "Added alice@acme.example")
        b.text_in("#recipients", "alice@acme.example")
        assert recipients(d) == ["alice@acme.example"]
        print("ok: from the domain page to Recipients; a foreign address refused next to its field; alice added")

        # A file with one bad line: its number is shown and nothing is imported.
        bad = os.path.join(d.dir, "staff.txt")
        with open(bad, "w") as f:
            f.write("# staff of acme\nbob@acme.example\ncarol at acme.example\ndave@acme.example\n")
        b.css("#f-file").send_keys(bad)
        b.css("#import-recipients button[type=submit]").click()
        b.text_in("#import-problems", "Line 3:")
        b.text_in("#import-problems", "Nothing was imported from staff.txt")
        assert recipients(d) == ["alice@acme.example"], "nothing written"
        b.shot("import-line-error")
        with open(bad, "w") as f:
            f.write("# staff of acme\nbob@acme.example\ncarol@acme.example\ndave@acme.example\nalice@acme.example\n")
        b.css("#f-file").send_keys(bad)
        b.css("#import-recipients button[type=submit]").click()
        b.text_in("#notice", "Imported 3 new recipients from staff.txt (1 already present)")
        b.text_in("#recipients-h", "4 recipients")
        assert recipients(d) == ["alice@acme.example", "bob@acme.example", "carol@acme.example", "dave@acme.example"]
        b.css("#recipients button[aria-label='Remove dave@acme.example']").click()
        b.text_in("#notice", "Removed dave@acme.example")
        b.text_in("#recipients-h", "3 recipients")
        assert "dave@acme.example" not in recipients(d)
        b.shot("recipients")
        print("ok: import: line 3 named and nothing imported; the fixed file adds 3 (1 already there); remove")

        # Block a sender: a bad value is refused next to the field, then the entry is listed.
        b.css("nav.tabs a[href='#/lists/acme.example/lists']").click()
        b.css("#add-entry")
        b.text_in("#block-list", "Nothing is blocked")
        b.fill("#f-value", "no-at-sign")
        b.css("#add-entry button[type=submit]").click()
        b.text_in("#f-value-error", "not a sender address")
        b.shot("block-error")
        b.fill("#f-value", "Spammer@Bad.test")
        b.css("#add-entry button[type=submit]").click()
        b.text_in("#notice", "Added spammer@bad.test to the block list")
        b.text_in("#block-list", "spammer@bad.test")
        shown = [json.loads(line) for line in
                 d.console("list", "block", "show", "acme.example", "--json").stdout.splitlines()]
        assert [(e["kind"], e["value"]) for e in shown] == [("sender", "spammer@bad.test")], shown
        b.shot("lists")
        print("ok: block list: a bad value refused next to its field; the sender blocked, as the console shows")

        # The MX check: the bypass in plain words and the records to set; fixed DNS, Check again.
        b.css("nav.tabs a[href='#/lists/acme.example/mx']").click()
        b.css("#mx-problems")
        b.text_in("#mx-problems", "Mail bypasses the filter")
        b.text_in("#mx-problems", "mail.elsewhere.test")
        b.text_in("#mx-records", "acme.example. MX 10 mx1.mxguard.test.")
        b.text_in("#mx-found", "mail.elsewhere.test")
        b.shot("mx-problems")
        serve(GOOD_MX)
        b.css("#check-again").click()
        b.text_in("#mx-verdict", "All good")
        assert not b.drv.find_elements(By.ID, "mx-problems")
        b.shot("mx-ok")
        print("ok: MX check: the bypassing MX named in words, the records to set; after the DNS fix, Check again: all good")

        # A phone-sized screen.
        b.drv.set_window_size(390, 844)
        for page, ready, name in (("recipients", "#recipients", "phone-recipients"), ("lists", "#block-list", "phone-lists"),
                                  ("mx", "#mx-verdict", "phone-mx")):
            b.get("/app.html#/lists/acme.example/" + page)
            b.css(ready)
            assert fits_the_screen(b), "%s is wider than the phone" % page
            b.shot(name)
        b.drv.set_window_size(1280, 900)
        b.get("/app.html#/lists")
        b.css("#list-domains")
        b.shot("index")
        print("ok: the three pages fit a phone-sized screen; the index lists each domain's pages")

        # Another customer's postmaster sees none of it.
        dash.logout(b)
        dash.login(b, "gil", "gil-password-1")
        for page in ("recipients", "lists", "mx"):
            b.get("/app.html#/lists/acme.example/" + page)
            b.css("main .error")
            text = b.css("main").text
            assert "alice@acme.example" not in text and "spammer@bad.test" not in text, text
        b.shot("other-tenant")
        print("ok: another customer's postmaster gets an error, not acme's recipients or lists")

        severe = [e for e in b.logs() if e.get("level") == "SEVERE" and "favicon" not in e["message"]
                  and "the server responded with a status of 4" not in e["message"]]
        assert not severe, severe
    finally:
        if b:
            b.quit()
        if w:
            w.stop()
        for k in knots[-1:]:
            k.stop()
        d.cleanup()
    print("PASS (screenshots in %s)" % shots)


if __name__ == "__main__":
    main()
