"""The metric charts page (/metrics) in Chromium: downsampled series, axes, zoom, overlays, live."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

import runyard
from runyard.server.ui.compare import PALETTE, parse_run_ids, run_colors
from tests.ui.conftest import LONG_SERIES_POINTS, UI, Seed

pytestmark = pytest.mark.slow

PLOT = '.chart[data-key="{key}"] .js-plotly-plot'


def traces(ui: UI, key: str, within: str = "") -> Any:
    """name, point count, x values' range and type of each trace of a chart (None: not drawn)."""
    return ui.page.evaluate(
        """([selector]) => {
            const plot = document.querySelector(selector);
            if (!plot || !plot.data) return null;
            return plot.data.map((t) => ({name: t.name, n: t.x.length, type: t.type,
                first: t.x[0], last: t.x[t.x.length - 1]}));
        }""",
        [f"{within} {PLOT.format(key=key)}".strip()],
    )


def wait_traces(ui: UI, key: str, condition: str, within: str = "") -> None:
    """Wait until the chart's ``plot.data`` satisfies a JS condition on ``data``."""
    selector = f"{within} {PLOT.format(key=key)}".strip()
    ui.page.wait_for_function(
        f"""([selector]) => {{
            const plot = document.querySelector(selector);
            const data = plot && plot.data;
            return Boolean(data) && ({condition});
        }}""",
        arg=[selector],
    )


def layout(ui: UI, key: str, path: str) -> Any:
    return ui.page.evaluate(
        "([s, p]) => p.split('.').reduce((o, k) => o && o[k], document.querySelector(s).layout)",
        [PLOT.format(key=key), path],
    )


def test_long_series_is_drawn_from_a_reduced_series(ui: UI, seed: Seed) -> None:
    ui.goto(f"/metrics?runs={seed.long_run_id}&keys=loss")
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("Metric charts")
    expect(ui.page.locator(".run-legend")).to_contain_text("long-history")
    wait_traces(ui, "loss", "data.length === 1 && data[0].x.length > 0")
    (trace,) = traces(ui, "loss")
    assert 250 <= trace["n"] <= 1000  # 20,000 points reduced, not a handful
    assert (trace["first"], trace["last"]) == (0, LONG_SERIES_POINTS - 1)
    expect(ui.page.locator('.chart[data-key="loss"] .chart-note')).to_contain_text(
        "of 20,000 points drawn"
    )
    ui.shot("metrics-long-series")

    # Zoom into steps 1000-1200: fetched again at full resolution.
    ui.page.evaluate(
        "s => Plotly.relayout(document.querySelector(s), {'xaxis.range': [1000, 1200]})",
        PLOT.format(key="loss"),
    )
    wait_traces(ui, "loss", "data[0].x.length === 201 && data[0].x[0] === 1000")
    expect(ui.page.locator('.chart[data-key="loss"] .chart-note')).to_contain_text(
        "Steps 1000–1200 at full resolution"
    )
    ui.shot("metrics-zoomed")
    # Zooming out (double-click) goes back to the reduced whole series.
    ui.page.evaluate(
        "s => Plotly.relayout(document.querySelector(s), {'xaxis.autorange': true})",
        PLOT.format(key="loss"),
    )
    wait_traces(ui, "loss", f"data[0].x[data[0].x.length - 1] === {LONG_SERIES_POINTS - 1}")
    assert traces(ui, "loss")[0]["n"] <= 1000


def test_axis_scale_and_smoothing_controls(ui: UI, seed: Seed) -> None:
    ui.goto(f"/metrics?runs={seed.long_run_id}&keys=loss")
    wait_traces(ui, "loss", "data.length === 1")
    assert layout(ui, "loss", "xaxis.type") == "linear"
    assert layout(ui, "loss", "yaxis.type") == "linear"

    ui.page.select_option("#chart-x", "time")
    ui.page.wait_for_function(
        f"() => document.querySelector('{PLOT.format(key='loss')}').layout.xaxis.type === 'date'"
    )
    expect(ui.page).to_have_url(re.compile(r"x=time"))
    ui.page.get_by_label("Log scale").check()
    ui.page.wait_for_function(
        f"() => document.querySelector('{PLOT.format(key='loss')}').layout.yaxis.type === 'log'"
    )
    expect(ui.page).to_have_url(re.compile(r"log=1"))
    ui.page.select_option("#chart-x", "relative")
    ui.page.wait_for_function(
        f"""() => document.querySelector('{PLOT.format(key="loss")}').layout.xaxis.title.text
            .startsWith('Relative time')"""
    )
    # Smoothing: a faint raw line plus the smoothed one.
    ui.page.locator("#chart-smooth").fill("0.6")
    wait_traces(ui, "loss", "data.length === 2 && data[0].opacity < 1")
    expect(ui.page.locator("#chart-smooth-value")).to_have_text("0.60")
    expect(ui.page).to_have_url(re.compile(r"smooth=0\.6"))
    ui.shot("metrics-controls")

    # The state is in the URL: reloading it restores the controls.
    ui.goto(ui.page.url.removeprefix(seed.url))
    expect(ui.page.locator("#chart-x")).to_have_value("relative")
    expect(ui.page.get_by_label("Log scale")).to_be_checked()
    wait_traces(ui, "loss", "data.length === 2")
    assert layout(ui, "loss", "yaxis.type") == "log"


def test_three_runs_overlaid_with_stable_colours(ui: UI, seed: Seed) -> None:
    children = seed.child_run_ids
    ui.goto(f"/metrics?runs={','.join(children)}")
    # No keys in the URL: the runs' metrics (accuracy, loss) are all charted.
    expect(ui.page.locator(".chart")).to_have_count(2)
    wait_traces(ui, "loss", "data.length === 3")
    assert sorted(t["name"] for t in traces(ui, "loss")) == ["trial-0", "trial-1", "trial-2"]
    assert all(t["n"] == 50 for t in traces(ui, "loss"))
    colors = ui.page.evaluate(
        f"() => document.querySelector('{PLOT.format(key='loss')}').data.map(t => t.line.color)"
    )
    assert colors == [run_colors(children)[run_id] for run_id in children]
    expect(ui.page.locator(".run-legend li")).to_have_count(3)
    ui.shot("metrics-three-runs")

    ui.page.get_by_role("checkbox", name="accuracy").uncheck()
    expect(ui.page.locator(".chart")).to_have_count(1)
    expect(ui.page).to_have_url(re.compile(r"keys=loss$"))
    ui.page.get_by_role("checkbox", name="loss").uncheck()
    expect(ui.page.get_by_text("No metric selected")).to_be_visible()


def test_live_refresh_appends_new_points(ui: UI, seed: Seed) -> None:
    # A running run of our own (the seeded ones stay as they are for other tests).
    client = runyard.Client(tracking_uri=seed.url)
    experiment = client.create_experiment(f"charts-live-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment, run_name="live-run").info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0, synchronous=True)
    client.log_metric(run_id, "loss", 0.8, step=1, synchronous=True)

    ui.goto(f"/metrics?runs={run_id}&keys=loss")
    expect(ui.page.get_by_label("Live")).to_be_checked()  # on by itself: the run is RUNNING
    wait_traces(ui, "loss", "data[0].x.length === 2")
    client.log_metric(run_id, "loss", 0.5, step=2, synchronous=True)
    client.log_metric(run_id, "loss", 0.4, step=3, synchronous=True)
    wait_traces(ui, "loss", "data[0].x.length === 4 && data[0].x[3] === 3")
    ui.shot("metrics-live")
    # The run ends: its badge follows at the next refresh.
    client.set_terminated(run_id)
    expect(ui.page.locator(f'[data-status-of="{run_id}"] .badge')).to_have_text(
        "Finished", timeout=15_000
    )


def test_empty_missing_and_invalid(ui: UI, seed: Seed) -> None:
    ui.goto("/metrics")
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("Metric charts")
    expect(ui.page.get_by_text("No runs to chart")).to_be_visible()
    ui.shot("metrics-empty")

    ui.allow_console_error("404")
    response = ui.goto(f"/metrics?runs={'f' * 32}")
    assert response.status == 404
    expect(ui.page.locator(".error-message")).to_contain_text("No run exists")

    ui.allow_console_error("400")
    response = ui.goto("/metrics?runs=abc'def")
    assert response.status == 400
    expect(ui.page.locator(".error-message")).to_contain_text("Invalid run id")

    # One run missing among found ones: charted, with a notice.
    response = ui.goto(f"/metrics?runs={seed.failed_run_id},{'e' * 32}&keys=loss,nope")
    assert response.status == 200
    expect(ui.page.locator("main .error-message")).to_contain_text("1 run not found")
    expect(ui.page.get_by_text("Not logged by these runs")).to_contain_text("nope")
    wait_traces(ui, "loss", "data.length === 1 && data[0].x.length === 1")
    ui.shot("metrics-missing-run")


def test_run_ids_and_colours() -> None:
    assert parse_run_ids(" a1, b2,,a1 ,c3") == ["a1", "b2", "c3"]
    assert parse_run_ids(None) == []
    ids = [f"{i:032x}" for i in range(30)]
    colors = run_colors(ids)
    assert colors == run_colors(ids)  # stable
    first = list(colors.values())
    assert set(first[:10]) == set(PALETTE[:10])  # the ten most distinct colours first
    assert len(set(first[: len(PALETTE)])) == len(PALETTE)
    assert set(colors.values()) <= set(PALETTE)


def test_readable_at_400px(ui: UI, seed: Seed) -> None:
    ui.page.set_viewport_size({"width": 400, "height": 800})
    ui.goto(f"/metrics?runs={','.join(seed.child_run_ids)}&keys=loss")
    wait_traces(ui, "loss", "data.length === 3")
    # Nothing wider than the screen: the chart fits, the controls wrap.
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= 400
    box = ui.page.locator(PLOT.format(key="loss")).bounding_box()
    assert box is not None
    assert box["width"] <= 400
    ui.shot("metrics-narrow")
