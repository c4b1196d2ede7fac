"""The UI suite: how fast the web UI's pages are at scale, in a real headless Chromium.

Stores are seeded straight through each library's SQL store (:mod:`benchmarks.ui_seed`): runyard
with 100,000 runs (10 params, 10 metrics each) plus 50 runs × 10,000 metric points, and — for the
side-by-side — runyard and MLflow 3.17.2 with the same 10,000 runs (seeding MLflow's store with
100,000 runs takes ~30 min here, so it is compared at 10k). Seeded databases are cached under
``benchmarks/.work/ui-cache/`` and copied into a fresh scratch directory per server.

Measured with Playwright driving the Debian ``chromium`` (``RUNYARD_CHROMIUM`` overrides), each
a median over repetitions after one warm-up:

* runs page first screen: from navigation start until the newest run's name is visible in the
  runs table (runyard ``/experiments/<id>``; MLflow ``/#/experiments/<id>/runs``, its
  model-training view);
* sort round trip (runyard): click a metric column's header until the re-sorted table is in place;
* filter round trip (runyard): type a filter, Enter, until the filtered table is in place;
* chart (runyard): ``/metrics`` of 50 runs × 10,000 points until every run's trace is drawn.

Targets (issue 8): first screen ≤ 1 s and sort/filter round trip ≤ 300 ms at 100k runs; the
50 × 10k chart ≤ 1.5 s.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import servers, venvs
from benchmarks.report import cpu_model, format_number
from benchmarks.runner import BENCH_DIR, log

UI_START_MARKER = "<!-- ui-results:start -->"
UI_END_MARKER = "<!-- ui-results:end -->"
CACHE_DIR = BENCH_DIR / ".work" / "ui-cache"
SEED_SCRIPT = BENCH_DIR / "ui_seed.py"


@dataclass(frozen=True)
class Sizes:
    """Store sizes and repetitions."""

    big_runs: int
    compare_runs: int
    chart_runs: int
    chart_points: int
    reps: int


FULL = Sizes(100_000, 10_000, 50, 10_000, 5)
QUICK = Sizes(2_000, 500, 5, 1_000, 2)
TARGETS = {"first_screen": 1.0, "sort": 0.3, "filter": 0.3, "chart": 1.5}


def _chromium() -> str:
    path = os.environ.get("RUNYARD_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError("the UI suite needs Chromium: apt-get install chromium")
    return path


def seeded_store(
    lib: str, python: Path, runs: int, chart_runs: int, chart_points: int
) -> tuple[Path, dict[str, Any]]:
    """A cached seeded database for ``lib`` (seeded now when missing) and its seed facts."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    name = f"{lib}-{runs}-{chart_runs}x{chart_points}"
    db, facts_path = CACHE_DIR / f"{name}.db", CACHE_DIR / f"{name}.json"
    if db.exists() and facts_path.exists():
        return db, json.loads(facts_path.read_text())
    partial = CACHE_DIR / f"{name}.partial.db"
    partial.unlink(missing_ok=True)
    log(f"[{lib}] seeding {runs:,} runs (+{chart_runs} × {chart_points:,} points)…")
    proc = subprocess.run(
        [str(python), str(SEED_SCRIPT), "--lib", lib, "--db", str(partial),
         "--artifacts", str(CACHE_DIR / "artifacts"), "--runs", str(runs),
         "--chart-runs", str(chart_runs), "--chart-points", str(chart_points)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"seeding {lib} failed:\n{proc.stderr[-2000:]}")
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    partial.rename(db)
    facts_path.write_text(json.dumps(facts))
    log(f"[{lib}] seeded in {facts['seconds']:.0f} s")
    return db, facts


class Scratch:
    """A server over a copy of a seeded database, in a fresh scratch directory."""

    def __init__(self, spec: servers.ServerSpec, db: Path, label: str) -> None:
        import tempfile

        self._tmp = tempfile.TemporaryDirectory(prefix=f"runyard-bench-ui-{spec.name}-")
        scratch = Path(self._tmp.name)
        shutil.copyfile(db, scratch / "db")
        self.server = servers.start(spec, scratch, f"ui-{label}")

    def close(self) -> None:
        servers.stop(self.server)
        self._tmp.cleanup()


def _timed(page: Any, action: Callable[[], None], ready: Callable[[], None]) -> float:
    began = time.perf_counter()
    action()
    ready()
    return time.perf_counter() - began


def _median(
    page: Any, reps: int, action: Callable[[int], None], ready: Callable[[], None]
) -> float:
    action(-1)  # warm-up
    ready()
    times = []
    for i in range(reps):
        times.append(_timed(page, functools.partial(action, i), ready))
    return statistics.median(times)


def _swap_marker(page: Any) -> None:
    page.evaluate("document.getElementById('runs-results').dataset.stale = '1'")


def _swapped(page: Any) -> None:
    page.wait_for_function(
        "() => { const r = document.getElementById('runs-results');"
        " return r && !r.dataset.stale && !r.classList.contains('runs-results-loading'); }"
    )


def measure_runyard(
    browser: Any,
    url: str,
    facts: dict[str, Any],
    sizes: Sizes,
    runs: int,
    charts: bool,
    out: dict[str, float],
) -> None:
    """First screen, sort and filter round trips (and the chart when ``charts``) on runyard,
    into ``out`` as they are measured (a failure keeps what was measured before it)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(60_000)
    exp = facts["experiment_id"]
    newest = f"run-{runs - 1}"

    def open_runs(i: int) -> None:
        page.goto(f"{url}/experiments/{exp}", wait_until="commit")

    out["first_screen"] = _median(
        page, sizes.reps, open_runs,
        lambda: page.locator("#runs-table").get_by_text(newest, exact=True).wait_for(),
    )  # fmt: skip

    def sort(i: int) -> None:
        _swap_marker(page)
        page.locator('th[data-col="metrics.m0"] a.sort-link').click()

    out["sort"] = _median(page, sizes.reps, sort, lambda: _swapped(page))

    def filter_runs(i: int) -> None:
        _swap_marker(page)
        box = page.locator("#runs-filter")
        box.fill(f"metrics.m1 > 0.{(i + 2) % 10} and params.p8 = 'adam'")
        box.press("Enter")

    out["filter"] = _median(page, sizes.reps, filter_runs, lambda: _swapped(page))
    if charts:
        ids = ",".join(facts["chart_run_ids"])
        want = len(facts["chart_run_ids"])

        def open_chart(i: int) -> None:
            page.goto(f"{url}/metrics?runs={ids}&keys=loss", wait_until="commit")

        def drawn() -> None:
            page.wait_for_function(
                "n => [...document.querySelectorAll('.js-plotly-plot')].some(p => p.data &&"
                " new Set(p.data.filter(t => t.x && t.x.length).map(t => t.name)).size >= n &&"
                " p.querySelectorAll('.scatterlayer .trace, .gl-container canvas').length > 0)",
                arg=want,
            )

        out["chart"] = _median(page, sizes.reps, open_chart, drawn)
    page.close()


def measure_mlflow(
    browser: Any, url: str, facts: dict[str, Any], sizes: Sizes, runs: int
) -> dict[str, float]:
    """First screen of MLflow's runs page (its React app, hash route)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    exp = facts["experiment_id"]
    newest = f"run-{runs - 1}"

    def open_runs(i: int) -> None:
        page.goto("about:blank")
        page.goto(
            f"{url}/#/experiments/{exp}/runs?workflowType=machine_learning", wait_until="commit"
        )

    first = _median(
        page, sizes.reps, open_runs,
        lambda: page.get_by_text(newest, exact=True).first.wait_for(),
    )  # fmt: skip
    page.close()
    return {"first_screen": first}


def run_ui_suite(
    quick: bool, install: bool, with_mlflow: bool
) -> tuple[dict[str, Any], list[str], Sizes]:
    """Seed (or reuse) the stores, start each server, measure; results, problems, sizes."""
    from playwright.sync_api import sync_playwright

    sizes = QUICK if quick else FULL
    problems: list[str] = []
    results: dict[str, Any] = {}
    me = Path(sys.executable)
    big_db, big = seeded_store("runyard", me, sizes.big_runs, sizes.chart_runs, sizes.chart_points)
    small_db, small = seeded_store("runyard", me, sizes.compare_runs, 0, 0)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox"]
        )
        try:
            for label, db, facts, runs, charts in (
                ("big", big_db, big, sizes.big_runs, True),
                ("compare", small_db, small, sizes.compare_runs, False),
            ):
                server = Scratch(servers.runyard_spec(), db, label)
                try:
                    log(f"[runyard] UI with {runs:,} runs…")
                    out: dict[str, float] = {}
                    results[f"runyard-{label}"] = out
                    measure_runyard(browser, server.server.url, facts, sizes, runs, charts, out)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    problems.append(f"runyard ({runs:,} runs): {exc}")
                finally:
                    server.close()
            if with_mlflow:
                try:
                    python = venvs.ensure_venv(venvs.MLFLOW, install=install)
                    ml_db, ml_facts = seeded_store("mlflow", python, sizes.compare_runs, 0, 0)
                    server = Scratch(servers.mlflow_spec(None, install=install), ml_db, "mlflow")
                    try:
                        log(f"[mlflow] UI with {sizes.compare_runs:,} runs…")
                        results["mlflow-compare"] = measure_mlflow(
                            browser, server.server.url, ml_facts, sizes, sizes.compare_runs
                        )
                        results["mlflow-version"] = server.server.spec.version
                    finally:
                        server.close()
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    problems.append(f"mlflow: {exc}")
        finally:
            browser.close()
    return results, problems, sizes


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{format_number(value * 1000)} ms"


def render(
    results: dict[str, Any], problems: list[str], sizes: Sizes, *, quick: bool, command: str
) -> str:
    """The Markdown section for RESULTS.md."""
    title = "quick sizes (smoke run, not for comparison)" if quick else "full sizes"
    big, small = results.get("runyard-big", {}), results.get("runyard-compare", {})
    mlflow = results.get("mlflow-compare", {})
    lines = [
        f"## Web UI — {title}",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}; "
        f"headless Chromium ({_chromium()}) driven by Playwright, 1400×900",
        f"- Stores seeded through each library's SQL store (SQLite); {sizes.big_runs:,} runs × "
        f"(10 params, 10 metrics) for runyard, {sizes.compare_runs:,} runs side by side with "
        f"MLflow {results.get('mlflow-version', '3.17.2')}; chart: {sizes.chart_runs} runs × "
        f"{sizes.chart_points:,} points. Medians of {sizes.reps} after a warm-up",
        "",
        "| Measure | runyard, "
        + f"{sizes.big_runs:,} runs | runyard, {sizes.compare_runs:,} runs | "
        f"MLflow, {sizes.compare_runs:,} runs | target | met |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "first_screen": "Runs page, first screen (newest run visible)",
        "sort": "Sort by a metric column (click → table replaced)",
        "filter": "Filter `metrics.m1 > x and params.p8 = 'adam'` (Enter → table replaced)",
        "chart": f"Chart: {sizes.chart_runs} runs × {sizes.chart_points:,} points drawn",
    }
    for key, name in names.items():
        ours = big.get(key)
        met = "" if ours is None or quick else ("yes" if ours <= TARGETS[key] else "NO")
        lines.append(
            f"| {name} | {_ms(ours)} | {_ms(small.get(key))} | {_ms(mlflow.get(key))} | "
            f"≤ {_ms(TARGETS[key])} | {met} |"
        )
    if problems:
        lines += ["", "Problems:", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"
