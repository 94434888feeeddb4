// The login page: POST /api/v1/session, then show who is logged in.
// Text only goes into the page through textContent (no HTML from the server).
const form = document.getElementById("login");
const error = document.getElementById("error");
const whoami = document.getElementById("whoami");
let csrfToken = "";

function show(session) {
  csrfToken = session ? session.csrf_token : "";
  form.hidden = Boolean(session);
  whoami.hidden = !session;
  if (session) {
    document.getElementById("who-user").textContent = session.user;
    document.getElementById("who-role").textContent = session.role;
  }
}

async function call(method, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const r = await fetch("/api/v1/session", {
    method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json().catch(() => ({}));
  return { ok: r.ok, status: r.status, data, retryAfter: r.headers.get("Retry-After") };
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.textContent = "";
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const r = await call("POST", { user: form.user.value, password: form.password.value });
    if (r.ok) {
      form.password.value = "";
      show(r.data);
    } else if (r.status === 429) {
      error.textContent = `Too many attempts; try again in ${r.retryAfter || "a few"} seconds.`;
    } else {
      error.textContent = r.data.error || `Login failed (HTTP ${r.status}).`;
    }
  } catch {
    error.textContent = "The server could not be reached.";
  } finally {
    button.disabled = false;
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  await call("DELETE").catch(() => {});
  show(null);
});

call("GET").then((r) => show(r.ok ? r.data : null)).catch(() => show(null));
