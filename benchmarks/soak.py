"""The soak suite: does a tracking server's memory stay bounded under long mixed traffic?

``python -m benchmarks --suite soak [--minutes 10]`` starts ``runyard server`` on SQLite in a
fresh temporary directory (:mod:`benchmarks.servers`), waits for its idle memory to settle,
then runs :mod:`benchmarks.soak_workload` against it: several concurrent keep-alive clients
sending a verified mix of REST, artifact and UI requests flat out for the whole duration,
while this process samples the server's process-tree RSS at a fixed interval. The store
keeps growing, which is expected; memory must not. With MLflow selected (and its venv
available) ``mlflow server --workers 1`` gets the same traffic for a shorter time.

The figures: RSS after the warm-up, at the end and at its highest; the slope of RSS over
time (least squares over the samples after the warm-up, MB per minute); and the verdict
``bounded`` when that slope, kept up for 10 minutes, adds less than 10 % of the RSS after
the warm-up (:func:`verdict`). A run of 5 minutes or more that is not bounded fails, as
does any 5xx answer or failed check; shorter runs show the verdict as indicative only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import servers, venvs
from benchmarks.report import cpu_model, format_number
from benchmarks.runner import BENCH_DIR, LOG_DIR, Job, Outcome, describe, log, run_job
from benchmarks.server_report import MB, format_mb
from benchmarks.soak_workload import KINDS

SOAK_START_MARKER = "<!-- soak-results:start -->"
SOAK_END_MARKER = "<!-- soak-results:end -->"
SOAK_SCRIPT = BENCH_DIR / "soak_workload.py"
#: Every sample and count of the last soak run (git-ignored).
RESULTS_JSON = LOG_DIR.parent / "soak-results.json"
PRODUCTS = ("runyard", "mlflow")
TITLES = {"runyard": "runyard", "mlflow": "MLflow"}
#: The verdict: bounded when slope × HORIZON_MIN < FRACTION × RSS after the warm-up.
HORIZON_MIN = 10.0
FRACTION = 0.10
#: Runs at least this long are judged (a growing server fails them); shorter: indicative.
JUDGED_MIN_S = 300.0
MIN_SLOPE_SAMPLES = 3


@dataclass(frozen=True)
class SoakSizes:
    """How long and how hard; the defaults are the full soak."""

    seconds: float = 600.0
    clients: int = 4
    #: MLflow's run, when selected (0: none).
    mlflow_seconds: float = 120.0

    def warmup_s(self, seconds: float) -> float:
        """The warm-up of a run of ``seconds``: 1 min from 5 min on, else a fifth of it."""
        return 60.0 if seconds >= JUDGED_MIN_S else seconds / 5

    def sample_s(self, seconds: float) -> float:
        """The RSS sampling interval: 5 s from 5 min on, else about 60 samples (≥ 0.5 s)."""
        return 5.0 if seconds >= JUDGED_MIN_S else max(0.5, seconds / 60)


SOAK_FULL = SoakSizes()
SOAK_QUICK = SoakSizes(seconds=60.0, mlflow_seconds=30.0)
#: The CI smoke run (``python -m benchmarks --smoke``): runyard only, seconds.
SOAK_SMOKE = SoakSizes(seconds=15.0, clients=3, mlflow_seconds=0.0)


def sizes_for(quick: bool, minutes: float | None, smoke: bool = False) -> SoakSizes:
    """The sizes for a run: smoke, quick or full, with ``--minutes`` overriding the length."""
    sizes = SOAK_SMOKE if smoke else SOAK_QUICK if quick else SOAK_FULL
    return sizes if minutes is None else replace(sizes, seconds=minutes * 60)


@dataclass(frozen=True)
class Sample:
    """One RSS sample: seconds since the load started, bytes, processes in the tree."""

    t_s: float
    rss: int
    procs: int


@dataclass(frozen=True)
class Memory:
    """What the samples of one run say."""

    warmup_s: float
    warm_rss: int | None
    end_rss: int | None
    max_rss: int | None
    slope_mb_min: float | None
    samples_after_warmup: int
    verdict: str  # bounded, growing or not judged

    @property
    def growth_mb(self) -> float | None:
        """The growth over :data:`HORIZON_MIN` minutes at the measured slope."""
        return None if self.slope_mb_min is None else self.slope_mb_min * HORIZON_MIN

    @property
    def budget_mb(self) -> float | None:
        """:data:`FRACTION` of the RSS after the warm-up, in MB."""
        return None if self.warm_rss is None else FRACTION * self.warm_rss / MB


def least_squares_slope(points: list[tuple[float, float]]) -> float | None:
    """The slope of the least-squares line through ``(x, y)`` points (None: under 2 xs)."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def verdict(slope_mb_min: float, warm_mb: float) -> str:
    """``bounded`` when ``slope × 10 min`` is under 10 % of the warm RSS, else ``growing``."""
    return "bounded" if slope_mb_min * HORIZON_MIN < FRACTION * warm_mb else "growing"


def analyze(samples: list[Sample], warmup_s: float) -> Memory:
    """RSS after the warm-up (the first sample at or after it), at the end, max; the slope
    over the samples from the warm-up on (MB/min) and the :func:`verdict`."""
    after = [s for s in samples if s.t_s >= warmup_s]
    slope = least_squares_slope([(s.t_s / 60, s.rss / MB) for s in after])
    warm = after[0].rss if after else None
    judged = "not judged"
    if len(after) >= MIN_SLOPE_SAMPLES and slope is not None and warm:
        judged = verdict(slope, warm / MB)
    return Memory(
        warmup_s=warmup_s,
        warm_rss=warm,
        end_rss=samples[-1].rss if samples else None,
        max_rss=max((s.rss for s in samples), default=None),
        slope_mb_min=slope,
        samples_after_warmup=len(after),
        verdict=judged,
    )


@dataclass
class SoakRun:
    """One server's soak: its samples, the workload's summary and the analysis."""

    server: str
    seconds: float
    sample_s: float
    idle_rss: int = 0
    samples: list[Sample] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    memory: Memory | None = None
    #: Bytes on disk at the end: the database (with its WAL) and the artifacts.
    store_bytes: int = 0
    artifact_bytes: int = 0

    @property
    def judged(self) -> bool:
        """Whether the verdict counts (a run of at least :data:`JUDGED_MIN_S`)."""
        return self.seconds >= JUDGED_MIN_S


@dataclass
class SoakCollected:
    """Every server's run, versions and problems."""

    sizes: SoakSizes
    mode: str  # full, quick or smoke
    runs: dict[str, SoakRun] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)


def sample_while(
    pid: int, worker: threading.Thread, interval_s: float, began: float
) -> list[Sample]:
    """Process-tree RSS of ``pid`` every ``interval_s`` while ``worker`` runs, and once after."""
    samples: list[Sample] = []
    due = began
    while True:
        rss, procs = servers.tree_rss_bytes(pid)
        samples.append(Sample(time.perf_counter() - began, rss, procs))
        if not worker.is_alive():
            return samples
        due += interval_s
        worker.join(timeout=max(0.0, due - time.perf_counter()))
        if not worker.is_alive():
            rss, procs = servers.tree_rss_bytes(pid)
            samples.append(Sample(time.perf_counter() - began, rss, procs))
            return samples


def disk_bytes(paths: Iterable[Path]) -> int:
    """The summed size of the regular files among ``paths``."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total


def soak_job(name: str, url: str, seconds: float, clients: int, http_client: str) -> Job:
    """The workload process against ``url``."""
    args = (
        str(SOAK_SCRIPT),
        "--url",
        url,
        "--seconds",
        f"{seconds:g}",
        "--clients",
        str(clients),
        "--ui",
        "spa" if name == "mlflow" else "server",  # MLflow's pages are client-side routes
        "--http-client",
        http_client,
    )
    return Job(f"soak-{name}", "soak", Path(sys.executable), args)


def soak_server(
    spec: servers.ServerSpec, seconds: float, sizes: SoakSizes, http_client: str
) -> tuple[SoakRun, list[str]]:
    """Start ``spec`` afresh, soak it for ``seconds`` while sampling its RSS; the run and
    its problems."""
    run = SoakRun(spec.name, seconds, sizes.sample_s(seconds))
    problems: list[str] = []
    tag = f"[soak {spec.name}]"
    try:
        with servers.running(spec, "soak") as server:
            pid = server.process.pid
            run.idle_rss, procs, waited = servers.settled_rss(pid)
            log(
                f"{tag} up in {server.startup_s:.2f} s, idle {format_mb(run.idle_rss)} in "
                f"{procs} processes (settled after {waited:.1f} s); {seconds:g} s of traffic…"
            )
            job = soak_job(spec.name, server.url, seconds, sizes.clients, http_client)
            outcomes: list[Outcome] = []
            worker = threading.Thread(target=lambda: outcomes.append(run_job(job)), daemon=True)
            began = time.perf_counter()
            worker.start()
            run.samples = sample_while(pid, worker, run.sample_s, began)
            alive = server.process.poll() is None
            run.store_bytes = disk_bytes(server.scratch.glob("db*"))
            run.artifact_bytes = disk_bytes((server.scratch / "art").rglob("*"))
    except RuntimeError as exc:  # the server did not come up
        return run, [f"{spec.name}: server failed: {exc}"]
    outcome = outcomes[0] if outcomes else None
    if outcome is None:
        return run, [f"{spec.name}: the workload thread produced nothing"]
    log(describe(outcome))
    run.summary = outcome.payload
    run.memory = analyze(run.samples, sizes.warmup_s(seconds))
    if not alive:
        problems.append(f"{spec.name}: the server exited during the soak")
    if run.summary is not None:
        if run.summary.get("server_errors"):
            problems.append(f"{spec.name}: {run.summary['server_errors']} answers were 5xx")
        if run.summary.get("failures"):
            messages = run.summary.get("failure_messages") or ["?"]
            problems.append(f"{spec.name}: {run.summary['failures']} failed checks ({messages[0]})")
    if outcome.error and not problems:
        problems.append(f"{spec.name}: soak workload: {outcome.error}")
    if outcome.error:
        log(f"{outcome.stderr_tail}\n{outcome.error}")
    if run.judged and run.memory.verdict == "growing":
        problems.append(
            f"{spec.name}: memory grows {run.memory.slope_mb_min:+.2f} MB/min after the warm-up "
            f"({run.memory.growth_mb:.1f} MB per {HORIZON_MIN:g} min ≥ the "
            f"{run.memory.budget_mb:.1f} MB budget)"
        )
    return run, problems


def run_soak_suite(
    only: set[str], sizes: SoakSizes, *, mode: str, install: bool, http_client: str = "stdlib"
) -> SoakCollected:
    """The soak of runyard (and MLflow, when selected and ``mlflow_seconds`` > 0)."""
    data = SoakCollected(sizes, mode)
    plan: list[tuple[str, float]] = [("runyard", sizes.seconds)]
    if sizes.mlflow_seconds > 0:
        plan.append(("mlflow", sizes.mlflow_seconds))
    for name, seconds in plan:
        if name not in only:
            data.not_run[name] = "not selected"
            continue
        try:
            if name == "runyard":
                spec = servers.runyard_spec()
            else:
                spec = servers.mlflow_spec("1", install=install)
        except (venvs.EnvironmentUnavailable, servers.ServerUnavailable) as exc:
            log(f"[soak {name}] unavailable: {exc}")
            data.problems.append(f"{name}: {exc}")
            data.not_run[name] = "unavailable"
            continue
        data.versions[name] = spec.version
        if spec.source:
            data.sources[name] = spec.source
        run, problems = soak_server(spec, seconds, sizes, http_client)
        data.runs[name] = run
        data.problems += problems
        if run.memory is not None:
            m = run.memory
            log(
                f"[soak {name}] RSS warm {fmt_mb(m.warm_rss)}, end {fmt_mb(m.end_rss)}, "
                f"max {fmt_mb(m.max_rss)}, slope {fmt_slope(m.slope_mb_min)}: {m.verdict}"
            )
    save_json(data)
    return data


def save_json(data: SoakCollected) -> None:
    """Write every sample and count to :data:`RESULTS_JSON`."""
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    dump = {
        "mode": data.mode,
        "sizes": asdict(data.sizes),
        "versions": data.versions,
        "runs": {
            name: {
                "seconds": run.seconds,
                "sample_s": run.sample_s,
                "idle_rss": run.idle_rss,
                "store_bytes": run.store_bytes,
                "artifact_bytes": run.artifact_bytes,
                "samples": [asdict(s) for s in run.samples],
                "memory": None if run.memory is None else asdict(run.memory),
                "summary": run.summary,
            }
            for name, run in data.runs.items()
        },
        "problems": data.problems,
    }
    RESULTS_JSON.write_text(json.dumps(dump, indent=1))
    log(f"all soak numbers: {RESULTS_JSON}")


# -- rendering ------------------------------------------------------------------------------


def fmt_mb(value: int | None) -> str:
    """Bytes as MB, or a dash."""
    return "—" if value is None else format_mb(value)


def fmt_slope(value: float | None) -> str:
    """A slope in MB/min with its sign, or a dash."""
    return "—" if value is None else f"{value:+.2f} MB/min"


def fmt_duration(seconds: float) -> str:
    """``10 min``, ``90 s``."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


def window_rates(summary: dict[str, Any]) -> tuple[float, float, float] | None:
    """Requests/s over the first and the last minute (a third of shorter runs) of full
    10-s buckets, and that window's seconds; None when there are fewer than two full
    buckets."""
    buckets, width = summary.get("buckets", []), float(summary.get("bucket_s", 10.0))
    full = min(len(buckets), int(float(summary.get("seconds", 0.0)) // width))
    if full < 2:
        return None
    n = max(1, min(int(60 // width), full // 3))
    seconds = n * width
    return sum(buckets[:n]) / seconds, sum(buckets[full - n : full]) / seconds, seconds


def rate_cell(rates: tuple[float, float, float] | None) -> str:
    """``600 → 480 req/s (first vs last 60 s)``."""
    if rates is None:
        return "—"
    first, last, seconds = rates
    return f"{format_number(first)} → {format_number(last)} req/s (first vs last {seconds:g} s)"


def verdict_cell(run: SoakRun) -> str:
    """The verdict, bold, marked indicative for short runs."""
    if run.memory is None:
        return "—"
    if run.memory.verdict == "not judged":
        return "not judged (too few samples after the warm-up)"
    text = f"**{run.memory.verdict}**"
    return text if run.judged else f"{text} (indicative: run < {JUDGED_MIN_S / 60:g} min)"


def memory_rows(run: SoakRun) -> list[tuple[str, str]]:
    """(label, cell) pairs of the memory table for one run."""
    summary, m = run.summary or {}, run.memory
    rates = window_rates(summary) if summary else None
    growth = "—"
    if m is not None and m.growth_mb is not None and m.budget_mb is not None:
        growth = f"{m.growth_mb:+.1f} MB / {m.budget_mb:.1f} MB"
    rate = summary.get("requests_per_s")
    return [
        ("duration of the traffic", fmt_duration(run.seconds)),
        (
            "requests (rate)",
            f"{summary['requests']:,} ({format_number(rate)} req/s)" if summary else "—",
        ),
        ("request rate, first → last window", rate_cell(rates)),
        (
            "written to the store",
            f"{summary['runs_created']:,} runs, {summary['points_logged']:,} metric points, "
            f"{summary['artifacts_uploaded']:,} artifacts"
            if summary
            else "—",
        ),
        (
            "on disk at the end: database (with WAL) / artifacts",
            f"{fmt_mb(run.store_bytes)} / {fmt_mb(run.artifact_bytes)}" if summary else "—",
        ),
        ("RSS idle, before the traffic", fmt_mb(run.idle_rss or None)),
        (
            f"RSS after the warm-up ({fmt_duration(m.warmup_s) if m else '—'})",
            fmt_mb(m.warm_rss if m else None),
        ),
        ("RSS at the end", fmt_mb(m.end_rss if m else None)),
        ("RSS max", fmt_mb(m.max_rss if m else None)),
        (
            "RSS slope after the warm-up (least squares)",
            fmt_slope(m.slope_mb_min if m else None)
            + (f" over {m.samples_after_warmup} samples" if m else ""),
        ),
        (
            f"growth in {HORIZON_MIN:g} min at that slope / budget ({FRACTION:.0%} of warm RSS)",
            growth,
        ),
        ("verdict", verdict_cell(run)),
        (
            "5xx answers / failed checks",
            f"{summary.get('server_errors', 0)} / {summary.get('failures', 0)}" if summary else "—",
        ),
    ]


def render_tables(data: SoakCollected) -> list[str]:
    """The memory table and the requests-per-kind table."""
    names = [p for p in PRODUCTS if p in data.runs]
    if not names:
        return ["No server ran."]

    def title(name: str) -> str:
        return f"{TITLES[name]} {data.versions.get(name, '')}".strip()

    lines = ["| | " + " | ".join(title(n) for n in names) + " |", "|---|" + "---|" * len(names)]
    rows = {n: memory_rows(data.runs[n]) for n in names}
    for i, (label, _) in enumerate(rows[names[0]]):
        lines.append(f"| {label} | " + " | ".join(rows[n][i][1] for n in names) + " |")
    lines += ["", "Requests per kind (p50 / p99 latency of the HTTP exchange):", ""]
    header = ["request"]
    for name in names:
        header += [f"{TITLES[name]}: requests", "p50", "p99"]
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for kind in KINDS:
        cells = [kind]
        for name in names:
            figures = ((data.runs[name].summary or {}).get("kinds") or {}).get(kind)
            if not figures:
                cells += ["—", "", ""]
                continue
            cells.append(f"{figures['requests']:,}")
            for key in ("p50_ms", "p99_ms"):
                value = figures.get(key)
                cells.append("" if value is None else f"{format_number(value)} ms")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(data: SoakCollected, *, command: str) -> str:
    """The soak section: heading, set-up, tables and failures."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    modes = {"full": "full length", "quick": "quick run", "smoke": "CI smoke run"}
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    sizes = data.sizes
    runyard = data.runs.get("runyard")
    interval = f"{runyard.sample_s:g} s" if runyard else "5 s"
    mlflow = data.runs.get("mlflow")
    ran = ["`runyard server` (its defaults)"] if runyard else []
    if mlflow:
        ran.append(f"MLflow `mlflow server --workers 1` for {fmt_duration(mlflow.seconds)}")
    servers_line = "; ".join(ran) or "none ran"
    parts = [
        f"## Soak: memory under mixed traffic — {modes.get(data.mode, data.mode)}",
        "",
        f"- Date: {now}; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()};"
        f" load average at the end: {loadavg}",
        f"- Servers: {servers_line}; each on SQLite in a fresh temporary directory, the"
        " client on the same machine",
        *(f"- {TITLES[p]} code: {src}" for p, src in data.sources.items()),
        f"- Traffic: {sizes.clients} concurrent clients (threads, one keep-alive HTTP/1.1"
        " connection each), flat out: runs created, log-batch, runs/get, runs/search with"
        " filters and paging, metric histories, small artifacts up/down/listed,"
        " experiments/search, UI pages, set/delete-tag, 404s and bad filters; every answer"
        " checked against what the client wrote (benchmarks/soak_workload.py)",
        f"- Memory: the server's process-tree RSS every {interval}; the slope is the"
        " least-squares line through the samples after the warm-up. Verdict **bounded** when"
        f" slope × {HORIZON_MIN:g} min < {FRACTION:.0%} of the RSS after the warm-up; runs"
        f" under {JUDGED_MIN_S / 60:g} min are indicative only.",
        *(f"- {TITLES[p]}: {why}" for p, why in data.not_run.items() if why != "not selected"),
        "",
        *render_tables(data),
    ]
    if data.problems:
        parts += ["", "### Failures", ""]
        parts += [f"- {problem.splitlines()[0]}" for problem in data.problems]
    return "\n".join(parts) + "\n"
