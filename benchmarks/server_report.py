"""Collect the server suite's results and render them as a Markdown section."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.report import END_MARKER, cpu_model, format_number, format_ratio, format_value
from benchmarks.runner import Outcome
from benchmarks.server_workloads import ServerSizes

SERVER_START_MARKER = "<!-- server-results:start -->"
SERVER_END_MARKER = "<!-- server-results:end -->"
#: The same suite with ``--backend postgres``: its own section, after the SQLite one.
SERVER_PG_START_MARKER = "<!-- server-pg-results:start -->"
SERVER_PG_END_MARKER = "<!-- server-pg-results:end -->"
#: Where a first server section goes in a RESULTS.md without its markers.
PLACE_AFTER = END_MARKER

SERVERS = ("runyard", "mlflow", "fasttrackml")
#: Workers of the runyard server of the ``concurrency_workers`` group (server_suite.py).
WORKERS = os.cpu_count() or 1
#: Footnotes of a table: (servers, text), numbered in order.
Footnotes = list[tuple[list[str], str]]
SERVER_TITLES = {"runyard": "runyard", "mlflow": "MLflow", "fasttrackml": "FastTrackML"}
MB = 1e6


@dataclass(frozen=True)
class ServerTarget:
    """runyard's goal for a row: a factor better than MLflow, or an absolute bound.

    Which way is better comes from the row (``higher_is_better``).
    """

    bound: float
    times_mlflow: bool = True

    def describe(self, unit: str, higher_is_better: bool) -> str:
        """e.g. ``≥ 20× MLflow`` or ``≤ 150 MB``."""
        if self.times_mlflow:
            return f"≥ {self.bound:g}× MLflow"
        return f"{'≥' if higher_is_better else '≤'} {self.bound:,g} {unit}"

    def met(self, ours: float, mlflow: float | None, higher_is_better: bool) -> bool | None:
        """Whether runyard's value meets the target (None when it cannot be judged)."""
        if not self.times_mlflow:
            return ours >= self.bound if higher_is_better else ours <= self.bound
        if mlflow is None or ours <= 0 or mlflow <= 0:
            return None
        factor = ours / mlflow if higher_is_better else mlflow / ours
        return factor >= self.bound


@dataclass(frozen=True)
class ServerRow:
    """One row: a field of a workload's result across the three servers."""

    label: str
    workload: str
    key: str
    unit: str
    higher_is_better: bool
    target: ServerTarget | None = None
    size_independent: bool = False  # judged in quick runs too
    #: The workload the other servers' cells show, when runyard's differs (a runyard-only
    #: variant compared with the others' figures of the plain workload).
    others: str | None = None

    def workload_of(self, server: str) -> str:
        """The workload whose result fills ``server``'s cell."""
        return self.others if self.others and server != "runyard" else self.workload


def _size_text(size: int) -> str:
    """``1 GB``, ``20 MB`` (powers of ten, as the rates' MB)."""
    return f"{size / 1e9:g} GB" if size >= 1e9 else f"{size / MB:g} MB"


def server_rows(sizes: ServerSizes) -> list[ServerRow]:
    """The section's rows for the given sizes: the long history after the 100,000-point one,
    the RSS peaks before idle RSS and start-up."""
    main = _main_rows(sizes)
    after_history = 1 + max(i for i, row in enumerate(main) if row.workload == "history")
    before_server = min(i for i, row in enumerate(main) if row.workload == "server")
    return [
        *main[:after_history],
        *_long_history_rows(sizes),
        *main[after_history:before_server],
        *_memory_rows(sizes),
        *main[before_server:],
    ]


def _long_history_rows(sizes: ServerSizes) -> list[ServerRow]:
    points, mlflow_points = sizes.long_history_points, sizes.mlflow_long_history_points
    series = f"{points:,}-point series"
    of = f"of {points:,} points"
    if mlflow_points != points:
        series += f" (MLflow: {mlflow_points:,} points, per-point rate)"
        of += f" (MLflow: of {mlflow_points:,}, a shorter series)"
    paged = (
        f"raw: metrics/get-history of a {series}, paged as the client reads it "
        f"(max_results {sizes.long_history_page:,} + page_token; median)"
    )
    return [
        ServerRow(paged, "history_paged", "points_per_s", "points/s", True, ServerTarget(5)),
        ServerRow(
            f"raw: metrics/get-history-bulk-interval, {sizes.downsample_points:,} {of} (median)",
            "history_bulk",
            "median_ms",
            "ms",
            False,
        ),
        ServerRow(
            f"raw: runyard metrics/get-history-downsampled, {sizes.downsample_points:,} "
            f"{of.split(' (')[0]} (median)",
            "history_downsampled",
            "median_ms",
            "ms",
            False,
        ),
    ]


def _memory_rows(sizes: ServerSizes) -> list[ServerRow]:
    size = _size_text(sizes.artifact_bytes)
    reps = sizes.artifact_reps
    mlflow = ""
    if sizes.mlflow_long_history_points != sizes.long_history_points:
        mlflow = f" (MLflow: {sizes.mlflow_long_history_points:,})"
    # The file must never be held in memory (issue 11): judged at full size only.
    bound = ServerTarget(250, times_mlflow=False)
    return [
        ServerRow(
            f"server RSS peak during the {size} upload (max of {reps})",
            "artifacts",
            "upload_rss_peak_mb",
            "MB",
            False,
            bound,
        ),
        ServerRow(
            f"server RSS peak during the {size} download (max of {reps})",
            "artifacts",
            "download_rss_peak_mb",
            "MB",
            False,
            bound,
        ),
        ServerRow(
            f"server RSS peak during the paged get-history of {sizes.long_history_points:,} "
            f"points{mlflow} (max)",
            "history_paged",
            "rss_peak_mb",
            "MB",
            False,
        ),
        ServerRow(
            f"server RSS peak under the runs/get load ({sizes.connections} connections)",
            "runs_get",
            "rss_peak_mb",
            "MB",
            False,
        ),
    ]


def _main_rows(sizes: ServerSizes) -> list[ServerRow]:
    runs = f"{sizes.total_runs:,} runs"
    mb = _size_text(sizes.artifact_bytes)
    small = _size_text(sizes.small_artifact_bytes)
    x20, x10, x5 = ServerTarget(20), ServerTarget(10), ServerTarget(5)
    calls = sizes.client_log_metric_calls
    own = "runyard's client (`import runyard as mlflow`), the official client on the others"
    return [
        ServerRow(
            f"client: `mlflow.log_metric` × {calls:,}, official client: calls/s over the loop",
            "client_log_metric",
            "calls_per_s",
            "calls/s",
            True,
        ),
        ServerRow(
            f"client: `mlflow.log_metric` × {calls:,}, official client: p50 latency",
            "client_log_metric",
            "p50_ms",
            "ms",
            False,
        ),
        ServerRow(
            f"client: `log_metric` × {calls:,}, {own}: calls/s from `start_run` until "
            "`end_run` returned, all stored",
            "client_log_metric_own",
            "end_to_end_calls_per_s",
            "calls/s",
            True,
            x20,
            others="client_log_metric",
        ),
        ServerRow(
            "client: as above, the others' client with MLflow's asynchronous logging "
            "(`MLFLOW_ENABLE_ASYNC_LOGGING=true`, `flush_async_logging()` before `end_run`)",
            "client_log_metric_own",
            "end_to_end_calls_per_s",
            "calls/s",
            True,
            others="client_log_metric_async",
        ),
        ServerRow(
            f"client: `log_metric` × {calls:,}, {own}: p50 call latency",
            "client_log_metric_own",
            "p50_ms",
            "ms",
            False,
            others="client_log_metric",
        ),
        ServerRow(
            f"raw: log-batch {sizes.batch_count} × {sizes.batch_size:,} metrics",
            "log_batch",
            "points_per_s",
            "points/s",
            True,
            x20,
        ),
        ServerRow(
            f"raw: create {sizes.timed_runs:,} runs (create + log-batch 5 params, 5 metrics, "
            "3 tags + update)",
            "runs",
            "runs_per_s",
            "runs/s",
            True,
            x10,
        ),
        ServerRow(
            f"client: create {sizes.client_runs:,} runs (`start_run`, `log_params`, "
            "`log_metrics`, `set_tags`), official client",
            "client_runs",
            "runs_per_s",
            "runs/s",
            True,
        ),
        ServerRow(
            f"client: create {sizes.client_runs:,} runs as above, {own}",
            "client_runs_own",
            "runs_per_s",
            "runs/s",
            True,
            others="client_runs",
        ),
        ServerRow(
            f"raw: runs/search filter + order_by, top 100 of {runs} (median)",
            "search",
            "median_ms",
            "ms",
            False,
            x20,
        ),
        ServerRow(
            f"raw: page through {runs}, {sizes.page_size:,} per page (median)",
            "paging",
            "median_s",
            "s",
            False,
            x20,
        ),
        ServerRow(
            f"raw: metrics/get-history, {sizes.history_points:,} points (median)",
            "history",
            "median_s",
            "s",
            False,
            x5,
        ),
        ServerRow(
            f"raw: runs/get, {sizes.connections} keep-alive connections, {sizes.concurrency_s:g} s",
            "runs_get",
            "requests_per_s",
            "req/s",
            True,
            x20,
        ),
        ServerRow(
            f"raw: runs/get as above, runyard with `--workers {WORKERS}` (one per CPU, as "
            "FastTrackML uses every core; the others as above)",
            "runs_get_workers",
            "requests_per_s",
            "req/s",
            True,
            others="runs_get",
        ),
        ServerRow(
            f"artifact upload, {small} streamed from disk (median)",
            "artifacts_small",
            "upload_mb_s",
            "MB/s",
            True,
        ),
        ServerRow(
            f"artifact download, {small} streamed (checked once by SHA-256, untimed; median)",
            "artifacts_small",
            "download_mb_s",
            "MB/s",
            True,
            x5,
        ),
        ServerRow(
            f"artifact upload, {mb} streamed from disk (median)",
            "artifacts",
            "upload_mb_s",
            "MB/s",
            True,
        ),
        ServerRow(
            f"artifact download, {mb} streamed (checked once by SHA-256, untimed; median)",
            "artifacts",
            "download_mb_s",
            "MB/s",
            True,
            x5,
        ),
        ServerRow(
            "server RSS idle, all processes (median over starts)",
            "server",
            "idle_rss_mb",
            "MB",
            False,
            ServerTarget(150, times_mlflow=False),
            size_independent=True,
        ),
        ServerRow(
            "server RSS after a workload, all processes (max)",
            "server",
            "after_rss_mb",
            "MB",
            False,
        ),
        ServerRow(
            "start-up: spawn → first 200 on /health (median over starts)",
            "server",
            "startup_s",
            "s",
            False,
            ServerTarget(1.5, times_mlflow=False),
            size_independent=True,
        ),
    ]


@dataclass
class ServerSample:
    """What the orchestrator measured around one workload group on one server."""

    group: str
    startup_s: float
    idle_rss_bytes: int
    idle_processes: int
    after_rss_bytes: int
    after_processes: int


@dataclass
class ServerCollected:
    """Results by server name, plus per-start samples, failures and notes."""

    workload_groups: dict[str, tuple[str, ...]]
    values: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    samples: dict[str, list[ServerSample]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    not_run: set[str] = field(default_factory=set)
    #: The PostgreSQL server of a ``--backend postgres`` run (None: SQLite).
    postgres: str | None = None

    def add(self, server: str, group: str, outcome: Outcome) -> None:
        """Record the JSON results (and errors) of one workload job."""
        payload = outcome.payload
        if payload is not None:
            for name, result in payload.get("results", {}).items():
                if "error" in result:
                    self.fail(server, name, result["error"])
                else:
                    self.values.setdefault(server, {})[name] = result
        if outcome.error and payload is None:
            self.problems.append(f"{server} / {group}: {outcome.error}")
        if outcome.error:
            for name in self.workload_groups[group]:
                if name not in self.values.get(server, {}):
                    self.failures.setdefault(server, {}).setdefault(name, "failed")

    def fail(self, server: str, workload: str, message: str) -> None:
        """Mark one cell as failed, with the reason listed under the table."""
        self.failures.setdefault(server, {})[workload] = message
        self.problems.append(f"{server} / {workload}: {message}")

    def unavailable(self, server: str, reason: str) -> None:
        """Mark a whole column as not run."""
        self.problems.append(f"{server}: unavailable: {reason}")
        for workloads in self.workload_groups.values():
            for name in workloads:
                self.failures.setdefault(server, {})[name] = "unavailable"
        self.failures.setdefault(server, {})["server"] = "unavailable"

    def add_sample(self, server: str, sample: ServerSample) -> None:
        """Record start-up time and memory around one group; refresh the summary."""
        samples = self.samples.setdefault(server, [])
        samples.append(sample)
        peak = max(samples, key=lambda s: s.after_rss_bytes)
        self.values.setdefault(server, {})["server"] = {
            "starts": len(samples),
            "startup_s": statistics.median(s.startup_s for s in samples),
            "startup_all_s": [s.startup_s for s in samples],
            "idle_rss_mb": statistics.median(s.idle_rss_bytes for s in samples) / MB,
            "idle_processes": max(s.idle_processes for s in samples),
            "after_rss_mb": peak.after_rss_bytes / MB,
            "after_rss_group": peak.group,
            "after_processes": peak.after_processes,
        }

    def value(self, server: str, row: ServerRow) -> float | None:
        """The number for ``row`` on ``server``, if it was measured."""
        result = self.values.get(server, {}).get(row.workload_of(server))
        raw = None if result is None else result.get(row.key)
        return None if raw is None else float(raw)

    def note(self, server: str, row: ServerRow) -> str | None:
        """A remark the workload made about how ``server`` answered (e.g. one page only)."""
        note = self.values.get(server, {}).get(row.workload_of(server), {}).get("note")
        return None if note is None else str(note)

    def not_applicable(self, server: str, row: ServerRow) -> str | None:
        """Why ``row`` does not apply to ``server`` (the workload said so), if it doesn't."""
        result = self.values.get(server, {}).get(row.workload_of(server), {})
        reason = result.get(row.key.removesuffix("_mb_s") + "_na")
        return None if reason is None else str(reason)


def _title(data: ServerCollected, server: str) -> str:
    version = data.versions.get(server)
    name = SERVER_TITLES[server] + (f" {version}" if version else "")
    return name + data.variants.get(server, "")


def render_server_table(data: ServerCollected, sizes: ServerSizes, *, quick: bool) -> str:
    """The side-by-side table and its footnotes."""
    header = [
        "Workload",
        *(_title(data, s) for s in SERVERS),
        "runyard/MLflow",
        "runyard/FastTrackML",
        "runyard target",
        "met",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    footnotes: Footnotes = []
    for row in server_rows(sizes):
        cells = [row.label]
        for server in SERVERS:
            cells.append(_cell(data, server, row, footnotes))
        ours = data.value("runyard", row)
        for other in ("mlflow", "fasttrackml"):
            cells.append(_ratio(ours, data.value(other, row), row))
        cells += _target_cells(data, row, judged=not quick or row.size_independent)
        lines.append("| " + " | ".join(cells) + " |")
    if footnotes:
        lines.append("")
        for i, (names, text) in enumerate(footnotes, 1):
            lines.append(f"{i}. {', '.join(SERVER_TITLES[n] for n in names)}: {text}.")
    return "\n".join(lines)


def _ratio(ours: float | None, theirs: float | None, row: ServerRow) -> str:
    """``N× faster`` / ``N× slower``; ``N× less`` / ``N× more`` for memory."""
    text = format_ratio(ours, theirs, row.higher_is_better)
    if row.unit == "MB":
        text = text.replace("faster", "less").replace("slower", "more")
    return text


def _cell(data: ServerCollected, server: str, row: ServerRow, footnotes: Footnotes) -> str:
    value = data.value(server, row)
    if value is not None:
        remark = data.note(server, row)
        if remark is None:
            return format_value(value, row.unit)
        return f"{format_value(value, row.unit)} ({_footnote(footnotes, server, remark)})"
    reason = data.not_applicable(server, row)
    if reason is not None:
        return f"n/a ({_footnote(footnotes, server, reason)})"
    failure = data.failures.get(server, {}).get(row.workload_of(server))
    if failure == "unavailable":
        return "unavailable"
    if failure is not None:
        return "**failed**"
    return "not run" if server in data.not_run else "—"


def _footnote(footnotes: Footnotes, server: str, text: str) -> int:
    """The number of the footnote ``text`` (added on first use; servers saying the same
    thing share it)."""
    for number, (names, known) in enumerate(footnotes, 1):
        if known == text:
            if server not in names:
                names.append(server)
            return number
    footnotes.append(([server], text))
    return len(footnotes)


def _target_cells(data: ServerCollected, row: ServerRow, *, judged: bool) -> list[str]:
    if row.target is None:
        return ["", ""]
    text = row.target.describe(row.unit, row.higher_is_better)
    if not judged:
        return [f"{text} (full size only)", "—"]
    ours = data.value("runyard", row)
    if ours is None:
        return [text, "—"]
    met = row.target.met(ours, data.value("mlflow", row), row.higher_is_better)
    return [text, {True: "✅ met", False: "❌ not met", None: "—"}[met]]


def render_server_report(
    data: ServerCollected, sizes: ServerSizes, *, quick: bool, command: str, http_client: str
) -> str:
    """The server section: heading, set-up, table, footnotes and failures."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run: reduced sizes" if quick else "full sizes"
    on = "" if data.postgres is None else " on PostgreSQL"
    store = (
        "each on SQLite in a fresh temporary directory"
        if data.postgres is None
        else f"each on a new database of one {data.postgres} server on this machine"
    )
    ran = [s for s in SERVERS if s in data.samples]
    servers = ", ".join(_title(data, s) for s in ran) or "none ran"
    starts = {s: len(data.samples[s]) for s in ran}
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    parts = [
        f"## Tracking servers{on} — {mode}",
        "",
        f"- Date: {now}; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()};"
        f" load average at the end: {loadavg}",
        f"- Servers: {servers}; {store}, started anew"
        f" for every workload group (starts: {', '.join(f'{k} {v}' for k, v in starts.items())})",
        *(f"- {SERVER_TITLES[s]} code: {src}" for s, src in data.sources.items()),
        f"- raw = plain HTTP/1.1 on keep-alive connections ({http_client} client);"
        " client = the official mlflow 3.17.2 client (MLFLOW_TRACKING_URI)",
        "- Ratios compare runyard with the other server on the same row; RSS is the sum"
        " over the server's whole process tree.",
        "",
        render_server_table(data, sizes, quick=quick),
    ]
    if data.problems:
        parts += ["", "### Failures", ""]
        parts += [f"- {problem.splitlines()[0]}" for problem in data.problems]
    return "\n".join(parts) + "\n"


def format_mb(value: float) -> str:
    """Megabytes, for progress lines."""
    return f"{format_number(value / MB)} MB"
