// The account page (/account): create and revoke personal access tokens, change the password.
// Writes go through the REST API (runyard's tokens endpoints, MLflow's users/update-password);
// afterwards the tokens section is re-rendered by the server and swapped in.
import { api, fragment, toast } from "./common.js";

const TOKENS_API = "/ajax-api/2.0/runyard/tokens";
const root = document.getElementById("account");
const username = root ? root.dataset.username : "";

/** Re-read the page and replace each [data-section] with its fresh copy. */
async function refresh() {
  const html = await fragment("/account");
  const fresh = new DOMParser().parseFromString(html, "text/html");
  for (const section of document.querySelectorAll("[data-section]")) {
    const replacement = fresh.getElementById(section.id);
    if (replacement) section.replaceWith(document.importNode(replacement, true));
  }
}

function openDialog(id) {
  const dialog = document.getElementById(id);
  if (!dialog) return;
  dialog.showModal();
  const first = dialog.querySelector("input:not([type=hidden]):not([readonly]), textarea, select");
  if (first) first.focus();
}

// -- buttons (delegated: the tokens section is replaced after each change) ---------------------
const actions = {
  "open-dialog": (button) => openDialog(button.dataset.dialog),
  "close-dialog": (button) => button.closest("dialog").close(),
  "revoke-token": (button) => {
    const form = document.querySelector('form[data-form="revoke-token"]');
    form.elements.token_id.value = button.dataset.tokenId;
    form.querySelector('[data-slot="token-name"]').textContent = button.dataset.tokenName || "this token";
    openDialog("revoke-token-dialog");
  },
};

root?.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || !root.contains(button)) return;
  const action = actions[button.dataset.action];
  if (action) action(button);
});

// -- forms -------------------------------------------------------------------------------------
async function createToken(form) {
  const name = form.elements.name.value.trim();
  const days = Number(form.elements.expires_in_days.value);
  const created = await api(`${TOKENS_API}/create`, {
    method: "POST",
    body: { name, expires_in_days: days },
  });
  form.closest("dialog").close();
  form.reset();
  const secret = document.getElementById("token-secret");
  secret.value = created.token;
  openDialog("token-created-dialog");
  secret.select();
  await refresh();
}

async function revokeToken(form) {
  await api(`${TOKENS_API}/revoke`, { method: "POST", body: { token_id: Number(form.elements.token_id.value) } });
  form.closest("dialog").close();
  await refresh();
  toast("Token revoked");
}

async function changePassword(form) {
  const error = document.getElementById("password-error");
  const password = form.elements.password.value;
  if (password !== form.elements.confirm.value) {
    error.textContent = "The new passwords do not match.";
    error.hidden = false;
    form.elements.confirm.focus();
    return;
  }
  error.hidden = true;
  try {
    await api("/ajax-api/2.0/mlflow/users/update-password", {
      method: "PATCH",
      body: { username, password, current_password: form.elements.current_password.value },
    });
  } catch (failure) {
    error.textContent = failure.message || String(failure);
    error.hidden = false;
    return;
  }
  form.reset();
  toast("Password changed");
}

const handlers = { "create-token": createToken, "revoke-token": revokeToken, password: changePassword };

root?.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-form]");
  const handler = form && handlers[form.dataset.form];
  if (!handler) return;
  event.preventDefault();
  const submit = form.querySelector('button[type="submit"]');
  if (submit) submit.disabled = true;
  try {
    await handler(form);
  } catch (failure) {
    toast(failure.message || String(failure), "error");
  } finally {
    if (submit) submit.disabled = false;
  }
});

document.getElementById("copy-token")?.addEventListener("click", async () => {
  const secret = document.getElementById("token-secret");
  try {
    await navigator.clipboard.writeText(secret.value);
    toast("Token copied");
  } catch {
    secret.select();
    toast(document.execCommand("copy") ? "Token copied" : "Select the token and copy it", "info");
  }
});
