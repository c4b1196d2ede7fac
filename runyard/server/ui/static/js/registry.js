// The model registry pages: create a model, edit descriptions, tags and aliases, move stages.
// Every write goes through MLflow's REST API; afterwards the page is re-read and its
// [data-section] parts are swapped in, so what is shown is what the server now holds.
import { api, fragment, prefix, toast } from "./common.js";

const API = "/ajax-api/2.0/mlflow";
const root = document.getElementById("registry");
const modelName = root ? root.dataset.name : undefined;
const modelVersion = root ? root.dataset.version : undefined;

/** The UI path of a registered model (names may hold "/": each segment is encoded). */
function modelPath(name) {
  return "/models/" + name.split("/").map(encodeURIComponent).join("/");
}

/** Re-read this page and replace each [data-section] with its fresh copy. */
async function refresh() {
  const path = window.location.pathname.slice(prefix.length) + window.location.search;
  const html = await fragment(path);
  const fresh = new DOMParser().parseFromString(html, "text/html");
  const focusedId = document.activeElement ? document.activeElement.id : "";
  for (const section of document.querySelectorAll("[data-section]")) {
    const replacement = fresh.getElementById(section.id);
    if (replacement) section.replaceWith(document.importNode(replacement, true));
  }
  const again = focusedId && document.getElementById(focusedId);
  if (again) again.focus();
}

/** Run a write; on success refresh the sections and toast, on failure toast MLflow's message.
 * Resolves to whether the write succeeded. */
async function write(action, success) {
  try {
    await action();
  } catch (error) {
    toast(error.message || String(error), "error");
    return false;
  }
  // Dialogs live inside the sections about to be replaced: close them first.
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  try {
    await refresh();
  } catch (error) {
    window.location.reload();
    return true;
  }
  toast(success);
  return true;
}

const isVersion = () => modelVersion !== undefined;
const target = () => (isVersion() ? { name: modelName, version: modelVersion } : { name: modelName });
const kind = () => (isVersion() ? "model-versions" : "registered-models");

// -- buttons -----------------------------------------------------------------------------------
const actions = {
  "open-dialog": (button) => {
    const dialog = document.getElementById(button.dataset.dialog);
    if (!dialog) return;
    dialog.showModal();
    const first = dialog.querySelector("input:not([type=hidden]), textarea, select");
    if (first) first.focus();
  },
  "close-dialog": (button) => button.closest("dialog").close(),
  "edit-tag": (button) => {
    const form = document.querySelector('form[data-form="tag"]');
    form.elements.key.value = button.dataset.key;
    form.elements.value.value = button.dataset.value;
    form.elements.value.focus();
    form.elements.value.select();
  },
  "delete-tag": (button) => {
    const key = button.dataset.key;
    return write(
      () => api(`${API}/${kind()}/delete-tag`, { method: "DELETE", body: { ...target(), key } }),
      `Tag "${key}" deleted.`,
    );
  },
  "remove-alias": (button) => {
    const alias = button.dataset.alias;
    return write(
      () => api(`${API}/registered-models/alias`, { method: "DELETE", body: { name: modelName, alias } }),
      `Alias @${alias} removed.`,
    );
  },
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || button.disabled || !(button.dataset.action in actions)) return;
  event.preventDefault();
  actions[button.dataset.action](button);
});

// -- forms -------------------------------------------------------------------------------------
const forms = {
  "create-model": async (form) => {
    const name = form.elements.name.value.trim();
    const description = form.elements.description.value;
    try {
      await api(`${API}/registered-models/create`, {
        method: "POST",
        body: description ? { name, description } : { name },
      });
    } catch (error) {
      toast(error.message || String(error), "error");
      return false;
    }
    window.location.assign(prefix + modelPath(name));
    return true;
  },
  description: (form) => {
    const description = form.elements.description.value;
    const path = isVersion() ? "model-versions/update" : "registered-models/update";
    return write(
      () => api(`${API}/${path}`, { method: "PATCH", body: { ...target(), description } }),
      "Description saved.",
    );
  },
  tag: (form) => {
    const key = form.elements.key.value.trim();
    const value = form.elements.value.value;
    return write(
      () => api(`${API}/${kind()}/set-tag`, { method: "POST", body: { ...target(), key, value } }),
      `Tag "${key}" set.`,
    );
  },
  alias: (form) => {
    const alias = form.elements.alias.value.trim();
    const version = form.elements.version.value;
    return write(
      () => api(`${API}/registered-models/alias`, {
        method: "POST",
        body: { name: modelName, alias, version },
      }),
      `Alias @${alias} now points at version ${version}.`,
    );
  },
  transition: (form) => {
    const stage = form.elements.stage.value;
    const archive = form.elements.archive_existing_versions.checked;
    return write(
      () => api(`${API}/model-versions/transition-stage`, {
        method: "POST",
        body: { ...target(), stage, archive_existing_versions: archive },
      }),
      `Version ${modelVersion} moved to ${stage}.`,
    );
  },
};

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-form]");
  if (!form || !(form.dataset.form in forms)) return;
  event.preventDefault();
  const dialog = form.closest("dialog");
  const submit = form.querySelector('[type="submit"]');
  if (submit) submit.disabled = true;
  let done = false;
  try {
    done = await forms[form.dataset.form](form);
  } finally {
    if (submit && submit.isConnected) submit.disabled = false;
  }
  // A dialog stays open on failure so the input can be corrected.
  if (done && dialog && dialog.open) dialog.close();
});
