"""The embedded suite's scale, 1M-history and start-up groups, at tiny sizes against runyard.

The full-size groups (and the MLflow side) run through ``python -m benchmarks``; here the same
workload code seeds and reads a real runyard SQLite store, and the report renders their rows.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import runyard
from benchmarks.__main__ import plan
from benchmarks.report import Collected, render_report
from benchmarks.runner import SCALE_SCRIPT, STARTUP_SCRIPT, WORKLOADS_SCRIPT, Job, Outcome
from benchmarks.scale_workloads import (
    SCALE_QUICK,
    SEARCHES,
    ScaleSizes,
    ScaleWorkloads,
    VerificationError,
    peak_rss,
    seeded_values,
)
from benchmarks.startup_workload import StartupSizes, startup, timed
from benchmarks.workloads import QUICK
from runyard.tracking.registry import release

TINY = ScaleSizes(
    scale_runs=400,
    seed_chunk=150,
    search_reps=3,
    search_min_reps=1,
    history_points=3_000,
    history_reps=2,
    downsample_points=100,
)


@pytest.fixture
def bench(tmp_path: Path, tracking_env: str) -> Iterator[ScaleWorkloads]:
    """The scale workloads bound to runyard and a fresh ``<tmp>/bench.db``."""
    workloads = ScaleWorkloads(runyard, "runyard", TINY, tmp_path)
    yield workloads
    release(f"sqlite:///{tmp_path / 'bench.db'}", flush=False)


def test_seeded_values_are_the_same_for_every_library() -> None:
    first, again = seeded_values(TINY), seeded_values(TINY)
    assert first == again
    assert len(first) == TINY.scale_runs
    assert all(len(r.metrics) == 20 and len(r.params) == 5 for r in first)
    assert {p for r in first for p in r.params} == {"x", "y", "z", "w"}
    assert [r.start_time for r in first] == sorted({r.start_time for r in first})


def test_scale_store_is_seeded_and_every_search_verifies(bench: ScaleWorkloads) -> None:
    bench.seed_scale()
    assert bench.seed["seed_s"] > 0
    results = {spec.workload: bench.search(spec) for spec in SEARCHES}
    order = results["scale_search_order"]
    assert order["runs"] == TINY.scale_runs
    assert order["returned"] == min(100, order["matching"]) > 0
    assert order["reps"] == TINY.search_reps
    assert order["median_ms"] > 0
    selective = results["scale_search_selective"]
    assert selective["returned"] == selective["matching"]  # ~0.1 % of 400 runs: all of them


def test_a_search_that_disagrees_with_the_seeded_values_fails(bench: ScaleWorkloads) -> None:
    bench.seed_scale()
    best = max(
        (r for r in bench.runs if r.metrics[1] > 0.5 and r.params[1] == "x"),
        key=lambda r: r.metrics[2],
    )
    best.metrics[2] = -1.0  # the store still ranks it first
    with pytest.raises(VerificationError, match="differ from the expected"):
        bench.search(SEARCHES[0])


def test_a_search_slower_than_the_budget_is_timed_by_its_verifying_run(
    bench: ScaleWorkloads,
) -> None:
    bench.sizes = dataclasses.replace(TINY, search_reps=50, search_budget_s=0)
    bench.seed_scale()
    result = bench.search(SEARCHES[1])
    assert result["reps"] == 1
    assert result["cold"] is True


def test_long_history_reads_back_raw_and_downsampled(bench: ScaleWorkloads) -> None:
    raw, downsampled = bench.history_1m()
    assert raw["points"] == TINY.history_points
    assert raw["reps"] == TINY.history_reps
    assert raw["rss_peak_mb"] >= raw["rss_before_mb"] > 0
    assert downsampled is not None
    assert downsampled["api"] == "MlflowClient().store.get_metric_history_downsampled"
    assert downsampled["total"] == TINY.history_points
    assert 0 < downsampled["returned"] <= TINY.downsample_points


def test_peak_rss_sees_a_short_lived_allocation() -> None:
    with peak_rss() as measured:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
        del block
    assert measured["rss_growth_mb"] >= 60


def test_timed_commands_must_succeed_and_say_what_they_should() -> None:
    assert len(timed([sys.executable, "-c", "print('ok')"], 2, "ok")) == 2
    with pytest.raises(AssertionError, match="expected 'Usage'"):
        timed([sys.executable, "-c", "print('nope')"], 1, "Usage")
    with pytest.raises(AssertionError, match="exited with 3"):
        timed([sys.executable, "-c", "raise SystemExit(3)"], 1, "")


@pytest.mark.slow
def test_startup_times_runyard_import_and_cli() -> None:
    result = startup("runyard", StartupSizes(import_reps=1, cli_reps=1))
    assert result["library_version"] == runyard.__version__
    assert result["import_s"] > result["python_pass_s"] > 0
    assert result["import_net_s"] == result["import_s"] - result["python_pass_s"]
    assert result["help_s"] > 0
    assert result["version_s"] > 0


def test_plan_runs_startup_first_and_the_scale_groups_last() -> None:
    pythons = {"runyard": Path("/ry/python"), "mlflow": Path("/ml/python")}
    jobs = plan(pythons, QUICK, quick=True)
    first, last = jobs[:2], jobs[-4:]
    assert [(j.column, j.group, j.args[0]) for j in first] == [
        ("runyard", "startup", str(STARTUP_SCRIPT)),
        ("mlflow", "startup", str(STARTUP_SCRIPT)),
    ]
    assert [(j.column, j.group) for j in last] == [
        ("runyard", "scale"),
        ("mlflow", "scale"),
        ("runyard", "history_1m"),
        ("mlflow", "history_1m"),
    ]
    assert all(j.args[0] == str(SCALE_SCRIPT) and "--quick" in j.args for j in last)
    assert all(j.python == pythons[j.column] for j in first + last)
    assert str(WORKLOADS_SCRIPT) in {j.args[0] for j in jobs[2:-4]}


def outcome(column: str, group: str, results: dict[str, dict[str, object]]) -> Outcome:
    """A finished job's outcome as the runner reports it."""
    payload = {"version": "1.0", "python": "3.11", "executable": "py", "results": results}
    return Outcome(Job(column, group, Path("py"), ()), 1.0, payload=payload)


def test_report_renders_the_scale_rows_with_targets_ratios_and_notes() -> None:
    data = Collected(not_run={"trackio", "mlflow_async"})
    search = {"median_ms": 20.0, "reps": 20, "seed_s": 100.0, "seed_runs_per_s": 1000.0}
    slow = {"median_ms": 20_000.0, "reps": 1, "cold": True, "seed_s": 50.0, "seed_runs_per_s": 2e3}
    history = {"median_s": 1.0, "rss_growth_mb": 100.0, "log_s": 5.0, "log_points_per_s": 2e5}
    data.add(
        outcome(
            "runyard",
            "scale",
            {w: search for w in ("scale_search_order", "scale_search_default")}
            | {"scale_search_selective": {"error": "VerificationError: wrong"}},
        )
    )
    data.add(outcome("mlflow", "scale", {"scale_search_order": slow}))
    data.add(
        outcome(
            "runyard",
            "history_1m",
            {"history_1m_raw": history, "history_1m_downsampled": {"median_ms": 30.0}},
        )
    )
    data.add(outcome("mlflow", "history_1m", {"history_1m_raw": history | {"rss_growth_mb": 2e3}}))
    text = render_report(data, QUICK, quick=False, command="python -m benchmarks")
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    order = next(v for k, v in rows.items() if "by `metrics.m2 DESC`" in k)
    assert "20.0 ms | 20,000 ms" in order
    assert "1,000× faster" in order
    assert "✅ met" in order
    selective = next(v for k, v in rows.items() if "by `params.p2`" in k)
    assert "**failed**" in selective
    memory = next(v for k, v in rows.items() if "peak RSS growth" in k)
    assert "20.0× less" in memory
    downsampled = next(v for k, v in rows.items() if "downsampled" in k)
    assert "n/a (no embedded API)" in downsampled
    assert "✅ met" in downsampled
    assert "repetitions: MLflow order 1 (the verifying run itself, no warm-up)" in text
    assert "seeding the scale store: runyard 100 s (1,000 runs/s), MLflow 50.0 s" in text
    assert "runyard / scale_search_selective: VerificationError: wrong" in text


def test_quick_sizes_stay_small() -> None:
    assert SCALE_QUICK.scale_runs <= 2_000
    assert SCALE_QUICK.history_points <= 20_000
