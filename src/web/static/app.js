// The dashboard: a small hash-routed page over /api/v1 (DESIGN.md section 4).
// Every piece of text from the server (domain names, subjects, senders,
// message text) goes into the page through text nodes: el() never parses
// HTML, and nothing here assigns innerHTML.

const main = document.getElementById("main");
const notice = document.getElementById("notice");
let me = null; // GET /api/v1/me: user, role, customer, domain, csrf_token

// ---- plumbing -------------------------------------------------------------

// el("p", {class: "x", onclick: f}, "text", child...): an element; strings
// become text nodes, attributes are set as attributes (never as markup).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf_token;
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: { error: "The server could not be reached." } };
  }
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) {
    window.location.replace("/");
  }
  return { ok: r.ok, status: r.status, data };
}

// A notice for the page; `keep` keeps it over the next page change (said
// just before navigating, e.g. "Released 1 message" and back to the list).
function say(text, kind = "ok", keep = false) {
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = !text;
  notice.dataset.keep = keep ? "1" : "";
}

// Replaces the page's content; the heading takes the focus so keyboard and
// screen-reader users land on the new page.
function page(title, ...content) {
  document.title = `${title} · MxGuard`;
  const h1 = el("h1", { tabindex: "-1" }, title);
  main.replaceChildren(h1, ...content.filter((c) => c !== null && c !== undefined && c !== false));
  h1.focus();
}

function badge(status) {
  const words = { active: "Active", pending_verification: "Pending verification", suspended: "Suspended" };
  return el("span", { class: `badge ${status}` }, words[status] || status);
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// A form field: label, input (or select), and the place its error goes.
function field(name, label, opts = {}) {
  const id = `f-${name}`;
  let input;
  if (opts.choices) {
    input = el("select", { id, name }, opts.choices.map((c) => el("option", { value: c }, c)));
    if (opts.value !== undefined) input.value = String(opts.value);
  } else {
    input = el("input", {
      id, name, type: opts.type || "text", value: opts.value ?? "", placeholder: opts.placeholder,
      autocomplete: opts.autocomplete || "off", inputmode: opts.inputmode, required: opts.required,
      "aria-describedby": `${id}-error${opts.hint ? ` ${id}-hint` : ""}`, step: opts.step,
    });
  }
  const wrap = el("div", { class: "field" }, el("label", { for: id }, label), input,
    opts.hint ? el("p", { class: "hint", id: `${id}-hint` }, opts.hint) : null,
    el("p", { class: "field-error", id: `${id}-error`, role: "alert" }));
  return wrap;
}

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

// Shows an API error next to the field it names, else at the form's end.
function showError(form, data) {
  const message = data.error || "Something went wrong.";
  const input = data.field ? form.querySelector(`[name="${CSS.escape(data.field)}"]`) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    form.querySelector(`#f-${CSS.escape(data.field)}-error`).textContent = message;
    input.focus();
  } else {
    form.querySelector(".form-error").textContent = message;
  }
}

function busy(button, on) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

// ---- domains --------------------------------------------------------------

async function domainsPage() {
  page("Domains", el("p", { class: "muted" }, "Loading…"));
  const r = await api("GET", "/api/v1/domains");
  if (!r.ok) return page("Domains", el("p", { class: "error" }, r.data.error || "Cannot list domains."));
  const add = me.role === "postmaster" ? null : el("a", { class: "button", href: "#/domains/new" }, "Add domain");
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
  if (me.role === "operator") fields.unshift(field("customer", "Customer", { required: true }));
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

function copyButton(text, label) {
  const b = el("button", { type: "button", class: "small ghost", "aria-label": label }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      // No clipboard (plain HTTP, old browser): select the value for Ctrl+C.
      const code = b.parentElement.querySelector("code");
      const range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      b.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { b.textContent = "Copy"; }, 2500);
  });
  return b;
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
    d.status === "pending_verification" ? verifySection(d) : null,
    el("section", { class: "panel", "aria-labelledby": "mx-h" }, el("h2", { id: "mx-h" }, "MX records to set"),
      d.mx.length === 0 ? el("p", { class: "muted" }, "This appliance has no MX host names configured; ask your operator.")
        : el("ul", { class: "plain" }, d.mx.map((m) => el("li", {}, el("code", {}, `${d.domain}. MX ${m.preference} ${m.host}.`))))),
    settingsForm(d),
    el("p", {}, el("a", { href: `#/quarantine?domain=${encodeURIComponent(d.domain)}` }, "Quarantine of this domain →")));
}

// ---- quarantine -----------------------------------------------------------

function recipientsText(list) {
  if (!list || list.length === 0) return "";
  return list.length === 1 ? list[0] : `${list[0]} (+${list.length - 1})`;
}

async function act(id, action, body) {
  return api("POST", `/api/v1/quarantine/${encodeURIComponent(id)}/${action}`, body || {});
}

const actionWords = {
  release: ["Release", "Released"],
  allow: ["Release and allow sender", "Released (sender allowed)"],
  delete: ["Delete", "Deleted"],
};

// Acts on each id in turn; `leaving`: the page changes next, the notice stays.
async function runAction(kind, ids, leaving = false) {
  const n = ids.length;
  const what = n === 1 ? "this message" : `these ${n} messages`;
  if (kind === "delete" && !window.confirm(`Delete ${what}? This cannot be undone.`)) return false;
  const failures = [];
  for (const id of ids) {
    const r = kind === "delete" ? await act(id, "delete")
      : await act(id, "release", kind === "allow" ? { allow_sender: true } : {});
    if (!r.ok) failures.push(`${id}: ${r.data.error || r.status}`);
  }
  const done = n - failures.length;
  if (failures.length) say(`${actionWords[kind][1]} ${done} of ${n}. ${failures.join("; ")}`, "bad", leaving);
  else say(`${actionWords[kind][1]} ${n === 1 ? "1 message" : `${n} messages`}.`, "ok", leaving);
  return true;
}

function hashQuery() {
  const h = window.location.hash;
  const q = h.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : h.slice(q + 1));
}

async function quarantinePage() {
  const q = hashQuery();
  const form = el("form", { id: "search", class: "search", role: "search" },
    field("search", "Sender, recipient or subject", { value: q.get("search") || "", type: "search" }),
    field("domain", "Domain", { value: q.get("domain") || "" }),
    field("since", "Received since", { type: "date", value: q.get("since") || "" }),
    field("until", "Until", { type: "date", value: q.get("until") || "" }),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Search")),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const i of form.querySelectorAll("input")) if (i.value.trim()) p.set(i.name, i.value.trim());
    const next = `#/quarantine${p.toString() ? `?${p}` : ""}`;
    if (window.location.hash === next) quarantinePage();
    else window.location.hash = next;
  });
  const results = el("div", { id: "results" }, el("p", { class: "muted" }, "Loading…"));
  page("Quarantine", el("p", { class: "muted" },
    "Messages held because they looked like spam. Release what you want delivered."), form, results);

  // The dates are the user's days: since its local midnight, until the end of the day.
  const params = new URLSearchParams();
  for (const k of ["search", "domain", "recipient"]) if (q.get(k)) params.set(k, q.get(k));
  for (const [k, extra] of [["since", 0], ["until", 1]]) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(q.get(k) || "");
    if (m) params.set(k, `@${Math.floor(new Date(+m[1], +m[2] - 1, +m[3] + extra).getTime() / 1000)}`);
    else if (q.get(k)) params.set(k, q.get(k));
  }
  const r = await api("GET", `/api/v1/quarantine${params.toString() ? `?${params}` : ""}`);
  if (!r.ok) {
    results.replaceChildren();
    return showError(form, r.data);
  }
  const msgs = r.data.messages.slice().reverse(); // newest first
  if (msgs.length === 0) return results.replaceChildren(el("p", { class: "empty" }, "Nothing is held that matches."));

  const selected = new Set();
  const count = el("span", { class: "muted", id: "selected-count" }, "");
  const buttons = Object.entries(actionWords).map(([kind, [label]]) =>
    el("button", { type: "button", class: kind === "delete" ? "small danger" : "small", "data-action": kind, disabled: true,
      onclick: async () => { if (await runAction(kind, [...selected])) quarantinePage(); } }, label));
  const refresh = () => {
    count.textContent = selected.size ? `${selected.size} selected` : "Select messages for bulk actions";
    for (const b of buttons) b.disabled = selected.size === 0;
  };
  const all = el("input", { type: "checkbox", id: "select-all", "aria-label": "Select all" });
  const boxes = [];
  all.addEventListener("change", () => {
    for (const b of boxes) { b.checked = all.checked; b.dispatchEvent(new Event("change")); }
  });
  const rows = msgs.map((m) => {
    const box = el("input", { type: "checkbox", "aria-label": `Select the message ${m.subject || m.id}` });
    box.addEventListener("change", () => { if (box.checked) selected.add(m.id); else selected.delete(m.id); refresh(); });
    boxes.push(box);
    return el("tr", { "data-id": m.id },
      el("td", { class: "check" }, box),
      el("td", { "data-label": "Received", class: "when" }, fmtTime(m.received)),
      el("td", { "data-label": "Score", class: "num" }, Number(m.score).toFixed(1)),
      el("td", { "data-label": "From", class: "clip", title: m.sender || "<>" }, m.sender || "<>"),
      el("td", { "data-label": "To", class: "clip", title: (m.recipients || []).join(", ") }, recipientsText(m.recipients)),
      el("td", { "data-label": "Subject", class: "subject" },
        el("a", { href: `#/quarantine/${encodeURIComponent(m.id)}` }, m.subject || "(no subject)")));
  });
  refresh();
  results.replaceChildren(
    el("div", { class: "bulk", role: "group", "aria-label": "Bulk actions" }, count, buttons),
    el("table", { class: "list", id: "messages" },
      el("thead", {}, el("tr", {}, el("th", { class: "check" }, all),
        ["Received", "Score", "From", "To", "Subject"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)),
    el("p", { class: "muted" }, msgs.length === 1 ? "1 message held" : `${msgs.length} messages held`));
}

async function messagePage(id) {
  const r = await api("GET", `/api/v1/quarantine/${encodeURIComponent(id)}`);
  if (!r.ok) return page("Message", el("p", { class: "error" }, r.status === 404
    ? "This message is not in your quarantine: it was released or deleted, or it is not yours to see."
    : r.data.error || "The message cannot be shown."),
    el("p", {}, el("a", { href: "#/quarantine" }, "← Back to the quarantine")));
  const m = r.data;
  const meta = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  const reasons = (m.reasons || []).map((x) => `${x.rule} (${Number(x.score).toFixed(1)})`).join(", ");
  const doIt = (kind) => async () => {
    if (await runAction(kind, [m.id], true)) window.location.hash = "#/quarantine";
  };
  page(m.subject || "(no subject)",
    el("p", {}, el("a", { href: "#/quarantine" }, "← Back to the quarantine")),
    el("div", { class: "actions", role: "group", "aria-label": "Actions" },
      el("button", { type: "button", id: "release", onclick: doIt("release") }, "Release"),
      el("button", { type: "button", id: "release-allow", class: "secondary", onclick: doIt("allow") }, "Release and allow sender"),
      el("button", { type: "button", id: "delete", class: "danger", onclick: doIt("delete") }, "Delete")),
    el("section", { class: "panel" }, el("h2", {}, "Summary"),
      el("dl", { class: "meta" },
        meta("From", m.sender || "<>"), meta("To", (m.recipients || []).join(", ")), meta("Received", fmtTime(m.received)),
        meta("Score", `${Number(m.score).toFixed(2)} (${m.action})`), meta("Why", reasons || "—"),
        meta("Client", `${m.client_ip} (HELO ${m.helo})`), meta("Size", `${m.size} bytes`))),
    el("section", { class: "panel" }, el("h2", {}, "Safe preview"),
      el("p", { class: "muted" }, m.text_from_html ? "Text taken from the HTML part; markup, images and links removed."
        : "Text only; nothing remote is loaded and no attachment is opened."),
      el("details", {}, el("summary", {}, `Header fields (${(m.headers || []).length})`),
        el("dl", { class: "headers" }, (m.headers || []).map((h) => [el("dt", {}, h.name ?? h[0]), el("dd", {}, h.value ?? h[1])]))),
      el("pre", { class: "preview", id: "preview-text" }, m.text || "(no text)"),
      m.truncated ? el("p", { class: "muted" }, "The preview was cut short.") : null),
    el("section", { class: "panel" }, el("h2", {}, `Attachments (${(m.attachments || []).length}, not opened)`),
      (m.attachments || []).length === 0 ? el("p", { class: "muted" }, "None.")
        : el("ul", { class: "plain" }, m.attachments.map((a) => el("li", {},
          el("strong", {}, a.filename || "(no name)"), ` ${a.content_type}, ${a.size} bytes`)))));
}

// ---- routing --------------------------------------------------------------

function route() {
  if (notice.dataset.keep) notice.dataset.keep = "";
  else say("");
  const h = decodeURIComponent(window.location.hash.replace(/\?.*$/, "")) || "#/";
  const parts = h.replace(/^#\/?/, "").split("/");
  const section = parts[0] || (me.role === "user" ? "quarantine" : "domains");
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (section === "domains" && parts[1] === "new") return addDomainPage();
  if (section === "domains" && parts[1]) return domainPage(parts.slice(1).join("/"));
  if (section === "quarantine" && parts[1]) return messagePage(parts[1]);
  if (section === "quarantine") return quarantinePage();
  return domainsPage();
}

async function start() {
  const r = await api("GET", "/api/v1/me");
  if (!r.ok) return;
  me = r.data;
  const where = me.domain || me.customer;
  document.getElementById("who").textContent = `${me.user} · ${me.role}${where ? ` · ${where}` : ""}`;
  if (me.role === "user") for (const li of document.querySelectorAll("[data-needs=domains]")) li.hidden = true;
  document.getElementById("logout").addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session");
    window.location.replace("/");
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
