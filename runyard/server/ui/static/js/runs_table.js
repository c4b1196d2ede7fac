// The runs table: navigation without full reloads, selection, nested runs, the column picker
// and filter autocomplete.
//
// Every view is a URL (filter, order_by, cols, max_results, page_token, view, sel). Sort links,
// pager links, the filter form and the column picker all end in navigate(url): the same URL is
// fetched with "X-Fragment: 1" (the server renders only #runs-results), swapped in, and pushed
// to the history, so views stay shareable and Back works. Without scripts the links and the
// form work as plain navigation.
import { api, toast } from "./common.js";

const toolbar = document.getElementById("runs-toolbar");
const filterInput = document.getElementById("runs-filter");
const viewSelect = document.getElementById("runs-view");
const sizeSelect = document.getElementById("runs-page-size");
const compareLink = document.getElementById("compare-link");
const chartLink = document.getElementById("chart-link");
const selectionCount = document.getElementById("selection-count");
const DEFAULT_PAGE_SIZE = "100";
const compareBase = compareLink.getAttribute("href")?.split("?")[0]
  || `${document.body.dataset.prefix || ""}/compare`;
const chartBase = chartLink.getAttribute("href")?.split("?")[0]
  || `${document.body.dataset.prefix || ""}/metrics`;

const state = {
  selected: new Set(selectionFromUrl()),
  collapsed: new Set(),
  lastClicked: null,
  ticket: 0,
};

function selectionFromUrl() {
  return (new URLSearchParams(window.location.search).get("sel") || "").split(",").filter(Boolean);
}

function results() {
  return document.getElementById("runs-results");
}

function experimentIds() {
  return JSON.parse(results().dataset.experimentIds || "[]");
}

function currentColumns() {
  return JSON.parse(results().dataset.cols || "[]");
}

/** The current URL (path + query) with `changes` applied: null removes a parameter; an empty
 * value removes it too, except `cols` where empty means "no extra columns". */
function withChanges(changes) {
  const url = new URL(window.location.href);
  for (const [key, value] of Object.entries(changes)) {
    url.searchParams.delete(key);
    if (value === null || value === undefined || (value === "" && key !== "cols")) continue;
    url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

// -- Loading views --------------------------------------------------------------------------

function errorMessageOf(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const message = doc.querySelector(".error-message");
  return message ? message.textContent.trim() : "";
}

/** Fetch the results for `target`, swap them in and record the URL (push or replace). */
async function navigate(target, { push = true, focus = null } = {}) {
  const url = new URL(target, window.location.href);
  const sel = [...state.selected].join(",");
  if (sel) url.searchParams.set("sel", sel);
  else url.searchParams.delete("sel");
  const address = url.pathname + url.search;
  // The selection is applied here after the swap; the request need not carry it (it can be
  // long: a 1000-run selection is 33 KB).
  const request = new URL(url);
  request.searchParams.delete("sel");
  const ticket = ++state.ticket;
  const box = results();
  box.classList.add("runs-results-loading");
  box.setAttribute("aria-busy", "true");
  let response;
  let html;
  try {
    response = await fetch(request.pathname + request.search, { headers: { "X-Fragment": "1" } });
    html = await response.text();
  } catch (failure) {
    if (ticket === state.ticket) {
      box.classList.remove("runs-results-loading");
      box.removeAttribute("aria-busy");
      toast(`Could not load runs: ${failure.message || failure}`, "error");
    }
    return;
  }
  if (ticket !== state.ticket) return; // a later navigation won
  const template = document.createElement("template");
  template.innerHTML = html;
  const fresh = template.content.getElementById("runs-results");
  if (!fresh) {
    box.classList.remove("runs-results-loading");
    box.removeAttribute("aria-busy");
    toast(errorMessageOf(html) || response.statusText || "Could not load runs", "error");
    return;
  }
  box.replaceWith(fresh);
  if (push) history.pushState({ runsTable: true }, "", address);
  else history.replaceState({ runsTable: true }, "", address);
  syncToolbar(url.searchParams);
  refreshResults();
  // Announce the outcome (the swapped-in region itself is not announced).
  const outcome = fresh.querySelector("#filter-error, #count-line, .empty-title");
  document.getElementById("runs-status").textContent = outcome ? outcome.textContent.trim() : "";
  if (focus) focus();
}

function syncToolbar(params) {
  if (document.activeElement !== filterInput) filterInput.value = params.get("filter") || "";
  viewSelect.value = params.get("view") || "active";
  sizeSelect.value = params.get("max_results") || DEFAULT_PAGE_SIZE;
}

window.addEventListener("popstate", () => {
  state.selected = new Set(selectionFromUrl());
  const params = new URLSearchParams(window.location.search);
  filterInput.value = params.get("filter") || "";
  navigate(window.location.href, { push: false });
});

toolbar.addEventListener("submit", (event) => {
  event.preventDefault();
  closeSuggestions();
  navigate(withChanges({
    filter: filterInput.value.trim(),
    view: viewSelect.value === "active" ? null : viewSelect.value,
    max_results: sizeSelect.value === DEFAULT_PAGE_SIZE ? null : sizeSelect.value,
    page_token: null,
  }));
});
for (const select of [viewSelect, sizeSelect]) {
  select.addEventListener("change", () => toolbar.requestSubmit());
}

// Sort headers and pager links: plain links, loaded in place (a modified click opens a tab).
document.addEventListener("click", (event) => {
  const link = event.target.closest("#runs-results a[data-nav]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  event.preventDefault();
  const column = link.closest("th")?.dataset.col;
  const inPager = Boolean(link.closest(".pager"));
  navigate(link.href, {
    focus: () => {
      if (column) {
        results().querySelector(`th[data-col="${CSS.escape(column)}"] a`)?.focus();
      } else if (inPager) {
        const box = results();
        box.tabIndex = -1;
        box.focus();
      }
    },
  });
});

// -- Selection ------------------------------------------------------------------------------

function rowBoxes() {
  return [...results().querySelectorAll("tbody input.row-select")];
}

function updateSelection() {
  const ids = [...state.selected];
  const query = new URLSearchParams(window.location.search);
  if (ids.length) query.set("sel", ids.join(","));
  else query.delete("sel");
  const text = query.toString();
  history.replaceState(history.state, "", window.location.pathname + (text ? `?${text}` : ""));
  for (const [link, base] of [[compareLink, compareBase], [chartLink, chartBase]]) {
    if (ids.length) {
      link.href = `${base}?runs=${ids.join(",")}`;
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
  }
  selectionCount.textContent = ids.length ? `${ids.length} selected` : "";
  const boxes = rowBoxes();
  for (const box of boxes) {
    box.checked = state.selected.has(box.value);
    box.closest("tr").classList.toggle("selected", box.checked);
  }
  const all = document.getElementById("select-all-runs");
  if (all) {
    const checked = boxes.filter((box) => box.checked).length;
    all.checked = checked > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
}

document.addEventListener("click", (event) => {
  const box = event.target.closest("#runs-results input.row-select");
  if (!box) return;
  const boxes = rowBoxes();
  const index = boxes.indexOf(box);
  if (event.shiftKey && state.lastClicked !== null && state.lastClicked < boxes.length) {
    const [from, to] = [Math.min(index, state.lastClicked), Math.max(index, state.lastClicked)];
    for (const other of boxes.slice(from, to + 1)) {
      if (box.checked) state.selected.add(other.value);
      else state.selected.delete(other.value);
    }
  } else if (box.checked) {
    state.selected.add(box.value);
  } else {
    state.selected.delete(box.value);
  }
  state.lastClicked = index;
  updateSelection();
});

document.addEventListener("change", (event) => {
  if (event.target.id !== "select-all-runs") return;
  for (const box of rowBoxes()) {
    if (event.target.checked) state.selected.add(box.value);
    else state.selected.delete(box.value);
  }
  state.lastClicked = null;
  updateSelection();
});

// -- Nested runs ----------------------------------------------------------------------------

function applyCollapsed() {
  const rows = [...results().querySelectorAll("tbody tr[data-run-id]")];
  const parentOf = new Map(rows.map((row) => [row.dataset.runId, row.dataset.parent]));
  for (const row of rows) {
    let hidden = false;
    let parent = row.dataset.parent;
    for (let depth = 0; parent && depth < 100; depth += 1) {
      if (state.collapsed.has(parent)) {
        hidden = true;
        break;
      }
      parent = parentOf.get(parent);
    }
    row.hidden = hidden;
  }
  for (const toggle of results().querySelectorAll(".nest-toggle")) {
    toggle.setAttribute("aria-expanded", String(!state.collapsed.has(toggle.dataset.runId)));
  }
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("#runs-results .nest-toggle");
  if (!toggle) return;
  const id = toggle.dataset.runId;
  if (state.collapsed.has(id)) state.collapsed.delete(id);
  else state.collapsed.add(id);
  applyCollapsed();
});

function refreshResults() {
  state.lastClicked = null;
  applyCollapsed();
  updateSelection();
}

// -- Keys (column picker and autocomplete share one request) --------------------------------

let keysRequest = null;
function loadKeys() {
  keysRequest ??= api("/api/2.0/runyard/runs/keys", { params: { experiment_ids: experimentIds() } })
    .catch((failure) => {
      keysRequest = null;
      throw failure;
    });
  return keysRequest;
}

// -- Column picker --------------------------------------------------------------------------

const columnsDialog = document.getElementById("columns-dialog");
const columnsForm = document.getElementById("columns-form");
const columnsGroups = document.getElementById("columns-groups");
const columnsStatus = document.getElementById("columns-status");
const columnsFilter = document.getElementById("columns-filter");
const GROUPS = [["Params", "params"], ["Metrics", "metrics"], ["Tags", "tags"]];

function renderColumnGroups(keys) {
  const chosen = new Set(currentColumns());
  columnsGroups.replaceChildren();
  let total = 0;
  for (const [title, plural] of GROUPS) {
    const names = new Set(keys[plural] || []);
    for (const id of chosen) if (id.startsWith(`${plural}.`)) names.add(id.slice(plural.length + 1));
    if (!names.size) continue;
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = title;
    fieldset.append(legend);
    for (const name of [...names].sort()) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = `${plural}.${name}`;
      box.checked = chosen.has(box.value);
      label.append(box, document.createTextNode(name));
      label.dataset.key = name.toLowerCase();
      fieldset.append(label);
      total += 1;
    }
    columnsGroups.append(fieldset);
  }
  columnsStatus.textContent = total ? "" : "These runs have no params, metrics or tags yet.";
  filterColumns();
}

function filterColumns() {
  const needle = columnsFilter.value.trim().toLowerCase();
  for (const fieldset of columnsGroups.querySelectorAll("fieldset")) {
    let visible = 0;
    for (const label of fieldset.querySelectorAll("label")) {
      label.hidden = Boolean(needle) && !label.dataset.key.includes(needle);
      if (!label.hidden) visible += 1;
    }
    fieldset.hidden = visible === 0;
  }
}

document.getElementById("columns-button").addEventListener("click", async () => {
  columnsFilter.value = "";
  columnsGroups.replaceChildren();
  columnsStatus.textContent = "Loading keys…";
  columnsDialog.showModal();
  columnsFilter.focus();
  try {
    renderColumnGroups(await loadKeys());
  } catch (failure) {
    columnsStatus.textContent = `Could not load keys: ${failure.message || failure}`;
  }
});
columnsFilter.addEventListener("input", filterColumns);
columnsDialog.querySelector(".dialog-cancel").addEventListener("click", () => columnsDialog.close());
document.getElementById("columns-default").addEventListener("click", () => {
  columnsDialog.close();
  navigate(withChanges({ cols: null, page_token: null }));
});
columnsForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const checked = [...columnsGroups.querySelectorAll("input:checked")].map((box) => box.value);
  const keep = currentColumns().filter((id) => checked.includes(id));
  const cols = [...keep, ...checked.filter((id) => !keep.includes(id))];
  columnsDialog.close();
  navigate(withChanges({ cols: cols.join(","), page_token: null }));
});

// -- Filter autocomplete (an ARIA combobox with a listbox) ----------------------------------

const listbox = document.getElementById("filter-suggestions");
const ENTITIES = {
  metrics: "metrics", metric: "metrics",
  params: "params", param: "params", parameters: "params", parameter: "params",
  tags: "tags", tag: "tags",
  attributes: "attributes", attribute: "attributes", attr: "attributes", run: "attributes",
};
const PREFIXES = ["metrics.", "params.", "tags.", "attributes."];
const ATTRIBUTES = ["run_name", "status", "start_time", "end_time", "user_id", "run_id", "artifact_uri"];
const NUMBER_OPS = ["=", "!=", ">", ">=", "<", "<="];
const STRING_OPS = ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"];
const NULL_OPS = ["IS NULL", "IS NOT NULL"];
const HINTS = { metrics: "metric", params: "param", tags: "tag", attributes: "attribute" };
const MAX_SUGGESTIONS = 50;
let keys = null;
let suggestions = [];
let active = -1;

function operatorsFor(entity, key) {
  if (entity === "metrics") return [...NUMBER_OPS, ...NULL_OPS];
  if (entity === "attributes") {
    if (key === "start_time" || key === "end_time") return NUMBER_OPS;
    if (key === "run_id") return ["=", "!=", "IN", "NOT IN"];
    return STRING_OPS;
  }
  return [...STRING_OPS, ...NULL_OPS];
}

function quoteKey(key) {
  return /^[\w$]+(\.[\w$]+)*$/.test(key) ? key : `\`${key.replaceAll("`", "``")}\``;
}

function unquote(text) {
  const match = text.match(/^[`"](.*?)[`"]?$/s);
  return match ? match[1] : text;
}

function skipQuoted(text, start) {
  const quote = text[start];
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i += 1;
    }
  }
  return i;
}

/** Split filter text into tokens: identifiers (with quoted parts), strings, operators, punctuation. */
function scan(text) {
  const tokens = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (/\s/.test(char)) {
      i += 1;
      continue;
    }
    const start = i;
    if ("<>=!".includes(char)) {
      while (i < text.length && "<>=!".includes(text[i])) i += 1;
    } else if ("(),".includes(char)) {
      i += 1;
    } else if (char === "'") {
      i = skipQuoted(text, i);
    } else {
      while (i < text.length && !/\s/.test(text[i]) && !"<>=!(),'".includes(text[i])) {
        i = text[i] === "`" || text[i] === '"' ? skipQuoted(text, i) : i + 1;
      }
    }
    tokens.push({ text: text.slice(start, i), start, end: i });
  }
  return tokens;
}

function entityOf(identifier) {
  const dot = identifier.indexOf(".");
  if (dot < 0) return [null, ""];
  return [ENTITIES[identifier.slice(0, dot).toLowerCase()] || null, unquote(identifier.slice(dot + 1))];
}

function identifierSuggestions(partial) {
  const dot = partial.indexOf(".");
  if (dot < 0) {
    const lower = partial.toLowerCase();
    return PREFIXES.filter((p) => p.startsWith(lower) && p !== lower)
      .map((p) => ({ label: p, insert: p, hint: "" }));
  }
  const typed = partial.slice(0, dot);
  const entity = ENTITIES[typed.toLowerCase()];
  if (!entity) return [];
  const rest = unquote(partial.slice(dot + 1)).toLowerCase();
  const pool = entity === "attributes" ? ATTRIBUTES : (keys && keys[entity]) || [];
  const starts = pool.filter((key) => key.toLowerCase().startsWith(rest));
  const contains = rest ? pool.filter((key) => !key.toLowerCase().startsWith(rest) && key.toLowerCase().includes(rest)) : [];
  return [...starts, ...contains].slice(0, MAX_SUGGESTIONS).map((key) => {
    const text = `${typed}.${quoteKey(key)}`;
    return { label: text, insert: `${text} `, hint: HINTS[entity] };
  });
}

/** Suggestions for the text before the caret: [{label, insert, hint}], the span they replace,
 * and whether the first one is pre-selected (not for "AND", so Enter still applies the filter). */
function suggest(text, caret) {
  const before = text.slice(0, caret);
  const tokens = scan(before);
  let current = null;
  if (tokens.length && !/\s$/.test(before) && tokens[tokens.length - 1].end === before.length) {
    current = tokens.pop();
  }
  let clause = [];
  for (const token of tokens) {
    if (/^and$/i.test(token.text)) clause = [];
    else clause.push(token);
  }
  const partial = current ? current.text : "";
  const start = current ? current.start : caret;
  if (clause.length === 0) {
    if (!partial && tokens.length === 0) return { items: [], start, preselect: false };
    return { items: identifierSuggestions(partial), start, preselect: true };
  }
  if (clause.length === 1) {
    const [entity, key] = entityOf(clause[0].text);
    if (!entity) return { items: [], start, preselect: false };
    const upper = partial.toUpperCase();
    const items = operatorsFor(entity, key).filter((op) => op.startsWith(upper) && op !== upper)
      .map((op) => ({ label: op, insert: `${op} `, hint: "" }));
    return { items, start, preselect: true };
  }
  if (clause.length >= 3 && (partial ? "and".startsWith(partial.toLowerCase()) && partial.toLowerCase() !== "and" : true)) {
    return { items: [{ label: "AND", insert: "AND ", hint: "another condition" }], start, preselect: false };
  }
  return { items: [], start, preselect: false };
}

let replaceFrom = 0;

function renderSuggestions() {
  listbox.replaceChildren();
  suggestions.forEach((item, index) => {
    const option = document.createElement("li");
    option.id = `filter-option-${index}`;
    option.setAttribute("role", "option");
    option.setAttribute("aria-selected", String(index === active));
    const label = document.createElement("span");
    label.textContent = item.label;
    option.append(label);
    if (item.hint) {
      const hint = document.createElement("span");
      hint.className = "hint";
      hint.textContent = item.hint;
      option.append(hint);
    }
    option.addEventListener("mousedown", (event) => {
      event.preventDefault(); // keep focus in the input
      accept(index);
    });
    listbox.append(option);
  });
  const open = suggestions.length > 0;
  listbox.hidden = !open;
  filterInput.setAttribute("aria-expanded", String(open));
  if (open && active >= 0) {
    filterInput.setAttribute("aria-activedescendant", `filter-option-${active}`);
    listbox.children[active].scrollIntoView({ block: "nearest" });
  } else {
    filterInput.removeAttribute("aria-activedescendant");
  }
}

function updateSuggestions() {
  const caret = filterInput.selectionStart ?? filterInput.value.length;
  const found = suggest(filterInput.value, caret);
  suggestions = found.items;
  replaceFrom = found.start;
  active = found.preselect && suggestions.length ? 0 : -1;
  renderSuggestions();
}

function closeSuggestions() {
  suggestions = [];
  active = -1;
  renderSuggestions();
}

function accept(index) {
  const item = suggestions[index];
  if (!item) return;
  const caret = filterInput.selectionStart ?? filterInput.value.length;
  const value = filterInput.value;
  filterInput.value = value.slice(0, replaceFrom) + item.insert + value.slice(caret);
  const position = replaceFrom + item.insert.length;
  filterInput.setSelectionRange(position, position);
  updateSuggestions();
}

filterInput.addEventListener("focus", async () => {
  if (keys) return;
  try {
    keys = await loadKeys();
    if (document.activeElement === filterInput && filterInput.value) updateSuggestions();
  } catch (failure) {
    toast(`Could not load keys for suggestions: ${failure.message || failure}`, "error");
  }
});
filterInput.addEventListener("input", updateSuggestions);
filterInput.addEventListener("blur", closeSuggestions);
filterInput.addEventListener("keydown", (event) => {
  const open = suggestions.length > 0;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    if (!open) {
      updateSuggestions();
      return;
    }
    const step = event.key === "ArrowDown" ? 1 : -1;
    active = active < 0 && step < 0 ? suggestions.length - 1 : (active + step + suggestions.length) % suggestions.length;
    renderSuggestions();
  } else if ((event.key === "Enter" || event.key === "Tab") && open && active >= 0) {
    event.preventDefault();
    accept(active);
  } else if (event.key === "Escape" && open) {
    event.preventDefault();
    closeSuggestions();
  } else if (event.key === "Enter" || event.key === "Tab") {
    closeSuggestions();
  }
});

refreshResults();
