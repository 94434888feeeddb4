// Domains: the list, adding one, and a domain's page (verification, MX
// records, settings).
import { session, el, api, say, page, badge, fmtTime, field, clearErrors, showError, busy, copyButton } from "./ui.js";
import { domainTabs } from "./lists.js";


async function domainsPage() {
  page("Domains", el("p", { class: "muted" }, "Loading…"));
  const r = await api("GET", "/api/v1/domains");
  if (!r.ok) return page("Domains", el("p", { class: "error" }, r.data.error || "Cannot list domains."));
  const add = session.me.role === "postmaster" ? null : el("a", { class: "button", href: "#/domains/new" }, "Add domain");
  if (r.data.domains.length === 0) {
    return page("Domains", el("div", { class: "empty" }, el("p", {}, "No domains yet."), add));
  }
  const rows = r.data.domains.map((d) => el("tr", {},
    el("td", { "data-label": "Domain" }, el("a", { href: `#/domains/${encodeURIComponent(d.domain)}` }, d.domain)),
    el("td", { "data-label": "Status" }, badge(d.status)),
    el("td", { "data-label": "Backend" }, d.backend.host ? `${d.backend.host}:${d.backend.port}` : "—"),
    el("td", { "data-label": "Customer" }, d.customer)));
  page("Domains",
    el("div", { class: "toolbar" }, add),
    el("table", { class: "list", id: "domains" },
      el("thead", {}, el("tr", {}, ["Domain", "Status", "Backend", "Customer"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

function addDomainPage() {
  const fields = [
    field("domain", "Domain name", { placeholder: "example.com", required: true, inputmode: "url" }),
    field("backend", "Backend mail server", { placeholder: "mail.example.com:25", required: true,
      hint: "Where clean mail is delivered: HOST or HOST:PORT (25, 465, 587, 2525 or any port)." }),
    field("recipients", "Recipients", { choices: ["accept-all", "callout", "list"],
      hint: "accept-all: any address; callout: ask the backend; list: only the addresses you add." }),
    field("tls", "TLS to the backend", { choices: ["may", "encrypt", "dane", "none"] }),
    field("trust", "Backend trusts us by", { choices: ["ip", "auth"] }),
  ];
  if (session.me.role === "operator") fields.unshift(field("customer", "Customer", { required: true }));
  const submit = el("button", { type: "submit" }, "Add domain");
  const form = el("form", { id: "add-domain", class: "form", novalidate: true }, fields,
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit, el("a", { class: "button ghost", href: "#/domains" }, "Cancel")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    for (const i of form.querySelectorAll("input, select")) body[i.name] = i.value.trim();
    busy(submit, true);
    const r = await api("POST", "/api/v1/domains", body);
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    say(`Added ${r.data.domain}. Publish the TXT record below, then press "Verify now".`, "ok", true);
    window.location.hash = `#/domains/${encodeURIComponent(r.data.domain)}`;
  });
  page("Add domain", el("p", { class: "muted" },
    "Mail for the domain is filtered here once you have proved you own it with a DNS record."), form);
}

const verdictWords = {
  verified: "Verified: the domain is active.",
  already_active: "The domain is already active.",
  suspended: "The domain is suspended.",
  missing: "No TXT record with that name was found yet.",
  nxdomain: "The name does not exist in DNS yet.",
  mismatch: "A TXT record exists, but it does not hold the expected value.",
  timeout: "The DNS lookup timed out; try again in a minute.",
  servfail: "The domain's DNS servers failed to answer (SERVFAIL).",
  error: "The DNS lookup failed.",
};

function verifySection(d) {
  const v = d.verification;
  const result = el("div", { id: "verify-result", role: "status", "aria-live": "polite" });
  const button = el("button", { type: "button", id: "verify-now" }, "Verify now");
  button.addEventListener("click", async () => {
    busy(button, true);
    result.replaceChildren(el("p", { class: "muted" }, "Looking up the record…"));
    const r = await api("POST", `/api/v1/domains/${encodeURIComponent(d.domain)}/verify`);
    busy(button, false);
    if (!r.ok) return result.replaceChildren(el("p", { class: "error" }, r.data.error || "Verification failed."));
    if (r.data.status === "active") {
      await domainPage(d.domain);
      return say(verdictWords[r.data.result] || "Verified.");
    }
    const found = r.data.found || [];
    result.replaceChildren(
      el("p", { class: "error" }, verdictWords[r.data.result] || r.data.result),
      found.length ? el("div", {}, el("p", {}, "Found instead:"),
        el("ul", { class: "found" }, found.map((t) => el("li", {}, el("code", {}, t))))) : null,
      el("p", { class: "muted" }, "DNS changes can take a few minutes to be visible. Check the record and try again."));
  });
  const row = (label, value) => el("div", { class: "record-row" }, el("dt", {}, label),
    el("dd", {}, el("code", {}, value), copyButton(value, `Copy the ${label.toLowerCase()}`)));
  return el("section", { class: "panel", id: "verify", "aria-labelledby": "verify-h" },
    el("h2", { id: "verify-h" }, "Verify that you own the domain"),
    el("p", {}, "Publish this TXT record in the DNS of ", el("strong", {}, d.domain), ", then press ",
      el("em", {}, "Verify now"), "."),
    el("dl", { class: "record" }, row("Name", v.name), el("div", { class: "record-row" }, el("dt", {}, "Type"),
      el("dd", {}, el("code", {}, v.type))), row("Value", v.value)),
    el("div", { class: "actions" }, button), result);
}

function settingsForm(d) {
  const current = {
    backend: d.backend.host ? `${d.backend.host}:${d.backend.port}` : "",
    tls: d.backend.tls, trust: d.backend.trust, auth_user: d.backend.auth_user,
    recipients: d.recipients, quarantine_threshold: d.thresholds.quarantine, reject_threshold: d.thresholds.reject,
    greylist_threshold: d.thresholds.greylist, digest_from: d.digest_from, quarantine_days: d.quarantine_days,
  };
  const submit = el("button", { type: "submit" }, "Save settings");
  const form = el("form", { id: "settings", class: "form", novalidate: true },
    el("fieldset", {}, el("legend", {}, "Delivery"),
      field("backend", "Backend mail server", { value: current.backend, hint: "HOST or HOST:PORT" }),
      field("tls", "TLS to the backend", { choices: ["none", "may", "encrypt", "dane"], value: current.tls }),
      field("trust", "Backend trusts us by", { choices: ["ip", "auth"], value: current.trust }),
      field("auth_user", "Relay user name", { value: current.auth_user }),
      field("auth_password", "Relay password", { type: "password", autocomplete: "new-password",
        hint: d.backend.auth_password_set ? "A password is stored; leave blank to keep it." : "None stored." }),
      field("recipients", "Recipients", { choices: ["accept-all", "callout", "list"], value: current.recipients })),
    el("fieldset", {}, el("legend", {}, "Spam scores"),
      el("div", { class: "grid3" },
        field("quarantine_threshold", "Quarantine at", { type: "number", step: "0.1", value: current.quarantine_threshold }),
        field("reject_threshold", "Reject at", { type: "number", step: "0.1", value: current.reject_threshold }),
        field("greylist_threshold", "Greylist at", { type: "number", step: "0.1", value: current.greylist_threshold }))),
    el("fieldset", {}, el("legend", {}, "Quarantine"),
      field("digest_from", "Digest sender address", { value: current.digest_from }),
      field("quarantine_days", "Keep held mail for (days)", { type: "number", value: current.quarantine_days })),
    el("p", { class: "form-error", role: "alert" }),
    el("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    // Only what changed: a PATCH of untouched fields would re-validate them for nothing.
    const body = {};
    for (const i of form.querySelectorAll("input, select")) {
      const v = i.value.trim();
      if (i.name === "auth_password") { if (v) body.auth_password = v; continue; }
      if (String(current[i.name] ?? "") !== v) body[i.name] = v;
    }
    if (Object.keys(body).length === 0) return say("Nothing changed.", "info");
    busy(submit, true);
    const r = await api("PATCH", `/api/v1/domains/${encodeURIComponent(d.domain)}`, body);
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    await domainPage(d.domain);
    say(`Saved the settings of ${d.domain}.`);
  });
  return el("section", { class: "panel", "aria-labelledby": "settings-h" },
    el("h2", { id: "settings-h" }, "Settings"), form);
}

async function domainPage(name) {
  const r = await api("GET", `/api/v1/domains/${encodeURIComponent(name)}`);
  if (!r.ok) return page(name, el("p", { class: "error" }, r.data.error || "No such domain."));
  const d = r.data;
  page(d.domain,
    el("p", { class: "subtitle" }, badge(d.status), ` Customer ${d.customer} · added ${fmtTime(d.created)}`),
    domainTabs(d.domain, "overview"),
    d.status === "pending_verification" ? verifySection(d) : null,
    el("section", { class: "panel", "aria-labelledby": "mx-h" }, el("h2", { id: "mx-h" }, "MX records to set"),
      d.mx.length === 0 ? el("p", { class: "muted" }, "This appliance has no MX host names configured; ask your operator.")
        : el("ul", { class: "plain" }, d.mx.map((m) => el("li", {}, el("code", {}, `${d.domain}. MX ${m.preference} ${m.host}.`))))),
    settingsForm(d),
    el("p", {}, el("a", { href: `#/quarantine?domain=${encodeURIComponent(d.domain)}` }, "Quarantine of this domain →")));
}

// #/domains, #/domains/new, #/domains/<name>
export function route(parts) {
  if (parts[1] === "new") return addDomainPage();
  if (parts[1]) return domainPage(parts.slice(1).join("/"));
  return domainsPage();
}
