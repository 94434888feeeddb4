// The login page: POST /api/v1/session, then on to the dashboard (/app.html).
// Text only goes into the page through textContent (no HTML from the server).
const form = document.getElementById("login");
const error = document.getElementById("error");

function enter() {
  window.location.replace("/app.html");
}

async function call(method, body) {
  const r = await fetch("/api/v1/session", {
    method,
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: body ? JSON.stringify(body) : undefined,
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
      enter();
      return;
    }
    if (r.status === 429) error.textContent = `Too many attempts; try again in ${r.retryAfter || "a few"} seconds.`;
    else error.textContent = r.data.error || `Login failed (HTTP ${r.status}).`;
  } catch {
    error.textContent = "The server could not be reached.";
  }
  button.disabled = false;
});

// Already logged in (a second tab, a reload): straight to the dashboard.
call("GET").then((r) => { if (r.ok) enter(); }).catch(() => {});
