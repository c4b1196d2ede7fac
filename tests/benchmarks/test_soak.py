"""The soak suite's pure parts: slope, verdict, analysis, tallies and the rendered section.

The soak itself (a server under minutes of traffic) runs in CI through
``python -m benchmarks --smoke`` (.ci/run), not here.
"""

from __future__ import annotations

import pytest

from benchmarks import soak, soak_workload
from benchmarks.soak import (
    SOAK_FULL,
    SOAK_QUICK,
    SOAK_SMOKE,
    Sample,
    SoakCollected,
    SoakRun,
    analyze,
    least_squares_slope,
    sizes_for,
    verdict,
    window_rates,
)
from benchmarks.soak_workload import KINDS, Tally, percentile, summarize

MB = 1e6


def ramp(start_mb: float, mb_per_min: float, seconds: float, every_s: float) -> list[Sample]:
    """Samples of an RSS growing linearly from ``start_mb``."""
    count = int(seconds / every_s) + 1
    return [
        Sample(i * every_s, int((start_mb + mb_per_min * i * every_s / 60) * MB), 1)
        for i in range(count)
    ]


def test_slope_of_a_line_is_exact() -> None:
    points = [(x, 3.0 * x + 7.0) for x in range(10)]
    assert least_squares_slope(points) == pytest.approx(3.0)


def test_slope_of_noisy_points_is_the_least_squares_fit() -> None:
    # y = 2x + noise that sums to zero and is uncorrelated with x: the fit is 2.
    points = [(0.0, 1.0), (1.0, 2.0), (2.0, 5.0), (3.0, 6.0)]
    assert least_squares_slope(points) == pytest.approx(1.8)
    flat = [(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]
    assert least_squares_slope(flat) == 0.0


def test_slope_needs_two_distinct_xs() -> None:
    assert least_squares_slope([]) is None
    assert least_squares_slope([(1.0, 2.0)]) is None
    assert least_squares_slope([(1.0, 2.0), (1.0, 3.0)]) is None


def test_verdict_compares_ten_minutes_of_growth_with_ten_percent_of_warm_rss() -> None:
    # 100 MB warm: the budget is 10 MB per 10 minutes, i.e. a slope under 1 MB/min.
    assert verdict(0.99, 100.0) == "bounded"
    assert verdict(1.0, 100.0) == "growing"
    assert verdict(-5.0, 100.0) == "bounded"
    assert verdict(20.0, 2_500.0) == "bounded"  # 200 MB of 2.5 GB


def test_analyze_a_flat_run_is_bounded() -> None:
    samples = ramp(100.0, 0.0, 600, 5)
    memory = analyze(samples, warmup_s=60)
    assert memory.verdict == "bounded"
    assert memory.warm_rss == memory.end_rss == memory.max_rss == 100 * MB
    assert memory.slope_mb_min == pytest.approx(0.0, abs=1e-9)
    assert memory.samples_after_warmup == 109  # t = 60, 65, …, 600


def test_analyze_ignores_growth_during_the_warm_up() -> None:
    warm_up = ramp(50.0, 50.0, 55, 5)  # 50 → ~96 MB in the first minute
    steady = [Sample(60 + 5 * i, 100_000_000, 1) for i in range(109)]
    memory = analyze(warm_up + steady, warmup_s=60)
    assert memory.warm_rss == 100 * MB
    assert memory.slope_mb_min == pytest.approx(0.0, abs=1e-9)
    assert memory.verdict == "bounded"


def test_analyze_a_steady_leak_is_growing() -> None:
    memory = analyze(ramp(100.0, 2.0, 600, 5), warmup_s=60)
    assert memory.slope_mb_min == pytest.approx(2.0, rel=1e-3)
    assert memory.warm_rss == pytest.approx(102 * MB, rel=1e-6)
    assert memory.end_rss == memory.max_rss == pytest.approx(120 * MB, rel=1e-6)
    assert memory.growth_mb == pytest.approx(20.0, rel=1e-3)
    assert memory.budget_mb == pytest.approx(10.2, rel=1e-3)
    assert memory.verdict == "growing"


def test_analyze_with_too_few_samples_after_the_warm_up_is_not_judged() -> None:
    memory = analyze(ramp(100.0, 50.0, 10, 5), warmup_s=5)  # t = 5, 10 only
    assert memory.samples_after_warmup == 2
    assert memory.verdict == "not judged"
    assert analyze([], warmup_s=60).verdict == "not judged"


def test_sizes_and_their_schedules() -> None:
    assert sizes_for(False, None) == SOAK_FULL
    assert SOAK_FULL.seconds == 600
    assert sizes_for(True, None) == SOAK_QUICK
    assert sizes_for(False, None, smoke=True) == SOAK_SMOKE
    assert SOAK_SMOKE.mlflow_seconds == 0
    assert sizes_for(False, 2.5).seconds == 150
    assert sizes_for(True, 10).seconds == 600
    assert SOAK_FULL.warmup_s(600) == 60
    assert SOAK_FULL.sample_s(600) == 5
    assert SOAK_FULL.warmup_s(60) == 12
    assert SOAK_FULL.sample_s(60) == 1
    assert SOAK_FULL.sample_s(15) == 0.5


def test_window_rates_use_full_buckets_only() -> None:
    summary = {"seconds": 605.0, "bucket_s": 10.0, "buckets": [100] * 6 + [50] * 54 + [3]}
    first, last, seconds = window_rates(summary) or (0, 0, 0)
    assert (first, last, seconds) == (10.0, 5.0, 60.0)
    short = {"seconds": 31.0, "bucket_s": 10.0, "buckets": [40, 30, 20, 1]}
    assert window_rates(short) == (4.0, 2.0, 10.0)
    assert window_rates({"seconds": 15.0, "bucket_s": 10.0, "buckets": [9, 4]}) is None


def test_tally_counts_buckets_and_merges() -> None:
    one, two = Tally(), Tally()
    one.count("runs/get", 0.002, 1.0, False)
    one.count("runs/get", 0.004, 25.0, False)
    two.count("error: 404 unknown run", 0.001, 12.0, True)
    two.server_errors = 1
    for i in range(30):
        two.fail(f"check {i}")
    one.merge(two)
    assert one.kinds["runs/get"].requests == 2
    assert one.kinds["error: 404 unknown run"].expected_errors == 1
    assert one.buckets == [1, 1, 1]
    assert one.server_errors == 1
    assert one.failures == 30
    assert one.messages == [f"check {i}" for i in range(20)]


def test_summarize_reports_every_kind_with_percentiles() -> None:
    tally = Tally()
    for i in range(1, 101):
        tally.count("runs/search", i / 1000, 0.5, False)
    summary = summarize(tally, 10.0, 3)
    assert list(summary["kinds"]) == list(KINDS)
    search = summary["kinds"]["runs/search"]
    assert search["requests"] == 100
    assert search["p50_ms"] == pytest.approx(50.5)
    assert search["p99_ms"] == pytest.approx(99.01)
    assert summary["kinds"]["runs/get"] == {
        "requests": 0,
        "expected_errors": 0,
        "p50_ms": None,
        "p99_ms": None,
    }
    assert summary["requests"] == 100
    assert summary["requests_per_s"] == 10.0
    assert percentile([], 0.99) is None
    assert percentile([7.0], 0.5) == 7.0


def test_every_operation_of_the_mix_has_a_method() -> None:
    client = soak_workload.SoakClient(0, "http://127.0.0.1:1", "stdlib", "server", 0.0)
    try:
        assert set(client.ops) == set(soak_workload.MIX)
    finally:
        client.http.close()


def collected(seconds: float, memory_slope: float) -> SoakCollected:
    run = SoakRun("runyard", seconds, 5.0, idle_rss=74_000_000)
    run.samples = ramp(90.0, memory_slope, seconds, 5.0)
    run.memory = analyze(run.samples, SOAK_FULL.warmup_s(seconds))
    run.store_bytes, run.artifact_bytes = 120_000_000, 30_000_000
    empty = {"requests": 0, "expected_errors": 0, "p50_ms": None, "p99_ms": None}
    kinds = {k: dict(empty) for k in KINDS}
    kinds["runs/get"] = {"requests": 12_345, "expected_errors": 0, "p50_ms": 2.5, "p99_ms": 30.0}
    run.summary = {
        "requests": 200_000,
        "requests_per_s": 333.3,
        "seconds": seconds,
        "bucket_s": 10.0,
        "buckets": [4_000] * int(seconds // 10),
        "kinds": kinds,
        "server_errors": 0,
        "failures": 0,
        "runs_created": 9_000,
        "points_logged": 700_000,
        "artifacts_uploaded": 5_000,
    }
    data = SoakCollected(SOAK_FULL, "full", runs={"runyard": run}, versions={"runyard": "0.1.0"})
    data.not_run["mlflow"] = "not selected"
    return data


def test_render_shows_figures_verdict_and_kinds() -> None:
    text = soak.render(collected(600, 0.2), command="python -m benchmarks --suite soak")
    assert text.startswith("## Soak: memory under mixed traffic — full length\n")
    assert "| | runyard 0.1.0 |" in text
    assert "| duration of the traffic | 10 min |" in text
    assert "| requests (rate) | 200,000 (333 req/s) |" in text
    assert "| RSS after the warm-up (1 min) | 90.2 MB |" in text
    assert "| RSS at the end | 92.0 MB |" in text
    assert "| RSS slope after the warm-up (least squares) | +0.20 MB/min over 109 samples |" in text
    assert "| verdict | **bounded** |" in text
    assert "| on disk at the end: database (with WAL) / artifacts | 120 MB / 30.0 MB |" in text
    assert "| runs/get | 12,345 | 2.5 ms | 30.0 ms |" in text
    assert "slope × 10 min < 10% of the RSS after the warm-up" in text
    assert "MLflow" not in text.split("| | runyard")[1]  # not selected: no column
    assert "### Failures" not in text


def test_render_marks_short_runs_indicative_and_lists_problems() -> None:
    data = collected(60, 30.0)
    data.mode = "quick"
    data.problems.append("runyard: 2 answers were 5xx")
    text = soak.render(data, command="x")
    assert "| verdict | **growing** (indicative: run < 5 min) |" in text
    assert "### Failures\n\n- runyard: 2 answers were 5xx" in text
