"""The compare page (/compare) in Chromium, and its run loading over many runs in-process."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from runyard.entities import Metric, Param
from runyard.server.app import create_app
from runyard.server.settings import ServerSettings
from runyard.store.sql.store import SqlTrackingStore
from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


def plot(ui: UI, selector: str) -> Any:
    return ui.page.evaluate(
        """(s) => {
            const d = document.querySelector(s);
            return d && d.data ? JSON.parse(JSON.stringify(d.data)) : null;
        }""",
        selector,
    )


def wait_plot(ui: UI, selector: str, condition: str) -> None:
    ui.page.wait_for_function(
        f"(s) => {{ const d = document.querySelector(s); const data = d && d.data; "
        f"return Boolean(data) && ({condition}); }}",
        arg=selector,
    )


def test_compare_three_sweep_trials(ui: UI, seed: Seed) -> None:
    children = seed.child_run_ids
    ui.goto(f"/compare?runs={','.join(children)}")
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("Compare 3 runs")
    expect(ui.page.locator(".breadcrumbs")).to_contain_text(seed.experiment_name)
    expect(ui.page.locator(".run-legend li")).to_have_count(3)

    # Differences: identical rows hidden by default, differing ones shown and highlighted.
    table = ui.page.locator("#diff-table")
    expect(table.locator('tr[data-key="batch_size"]')).to_be_hidden()
    expect(table.locator('tr[data-key="stage"]')).to_be_hidden()
    lr = table.locator('tr[data-key="lr"]')
    expect(lr).to_be_visible()
    expect(lr.locator("td")).to_have_text(["0.1", "0.01", "0.001"])
    expect(lr.locator("td.changed")).to_have_count(2)
    expect(table.locator('tr[data-key="optimizer"]')).to_be_visible()
    expect(table.locator('tr[data-key="loss"] td').first).to_have_text("0.12")  # at step 49
    ui.shot("compare-trials")

    ui.page.get_by_label("Hide identical rows").uncheck()
    expect(table.locator('tr[data-key="batch_size"]')).to_be_visible()
    expect(table.locator('tr[data-key="batch_size"] td')).to_have_text(["32", "32", "32"])
    expect(ui.page).to_have_url(re.compile(r"same=1"))

    # Parallel coordinates: params that differ (lr numeric, optimizer categorical) + metrics.
    wait_plot(ui, "#parcoords", "data[0].dimensions.length >= 2")
    (parcoords,) = plot(ui, "#parcoords")
    assert parcoords["type"] == "parcoords"
    dims = {d["label"]: d for d in parcoords["dimensions"]}
    assert dims["optimizer"]["ticktext"] == ["adam", "sgd"]
    assert dims["optimizer"]["tickvals"] == [0, 1]
    assert sorted(dims["optimizer"]["values"]) == [0, 0, 1]
    assert "ticktext" not in dims["lr"]
    assert sorted(dims["lr"]["values"]) == [0.001, 0.01, 0.1]
    assert "batch_size" not in dims
    assert {"accuracy", "loss"} <= set(dims)
    assert parcoords["line"]["showscale"] is True  # coloured by a metric

    # Scatter: one point per run, hover = run name.
    wait_plot(ui, "#scatter", "data[0].x.length === 3")
    (scatter,) = plot(ui, "#scatter")
    assert sorted(scatter["text"]) == ["trial-0", "trial-1", "trial-2"]
    ui.page.select_option("#scatter-x", "params.optimizer")
    ui.page.select_option("#scatter-y", "metrics.accuracy")
    wait_plot(ui, "#scatter", "data[0].x.includes('adam')")
    (scatter,) = plot(ui, "#scatter")
    assert sorted(scatter["x"]) == ["adam", "adam", "sgd"]
    assert sorted(scatter["y"]) == pytest.approx([0.7, 0.8, 0.9])
    expect(ui.page).to_have_url(re.compile(r"sx=params\.optimizer"))

    # The shared metrics overlaid, one trace per run.
    wait_plot(ui, '#compare-charts .chart[data-key="loss"] .js-plotly-plot', "data.length === 3")
    expect(ui.page.locator("#compare-charts .chart")).to_have_count(2)
    ui.page.locator("#metric-charts").scroll_into_view_if_needed()
    ui.shot("compare-trials-plots")

    # Axis choices live in the URL.
    ui.page.get_by_text("Axes").click()
    ui.page.get_by_role("checkbox", name="accuracy").uncheck()
    wait_plot(ui, "#parcoords", "!data[0].dimensions.some(d => d.label === 'accuracy')")
    expect(ui.page).to_have_url(re.compile(r"dims=params\.lr%2Cparams\.optimizer"))


def test_compare_runs_of_two_experiments_with_a_missing_one(ui: UI, seed: Seed) -> None:
    second = httpx.post(
        f"{seed.url}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [seed.second_experiment_id]},
    )
    other_run = second.json()["runs"][0]["info"]["run_id"]
    missing = "d" * 32
    ui.goto(f"/compare?runs={seed.artifact_run_id},{other_run},{missing}")
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("Compare 2 runs")
    expect(ui.page.locator("main .error-message")).to_contain_text(f"1 run not found: {missing}")
    experiment_row = ui.page.locator('#diff-table tr[data-key="Experiment"] td')
    expect(experiment_row).to_have_text([seed.experiment_name, "ui-second"])
    # accuracy only in one run: shown as missing in the other; no shared chart for it.
    expect(ui.page.locator('#diff-table tr[data-key="accuracy"] td').nth(1)).to_have_text("—")
    expect(ui.page.locator("#compare-charts .chart")).to_have_count(0)
    ui.shot("compare-two-experiments")


def test_compare_without_runs_and_with_unknown_ones(ui: UI, seed: Seed) -> None:
    ui.goto("/compare")
    expect(ui.page.get_by_role("heading", level=1)).to_have_text("Compare runs")
    expect(ui.page.get_by_text("No runs to compare")).to_be_visible()
    ui.shot("compare-empty")
    ui.allow_console_error("404")
    response = ui.goto(f"/compare?runs={'a' * 32},{'b' * 32}")
    assert response.status == 404
    expect(ui.page.locator(".error-message")).to_contain_text("No run exists")


def test_compare_more_than_a_hundred_runs(tmp_path: Path) -> None:
    """Runs are read in chunks of 100 across experiments: no cap on how many are compared."""
    from starlette.testclient import TestClient

    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    store = SqlTrackingStore(settings.backend_store_uri, str(tmp_path / "artifacts"))
    experiments = [store.create_experiment("a"), store.create_experiment("b")]
    run_ids = []
    for i in range(230):
        run = store.create_run(experiments[i % 2], "u", 1000 + i, [], f"run-{i:03d}")
        store.log_batch(
            run.info.run_id,
            metrics=[Metric("loss", 1.0 / (i + 1), 1000, 0)],
            params=[Param("seed", str(i)), Param("same", "x")],
        )
        run_ids.append(run.info.run_id)
    store.close()
    with TestClient(create_app(settings)) as client:
        response = client.get("/compare", params={"runs": ",".join(run_ids)})
        assert response.status_code == 200
        assert "Compare 230 runs" in response.text
        for i in (0, 99, 100, 229):
            assert f">run-{i:03d}</a>" in response.text
        charts = client.get("/metrics", params={"runs": ",".join(run_ids[:150])})
        assert charts.status_code == 200
        assert charts.text.count('class="swatch"') == 150


def test_readable_at_400px(ui: UI, seed: Seed) -> None:
    ui.page.set_viewport_size({"width": 400, "height": 800})
    ui.goto(f"/compare?runs={','.join(seed.child_run_ids)}")
    wait_plot(ui, "#scatter", "data[0].x.length === 3")
    # The table scrolls inside its frame; the page itself is no wider than the screen.
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= 400
    ui.shot("compare-narrow")
