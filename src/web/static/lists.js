// A domain's mail rules: its known recipients (add, remove, import a file),
// its allow and block lists, and the MX check; the global lists for
// operators. Each page is one API call's view (recipients_api.cpp).
import { session, el, api, say, page, fmtTime, field, clearErrors, showError, busy, copyButton } from "./ui.js";

const enc = encodeURIComponent;

// The links between a domain's pages; `current` is the one shown.
export function domainTabs(domain, current) {
  const tabs = [
    ["overview", "Overview", `#/domains/${enc(domain)}`],
    ["recipients", "Recipients", `#/lists/${enc(domain)}/recipients`],
    ["lists", "Allow and block lists", `#/lists/${enc(domain)}/lists`],
    ["mx", "MX check", `#/lists/${enc(domain)}/mx`],
  ];
  return el("nav", { class: "tabs", "aria-label": `Pages of ${domain}` },
    el("ul", {}, tabs.map(([key, label, href]) => el("li", {},
      el("a", { href, "aria-current": key === current ? "page" : null }, label)))));
}

function failed(title, r, fallback) {
  return page(title, el("p", { class: "error" }, r.data.error || fallback));
}

// ---- #/lists: where to go ------------------------------------------------

async function indexPage() {
  page("Recipients and lists", el("p", { class: "muted" }, "Loading…"));
  const r = await api("GET", "/api/v1/domains");
  if (!r.ok) return failed("Recipients and lists", r, "Cannot list domains.");
  const global = session.me.role === "operator"
    ? el("p", {}, el("a", { href: "#/lists/global" }, "Global allow and block lists →")) : null;
  if (r.data.domains.length === 0) {
    return page("Recipients and lists", global, el("div", { class: "empty" }, el("p", {}, "No domains yet.")));
  }
  const rows = r.data.domains.map((d) => el("tr", {},
    el("td", { "data-label": "Domain" }, d.domain),
    el("td", { "data-label": "Recipients" }, el("a", { href: `#/lists/${enc(d.domain)}/recipients` },
      d.recipients === "list" ? "Recipients" : `Recipients (${d.recipients})`)),
    el("td", { "data-label": "Lists" }, el("a", { href: `#/lists/${enc(d.domain)}/lists` }, "Allow and block lists")),
    el("td", { "data-label": "MX" }, el("a", { href: `#/lists/${enc(d.domain)}/mx` }, "MX check"))));
  page("Recipients and lists", global,
    el("table", { class: "list", id: "list-domains" },
      el("thead", {}, el("tr", {}, ["Domain", "Recipients", "Lists", "MX"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

// ---- recipients ------------------------------------------------------------

function recipientsTable(domain, recipients) {
  if (recipients.length === 0) return el("p", { class: "empty", id: "no-recipients" }, "No recipients yet.");
  const rows = recipients.map((r) => {
    const remove = el("button", { type: "button", class: "small ghost", "aria-label": `Remove ${r.address}` }, "Remove");
    remove.addEventListener("click", async () => {
      busy(remove, true);
      const res = await api("DELETE", `/api/v1/domains/${enc(domain)}/recipients/${enc(r.address)}`);
      busy(remove, false);
      if (!res.ok) return say(res.data.error || "Could not remove the recipient.", "bad");
      await recipientsPage(domain);
      say(`Removed ${r.address}.`);
    });
    return el("tr", {}, el("td", { "data-label": "Address", class: "address" }, r.address),
      el("td", { class: "row-action" }, remove));
  });
  return el("table", { class: "list", id: "recipients" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Address"), el("th", { scope: "col" },
      el("span", { class: "visually-hidden" }, "Action")))),
    el("tbody", {}, rows));
}

function addRecipientForm(domain) {
  const submit = el("button", { type: "submit" }, "Add");
  const form = el("form", { id: "add-recipient", class: "form inline", novalidate: true },
    field("address", "Address", { placeholder: `alice or alice@${domain}`, required: true, inputmode: "email" }),
    el("div", { class: "actions" }, submit),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const address = form.querySelector("[name=address]").value.trim();
    busy(submit, true);
    const r = await api("POST", `/api/v1/domains/${enc(domain)}/recipients`, { address });
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    const c = r.data.recipients[0];
    await recipientsPage(domain);
    say(c.added ? `Added ${c.address}.` : `${c.address} was already a recipient.`, c.added ? "ok" : "info");
  });
  return el("section", { class: "panel", "aria-labelledby": "add-recipient-h" },
    el("h2", { id: "add-recipient-h" }, "Add a recipient"), form);
}

function importForm(domain) {
  const submit = el("button", { type: "submit" }, "Import");
  const problems = el("div", { id: "import-problems", role: "alert" });
  const form = el("form", { id: "import-recipients", class: "form", novalidate: true },
    field("file", "File with one address per line", { type: "file",
      hint: "A plain text file. Blank lines and lines starting with # are skipped. If any line is wrong, nothing is imported." }),
    el("div", { class: "actions" }, submit),
    el("p", { class: "form-error", role: "alert" }), problems);
  const input = form.querySelector("[name=file]");
  input.setAttribute("accept", ".txt,.csv,.list,text/plain");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    problems.replaceChildren();
    const file = input.files[0];
    if (!file) return showError(form, { field: "file", error: "Choose a file first." });
    busy(submit, true);
    const text = await file.text();
    const r = await api("POST", `/api/v1/domains/${enc(domain)}/recipients/import`, { text, file: file.name });
    busy(submit, false);
    if (!r.ok) {
      if (!r.data.lines) return showError(form, r.data);
      input.setAttribute("aria-invalid", "true");
      return problems.replaceChildren(
        el("p", { class: "error" }, `Nothing was imported from ${file.name}: fix these lines and try again.`),
        el("ul", { class: "problems" }, r.data.lines.map((l) => el("li", {},
          el("strong", {}, `Line ${l.line}: `), l.problem))));
    }
    await recipientsPage(domain);
    const known = r.data.addresses - r.data.new;
    say(`Imported ${r.data.new} new ${r.data.new === 1 ? "recipient" : "recipients"} from ${file.name}` +
      (known ? ` (${known} already present).` : "."));
  });
  return el("section", { class: "panel", "aria-labelledby": "import-h" },
    el("h2", { id: "import-h" }, "Import from a file"), form);
}

// How a domain not in list mode picks its recipients, in words.
const modeWords = { "accept-all": "for any address", callout: "for the addresses its mail server confirms" };

async function recipientsPage(domain) {
  const r = await api("GET", `/api/v1/domains/${enc(domain)}/recipients`);
  if (!r.ok) return failed(domain, r, "No such domain.");
  const d = await api("GET", `/api/v1/domains/${enc(domain)}`);
  const mode = d.ok ? d.data.recipients : "list";
  const n = r.data.recipients.length;
  page(`Recipients of ${r.data.domain}`,
    domainTabs(r.data.domain, "recipients"),
    mode === "list"
      ? el("p", { class: "muted" }, "Mail is accepted only for the addresses below; anything else is refused.")
      : el("p", { class: "notice-inline" }, `This domain accepts mail ${modeWords[mode] || `by "${mode}"`}, so this `,
        "list is not used yet. Set Recipients to \"list\" in the domain's settings to accept only these addresses."),
    el("div", { class: "columns" }, addRecipientForm(r.data.domain), importForm(r.data.domain)),
    el("section", { "aria-labelledby": "recipients-h" },
      el("h2", { id: "recipients-h" }, `${n} ${n === 1 ? "recipient" : "recipients"}`),
      recipientsTable(r.data.domain, r.data.recipients)));
}

// ---- allow and block lists -------------------------------------------------

const kindWords = { sender: "Sender address", "sender-domain": "Sender domain", ip: "Client IP or network" };

// The API of a scope: a domain's lists, or the global ones ("").
function listsPath(domain) {
  return domain ? `/api/v1/domains/${enc(domain)}/lists` : "/api/v1/lists";
}

function entriesTable(domain, list, entries) {
  const caption = list === "block" ? "Block list" : "Allow list";
  if (entries.length === 0) {
    return el("section", { class: "panel", id: `${list}-list` }, el("h2", {}, caption),
      el("p", { class: "muted" }, list === "block" ? "Nothing is blocked." : "Nothing is allowed past the filter."));
  }
  const rows = entries.map((e) => {
    const remove = el("button", { type: "button", class: "small ghost", "aria-label": `Remove ${e.value}` }, "Remove");
    remove.addEventListener("click", async () => {
      busy(remove, true);
      const r = await api("DELETE", `${listsPath(domain)}/${list}/${e.kind}/${enc(e.value)}`);
      busy(remove, false);
      if (!r.ok) return say(r.data.error || "Could not remove the entry.", "bad");
      await listsPage(domain);
      say(`Removed ${e.value} from the ${list} list.`);
    });
    return el("tr", {}, el("td", { "data-label": "Kind" }, kindWords[e.kind] || e.kind),
      el("td", { "data-label": "Value", class: "address" }, e.value),
      el("td", { "data-label": "Added", class: "when" }, fmtTime(e.added)),
      el("td", { class: "row-action" }, remove));
  });
  return el("section", { class: "panel", id: `${list}-list` }, el("h2", {}, caption),
    el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ["Kind", "Value", "Added"].map((h) => el("th", { scope: "col" }, h)),
        el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Action")))),
      el("tbody", {}, rows)));
}

function addEntryForm(domain) {
  const submit = el("button", { type: "submit" }, "Add entry");
  const form = el("form", { id: "add-entry", class: "form", novalidate: true },
    el("div", { class: "grid3 entry" },
      field("list", "List", { choices: ["block", "allow"] }),
      field("kind", "Kind", { choices: ["sender", "sender-domain", "ip"] }),
      field("value", "Value", { placeholder: "spam@example.net", required: true })),
    el("p", { class: "hint" }, "sender: an address, or *@domain for anyone at that domain. sender-domain: a domain ",
      "and its subdomains, or *.domain for the subdomains only. ip: an address or a network such as 192.0.2.0/24."),
    el("div", { class: "actions" }, submit),
    el("p", { class: "form-error", role: "alert" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {};
    for (const i of form.querySelectorAll("input, select")) body[i.name] = i.value.trim();
    busy(submit, true);
    const r = await api("POST", listsPath(domain), body);
    busy(submit, false);
    if (!r.ok) return showError(form, r.data);
    await listsPage(domain);
    say(r.data.added_now ? `Added ${r.data.value} to the ${r.data.list} list.`
      : `${r.data.value} was already on the ${r.data.list} list.`, r.data.added_now ? "ok" : "info");
  });
  return el("section", { class: "panel", "aria-labelledby": "add-entry-h" },
    el("h2", { id: "add-entry-h" }, "Add an entry"), form);
}

async function listsPage(domain) {
  const title = domain ? `Allow and block lists of ${domain}` : "Global allow and block lists";
  const r = await api("GET", listsPath(domain));
  if (!r.ok) return failed(title, r, "No such domain.");
  page(title,
    domain ? domainTabs(domain, "lists") : null,
    el("p", { class: "muted" }, domain
      ? "Blocked senders are refused before their mail is accepted; allowed ones skip the spam filter (viruses are still refused)."
      : "These apply to every domain on this appliance."),
    addEntryForm(domain), entriesTable(domain, "block", r.data.block), entriesTable(domain, "allow", r.data.allow));
}

// ---- MX check ----------------------------------------------------------------

function problemItem(w) {
  if (w.startsWith("BYPASS: ")) {
    return el("li", { class: "bypass" }, el("strong", {}, "Mail bypasses the filter: "), w.slice("BYPASS: ".length));
  }
  return el("li", {}, w);
}

function foundTable(mx) {
  if (mx.length === 0) return el("p", { class: "muted" }, "No MX records were found.");
  return el("table", { class: "list", id: "mx-found" },
    el("thead", {}, el("tr", {}, ["Preference", "Host", "MxGuard", "Addresses"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, mx.map((m) => el("tr", {},
      el("td", { "data-label": "Preference", class: "num" }, String(m.preference)),
      el("td", { "data-label": "Host", class: "address" }, m.host),
      el("td", { "data-label": "MxGuard" }, m.ours ? "Yes" : "No"),
      el("td", { "data-label": "Addresses", class: "address" }, m.addresses.length ? m.addresses.join(", ") : "—")))));
}

async function mxPage(domain) {
  const title = `MX check of ${domain}`;
  page(title, domainTabs(domain, "mx"), el("p", { class: "muted", role: "status" }, "Looking up the MX records…"));
  const r = await api("GET", `/api/v1/domains/${enc(domain)}/mx-check`);
  if (!r.ok) return failed(title, r, "The MX check failed.");
  const c = r.data;
  const again = el("button", { type: "button", id: "check-again" }, "Check again");
  again.addEventListener("click", async () => {
    busy(again, true);
    await mxPage(domain);
    say(`Checked the MX records of ${domain} again.`, "info");
  });
  const record = (m) => {
    const text = `${m.name}. MX ${m.preference} ${m.host}.`;
    return el("li", { class: "record-line" }, el("code", {}, text), copyButton(text, `Copy the MX record ${m.host}`));
  };
  page(title, domainTabs(domain, "mx"),
    el("section", { class: "panel", id: "mx-verdict", "aria-labelledby": "mx-verdict-h" },
      el("h2", { id: "mx-verdict-h", class: c.ok ? "good" : "bad" },
        c.ok ? "All good: every MX record points at MxGuard." : `${c.warnings.length} ${c.warnings.length === 1 ? "problem" : "problems"} to fix`),
      el("p", {}, "Role: ", c.role_description, "."),
      c.warnings.length ? el("ul", { class: "problems", id: "mx-problems" }, c.warnings.map(problemItem)) : null,
      el("div", { class: "actions" }, again)),
    el("section", { class: "panel", "aria-labelledby": "mx-set-h" },
      el("h2", { id: "mx-set-h" }, "The records to set"),
      c.records.length === 0
        ? el("p", { class: "muted" }, "This appliance has no MX host names configured; ask your operator.")
        : el("div", {}, el("p", {}, "Publish these MX records for ", el("strong", {}, c.domain),
          " and remove every other MX record:"), el("ul", { class: "plain", id: "mx-records" }, c.records.map(record)))),
    el("section", { class: "panel", "aria-labelledby": "mx-found-h" },
      el("h2", { id: "mx-found-h" }, "What DNS says now"), foundTable(c.mx)));
}

// #/lists, #/lists/global, #/lists/<domain>/recipients|lists|mx
export function route(parts) {
  if (parts[1] === "global") return listsPage("");
  if (!parts[1]) return indexPage();
  const domain = parts[1];
  if (parts[2] === "lists") return listsPage(domain);
  if (parts[2] === "mx") return mxPage(domain);
  return recipientsPage(domain);
}
