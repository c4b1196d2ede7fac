// The run page (/runs/<id>): copy the run id, edit the description, filter the parameter and
// metric tables, add / edit / delete tags. Writes go through MLflow's REST API; the changed
// section is then re-rendered by the server (the page is fetched again and the section swapped),
// so what is shown is always what the server stores, escaped and rendered the same way.
import { api, fragment, toast } from "./common.js";

const root = document.getElementById("run");
const runId = root ? root.dataset.runId : "";
const NOTE_TAG = "mlflow.note.content";

/** Set (or replace) a tag of this run. */
function setTag(key, value) {
  return api("/ajax-api/2.0/mlflow/runs/set-tag", {
    method: "POST",
    body: { run_id: runId, key, value },
  });
}

function deleteTag(key) {
  return api("/ajax-api/2.0/mlflow/runs/delete-tag", { method: "POST", body: { run_id: runId, key } });
}

/** The run page as the server renders it now, parsed. */
async function freshPage() {
  const html = await fragment(`/runs/${encodeURIComponent(runId)}`);
  return new DOMParser().parseFromString(html, "text/html");
}

/** Replace the elements with these ids by their fresh versions. */
function swap(doc, ids) {
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const current = document.getElementById(id);
    if (fresh && current) current.replaceWith(document.adoptNode(fresh));
  }
}

// -- run id -------------------------------------------------------------------------------------
function copyFallback(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  return copied;
}

document.getElementById("copy-run-id")?.addEventListener("click", async () => {
  let copied = false;
  try {
    await navigator.clipboard.writeText(runId);
    copied = true;
  } catch {
    copied = copyFallback(runId);
  }
  toast(copied ? "Run ID copied" : "Could not copy: select the ID and copy it", copied ? "info" : "error");
});

// -- description --------------------------------------------------------------------------------
function descriptionParts() {
  return {
    body: document.getElementById("description-body"),
    form: document.getElementById("description-form"),
    text: document.getElementById("description-text"),
    edit: document.getElementById("edit-description"),
  };
}

function showDescriptionEditor(editing) {
  const { body, form, text, edit } = descriptionParts();
  form.hidden = !editing;
  body.hidden = editing;
  edit.hidden = editing;
  if (editing) text.focus();
  else edit.focus();
}

document.getElementById("edit-description")?.addEventListener("click", () => showDescriptionEditor(true));
document.getElementById("cancel-description")?.addEventListener("click", () => {
  const { text } = descriptionParts();
  text.value = text.defaultValue;
  showDescriptionEditor(false);
});
document.getElementById("description-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { text, form } = descriptionParts();
  const save = form.querySelector('button[type="submit"]');
  save.disabled = true;
  try {
    await setTag(NOTE_TAG, text.value);
    const doc = await freshPage();
    swap(doc, ["description-body", "tags-section"]);
    text.defaultValue = text.value;
    applySystemTags();
    showDescriptionEditor(false);
    toast("Description saved");
  } catch (error) {
    toast(error.message || String(error), "error");
  } finally {
    save.disabled = false;
  }
});

// -- table filters (parameters, metrics) --------------------------------------------------------
for (const input of document.querySelectorAll("input.table-filter")) {
  const id = input.dataset.filter;
  const table = document.getElementById(id);
  const count = document.querySelector(`[data-count-for="${id}"]`);
  const empty = document.querySelector(`[data-empty-for="${id}"]`);
  const initial = count ? count.textContent : "";
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    const rows = [...table.tBodies[0].rows];
    let shown = 0;
    for (const row of rows) {
      const match = !needle || row.textContent.toLowerCase().includes(needle);
      row.hidden = !match;
      if (match) shown += 1;
    }
    if (count) count.textContent = needle ? `${shown} of ${initial}` : initial;
    if (empty) empty.hidden = shown > 0;
  });
}

// -- tags ---------------------------------------------------------------------------------------
function applySystemTags() {
  const toggle = document.getElementById("show-system-tags");
  const table = document.getElementById("tags-table");
  if (!toggle || !table) return;
  let shown = 0;
  for (const row of table.tBodies[0].rows) {
    if (row.classList.contains("system-tag")) row.hidden = !toggle.checked;
    if (!row.hidden) shown += 1;
  }
  const none = document.getElementById("no-tags");
  if (none) none.hidden = shown > 0;
}

async function refreshTags() {
  const doc = await freshPage();
  swap(doc, ["tags-section", "description-body"]);
  const count = doc.querySelector("#tab-tags .count");
  const current = document.querySelector("#tab-tags .count");
  if (count && current) current.textContent = count.textContent;
  const text = doc.getElementById("description-text");
  const mine = document.getElementById("description-text");
  if (text && mine && document.getElementById("description-form").hidden) {
    mine.defaultValue = text.defaultValue;
    mine.value = text.defaultValue;
  }
  applySystemTags();
}

async function tagAction(action, message) {
  try {
    await action();
    await refreshTags();
    toast(message);
    return true;
  } catch (error) {
    toast(error.message || String(error), "error");
    return false;
  }
}

document.getElementById("show-system-tags")?.addEventListener("change", applySystemTags);

document.getElementById("add-tag-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const key = form.elements.key.value.trim();
  const value = form.elements.value.value;
  if (!key) return;
  const done = await tagAction(() => setTag(key, value), `Tag '${key}' saved`);
  if (done) {
    form.reset();
    form.elements.key.focus();
  }
});

function startEdit(row) {
  const key = row.dataset.key;
  const cell = row.querySelector(".tag-value");
  if (!cell || cell.querySelector("textarea")) return;
  const original = cell.textContent;
  const editor = document.createElement("textarea");
  editor.value = original;
  editor.rows = Math.min(8, Math.max(2, original.split("\n").length));
  editor.setAttribute("aria-label", `Value of tag ${key}`);
  editor.className = "tag-editor";
  const save = document.createElement("button");
  save.type = "button";
  save.className = "primary small";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "small";
  cancel.textContent = "Cancel";
  const bar = document.createElement("div");
  bar.className = "toolbar";
  bar.append(save, cancel);
  cell.replaceChildren(editor, bar);
  editor.focus();
  const stop = () => {
    cell.textContent = original;
    row.querySelector(".edit-tag")?.focus();
  };
  const commit = async () => {
    save.disabled = true;
    const done = await tagAction(() => setTag(key, editor.value), `Tag '${key}' saved`);
    if (!done) save.disabled = false;
  };
  cancel.addEventListener("click", stop);
  save.addEventListener("click", commit);
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stop();
    else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) commit();
  });
}

const dialog = document.getElementById("delete-tag-dialog");
function confirmDelete(row) {
  const key = row.dataset.key;
  document.getElementById("delete-tag-key").textContent = key;
  dialog.dataset.key = key;
  dialog.returnValue = "";
  dialog.showModal();
}
dialog?.addEventListener("close", async () => {
  if (dialog.returnValue !== "delete") return;
  const key = dialog.dataset.key;
  await tagAction(() => deleteTag(key), `Tag '${key}' deleted`);
});

document.getElementById("panel-tags")?.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const row = button && button.closest("tr[data-key]");
  if (!row) return;
  if (button.classList.contains("edit-tag")) startEdit(row);
  else if (button.classList.contains("delete-tag")) confirmDelete(row);
});
