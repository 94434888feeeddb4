// My account, for every role: one's own password (the current one is
// asked for) and, for users, their address, shadow addresses (set by their
// admins) and the daily digest switch.
import { session, el, api, say, page, field, clearErrors, showError, busy } from "./ui.js";

function digestSection(u) {
  const box = el("input", { type: "checkbox", id: "digest", name: "digest", checked: u.digest === "on" });
  const submit = el("button", { type: "submit" }, "Save");
  const form = el("form", { id: "digest-form", class: "form", novalidate: true },
    el("div", { class: "check-row" }, box, el("label", { for: "digest" }, "Send me a daily digest of my held mail")),
    el("p", { class: "hint" }, "One mail a day listing what was quarantined for you and your shadow addresses, " +
      "with links to release or delete each message. Nothing is sent on days with nothing new."),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, true);
    const r = await api("PATCH", `/api/v1/users/${encodeURIComponent(u.name)}`, { digest: box.checked ? "on" : "off" });
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    say(r.data.digest === "on" ? "Your daily digest is on." : "Your daily digest is off.");
  });
  return el("section", { class: "panel", "aria-labelledby": "digest-h" }, el("h2", { id: "digest-h" }, "Daily digest"), form);
}

function passwordSection(u) {
  const submit = el("button", { type: "submit" }, "Change password");
  const form = el("form", { id: "password-form", class: "form", novalidate: true },
    field("current", "Current password", { type: "password", autocomplete: "current-password", required: true }),
    field("password", "New password", { type: "password", autocomplete: "new-password", required: true,
      hint: "At least 8 characters." }),
    field("repeat", "New password again", { type: "password", autocomplete: "new-password", required: true }),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const f = form.elements;
    // A typing slip caught here; the rules for passwords are the server's.
    if (f.password.value !== f.repeat.value) return showError(form, { field: "repeat", error: "The two new passwords differ." });
    busy(submit, true);
    const r = await api("POST", `/api/v1/users/${encodeURIComponent(u.name)}/password`,
      { current: f.current.value, password: f.password.value });
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    for (const i of [f.current, f.password, f.repeat]) i.value = "";
    say("Your password is changed. Your other sessions have ended; this one stays.");
  });
  return el("section", { class: "panel", "aria-labelledby": "password-h" },
    el("h2", { id: "password-h" }, "Password"), form);
}

async function accountPage() {
  const me = session.me;
  const r = await api("GET", `/api/v1/users/${encodeURIComponent(me.user)}`);
  if (!r.ok) return page("My account", el("p", { class: "error" }, r.data.error || "Your account cannot be shown."));
  const u = r.data;
  const meta = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  page("My account",
    el("section", { class: "panel" }, el("h2", {}, u.name),
      el("dl", { class: "meta", id: "account-facts" }, meta("Role", u.role),
        u.customer ? meta("Customer", u.customer) : null,
        u.role === "postmaster" ? meta("Domain", u.domain) : null,
        u.role === "user" ? meta("Address", u.address) : null,
        u.role === "user" ? meta("Shadow addresses", u.shadows.length
          ? el("ul", { class: "plain", id: "my-shadows" }, u.shadows.map((s) => el("li", {}, s))) : "None") : null),
      u.role === "user" ? el("p", { class: "hint" }, "Your admins choose your shadow addresses; ask them to change them.")
        : null),
    u.role === "user" ? digestSection(u) : null,
    passwordSection(u));
}

// #/account
export function route() {
  return accountPage();
}
