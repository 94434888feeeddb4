#!/usr/bin/env python3
"""The Users, My account and Audit log pages in headless Chromium, as a
customer does it: a customer-admin adds a user with a shadow address and
sets their password; the user logs in, finds the mail held for the shadow
address in their quarantine (real mxguardd, EICAR through SMTP), turns
their digest off on My account and changes their password; the admin opens
the audit log and sees those changes. Screenshots of each page, at desktop
and phone width, in build/dashboard-screenshots-users/.

Run: MXGUARDD_BIN=... MXGUARD_BIN=... MXGUARD_WEB_BIN=... /usr/bin/python3 tests/integration/test_dashboard_users.py
"""
import json
import os
import shutil
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxg  # noqa: E402
import test_dashboard as dash  # noqa: E402


def main():
    if dash.webdriver is None or not os.path.exists(dash.CHROMIUM) or not os.path.exists(dash.CHROMEDRIVER):
        print("SKIP: needs Debian's chromium, chromium-driver and python3-selenium")
        sys.exit(77)
    from selenium.webdriver.common.by import By
    from test_web import Web, add_user

    shots = dash.screenshot_dir().rstrip("/") + "-users"
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    d = mxg.Daemon(domains=("shop.example",), verdicts=True)
    w = b = None
    try:
        d.console("domain", "set", "shop.example", "reject_threshold=100", "quarantine_threshold=5",
                  "greylist_threshold=100")
        d.console("domain", "add", "globex.example", "--customer", "globex", "--backend", "127.0.0.1:2", "--active")
        add_user(d, "ada", "ada-password-1", "--role", "customer-admin", "--customer", "acme")
        add_user(d, "gina", "gina-password-1", "--role", "customer-admin", "--customer", "globex")
        add_user(d, "gwen", "gwen-password-1", "--role", "postmaster", "--domain", "globex.example")
        w = Web(d)
        d.start()
        b = dash.Browser("https://127.0.0.1:%d" % w.port, shots)

        # The customer-admin adds a user: a shadow in another customer's domain is refused next to its field.
        dash.login(b, "ada", "ada-password-1")
        b.css("#nav a[data-section=users]").click()
        b.text_in("#users", "ada")
        assert "gina" not in b.css("#users").text and "gwen" not in b.css("#users").text
        b.shot("users")
        b.css("a[href='#/users/new']").click()
        roles = [o.get_attribute("value") for o in b.drv.find_elements(By.CSS_SELECTOR, "#f-role option")]
        assert roles == ["postmaster", "user"], roles
        assert not b.css("#f-address").get_attribute("hidden")
        b.fill("#f-name", "sam")
        b.fill("#f-address", "sam@shop.example")
        b.fill("#f-shadows", "sales@globex.example")
        b.css("#add-user button[type=submit]").click()
        b.text_in("#f-shadows-error", "not one of acme's domains")
        assert b.drv.find_element(By.ID, "f-shadows").get_attribute("aria-invalid") == "true"
        assert b.drv.find_element(By.ID, "f-name").get_attribute("value") == "sam", "the form kept what was typed"
        assert "sam" not in d.console("user", "list").stdout
        b.shot("add-user-error")
        b.fill("#f-shadows", "sales@shop.example")
        b.css("#add-user button[type=submit]").click()
        b.text_in("h1", "sam")
        b.text_in("#notice", "Added user sam")
        assert b.css("#f-shadows").get_attribute("value") == "sales@shop.example"
        b.shot("user-page")
        # Reset (here: set) the password.
        b.fill("#f-password", "short")
        b.css("#reset-form button[type=submit]").click()
        b.text_in("#f-password-error", "at least 8 characters")
        b.fill("#f-password", "sam-password-1")
        b.css("#reset-form button[type=submit]").click()
        b.text_in("#notice", "Set a new password for sam")
        b.shot("user-password-set")
        users = {json.loads(l)["name"]: json.loads(l) for l in d.console("user", "list", "--json").stdout.splitlines()}
        assert users["sam"]["shadows"] == ["sales@shop.example"] and users["sam"]["has_password"], users["sam"]
        print("ok: Users: the list is the customer's; add a user with a shadow (a wrong one refused by its field); "
              "set their password")

        # Mail for the shadow address is held.
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.ehlo("client.sender.test")
            s.sendmail("mallory@sender.test", ["sales@shop.example"],
                       dash.spam("Quote for sales", "sales@shop.example", "An offer.", 1))
        deadline = time.time() + 30
        while "Quote for sales" not in d.console("quarantine", "list").stdout and time.time() < deadline:
            time.sleep(0.1)
        dash.logout(b)

        # The user: their quarantine shows the shadow's message; My account shows address and shadows.
        dash.login(b, "sam", "sam-password-1")
        b.text_in("#messages", "Quote for sales")
        nav = [a.text for a in b.drv.find_elements(By.CSS_SELECTOR, "#nav a") if a.is_displayed()]
        assert nav == ["Quarantine", "My account"], nav
        b.shot("user-quarantine")
        b.css("#nav a[data-section=account]").click()
        b.text_in("#account-facts", "sam@shop.example")
        b.text_in("#my-shadows", "sales@shop.example")
        box = b.css("#digest")
        assert box.is_selected()
        b.shot("account")
        box.click()
        b.css("#digest-form button[type=submit]").click()
        b.text_in("#notice", "Your daily digest is off")
        assert users and json.loads(
            [l for l in d.console("user", "list", "--json").stdout.splitlines() if '"sam"' in l][0])["digest"] == "off"
        b.shot("account-digest-off")
        # Change the password: the current one is asked for.
        b.fill("#f-current", "not-my-password")
        b.fill("#f-password", "sam-password-2")
        b.fill("#f-repeat", "sam-password-2")
        b.css("#password-form button[type=submit]").click()
        b.text_in("#f-current-error", "the current password is wrong")
        b.shot("account-password-wrong")
        b.fill("#f-current", "sam-password-1")
        b.css("#password-form button[type=submit]").click()
        b.text_in("#notice", "Your password is changed")
        b.drv.refresh()
        b.text_in("#account-facts", "sam@shop.example")  # this session stays
        # Keyboard: the heading has the focus after a page change.
        assert b.drv.switch_to.active_element.tag_name == "h1"
        b.drv.set_window_size(390, 844)
        b.get("/app.html#/account")
        b.text_in("#account-facts", "sam@shop.example")
        assert b.drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        b.shot("phone-account")
        b.drv.set_window_size(1280, 900)
        dash.logout(b)
        r, raw = w.login("sam", "sam-password-1")
        assert r.status == 401
        print("ok: the user sees the shadow's message, their address and shadows, turns the digest off, changes "
              "their password (the wrong current one refused)")

        # The admin's audit log shows it all, by name; gina's does not.
        dash.login(b, "ada", "ada-password-1")
        b.css("#nav a[data-section=audit]").click()
        b.text_in("#audit", "user.add")
        text = b.css("#audit").text
        for expected in ("sam", "user.passwd", "user.set", "digest", "sales@shop.example"):
            assert expected in text, (expected, text)
        rows = b.drv.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
        who = [r.find_element(By.CSS_SELECTOR, "td[data-label=Who]").text for r in rows]
        assert "sam" in who and "ada" in who, who
        assert "gina" not in text and "globex" not in text, text
        b.shot("audit")
        # A date filter: tomorrow holds nothing.
        tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
        # A date input's typing order depends on the locale; its value does not.
        b.drv.execute_script("arguments[0].value = arguments[1]", b.css("#f-since"), tomorrow)
        b.css("#audit-filter button[type=submit]").click()
        b.text_in("#audit-results", "No changes in this period")
        b.shot("audit-filtered")
        b.drv.set_window_size(390, 844)
        b.get("/app.html#/audit")
        b.text_in("#audit", "user.add")
        assert b.drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        b.shot("phone-audit")
        b.get("/app.html#/users")
        b.text_in("#users", "sam")
        b.shot("phone-users")
        b.drv.set_window_size(1280, 900)
        # Remove, after a confirm.
        b.get("/app.html#/users/sam")
        b.css("#remove-user").click()
        b.drv.switch_to.alert.accept()
        b.text_in("#notice", "Removed the user sam")
        assert "sam" not in d.console("user", "list").stdout
        dash.logout(b)

        dash.login(b, "gina", "gina-password-1")
        b.css("#nav a[data-section=audit]").click()
        b.css("#audit-results")
        b.wait(lambda drv: "Loading" not in drv.find_element(By.ID, "audit-results").text, what="the audit log")
        text = b.css("#audit-results").text
        assert "sam" not in text and "shop.example" not in text, text
        b.shot("audit-other-customer")
        # Refused inputs and the login page's session probe are failed loads (source "network"); no script error.
        errors = [e for e in b.logs() if e.get("level") == "SEVERE" and e.get("source") != "network"]
        assert not errors, errors
        print("ok: the audit log lists the changes with the web users' names; another customer's admin sees none")
    finally:
        if b:
            b.quit()
        if w:
            w.stop()
        d.stop()
    d.cleanup()
    print("dashboard-users: all passed; screenshots in", shots)


if __name__ == "__main__":
    main()
