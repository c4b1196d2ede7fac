// The compare page: the differences table's toggle, parallel coordinates and a scatter of the
// runs' params/metrics (plotly.js, from the JSON the server embeds), and the metric charts the
// runs share (drawCharts from charts.js). Choices are kept in the URL.
import { drawCharts, loadPlotly } from "./charts.js";
import { setQuery } from "./common.js";

const data = JSON.parse(document.getElementById("compare-data").textContent);
const query = new URLSearchParams(window.location.search);
const CONFIG = { responsive: true, displaylogo: false };
const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };
const MISSING = "—";

// -- differences table ---------------------------------------------------------------------------

const hideSame = document.getElementById("hide-same");
const diffTable = document.getElementById("diff-table");
hideSame.addEventListener("change", () => {
  diffTable.classList.toggle("hide-same", hideSame.checked);
  setQuery({ same: hideSame.checked ? null : 1 });
});

// -- values of a field ("params.lr", "metrics.loss") across the runs -----------------------------

function label(field) {
  return field.slice(field.indexOf(".") + 1);
}

/** {values, numeric}: the field's value per run (undefined when missing); numeric when every
 * present value is a number (params are strings: "0.01" counts as a number). */
function column(field) {
  const key = label(field);
  const kind = field.slice(0, field.indexOf("."));
  const raw = data.runs.map((run) => (kind === "params" ? run.params : run.metrics)[key]);
  const present = raw.filter((v) => v !== undefined && v !== null);
  const numeric = present.length > 0 && present.every((v) => typeof v === "number"
    || (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))));
  const values = raw.map((v) => {
    if (v === undefined || v === null) return undefined;
    return numeric ? Number(v) : String(v);
  });
  return { field, values, numeric };
}

function showNote(id, text) {
  const note = document.getElementById(id);
  if (note) note.textContent = text;
}

function leftOut(count, why) {
  return count ? `${count} run${count === 1 ? "" : "s"} without ${why} left out.` : "";
}

// -- parallel coordinates ------------------------------------------------------------------------

const dimBoxes = [...document.querySelectorAll('input[name="dim"]')];
const colorBy = document.getElementById("color-by");

function dimension(col, keep) {
  const values = col.values.filter((_, i) => keep[i]);
  if (col.numeric) return { label: label(col.field), values };
  // A categorical axis: each distinct value at an integer position, its text as the tick label.
  const shown = values.map((v) => (v === undefined ? MISSING : v));
  const categories = [...new Set(shown)].sort();
  return {
    label: label(col.field),
    values: shown.map((v) => categories.indexOf(v)),
    tickvals: categories.map((_, i) => i),
    ticktext: categories,
    range: [0, Math.max(1, categories.length - 1)],
  };
}

function lineColors(keep) {
  const runs = data.runs.filter((_, i) => keep[i]);
  if (colorBy.value) {
    const col = column(colorBy.value);
    return {
      color: col.values.filter((_, i) => keep[i]),
      colorscale: "Viridis",
      showscale: true,
      colorbar: { title: { text: label(colorBy.value) }, thickness: 12 },
    };
  }
  // Each run in its own colour: positions 0..n-1 on a scale through the run colours.
  const last = Math.max(1, runs.length - 1);
  const scale = runs.length > 1 ? runs.map((run, i) => [i / last, run.color]) : [[0, runs[0].color], [1, runs[0].color]];
  return { color: runs.map((_, i) => i), colorscale: scale, cmin: 0, cmax: last };
}

function drawParcoords() {
  const target = document.getElementById("parcoords");
  if (!target) return;
  const fields = dimBoxes.filter((box) => box.checked).map((box) => box.value);
  if (!fields.length) {
    Plotly.purge(target);
    showNote("parcoords-note", "Pick at least one axis.");
    return;
  }
  const columns = fields.map(column);
  const needed = columns.filter((c) => c.numeric);
  if (colorBy.value) needed.push(column(colorBy.value));
  // A numeric axis has no place for "missing": such runs are left out (categories show "—").
  const keep = data.runs.map((_, i) => needed.every((c) => c.values[i] !== undefined));
  const kept = keep.filter(Boolean).length;
  showNote("parcoords-note", leftOut(data.runs.length - kept, "a value on every numeric axis"));
  if (!kept) {
    Plotly.purge(target);
    return;
  }
  const trace = { type: "parcoords", dimensions: columns.map((c) => dimension(c, keep)), line: lineColors(keep) };
  Plotly.react(target, [trace], { margin: { l: 70, r: 70, t: 48, b: 24 }, height: 380, font: FONT }, CONFIG);
}

function chooseDims() {
  const wanted = query.get("dims");
  if (wanted !== null) {
    const fields = new Set(wanted.split(",").filter(Boolean));
    for (const box of dimBoxes) box.checked = fields.has(box.value);
  }
  const color = query.get("color");
  if (color !== null && [...colorBy.options].some((o) => o.value === color)) colorBy.value = color;
  for (const box of dimBoxes) {
    box.addEventListener("change", () => {
      drawParcoords();
      setQuery({ dims: dimBoxes.filter((b) => b.checked).map((b) => b.value).join(",") });
    });
  }
  colorBy.addEventListener("change", () => {
    drawParcoords();
    setQuery({ color: colorBy.value || null });
  });
}

// -- scatter -------------------------------------------------------------------------------------

const scatterX = document.getElementById("scatter-x");
const scatterY = document.getElementById("scatter-y");

function axis(col) {
  return { title: { text: label(col.field) }, type: col.numeric ? "linear" : "category", automargin: true };
}

function drawScatter() {
  const target = document.getElementById("scatter");
  if (!target) return;
  const cx = column(scatterX.value);
  const cy = column(scatterY.value);
  const keep = data.runs.map((_, i) => cx.values[i] !== undefined && cy.values[i] !== undefined);
  const runs = data.runs.filter((_, i) => keep[i]);
  showNote("scatter-note", leftOut(data.runs.length - runs.length, "both values"));
  const trace = {
    type: "scatter",
    mode: "markers",
    x: cx.values.filter((_, i) => keep[i]),
    y: cy.values.filter((_, i) => keep[i]),
    text: runs.map((run) => run.name),
    marker: { color: runs.map((run) => run.color), size: 12, line: { width: 1, color: "#fff" } },
    hovertemplate: `<b>%{text}</b><br>${label(cx.field)}: %{x}<br>${label(cy.field)}: %{y}<extra></extra>`,
  };
  const layout = { margin: { l: 60, r: 16, t: 16, b: 48 }, height: 380, xaxis: axis(cx), yaxis: axis(cy), font: FONT, hovermode: "closest" };
  Plotly.react(target, [trace], layout, CONFIG);
}

function chooseScatterAxes() {
  const options = [...scatterX.options].map((o) => o.value);
  const has = (value) => value && options.includes(value);
  const dims = data.dims;
  const firstParam = dims.find((f) => f.startsWith("params.")) || options.find((f) => f.startsWith("params."));
  const firstMetric = dims.find((f) => f.startsWith("metrics.")) || options.find((f) => f.startsWith("metrics."));
  scatterX.value = has(query.get("sx")) ? query.get("sx") : (firstParam || options[0]);
  scatterY.value = has(query.get("sy")) ? query.get("sy")
    : (firstMetric && firstMetric !== scatterX.value ? firstMetric : options[Math.min(1, options.length - 1)]);
  for (const [select, name] of [[scatterX, "sx"], [scatterY, "sy"]]) {
    select.addEventListener("change", () => {
      drawScatter();
      setQuery({ [name]: select.value });
    });
  }
}

// -- start ---------------------------------------------------------------------------------------

// The charts fetch their series while plotly.js loads; the table works already.
const chartBox = document.getElementById("compare-charts");
if (chartBox) drawCharts(chartBox, { runs: data.runs, keys: data.shared_metrics });
const Plotly = await loadPlotly();
if (colorBy) {
  chooseDims();
  drawParcoords();
}
if (scatterX && scatterY) {
  chooseScatterAxes();
  drawScatter();
}
