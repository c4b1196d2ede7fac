// Shared helpers of the UI's ES modules: the REST API, messages, formatting and URL state.

/** The --static-prefix the server is mounted under ("" when none). */
export const prefix = document.body.dataset.prefix || "";

/** The session's CSRF token (the server renders it in a <meta> for signed-in browser sessions;
 * "" without auth). Every request that changes something sends it as X-CSRF-Token. */
export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

/** A request to the server's REST API; resolves to the decoded JSON, rejects with an Error whose
 * message is MLflow's error message. */
export async function api(path, { method = "GET", body = undefined, params = undefined } = {}) {
  let url = prefix + path;
  if (params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === "") continue;
      for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
    }
    const text = query.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: {} };
  const changes = !["GET", "HEAD"].includes(method.toUpperCase());
  if (csrfToken && changes) init.headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (response.status === 401 && csrfToken) {
    // The browser session ended (expired, or logged out in another tab): sign in again.
    const here = window.location.pathname.slice(prefix.length) + window.location.search;
    window.location.assign(`${prefix}/login?next=${encodeURIComponent(here)}`);
  }
  if (!response.ok) {
    const message = (data && data.message) || (typeof data === "string" && data) || response.statusText;
    throw new Error(message);
  }
  return data;
}

/** Fetch an HTML fragment from a UI route (same error handling as api()). */
export async function fragment(pathAndQuery) {
  const response = await fetch(prefix + pathAndQuery, { headers: { "X-Fragment": "1" } });
  const text = await response.text();
  if (!response.ok) {
    const match = text.match(/<p class="error-message">([\s\S]*?)<\/p>/);
    throw new Error(match ? decodeEntities(match[1]) : response.statusText);
  }
  return text;
}

function decodeEntities(html) {
  const area = document.createElement("textarea");
  area.innerHTML = html;
  return area.value;
}

let toastTimer = null;
/** Show a short message in the corner (errors stay longer). */
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.className = "toast" + (kind === "error" ? " error" : "");
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 3000);
}

/** Run an async action, reporting its failure as an error toast; resolves to its result or null. */
export async function attempt(action, success) {
  try {
    const result = await action();
    if (success) toast(success);
    return result;
  } catch (error) {
    toast(error.message || String(error), "error");
    return null;
  }
}

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** A metric value as the server formats it: 6 significant digits, NaN/inf spelled out. */
export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return Number(value.toPrecision(6)).toString();
}

/** Epoch milliseconds as "YYYY-MM-DD HH:MM:SS" (UTC, as the server renders times). */
export function formatTime(ms) {
  if (!ms) return "";
  return new Date(Number(ms)).toISOString().replace("T", " ").slice(0, 19);
}

/** Replace the page's query string (no reload), dropping empty values: views stay shareable. */
export function setQuery(values) {
  const query = new URLSearchParams(window.location.search);
  for (const [key, value] of Object.entries(values)) {
    query.delete(key);
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) query.append(key, String(item));
  }
  const text = query.toString();
  history.replaceState(null, "", window.location.pathname + (text ? "?" + text : "") + window.location.hash);
}

// Tabs: <div class="tabs" role="tablist"> with buttons[role=tab][aria-controls]; arrow keys move.
for (const list of document.querySelectorAll('[role="tablist"]')) {
  const tabs = [...list.querySelectorAll('[role="tab"]')];
  const select = (tab, focus) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      const panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    }
    if (focus) tab.focus();
    if (tab.dataset.hash) history.replaceState(null, "", "#" + tab.dataset.hash);
    tab.dispatchEvent(new CustomEvent("tab-selected", { bubbles: true }));
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      if (event.key === "ArrowRight") select(tabs[(index + 1) % tabs.length], true);
      else if (event.key === "ArrowLeft") select(tabs[(index - 1 + tabs.length) % tabs.length], true);
    });
  }
  const wanted = tabs.find((tab) => tab.dataset.hash && "#" + tab.dataset.hash === window.location.hash);
  if (wanted) select(wanted, false);
}
