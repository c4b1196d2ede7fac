"""Collect workload outcomes and render them as a Markdown report."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.runner import Outcome
from benchmarks.scale_workloads import SCALE_FULL, SCALE_GROUPS, SCALE_QUICK, ScaleSizes
from benchmarks.startup_workload import (
    STARTUP_FULL,
    STARTUP_GROUPS,
    STARTUP_QUICK,
    StartupSizes,
)
from benchmarks.workloads import GROUPS, Sizes

START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"

COLUMN_TITLES = {"runyard": "runyard", "mlflow": "MLflow", "trackio": "trackio"}
#: Every embedded workload group (all scripts) and the workloads it runs.
ALL_GROUPS: dict[str, tuple[str, ...]] = {**STARTUP_GROUPS, **GROUPS, **SCALE_GROUPS}
DEFAULT_NOTES = """## Notes

Hand-written observations go here; `python -m benchmarks` only rewrites the
block between the `results` markers above.
"""


@dataclass(frozen=True)
class Target:
    """runyard's goal for a row: a bound, or a factor of trackio's value."""

    bound: float
    higher_is_better: bool
    relative_to_trackio: bool = False

    def describe(self, unit: str) -> str:
        """Human-readable target, e.g. ``≥ 200,000 calls/s``."""
        if self.relative_to_trackio:
            return f"≤ {self.bound:g}× trackio"
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {self.bound:,g} {unit}"

    def met(self, value: float, trackio_value: float | None) -> bool | None:
        """Whether ``value`` meets the target (None when it cannot be judged)."""
        bound = self.bound
        if self.relative_to_trackio:
            if trackio_value is None:
                return None
            bound *= trackio_value
        return value >= bound if self.higher_is_better else value <= bound


@dataclass(frozen=True)
class Row:
    """One table row: a field of a workload's result, compared across columns."""

    label: str
    workload: str
    result_key: str
    unit: str
    higher_is_better: bool
    target: Target | None = None
    with_trackio: bool = False
    mlflow_column: str = "mlflow"
    mlflow_na: str = ""  # why MLflow has no such thing: its cell says "n/a (<this>)"
    ratio_words: tuple[str, str] = ("faster", "slower")


def table_rows(sizes: Sizes) -> list[Row]:
    """The report's rows for the given workload sizes."""
    loop = f"log_metric × {sizes.log_metric_points:,}"
    batch = f"log_batch {sizes.batch_count} × {sizes.batch_size:,} metrics"
    runs = f"{sizes.runs:,} runs"
    return [
        Row(
            f"{loop}: call-site rate",
            "log_metric",
            "calls_per_s",
            "calls/s",
            higher_is_better=True,
            target=Target(200_000, True),
            with_trackio=True,
        ),
        Row(
            f"{loop}: end to end (run start → end, all stored)",
            "log_metric",
            "end_to_end_s",
            "s",
            higher_is_better=False,
            target=Target(1.2, False, relative_to_trackio=True),
            with_trackio=True,
        ),
        Row(
            f"{loop}: call-site rate, vs MLflow async logging",
            "log_metric",
            "calls_per_s",
            "calls/s",
            higher_is_better=True,
            mlflow_column="mlflow_async",
        ),
        Row(
            f"{loop}: end to end, vs MLflow async logging",
            "log_metric",
            "end_to_end_s",
            "s",
            higher_is_better=False,
            mlflow_column="mlflow_async",
        ),
        Row(
            f"{batch}: throughput (until all stored)",
            "log_batch",
            "points_per_s",
            "points/s",
            higher_is_better=True,
            target=Target(300_000, True),
        ),
        Row(
            f"{batch}: total time (until end_run, all stored)",
            "log_batch",
            "total_s",
            "s",
            higher_is_better=False,
        ),
        Row(
            f"create {runs} (5 params, 5 metrics, 3 tags each)",
            "runs",
            "runs_per_s",
            "runs/s",
            higher_is_better=True,
            target=Target(1_000, True),
        ),
        Row(
            f"search_runs, filter + order_by, top 100 of {runs} (median)",
            "search",
            "median_ms",
            "ms",
            higher_is_better=False,
            target=Target(10, False),
        ),
        Row(
            f"page through {runs}, {sizes.page_size:,} per page (median)",
            "paging",
            "median_s",
            "s",
            higher_is_better=False,
            target=Target(0.3, False),
        ),
        Row(
            f"get_metric_history, {sizes.history_points:,} points (median)",
            "history",
            "median_s",
            "s",
            higher_is_better=False,
            target=Target(0.2, False),
        ),
    ]


def scale_rows(scale: ScaleSizes, startup: StartupSizes) -> list[Row]:
    """The rows of the ``scale``, ``history_1m`` and ``startup`` groups."""
    store = (
        f"{scale.scale_runs:,} runs × {scale.scale_metrics} metrics × {scale.scale_params} params"
    )
    search = f"search_runs over {store}"
    history = f"{scale.history_points:,}-point history"
    reps = f"median of up to {scale.search_reps}"
    return [
        Row(
            f"{search}: `metrics.m1 > 0.5 and params.p1 = 'x'` by `metrics.m2 DESC`, top 100"
            f" ({reps})",
            "scale_search_order",
            "median_ms",
            "ms",
            higher_is_better=False,
            target=Target(50, False),
        ),
        Row(
            f"{search}: the same filter, default order (start_time DESC), top 100 ({reps})",
            "scale_search_default",
            "median_ms",
            "ms",
            higher_is_better=False,
        ),
        Row(
            f"{search}: `metrics.m3 > 0.999` by `params.p2`, top 100 ({reps})",
            "scale_search_selective",
            "median_ms",
            "ms",
            higher_is_better=False,
        ),
        Row(
            f"get_metric_history, {history} (median of {scale.history_reps})",
            "history_1m_raw",
            "median_s",
            "s",
            higher_is_better=False,
        ),
        Row(
            f"get_metric_history, {history}: peak RSS growth of the process during a read",
            "history_1m_raw",
            "rss_growth_mb",
            "MB",
            higher_is_better=False,
            ratio_words=("less", "more"),
        ),
        Row(
            f"{history} downsampled to ≤ {scale.downsample_points:,} points"
            f" (median of {scale.history_reps})",
            "history_1m_downsampled",
            "median_ms",
            "ms",
            higher_is_better=False,
            target=Target(50, False),
            mlflow_na="no embedded API",
        ),
        Row(
            f"`import runyard` / `import mlflow`, fresh interpreter, minus a bare start"
            f" (median of {startup.import_reps})",
            "startup",
            "import_net_s",
            "s",
            higher_is_better=False,
            target=Target(0.2, False),
        ),
        Row(
            f"bare interpreter start, `python -c pass` (median of {startup.import_reps})",
            "startup",
            "python_pass_s",
            "s",
            higher_is_better=False,
        ),
        Row(
            f"CLI `runyard --help` / `mlflow --help` (median of {startup.cli_reps})",
            "startup",
            "help_s",
            "s",
            higher_is_better=False,
        ),
        Row(
            f"CLI `runyard --version` / `mlflow --version` (median of {startup.cli_reps})",
            "startup",
            "version_s",
            "s",
            higher_is_better=False,
        ),
    ]


@dataclass
class Collected:
    """Workload results by column (runyard, mlflow, mlflow_async, trackio)."""

    values: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    pythons: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    not_run: set[str] = field(default_factory=set)

    def add(self, outcome: Outcome) -> None:
        """Record the results (and errors) of one job."""
        column, payload = outcome.job.column, outcome.payload
        if payload is not None:
            self.versions[column] = str(payload.get("version", "?"))
            self.pythons[column] = f"{payload.get('python')} ({payload.get('executable')})"
            for name, result in payload.get("results", {}).items():
                if "error" in result:
                    self.fail(column, name, result["error"])
                    self.problems.append(f"{column} / {name}: {result['error']}")
                else:
                    self.values.setdefault(column, {})[name] = result
        if outcome.error:
            if payload is None:  # the process failed as a whole
                self.problems.append(f"{column} / {outcome.job.group}: {outcome.error}")
            for name in ALL_GROUPS[outcome.job.group]:
                if name not in self.values.get(column, {}):
                    self.failures.setdefault(column, {}).setdefault(name, "failed")

    def fail(self, column: str, workload: str, message: str) -> None:
        """Mark one cell as failed."""
        self.failures.setdefault(column, {})[workload] = message

    def unavailable(self, column: str, reason: str) -> None:
        """Mark a whole column as not run."""
        self.problems.append(f"{column}: {reason}")
        for workloads in ALL_GROUPS.values():
            for name in workloads:
                self.fail(column, name, "unavailable")

    def value(self, column: str, row: Row) -> float | None:
        """The number for ``row`` in ``column``, if that workload succeeded."""
        result = self.values.get(column, {}).get(row.workload)
        return None if result is None else float(result[row.result_key])

    def cell(self, column: str, row: Row) -> str:
        """The formatted cell for ``row`` in ``column``."""
        if row.mlflow_na and column == row.mlflow_column:
            return f"n/a ({row.mlflow_na})"
        value = self.value(column, row)
        if value is not None:
            return format_value(value, row.unit)
        if row.workload in self.failures.get(column, {}):
            return "**failed**"
        return "not run" if column in self.not_run else "—"


def format_number(value: float) -> str:
    """Three significant figures, with thousands separators for large numbers."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_value(value: float, unit: str) -> str:
    """``value`` followed by its unit."""
    return f"{format_number(value)} {unit}"


def format_ratio(
    ours: float | None,
    theirs: float | None,
    higher_is_better: bool,
    words: tuple[str, str] = ("faster", "slower"),
) -> str:
    """How much faster (or slower: ``words``) runyard is than the other library."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return "—"
    factor = ours / theirs if higher_is_better else theirs / ours
    if factor >= 1:
        return f"{format_number(factor)}× {words[0]}"
    return f"{format_number(1 / factor)}× {words[1]}"


def format_met(row: Row, data: Collected, full_size: bool) -> tuple[str, str]:
    """The target text and its met / not met mark for runyard."""
    if row.target is None:
        return "", ""
    text = row.target.describe(row.unit)
    if not full_size:
        return f"{text} (full size only)", "—"
    value = data.value("runyard", row)
    if value is None:
        return text, "—"
    met = row.target.met(value, data.value("trackio", row))
    return text, {True: "✅ met", False: "❌ not met", None: "—"}[met]


def render_table(
    data: Collected, sizes: Sizes, full_size: bool, extra_rows: list[Row] | None = None
) -> str:
    """The side-by-side Markdown table: :func:`table_rows`, then ``extra_rows``."""

    def title(column: str) -> str:
        version = data.versions.get(column)
        return COLUMN_TITLES[column] + (f" {version}" if version else "")

    header = [
        "Workload",
        title("runyard"),
        title("mlflow"),
        title("trackio"),
        "runyard vs MLflow",
        "runyard vs trackio",
        "runyard target",
        "met",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in [*table_rows(sizes), *(extra_rows or [])]:
        ours = data.value("runyard", row)
        target, met = format_met(row, data, full_size)
        cells = [
            row.label,
            data.cell("runyard", row),
            data.cell(row.mlflow_column, row),
            data.cell("trackio", row) if row.with_trackio else "",
            format_ratio(
                ours, data.value(row.mlflow_column, row), row.higher_is_better, row.ratio_words
            ),
            format_ratio(ours, data.value("trackio", row), row.higher_is_better)
            if row.with_trackio
            else "",
            target,
            met,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU model name, as far as the platform tells."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def setup_note(data: Collected) -> str | None:
    """One line on the untimed set-up of the scale groups (seeding, logging the history)."""
    parts = []
    for workload, key, rate_key, what, unit in (
        ("scale_search_order", "seed_s", "seed_runs_per_s", "seeding the scale store", "runs/s"),
        ("history_1m_raw", "log_s", "log_points_per_s", "logging the long history", "points/s"),
    ):
        done = [
            f"{COLUMN_TITLES[column]} {format_number(result[key])} s"
            f" ({format_value(result[rate_key], unit)})"
            for column in ("runyard", "mlflow")
            if (result := data.values.get(column, {}).get(workload)) is not None
        ]
        if done:
            parts.append(f"{what}: {', '.join(done)}")
    if not parts:
        return None
    return (
        "- Untimed set-up: "
        + "; ".join(parts)
        + " (MLflow's scale store is written with `sqlite3` `executemany` in its own schema,"
        " runyard's through its SQL store; see benchmarks/README.md)"
    )


def reps_note(data: Collected, scale: ScaleSizes) -> str:
    """How the scale searches are repeated, and which ran fewer times (time budget)."""
    short = [
        f"{COLUMN_TITLES[column]} {workload.removeprefix('scale_search_')} {result['reps']}"
        + (" (the verifying run itself, no warm-up)" if result.get("cold") else "")
        for column in ("runyard", "mlflow")
        for workload in ALL_GROUPS["scale"]
        if (result := data.values.get(column, {}).get(workload)) is not None
        and result["reps"] < scale.search_reps
    ]
    return (
        f"- Scale searches: verified once (the warm-up), then repeated {scale.search_reps} times,"
        f" or fewer (at least {scale.search_min_reps}) once {scale.search_budget_s:g} s have"
        f" been spent; a search whose verifying run took {scale.search_budget_s:g} s or more is"
        " timed by that run alone" + (f"; repetitions: {', '.join(short)}" if short else "")
    )


def render_report(
    data: Collected,
    sizes: Sizes,
    *,
    quick: bool,
    command: str,
    scale_sizes: ScaleSizes | None = None,
    startup_sizes: StartupSizes | None = None,
) -> str:
    """The full Markdown block: heading, machine, table and any failures."""
    scale = scale_sizes or (SCALE_QUICK if quick else SCALE_FULL)
    startup = startup_sizes or (STARTUP_QUICK if quick else STARTUP_FULL)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run: reduced sizes, targets not judged" if quick else "full sizes"
    ran = [column for column in COLUMN_TITLES if column in data.versions]
    versions = ", ".join(f"{COLUMN_TITLES[c]} {data.versions[c]}" for c in ran)
    pythons = "; ".join(f"{c}: {data.pythons[c]}" for c in ran)
    parts = [
        f"## Results — {mode}",
        "",
        f"- Date: {now}; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        f"- Libraries: {versions or 'none ran'}",
        f"- Python: {pythons or platform.python_version()}",
        "- Rates are calls (or points, runs) per second over the timed loop; times are"
        ' wall-clock `time.perf_counter()` seconds; "faster" compares runyard with the'
        " other library on the same row.",
        "- Start-up rows: each command is a fresh process, run once untimed first; the `import`"
        " row subtracts the bare interpreter start of the same interpreter (its own row).",
        *filter(None, [setup_note(data)]),
        reps_note(data, scale),
        "",
        render_table(data, sizes, full_size=not quick, extra_rows=scale_rows(scale, startup)),
    ]
    if data.problems:
        parts += ["", "### Failures", ""]
        parts += [f"- {problem.splitlines()[0]}" for problem in data.problems]
    return "\n".join(parts) + "\n"


def write_results(
    path: Path,
    block: str,
    markers: tuple[str, str] = (START_MARKER, END_MARKER),
    after: str | None = None,
) -> None:
    """Write ``block`` between ``markers`` in ``path``, keeping everything else.

    When ``path`` has no such markers yet, the block goes right after the
    ``after`` marker if that is present, otherwise at the top (below the title).
    """
    start_marker, end_marker = markers
    generated = f"{start_marker}\n{block}{end_marker}"
    if not path.exists():
        path.write_text(f"# runyard benchmark results\n\n{generated}\n\n{DEFAULT_NOTES}")
        return
    text = path.read_text()
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        text = text[:start] + generated + text[end + len(end_marker) :]
    elif after is not None and (anchor := text.find(after)) != -1:
        cut = anchor + len(after)
        text = f"{text[:cut]}\n\n{generated}{text[cut:]}"
    elif text.startswith("# "):
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{generated}\n\n{rest.lstrip()}"
    else:
        text = f"{generated}\n\n{text}"
    path.write_text(text)
