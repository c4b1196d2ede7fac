// The experiments list: create / rename / delete / restore through MLflow's REST API, and
// multi-select for "Show runs" (a plain GET form to /runs, so it also works without scripts).
import { api, prefix, toast } from "./common.js";

const EXPERIMENTS_API = "/ajax-api/2.0/mlflow/experiments";

/** Wire a <dialog> holding a form: submit runs `action(formData)`; its error shows inline. */
function dialogForm(dialog, action) {
  const form = dialog.querySelector("form");
  const error = form.querySelector(".error-message");
  const submit = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await action(new FormData(form));
    } catch (failure) {
      error.textContent = failure.message || String(failure);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  for (const cancel of form.querySelectorAll(".dialog-cancel")) {
    cancel.addEventListener("click", () => dialog.close());
  }
  return {
    open(values = {}) {
      form.reset();
      error.hidden = true;
      for (const [name, value] of Object.entries(values)) {
        const input = form.elements.namedItem(name);
        if (input) input.value = value;
      }
      dialog.showModal();
      const first = form.querySelector("input:not([type=hidden])");
      if (first) {
        first.focus();
        first.select();
      }
    },
    close() { dialog.close(); },
  };
}

const create = dialogForm(document.getElementById("create-dialog"), async (data) => {
  const body = { name: String(data.get("name")).trim() };
  const location = String(data.get("artifact_location") || "").trim();
  if (location) body.artifact_location = location;
  const created = await api(`${EXPERIMENTS_API}/create`, { method: "POST", body });
  window.location.href = `${prefix}/experiments/${encodeURIComponent(created.experiment_id)}`;
});
document.getElementById("create-experiment").addEventListener("click", () => create.open());

const rename = dialogForm(document.getElementById("rename-dialog"), async (data) => {
  await api(`${EXPERIMENTS_API}/update`, {
    method: "POST",
    body: { experiment_id: data.get("experiment_id"), new_name: String(data.get("new_name")).trim() },
  });
  window.location.reload();
});

const remove = dialogForm(document.getElementById("delete-dialog"), async (data) => {
  await api(`${EXPERIMENTS_API}/delete`, {
    method: "POST",
    body: { experiment_id: data.get("experiment_id") },
  });
  window.location.reload();
});

const table = document.getElementById("experiments-table");
if (table) {
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const { experimentId, name } = button.dataset;
    if (button.classList.contains("rename-experiment")) {
      rename.open({ experiment_id: experimentId, new_name: name });
    } else if (button.classList.contains("delete-experiment")) {
      document.querySelector("#delete-dialog .delete-name").textContent = name;
      remove.open({ experiment_id: experimentId });
    } else if (button.classList.contains("restore-experiment")) {
      button.disabled = true;
      try {
        await api(`${EXPERIMENTS_API}/restore`, { method: "POST", body: { experiment_id: experimentId } });
        window.location.reload();
      } catch (failure) {
        button.disabled = false;
        toast(failure.message || String(failure), "error");
      }
    }
  });

  // Multi-select → "Show runs".
  const boxes = [...table.querySelectorAll('tbody input[name="experiment_ids"]')];
  const all = document.getElementById("select-all-experiments");
  const show = document.getElementById("show-runs");
  const status = document.getElementById("experiments-selected");
  const update = () => {
    const count = boxes.filter((box) => box.checked).length;
    show.disabled = count === 0;
    show.textContent = count > 1 ? `Show runs of ${count} experiments` : "Show runs";
    status.textContent = count ? `${count} selected` : "Select experiments to see their runs together.";
    all.checked = count > 0 && count === boxes.length;
    all.indeterminate = count > 0 && count < boxes.length;
  };
  for (const box of boxes) box.addEventListener("change", update);
  all.addEventListener("change", () => {
    for (const box of boxes) box.checked = all.checked;
    update();
  });
  update();  // the browser may restore checked boxes on Back
}
