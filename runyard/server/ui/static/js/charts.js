// Metric charts: one plotly.js line chart per metric key, one trace per run.
//
// Series come from /api/2.0/runyard/metrics/get-history-downsampled, reduced in the database to
// at most MAX_POINTS points per run with every peak and dip kept. Zooming fetches the visible
// steps again at full resolution; live mode appends the running runs' new points every 5 s
// (start_step = last step + 1). drawCharts() is also used by the compare page.
// plotly.js (4.6 MB, a second to parse on a slow machine) is loaded by a classic <script> tag
// this module adds, from the URL of the page's <link rel="preload" id="plotly-src">: the series
// are fetched while it downloads and parses.
import { api, setQuery, toast } from "./common.js";

const ENDPOINT = "/ajax-api/2.0/runyard/metrics/get-history-downsampled";
const RUN_STATUS = "/ajax-api/2.0/mlflow/runs/get";
/** Points per run and chart asked of the server. */
export const MAX_POINTS = 1000;
const MAX_RUNS_PER_REQUEST = 100;
const LIVE_INTERVAL_MS = 5000;
/** Above this many points in one chart, WebGL draws it (when the browser has WebGL); below,
 * SVG lines draw faster (50 runs x 1,000 points: a quarter second). */
const WEBGL_POINTS = 200_000;
const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
const X_TITLES = { step: "Step", time: "Wall time (UTC)", relative: "Relative time" };

let plotly = null;
/** plotly.js, loaded once by a <script src> tag (a classic script, not a module). */
export function loadPlotly() {
  if (!plotly) {
    plotly = window.Plotly ? Promise.resolve(window.Plotly) : new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = document.getElementById("plotly-src").href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("Could not load plotly.js, the charting library."));
      document.head.append(script);
    });
  }
  return plotly;
}

let webglAvailable;
function hasWebGL() {
  if (webglAvailable === undefined) {
    try {
      const canvas = document.createElement("canvas");
      webglAvailable = Boolean(canvas.getContext("webgl") || canvas.getContext("experimental-webgl"));
    } catch {
      webglAvailable = false;
    }
  }
  return webglAvailable;
}

/** A point's value as a number, null for NaN (plotly leaves a gap). */
function numeric(value) {
  return typeof value === "number" ? value : null;
}

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
export function smoothValues(values, weight) {
  if (!weight) return values;
  let last = 0;
  let count = 0;
  return values.map((value) => {
    if (value === null || !Number.isFinite(value)) return value;
    last = last * weight + (1 - weight) * value;
    count += 1;
    return last / (1 - weight ** count);
  });
}

/** The series of one metric for many runs: Map(run id → {points, downsampled, total_points}). */
export async function fetchSeries(key, runIds, { start, end } = {}) {
  const chunks = [];
  for (let i = 0; i < runIds.length; i += MAX_RUNS_PER_REQUEST) {
    chunks.push(runIds.slice(i, i + MAX_RUNS_PER_REQUEST));
  }
  const replies = await Promise.all(chunks.map((ids) => api(ENDPOINT, {
    params: { run_ids: ids, metric_key: key, max_points: MAX_POINTS, start_step: start, end_step: end },
  })));
  const series = new Map();
  for (const reply of replies) for (const item of reply.series) series.set(item.run_id, item);
  return series;
}

/** Seconds, minutes or hours, whichever reads best for a span of `seconds`. */
function relativeUnit(seconds) {
  if (seconds >= 2 * 3600) return { label: "hours", size: 3600 };
  if (seconds >= 120) return { label: "minutes", size: 60 };
  return { label: "seconds", size: 1 };
}

/** Parse a plotly axis range end (a number, or a date string on date axes) as a number. */
function rangeNumber(value, mode) {
  if (mode === "time" && typeof value === "string") return Date.parse(value.replace(" ", "T") + "Z");
  return Number(value);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One figure: a metric key drawn for every run of the page. */
class Chart {
  constructor(key, view) {
    this.key = key;
    this.view = view; // shared: {runs, x, log, smooth}
    this.series = new Map();
    this.range = null; // [first, last] step fetched at full resolution while zoomed
    this.traceOf = new Map(); // run id → index of its main trace
    this.bases = new Map(); // run id → epoch ms that relative time counts from
    this.figure = element("figure", "chart");
    this.figure.dataset.key = key;
    this.figure.append(element("figcaption", "", key));
    this.note = element("div", "chart-note");
    this.plot = element("div", "plot-area");
    this.figure.append(this.plot, this.note);
    this.bound = false;
    this.drawing = Promise.resolve();
  }

  async load() {
    this.figure.classList.add("loading");
    try {
      const range = this.range ? { start: this.range[0], end: this.range[1] } : {};
      this.series = await fetchSeries(this.key, this.view.runs.map((r) => r.id), range);
      await this.draw();
    } catch (error) {
      this.note.textContent = `Could not load ${this.key}: ${error.message}`;
      toast(error.message, "error");
    } finally {
      this.figure.classList.remove("loading");
    }
  }

  /** The x of each point for the current axis: step, epoch ms, or time since the run started. */
  xs(points, run) {
    const mode = this.view.x;
    if (mode === "time") return points.map((p) => p.timestamp);
    if (mode === "relative") {
      const base = this.baseOf(run);
      return points.map((p) => (p.timestamp - base) / 1000 / this.unit.size);
    }
    return points.map((p) => p.step);
  }

  /** Relative time counts from the run's start, or from its first point when that is earlier
   * (timestamps come from the client); fixed at the first full load so zooming keeps it. */
  baseOf(run) {
    if (!this.bases.has(run.id)) {
      const points = this.series.get(run.id)?.points || [];
      const first = points.length ? Math.min(...points.map((p) => p.timestamp)) : Infinity;
      const base = Math.min(run.start_time || Infinity, first);
      if (Number.isFinite(base)) this.bases.set(run.id, base);
      return Number.isFinite(base) ? base : 0;
    }
    return this.bases.get(run.id);
  }

  relativeSpan() {
    let longest = 0;
    for (const run of this.view.runs) {
      const points = this.series.get(run.id)?.points || [];
      if (!points.length) continue;
      longest = Math.max(longest, (points[points.length - 1].timestamp - this.baseOf(run)) / 1000);
    }
    return longest;
  }

  traces() {
    const { runs, smooth } = this.view;
    const total = runs.reduce((n, r) => n + (this.series.get(r.id)?.points.length || 0), 0);
    const type = total > WEBGL_POINTS && hasWebGL() ? "scattergl" : "scatter";
    const xLine = this.view.x === "step" ? "" : "%{x}<br>";
    const traces = [];
    this.traceOf = new Map();
    for (const run of runs) {
      const points = this.series.get(run.id)?.points || [];
      if (!points.length) continue;
      const x = this.xs(points, run);
      const y = points.map((p) => numeric(p.value));
      const customdata = points.map((p) => p.step);
      const base = { type, mode: points.length === 1 ? "markers" : "lines", x, customdata, name: run.name };
      const hover = `<b>%{fullData.name}</b><br>step %{customdata}<br>${xLine}%{y:.6g}<extra></extra>`;
      this.traceOf.set(run.id, traces.length);
      if (smooth > 0) {
        traces.push({ ...base, y, name: `${run.name} (raw)`, showlegend: false, opacity: 0.25,
          line: { color: run.color, width: 1 }, marker: { color: run.color }, hovertemplate: hover });
        traces.push({ ...base, y: smoothValues(y, smooth), line: { color: run.color, width: 2 },
          marker: { color: run.color }, hovertemplate: hover, legendgroup: run.id });
      } else {
        traces.push({ ...base, y, line: { color: run.color, width: 1.5 }, marker: { color: run.color },
          hovertemplate: hover });
      }
    }
    return traces;
  }

  layout() {
    const { x, log, runs } = this.view;
    const title = x === "relative" ? `Relative time (${this.unit.label})` : X_TITLES[x];
    return {
      margin: { l: 56, r: 12, t: 8, b: 44 },
      height: this.plot.clientHeight || 320,
      xaxis: { title: { text: title }, type: x === "time" ? "date" : "linear", automargin: true },
      yaxis: { type: log ? "log" : "linear", automargin: true, exponentformat: "power" },
      showlegend: runs.length > 1 && runs.length <= 12,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      hovermode: "closest",
      // Keep the user's zoom when the data is refreshed, reset it when the axes change.
      uirevision: `${x}|${log}`,
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)",
    };
  }

  describe() {
    const reduced = [...this.series.values()].filter((s) => s.downsampled);
    const points = [...this.series.values()].reduce((n, s) => n + s.points.length, 0);
    if (!points) {
      this.note.textContent = this.range ? "No points in this step range." : "No run has logged this metric.";
    } else if (this.range) {
      this.note.textContent = `Steps ${this.range[0]}–${this.range[1]}${reduced.length ? ", reduced" : " at full resolution"}. Double-click to zoom out.`;
    } else if (reduced.length) {
      const total = reduced.reduce((n, s) => n + s.total_points, 0);
      this.note.textContent = `${points.toLocaleString()} of ${total.toLocaleString()} points drawn (peaks and dips kept); zoom in for every point.`;
    } else {
      this.note.textContent = "";
    }
  }

  draw() {
    this.unit = relativeUnit(this.relativeSpan());
    this.describe();
    const traces = this.traces();
    const layout = this.layout();
    this.drawing = loadPlotly().then((Plotly) => Plotly.react(this.plot, traces, layout, CONFIG)).then(() => {
      if (!this.bound) {
        this.plot.on("plotly_relayout", (event) => this.onRelayout(event));
        this.bound = true;
      }
    });
    return this.drawing;
  }

  /** The step range of the loaded points inside an x window, widened by a point each side. */
  stepsIn(low, high) {
    if (this.view.x === "step") return [Math.floor(low), Math.ceil(high)];
    let first = Infinity;
    let last = -Infinity;
    for (const run of this.view.runs) {
      const points = this.series.get(run.id)?.points || [];
      const x = this.xs(points, run);
      for (let i = 0; i < points.length; i += 1) {
        if (x[i] < low || x[i] > high) continue;
        first = Math.min(first, points[Math.max(0, i - 1)].step);
        last = Math.max(last, points[Math.min(points.length - 1, i + 1)].step);
      }
    }
    return Number.isFinite(first) ? [first, last] : null;
  }

  onRelayout(event) {
    if (event["xaxis.autorange"]) {
      if (this.range) {
        this.range = null;
        this.load();
      }
      return;
    }
    // A drag zoom sends range[0] and range[1]; Plotly.relayout may send the whole range.
    const [low, high] = event["xaxis.range"] || [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    if (low === undefined || high === undefined) return;
    const steps = this.stepsIn(rangeNumber(low, this.view.x), rangeNumber(high, this.view.x));
    // Everything is already here unless some series was reduced.
    if (!steps || ![...this.series.values()].some((s) => s.downsampled)) return;
    this.range = steps;
    this.load();
  }

  /** Append the points the running runs logged since their last step (extendTraces). */
  async extend(running) {
    if (this.range) return; // zoomed into the past: the view does not move
    const last = new Map(running.map((id) => {
      const points = this.series.get(id)?.points || [];
      return [id, points.length ? points[points.length - 1].step : -1];
    }));
    const start = Math.min(...last.values()) + 1;
    const fresh = await fetchSeries(this.key, running, { start });
    const update = { x: [], y: [], customdata: [] };
    const indices = [];
    let redraw = this.view.smooth > 0;
    for (const run of this.view.runs) {
      const added = (fresh.get(run.id)?.points || []).filter((p) => p.step > last.get(run.id));
      if (!added.length) continue;
      const entry = this.series.get(run.id) || { points: [], downsampled: false, total_points: 0 };
      entry.points = entry.points.concat(added);
      entry.total_points += added.length;
      this.series.set(run.id, entry);
      if (!this.traceOf.has(run.id) || entry.points.length === added.length) redraw = true;
      indices.push(this.traceOf.get(run.id));
      update.x.push(this.xs(added, run));
      update.y.push(added.map((p) => numeric(p.value)));
      update.customdata.push(added.map((p) => p.step));
    }
    if (!indices.length) return;
    await this.drawing;
    if (redraw || this.view.x === "relative") await this.draw();
    else await (await loadPlotly()).extendTraces(this.plot, update, indices);
  }

  remove() {
    if (window.Plotly) window.Plotly.purge(this.plot);
    this.figure.remove();
  }
}

/** Draw one chart per key into `container` for `runs` ({id, name, color, status, start_time}).
 * Returns a controller: setKeys(keys), set({x, log, smooth}), setLive(on), stop(). */
export function drawCharts(container, { runs, keys, x = "step", log = false, smooth = 0, live = false, onStatus }) {
  const view = { runs, x, log, smooth };
  const charts = new Map();
  let timer = null;
  let liveOn = false;

  function setKeys(wanted) {
    for (const [key, chart] of charts) {
      if (!wanted.includes(key)) {
        chart.remove();
        charts.delete(key);
      }
    }
    for (const key of wanted) {
      let chart = charts.get(key);
      if (!chart) {
        chart = new Chart(key, view);
        charts.set(key, chart);
        chart.load();
      }
      container.append(chart.figure); // (re)order as asked
    }
  }

  function set(options) {
    const axisChanged = options.x !== undefined && options.x !== view.x;
    Object.assign(view, options);
    for (const chart of charts.values()) {
      if (axisChanged && chart.range) {
        chart.range = null;
        chart.load();
      } else {
        chart.draw();
      }
    }
  }

  async function refreshStatuses(running) {
    const replies = await Promise.all(running.map((id) => api(RUN_STATUS, { params: { run_id: id } })
      .catch(() => null)));
    for (const reply of replies) {
      if (!reply) continue;
      const run = runs.find((r) => r.id === reply.run.info.run_id);
      if (run && run.status !== reply.run.info.status) {
        run.status = reply.run.info.status;
        if (onStatus) onStatus(run);
      }
    }
  }

  async function tick() {
    const running = runs.filter((r) => r.status === "RUNNING").map((r) => r.id);
    if (!running.length) return;
    try {
      await Promise.all([...charts.values()].map((chart) => chart.extend(running)));
      await refreshStatuses(running);
    } catch (error) {
      toast(`Live refresh failed: ${error.message}`, "error");
    }
    if (liveOn) timer = setTimeout(tick, LIVE_INTERVAL_MS);
  }

  function setLive(on) {
    liveOn = on;
    clearTimeout(timer);
    if (on) timer = setTimeout(tick, LIVE_INTERVAL_MS);
  }

  setKeys(keys);
  setLive(live);
  return { setKeys, set, setLive, stop: () => setLive(false), charts };
}

// -- the /metrics page ----------------------------------------------------------------------------

function initMetricsPage(data) {
  const container = document.getElementById("charts");
  const emptyHint = document.getElementById("charts-empty");
  const status = document.getElementById("chart-status");
  const controller = drawCharts(container, {
    ...data,
    onStatus(run) {
      const badge = document.querySelector(`[data-status-of="${CSS.escape(run.id)}"] .badge`);
      if (badge) {
        badge.textContent = run.status.charAt(0) + run.status.slice(1).toLowerCase();
        badge.className = `badge status-${run.status.toLowerCase()}`;
      }
      if (!data.runs.some((r) => r.status === "RUNNING")) status.textContent = "No run is running any more.";
    },
  });

  const keyBoxes = [...document.querySelectorAll('.key-picker input[name="keys"]')];
  const showKeys = () => {
    const keys = keyBoxes.filter((box) => box.checked).map((box) => box.value);
    controller.setKeys(keys);
    if (emptyHint) emptyHint.hidden = keys.length > 0;
    setQuery({ keys: keys.join(",") });
  };
  for (const box of keyBoxes) box.addEventListener("change", showKeys);
  const filter = document.getElementById("key-filter");
  filter?.addEventListener("input", () => {
    const text = filter.value.trim().toLowerCase();
    for (const box of keyBoxes) box.closest("label").hidden = Boolean(text) && !box.value.toLowerCase().includes(text);
  });
  if (emptyHint) emptyHint.hidden = data.keys.length > 0;

  const xSelect = document.getElementById("chart-x");
  xSelect.addEventListener("change", () => {
    controller.set({ x: xSelect.value });
    setQuery({ x: xSelect.value === "step" ? null : xSelect.value });
  });
  const logBox = document.getElementById("chart-log");
  logBox.addEventListener("change", () => {
    controller.set({ log: logBox.checked });
    setQuery({ log: logBox.checked ? 1 : null });
  });
  const slider = document.getElementById("chart-smooth");
  const shown = document.getElementById("chart-smooth-value");
  let pending = null;
  slider.addEventListener("input", () => {
    const weight = Number(slider.value);
    shown.textContent = weight.toFixed(2);
    clearTimeout(pending);
    pending = setTimeout(() => {
      controller.set({ smooth: weight });
      setQuery({ smooth: weight > 0 ? weight : null });
    }, 120);
  });
  const liveBox = document.getElementById("chart-live");
  liveBox.addEventListener("change", () => {
    controller.setLive(liveBox.checked);
    setQuery({ live: liveBox.checked ? 1 : 0 });
    status.textContent = liveBox.checked ? "Live: refreshing running runs every 5 s." : "";
  });
  if (data.live) status.textContent = "Live: refreshing running runs every 5 s.";
}

const pageData = document.getElementById("charts-data");
if (pageData) initMetricsPage(JSON.parse(pageData.textContent));
