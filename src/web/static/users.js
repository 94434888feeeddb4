// Users of a customer (operators: all): the list, adding one, and a user's
// page (shadow addresses, password reset, removal). Who may do what is the
// API's answer; the page offers only the roles it says the viewer may create.
import { session, el, api, say, page, field, clearErrors, showError, busy } from "./ui.js";

const roleWords = { operator: "Operator", "customer-admin": "Customer admin", postmaster: "Postmaster", user: "User" };

// "a@x, b@x" or one per line -> ["a@x", "b@x"]
function addressList(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

function scopeOf(u) {
  if (u.role === "postmaster") return u.domain;
  if (u.role === "user") return u.address;
  return u.role === "operator" ? "Every customer" : "All the customer's domains";
}

async function usersPage() {
  page("Users", el("p", { class: "muted" }, "Loading…"));
  const r = await api("GET", "/api/v1/users");
  if (!r.ok) return page("Users", el("p", { class: "error" }, r.data.error || "Cannot list users."));
  const add = r.data.creatable_roles.length ? el("a", { class: "button", href: "#/users/new" }, "Add user") : null;
  if (r.data.users.length === 0) return page("Users", el("div", { class: "empty" }, el("p", {}, "No users yet."), add));
  const rows = r.data.users.map((u) => el("tr", { "data-user": u.name },
    el("td", { "data-label": "User" }, el("a", { href: `#/users/${encodeURIComponent(u.name)}` }, u.name)),
    el("td", { "data-label": "Role" }, roleWords[u.role] || u.role),
    el("td", { "data-label": "Customer" }, u.customer || "—"),
    el("td", { "data-label": "Scope", class: "clip", title: scopeOf(u) }, scopeOf(u)),
    el("td", { "data-label": "Shadows", class: "addresses" }, u.shadows.length ? u.shadows.join(", ") : "—"),
    el("td", { "data-label": "Digest" }, u.role === "user" ? (u.digest === "on" ? "On" : "Off") : "—")));
  page("Users",
    el("div", { class: "toolbar" }, add),
    el("table", { class: "list", id: "users" },
      el("thead", {}, el("tr", {}, ["User", "Role", "Customer", "Domain or address", "Shadow addresses", "Digest"]
        .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

async function addUserPage() {
  const r = await api("GET", "/api/v1/users");
  const roles = r.ok ? r.data.creatable_roles : [];
  if (roles.length === 0) return page("Add user", el("p", { class: "error" }, r.data.error || "You cannot add users."));
  const role = field("role", "Role", { choices: roles, value: roles.includes("user") ? "user" : roles[0] });
  // Option labels in words; the values stay the API's role names.
  for (const o of role.querySelectorAll("option")) o.textContent = roleWords[o.value] || o.value;
  const byRole = {
    customer: field("customer", "Customer", { hint: "The customer account this admin manages." }),
    domain: field("domain", "Domain", { placeholder: "example.com", hint: "The one domain this postmaster manages." }),
    address: field("address", "Address", { placeholder: "name@example.com", type: "email",
      hint: "Their own mail address: they see its quarantine." }),
    shadows: field("shadows", "Shadow addresses", { placeholder: "alias@example.com, sales@example.com",
      hint: "Further addresses whose quarantine and digest are theirs too, separated by commas." }),
  };
  const needs = { operator: [], "customer-admin": ["customer"], postmaster: ["domain"], user: ["address", "shadows"] };
  const show = () => {
    for (const [name, f] of Object.entries(byRole)) f.hidden = !needs[role.querySelector("select").value].includes(name);
  };
  role.querySelector("select").addEventListener("change", show);
  const submit = el("button", { type: "submit" }, "Add user");
  const form = el("form", { id: "add-user", class: "form", novalidate: true },
    field("name", "User name", { required: true, autocomplete: "off", hint: "Letters, digits, dot, dash, underscore." }),
    role, Object.values(byRole),
    field("password", "Password", { type: "password", autocomplete: "new-password",
      hint: "At least 8 characters. Leave blank to set one later." }),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit, el("a", { class: "button ghost", href: "#/users" }, "Cancel")));
  show();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { name: form.elements.namedItem("name").value.trim(), role: form.elements.namedItem("role").value };
    for (const [name, f] of Object.entries(byRole)) {
      if (f.hidden) continue;
      const v = f.querySelector("input").value.trim();
      if (name === "shadows") body.shadows = addressList(v);
      else if (v) body[name] = v;
    }
    if (form.elements.password.value) body.password = form.elements.password.value;
    busy(submit, true);
    const res = await api("POST", "/api/v1/users", body);
    busy(submit, false);
    if (!res.ok) return showError(form, res.data);
    say(`Added ${roleWords[res.data.role].toLowerCase()} ${res.data.name}.`, "ok", true);
    window.location.hash = `#/users/${encodeURIComponent(res.data.name)}`;
  });
  page("Add user", el("p", { class: "muted" }, "Postmasters manage one domain; users see their own quarantine."), form);
}

function shadowsForm(u) {
  const submit = el("button", { type: "submit" }, "Save shadow addresses");
  const form = el("form", { id: "shadows-form", class: "form", novalidate: true },
    field("shadows", "Shadow addresses", { value: u.shadows.join(", "),
      hint: "Addresses in your domains whose quarantine and digest are this user's too, separated by commas." }),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, true);
    const r = await api("PATCH", `/api/v1/users/${encodeURIComponent(u.name)}`,
      { shadows: addressList(form.elements.shadows.value) });
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    await userPage(u.name);
    say(`Saved the shadow addresses of ${u.name}.`);
  });
  return el("section", { class: "panel", "aria-labelledby": "shadows-h" },
    el("h2", { id: "shadows-h" }, "Shadow addresses"), form);
}

function resetForm(u) {
  const submit = el("button", { type: "submit" }, "Set password");
  const form = el("form", { id: "reset-form", class: "form", novalidate: true },
    field("password", "New password", { type: "password", autocomplete: "new-password",
      hint: "At least 8 characters. Tell the user over a channel you trust; they can change it on My account." }),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, true);
    const r = await api("POST", `/api/v1/users/${encodeURIComponent(u.name)}/password`,
      { password: form.elements.password.value });
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    form.elements.password.value = "";
    say(`Set a new password for ${u.name}. Their open sessions have ended.`);
  });
  return el("section", { class: "panel", "aria-labelledby": "reset-h" },
    el("h2", { id: "reset-h" }, "Reset password"), form);
}

async function userPage(name) {
  const r = await api("GET", `/api/v1/users/${encodeURIComponent(name)}`);
  const back = el("p", {}, el("a", { href: "#/users" }, "← All users"));
  if (!r.ok) return page(name, back, el("p", { class: "error" }, r.data.error || "No such user."));
  const u = r.data;
  const self = u.name === session.me.user;
  const meta = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  const remove = el("button", { type: "button", id: "remove-user", class: "danger" }, `Remove ${u.name}`);
  remove.addEventListener("click", async () => {
    if (!window.confirm(`Remove the user ${u.name}? They can no longer log in.`)) return;
    busy(remove, true);
    const res = await api("DELETE", `/api/v1/users/${encodeURIComponent(u.name)}`);
    busy(remove, false);
    if (!res.ok) return say(res.data.error || "The user was not removed.", "bad");
    say(`Removed the user ${u.name}.`, "ok", true);
    window.location.hash = "#/users";
  });
  page(u.name, back,
    el("section", { class: "panel" }, el("h2", {}, "Account"),
      el("dl", { class: "meta" }, meta("Role", roleWords[u.role] || u.role), meta("Customer", u.customer || "—"),
        u.role === "postmaster" ? meta("Domain", u.domain) : null,
        u.role === "user" ? meta("Address", u.address) : null,
        u.role === "user" ? meta("Digest", u.digest === "on" ? "Daily digest on" : "Off") : null,
        meta("Password", u.has_password ? "Set" : "Not set: cannot log in yet"))),
    u.role === "user" ? shadowsForm(u) : null,
    self ? el("p", {}, "To change your own password, use ", el("a", { href: "#/account" }, "My account"), ".")
      : resetForm(u),
    self ? null : el("section", { class: "panel", "aria-labelledby": "remove-h" },
      el("h2", { id: "remove-h" }, "Remove"), el("div", { class: "actions" }, remove)));
}

// #/users, #/users/new, #/users/<name>
export function route(parts) {
  if (parts[1] === "new") return addUserPage();
  if (parts[1]) return userPage(parts.slice(1).join("/"));
  return usersPage();
}
