// The run page's artifact browser: a tree whose folders load lazily from
// /ajax-api/2.0/mlflow/artifacts/list, and a preview pane filled with the server-rendered
// fragment /runs/<id>/artifact-preview?path=. The selected path lives in the URL (?path=...),
// so a reload or a shared link shows the same file.
import { api, fragment, prefix } from "./common.js";

const browser = document.getElementById("artifact-browser");
if (browser) init(browser);

function init(browser) {
  const runId = browser.dataset.runId;
  const tree = document.getElementById("artifact-tree");
  const status = document.getElementById("artifact-tree-status");
  const pane = document.getElementById("artifact-preview");
  const panel = document.getElementById("panel-artifacts");
  const tab = document.getElementById("tab-artifacts");
  const wanted = new URLSearchParams(window.location.search).get("path");
  let started = false;
  let previewToken = 0;

  const downloadUrl = (path) =>
    `${prefix}/get-artifact?${new URLSearchParams({ run_id: runId, path }).toString()}`;

  async function list(path) {
    const data = await api("/ajax-api/2.0/mlflow/artifacts/list", {
      params: { run_id: runId, path },
    });
    return data.files || [];
  }

  function formatSize(size) {
    if (size === undefined || size === null) return "";
    const units = ["B", "KB", "MB", "GB"];
    let value = Number(size);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function node(file) {
    const item = document.createElement("li");
    const name = file.path.split("/").pop();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "node " + (file.is_dir ? "dir" : "file");
    button.dataset.path = file.path;
    const label = document.createElement("span");
    label.className = "node-name";
    label.textContent = name;
    button.append(label);
    item.append(button);
    if (file.is_dir) {
      item.className = "dir";
      button.setAttribute("aria-expanded", "false");
      const children = document.createElement("ul");
      children.hidden = true;
      item.append(children);
    } else {
      item.className = "file";
      const size = document.createElement("span");
      size.className = "size muted";
      size.textContent = formatSize(file.file_size);
      const link = document.createElement("a");
      link.className = "download-link";
      link.href = downloadUrl(file.path);
      link.setAttribute("download", name);
      link.setAttribute("aria-label", `Download ${name}`);
      link.title = "Download";
      link.textContent = "↓";
      button.append(size);
      item.append(link);
    }
    return item;
  }

  function fill(list, files, emptyText) {
    list.replaceChildren(...files.map(node));
    if (!files.length && emptyText) {
      const item = document.createElement("li");
      item.className = "muted empty";
      item.textContent = emptyText;
      list.append(item);
    }
  }

  async function expand(item, open) {
    const button = item.querySelector(":scope > button");
    const children = item.querySelector(":scope > ul");
    if (!open) {
      button.setAttribute("aria-expanded", "false");
      children.hidden = true;
      return;
    }
    if (!item.dataset.loaded) {
      button.setAttribute("aria-busy", "true");
      try {
        fill(children, await list(button.dataset.path), "Empty folder");
        item.dataset.loaded = "1";
      } catch (error) {
        const failed = document.createElement("li");
        failed.className = "error-message";
        failed.textContent = error.message || String(error);
        children.replaceChildren(failed);
      } finally {
        button.removeAttribute("aria-busy");
      }
    }
    button.setAttribute("aria-expanded", "true");
    children.hidden = false;
  }

  function setPathQuery(path) {
    const query = new URLSearchParams(window.location.search);
    if (path) query.set("path", path);
    else query.delete("path");
    const text = query.toString();
    history.replaceState(null, "", window.location.pathname + (text ? "?" + text : "") + "#artifacts");
  }

  async function preview(path) {
    const token = ++previewToken;
    pane.setAttribute("aria-busy", "true");
    const loading = document.createElement("p");
    loading.className = "muted";
    loading.textContent = "Loading preview…";
    pane.replaceChildren(loading);
    try {
      const query = new URLSearchParams({ path }).toString();
      const html = await fragment(`/runs/${encodeURIComponent(runId)}/artifact-preview?${query}`);
      if (token === previewToken) pane.innerHTML = html;
    } catch (error) {
      if (token !== previewToken) return;
      const message = document.createElement("p");
      message.className = "error-message";
      message.textContent = error.message || String(error);
      pane.replaceChildren(message);
    } finally {
      if (token === previewToken) pane.removeAttribute("aria-busy");
    }
  }

  function select(button) {
    for (const other of tree.querySelectorAll('button[aria-current="true"]')) {
      other.removeAttribute("aria-current");
    }
    button.setAttribute("aria-current", "true");
    setPathQuery(button.dataset.path);
    return preview(button.dataset.path);
  }

  const findButton = (path) => tree.querySelector(`button.node[data-path="${CSS.escape(path)}"]`);

  async function restore(path) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i += 1) {
      const dir = findButton(parts.slice(0, i).join("/"));
      if (!dir || !dir.classList.contains("dir")) break;
      await expand(dir.parentElement, true);
    }
    const target = findButton(path);
    if (!target) {
      await preview(path);
      return;
    }
    if (target.classList.contains("dir")) await expand(target.parentElement, true);
    await select(target);
    target.scrollIntoView({ block: "nearest" });
  }

  async function start() {
    if (started) return;
    started = true;
    try {
      const files = await list("");
      fill(tree, files, "");
      status.hidden = files.length > 0;
      status.textContent = files.length ? "" : "No artifacts recorded for this run.";
      if (!files.length) {
        const hint = pane.querySelector(".preview-hint");
        if (hint) hint.textContent = "This run has no artifacts (runyard.log_artifact).";
      }
      if (wanted) await restore(wanted);
    } catch (error) {
      status.hidden = false;
      status.textContent = error.message || String(error);
      status.classList.add("error-message");
    }
  }

  tree.addEventListener("click", (event) => {
    const button = event.target.closest("button.node");
    if (!button) return;
    if (button.classList.contains("dir")) {
      const open = button.getAttribute("aria-expanded") !== "true";
      expand(button.parentElement, open);
    }
    select(button);
  });

  // Arrow keys: up/down move between visible entries, right/left open/close a folder.
  tree.addEventListener("keydown", (event) => {
    const button = event.target.closest("button.node");
    if (!button) return;
    const visible = [...tree.querySelectorAll("button.node")].filter((b) => b.offsetParent !== null);
    const index = visible.indexOf(button);
    if (event.key === "ArrowDown" && index < visible.length - 1) visible[index + 1].focus();
    else if (event.key === "ArrowUp" && index > 0) visible[index - 1].focus();
    else if (event.key === "ArrowRight" && button.classList.contains("dir")) expand(button.parentElement, true);
    else if (event.key === "ArrowLeft" && button.classList.contains("dir")) expand(button.parentElement, false);
    else return;
    event.preventDefault();
  });

  tab.addEventListener("tab-selected", start);
  // A shared link to a file (?path=) opens the Artifacts tab unless it names another tab.
  if (wanted && panel.hidden && !window.location.hash) tab.click();
  if (!panel.hidden) start();
}
