"""The runs table in Chromium (filter, sort, columns, nesting, selection, URL state, CSV,
autocomplete), plus its HTTP contract (fragments, inline errors, CSV paging) in process."""

from __future__ import annotations

import csv
import io
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect
from starlette.testclient import TestClient

import runyard
from runyard.entities import Metric, Param, RunTag
from runyard.server.app import create_app
from runyard.server.settings import ServerSettings
from runyard.server.ui import runs_csv
from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


def rows(ui: UI) -> Any:
    return ui.page.locator("#runs-table tbody tr")


def visible_names(ui: UI) -> list[str]:
    names: list[str] = ui.page.locator(
        "#runs-table tbody tr:visible .name-cell a"
    ).all_inner_texts()
    return names


def query_of(ui: UI) -> dict[str, list[str]]:
    return parse_qs(urlparse(ui.page.url).query, keep_blank_values=True)


def apply_filter(ui: UI, text: str) -> None:
    box = ui.page.get_by_role("combobox", name="Filter runs")
    box.fill(text)
    box.press("Escape")  # close suggestions, if any
    box.press("Enter")


def test_experiment_page(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    expect(page.locator("h1")).to_have_text("ui-demo")
    crumbs = page.locator("nav.breadcrumbs")
    expect(crumbs.get_by_role("link", name="Experiments")).to_have_attribute("href", "/experiments")
    meta = page.locator(".experiment-meta")
    expect(meta).to_contain_text(seed.experiment_id)
    expect(meta).to_contain_text("Artifact location")
    # The note is Markdown rendered by the server; other tags are chips.
    expect(page.locator(".experiment-description strong")).to_have_text("demo")
    expect(page.locator(".experiment-tags .tag-chip")).to_have_text("team: vision")
    expect(rows(ui)).to_have_count(len(seed.run_names))
    expect(page.locator("#count-line")).to_have_text(f"{len(seed.run_names)} runs")
    # Default columns: the page's metric and param keys; created is the default sort.
    head = page.locator("#runs-table thead")
    for key in ("accuracy", "loss", "batch_size", "lr", "optimizer", "search"):
        expect(head.locator("th", has_text=re.compile(rf"\b{key}\b"))).to_have_count(1)
    expect(head.locator('th[data-col="attributes.start_time"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    failed = rows(ui).filter(has_text="crashed")
    expect(failed.locator(".badge")).to_have_text("Failed")
    expect(rows(ui).filter(has_text="still-running").locator(".badge")).to_have_text("Running")
    link = page.get_by_role("link", name="with-artifacts", exact=True)
    expect(link).to_have_attribute("href", f"/runs/{seed.artifact_run_id}")
    ui.shot("runs-table")


def test_filter_and_invalid_filter(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("status of 400")
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    apply_filter(ui, "metrics.accuracy > 0.75")
    expect(rows(ui)).to_have_count(3)
    expect(page.locator("#count-line")).to_have_text("3 runs")
    assert query_of(ui)["filter"] == ["metrics.accuracy > 0.75"]
    assert sorted(visible_names(ui)) == ["trial-1", "trial-2", "with-artifacts"]
    ui.shot("runs-table-filtered")

    apply_filter(ui, "metrics.accuracy > 5")
    expect(page.locator(".empty-state")).to_contain_text("No runs match")
    page.get_by_role("link", name="Clear the filter").click()
    expect(rows(ui)).to_have_count(len(seed.run_names))
    assert "filter" not in query_of(ui)

    apply_filter(ui, "metrics.accuracy >")
    error = page.locator("#filter-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("expected a value")
    # The page around it is intact: the toolbar is there to fix the filter.
    expect(page.locator("h1")).to_have_text("ui-demo")
    expect(page.get_by_role("combobox", name="Filter runs")).to_have_value("metrics.accuracy >")
    ui.shot("runs-table-invalid-filter")
    apply_filter(ui, "params.optimizer = 'adam'")
    expect(rows(ui)).to_have_count(2)
    expect(error).to_have_count(0)


def test_invalid_filter_in_the_address(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("status of 400")
    response = ui.goto(f"/experiments/{seed.experiment_id}?filter=params.lr+%3D%3D+1")
    assert response.status == 400
    expect(ui.page.locator("#filter-error")).to_be_visible()
    expect(ui.page.get_by_role("button", name="Columns")).to_be_visible()


def test_sort_by_metric_both_ways(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    header = page.locator('th[data-col="metrics.accuracy"]')
    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert query_of(ui)["order_by"] == ["metrics.accuracy ASC"]
    names = visible_names(ui)
    trials = [n for n in names if n.startswith("trial-")]
    assert trials == ["trial-0", "trial-1", "trial-2"]
    # Runs without the metric sort last; the sweep's children stay under it.
    assert names.index("with-artifacts") == 0
    assert names.index("sweep") < names.index("trial-0")

    header.get_by_role("link").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(header.locator(".sort-indicator")).to_have_text("▼")
    assert query_of(ui)["order_by"] == ["metrics.accuracy DESC"]
    trials = [n for n in visible_names(ui) if n.startswith("trial-")]
    assert trials == ["trial-2", "trial-1", "trial-0"]
    # Sorting by name works on an attribute too.
    page.locator('th[data-col="attributes.run_name"] a').click()
    expect(page.locator('th[data-col="attributes.run_name"]')).to_have_attribute(
        "aria-sort", "ascending"
    )
    ui.shot("runs-table-sorted")


def test_column_picker(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    expect(page.locator('th[data-col="tags.stage"]')).to_have_count(0)
    page.get_by_role("button", name="Columns").click()
    dialog = page.get_by_role("dialog", name="Columns")
    expect(dialog).to_be_visible()
    expect(dialog.locator("legend")).to_have_text(["Params", "Metrics", "Tags"])
    expect(dialog.get_by_role("checkbox", name="accuracy")).to_be_checked()
    dialog.get_by_label("Find a key").fill("stag")
    expect(dialog.get_by_role("checkbox", name="stage")).to_be_visible()
    expect(dialog.get_by_role("checkbox", name="accuracy")).to_be_hidden()
    ui.shot("runs-column-picker")
    dialog.get_by_role("checkbox", name="stage").check()
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog).to_be_hidden()
    column = page.locator('th[data-col="tags.stage"]')
    expect(column).to_contain_text("stage")
    cols = query_of(ui)["cols"][0].split(",")
    assert cols[-1] == "tags.stage"
    assert "metrics.accuracy" in cols
    trial = rows(ui).filter(has_text="trial-0")
    expect(trial.locator("td").last).to_have_text("sweep")

    # Unchecking everything leaves only the fixed columns.
    page.get_by_role("button", name="Columns").click()
    expect(dialog.locator("legend")).to_have_count(3)
    for box in dialog.locator("input[type=checkbox]").all():
        box.uncheck()
    dialog.get_by_role("button", name="Apply").click()
    expect(page.locator("#runs-table th[data-col^='metrics.']")).to_have_count(0)
    assert query_of(ui)["cols"] == [""]
    page.get_by_role("button", name="Columns").click()
    dialog.get_by_role("button", name="Default columns").click()
    expect(page.locator('th[data-col="metrics.accuracy"]')).to_have_count(1)
    assert "cols" not in query_of(ui)


def test_nested_runs_collapse_and_expand(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    names = visible_names(ui)
    at = names.index("sweep")
    assert names[at + 1 : at + 4] == ["trial-2", "trial-1", "trial-0"]
    for child in seed.child_run_ids:
        expect(page.locator(f'tr[data-run-id="{child}"]')).to_have_attribute(
            "data-parent", seed.parent_run_id
        )
    toggle = page.locator(f'tr[data-run-id="{seed.parent_run_id}"] .nest-toggle')
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    for child in seed.child_run_ids:
        expect(page.locator(f'tr[data-run-id="{child}"]')).to_be_hidden()
    ui.shot("runs-table-collapsed")
    toggle.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    for child in seed.child_run_ids:
        expect(page.locator(f'tr[data-run-id="{child}"]')).to_be_visible()


def test_selection_compare_and_chart_links(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    compare = page.get_by_role("link", name="Compare")
    expect(page.locator("#compare-link")).to_have_attribute("aria-disabled", "true")
    chosen = [seed.child_run_ids[0], seed.failed_run_id, seed.artifact_run_id]
    for run_id in chosen:
        page.locator(f'tr[data-run-id="{run_id}"] input.row-select').check()
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    href = compare.get_attribute("href") or ""
    assert href.startswith("/compare?runs=")
    assert sorted(href.split("=", 1)[1].split(",")) == sorted(chosen)
    chart = page.get_by_role("link", name="Chart").get_attribute("href") or ""
    assert chart.startswith("/metrics?runs=")
    assert all(r in chart for r in chosen)
    assert sorted(query_of(ui)["sel"][0].split(",")) == sorted(chosen)
    ui.shot("runs-table-selected")

    # Shift-click selects the range between two clicks.
    page.locator(f'tr[data-run-id="{seed.failed_run_id}"] input.row-select').uncheck()
    select_all = page.get_by_role("checkbox", name="Select all runs on this page")
    select_all.check()
    select_all.uncheck()
    expect(page.locator("#selection-count")).to_have_text("")
    boxes = page.locator("#runs-table tbody input.row-select")
    boxes.nth(0).click()
    boxes.nth(3).click(modifiers=["Shift"])
    for index in range(4):
        expect(boxes.nth(index)).to_be_checked()
    # Select all on the page, then none.
    select_all.check()
    expect(page.locator("#selection-count")).to_have_text(f"{len(seed.run_names)} selected")
    select_all.uncheck()
    expect(page.locator("#selection-count")).to_have_text("")
    expect(page.locator("#compare-link")).to_have_attribute("aria-disabled", "true")


def test_url_state_survives_reload_and_back(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    apply_filter(ui, "params.optimizer = 'adam'")
    expect(rows(ui)).to_have_count(2)
    page.locator('th[data-col="metrics.loss"] a').click()
    expect(page.locator('th[data-col="metrics.loss"]')).to_have_attribute("aria-sort", "ascending")
    chosen = seed.child_run_ids[2]
    page.locator(f'tr[data-run-id="{chosen}"] input.row-select').check()
    page.get_by_role("button", name="Columns").click()
    dialog = page.get_by_role("dialog", name="Columns")
    dialog.get_by_role("checkbox", name="stage").check()
    dialog.get_by_role("button", name="Apply").click()
    stage = page.locator('th[data-col="tags.stage"]')
    expect(stage).to_have_count(1)
    query = query_of(ui)
    assert query["filter"] == ["params.optimizer = 'adam'"]
    assert query["order_by"] == ["metrics.loss ASC"]
    assert query["sel"] == [chosen]
    assert query["cols"][0].split(",")[-1] == "tags.stage"

    page.reload()
    expect(page.get_by_role("combobox", name="Filter runs")).to_have_value(
        "params.optimizer = 'adam'"
    )
    expect(rows(ui)).to_have_count(2)
    expect(page.locator('th[data-col="metrics.loss"]')).to_have_attribute("aria-sort", "ascending")
    expect(stage).to_have_count(1)
    expect(page.locator(f'tr[data-run-id="{chosen}"] input.row-select')).to_be_checked()
    expect(page.locator("#selection-count")).to_have_text("1 selected")

    # Back: the columns go, then the order, then the filter; the selection stays.
    page.go_back()
    expect(stage).to_have_count(0)
    expect(page.locator('th[data-col="metrics.loss"]')).to_have_attribute("aria-sort", "ascending")
    page.go_back()
    expect(page.locator('th[data-col="metrics.loss"]')).not_to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(rows(ui)).to_have_count(2)
    page.go_back()
    expect(rows(ui)).to_have_count(len(seed.run_names))
    expect(page.get_by_role("combobox", name="Filter runs")).to_have_value("")
    page.go_forward()
    expect(rows(ui)).to_have_count(2)


def test_paging(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    ui.page.get_by_label("Rows").select_option("50")
    expect(ui.page).to_have_url(re.compile(r"max_results=50"))
    expect(ui.page.locator("#count-line")).to_have_text(f"{len(seed.run_names)} runs")
    expect(ui.page.get_by_role("link", name="Next page")).to_have_count(0)
    # A page size of 3 (from the URL) pages through the 8 runs.
    ui.goto(f"/experiments/{seed.experiment_id}?max_results=3")
    page = ui.page
    expect(page.locator("#count-line")).to_have_text("Showing runs 1–3 of 3+")
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("#count-line")).to_have_text("Showing runs 4–6 of 6+")
    assert "page_token" in query_of(ui)
    page.get_by_role("link", name="Next page").click()
    total = len(seed.run_names)  # 8
    expect(page.locator("#count-line")).to_have_text(f"Showing runs 7–{total} of {total}")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    expect(page.locator("#count-line")).to_have_text("Showing runs 1–3 of 3+")
    assert "page_token" not in query_of(ui)


def test_csv_download(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    apply_filter(ui, "metrics.accuracy > 0.75")
    expect(rows(ui)).to_have_count(3)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"runs-{seed.experiment_id}.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert sorted(r["name"] for r in table) == ["trial-1", "trial-2", "with-artifacts"]
    by_name = {r["name"]: r for r in table}
    # Full precision: 0.7 + 0.1 * 2 as logged.
    assert by_name["trial-2"]["metrics.accuracy"] == repr(0.7 + 0.1 * 2)
    assert by_name["trial-2"]["params.optimizer"] == "adam"
    assert by_name["trial-2"]["status"] == "FINISHED"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", by_name["trial-2"]["start_time"])
    assert by_name["with-artifacts"]["run_id"] == seed.artifact_run_id


def test_autocomplete(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    box = page.get_by_role("combobox", name="Filter runs")
    box.click()
    box.press_sequentially("met")
    listbox = page.get_by_role("listbox", name="Filter suggestions")
    expect(listbox.get_by_role("option")).to_have_text(["metrics."])
    box.press_sequentially("rics.ac")
    option = listbox.get_by_role("option", name="metrics.accuracy")
    expect(option).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    ui.shot("runs-autocomplete")
    box.press("Enter")
    expect(box).to_have_value("metrics.accuracy ")
    # Then the operators a metric takes.
    expect(listbox.get_by_role("option", name=">=", exact=True)).to_be_visible()
    box.press_sequentially(">")
    box.press("ArrowDown")
    expect(listbox.locator('[aria-selected="true"]')).to_have_text(">=")
    box.press("Tab")
    expect(box).to_have_value("metrics.accuracy >= ")
    box.press_sequentially("0.85")
    expect(listbox).to_be_hidden()
    box.press("Enter")
    expect(rows(ui)).to_have_count(2)
    # Escape closes the list.
    box.fill("")
    box.press_sequentially("par")
    expect(listbox).to_be_visible()
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")


def test_keyboard_only_filter(ui: UI, seed: Seed) -> None:
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    box = page.get_by_role("combobox", name="Filter runs")
    for _ in range(40):
        page.keyboard.press("Tab")
        if box.evaluate("el => el === document.activeElement"):
            break
    expect(box).to_be_focused()
    page.keyboard.type("attributes.status = 'FAILED'")
    page.keyboard.press("Enter")
    expect(rows(ui)).to_have_count(1)
    expect(rows(ui).first).to_contain_text("crashed")
    # Focus stays in the filter box after the results swap.
    expect(box).to_be_focused()


def test_views_of_deleted_runs_and_several_experiments(ui: UI, seed: Seed) -> None:
    client = runyard.Client(tracking_uri=seed.url)
    exp = client.create_experiment(f"runs-table-{uuid.uuid4().hex[:8]}")
    kept = client.create_run(exp, run_name="kept").info.run_id
    gone = client.create_run(exp, run_name="gone").info.run_id
    client.delete_run(gone)
    ui.goto(f"/experiments/{exp}")
    page = ui.page
    assert visible_names(ui) == ["kept"]
    page.get_by_label("View").select_option("deleted")
    expect(rows(ui)).to_have_count(1)
    expect(rows(ui).first).to_contain_text("gone")
    assert query_of(ui)["view"] == ["deleted"]
    page.get_by_label("View").select_option("all")
    expect(rows(ui)).to_have_count(2)

    ui.goto(f"/runs?experiment_ids={exp}&experiment_ids={seed.second_experiment_id}")
    expect(page.locator("h1")).to_have_text("2 experiments")
    assert sorted(visible_names(ui)) == ["kept", "second-exp-run"]
    expect(page.locator(f'tr[data-run-id="{kept}"] .name-cell a')).to_have_text("kept")
    ui.shot("runs-table-two-experiments")

    empty = client.create_experiment(f"runs-empty-{uuid.uuid4().hex[:8]}")
    ui.goto(f"/experiments/{empty}")
    expect(page.locator(".empty-state")).to_contain_text("No runs yet")
    ui.shot("runs-table-empty")


def test_missing_experiment_is_404(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("404")
    response = ui.goto("/experiments/987654")
    assert response.status == 404
    expect(ui.page.locator(".error-message")).to_contain_text("987654")


def test_narrow_window(ui: UI, seed: Seed) -> None:
    ui.page.set_viewport_size({"width": 400, "height": 800})
    ui.goto(f"/experiments/{seed.experiment_id}")
    page = ui.page
    expect(rows(ui)).to_have_count(len(seed.run_names))
    # The table scrolls inside its wrapper; the page itself does not scroll sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400
    expect(page.get_by_role("combobox", name="Filter runs")).to_be_visible()
    ui.shot("runs-table-narrow")


# -- HTTP contract (in-process app, no browser) ------------------------------------------------


@pytest.fixture
def app_client(tmp_path: Path) -> Any:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'ui.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_fragment_shares_the_url_and_is_not_cached(app_client: TestClient) -> None:
    store = app_client.app.state.context.store
    exp = store.create_experiment("frag")
    run = store.create_run(exp, "u", 5, [], "only").info.run_id
    store.log_batch(run, [Metric("m", 1.5, 1, 0)], [Param("p", "x")], [RunTag("t", "y")])
    page = app_client.get(f"/experiments/{exp}")
    assert page.status_code == 200
    assert "X-Fragment" in page.headers["vary"]
    assert "<html" in page.text
    assert 'id="runs-results"' in page.text
    fragment = app_client.get(f"/experiments/{exp}", headers={"X-Fragment": "1"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="runs-results"')
    assert "<html" not in fragment.text
    assert fragment.headers["cache-control"] == "no-store"
    assert run in fragment.text
    bad = app_client.get(f"/experiments/{exp}?filter=metrics.m+%3E", headers={"X-Fragment": "1"})
    assert bad.status_code == 400
    assert 'id="filter-error"' in bad.text
    assert app_client.get("/experiments/42", headers={"X-Fragment": "1"}).status_code == 404
    assert app_client.get("/runs", follow_redirects=False).headers["location"] == "/experiments"


def test_csv_streams_every_page(app_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    store = app_client.app.state.context.store
    exp = store.create_experiment("many")
    other = store.create_experiment("other")
    ids = []
    for i in range(7):
        run = store.create_run(exp, "u", 1000 + i, [RunTag("mlflow.source.name", "/x/t.py")], None)
        store.log_batch(run.info.run_id, [Metric("score", float(i), 1, 0)], [Param("i", str(i))])
        ids.append(run.info.run_id)
    store.update_run_info(ids[0], "FINISHED", 3500, None)
    store.create_run(other, "u", 1, [], "elsewhere")
    # Three runs per store call, so seven runs take three calls.
    monkeypatch.setattr(runs_csv, "CSV_PAGE_SIZE", 3)
    response = app_client.get(
        f"/experiments/{exp}/runs.csv",
        params={"order_by": "metrics.score ASC", "cols": "metrics.score,params.i,tags.none"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="runs-{exp}.csv"'
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0][:9] == [
        "run_id",
        "name",
        "status",
        "start_time",
        "end_time",
        "duration_s",
        "user",
        "source",
        "git_commit",
    ]
    assert table[0][9:] == ["metrics.score", "params.i", "tags.none"]
    assert [row[0] for row in table[1:]] == ids
    assert [row[9] for row in table[1:]] == [str(float(i)) for i in range(7)]
    first = table[1]
    assert first[2:8] == [
        "FINISHED",
        "1970-01-01T00:00:01.000+00:00",
        "1970-01-01T00:00:03.500+00:00",
        "2.500",
        "u",
        "t.py",
    ]
    assert first[11] == ""
    # Several experiments, the default columns (every metric and param key found).
    both = app_client.get(f"/runs.csv?experiment_ids={exp}&experiment_ids={other}")
    assert both.headers["content-disposition"] == f'attachment; filename="runs-{exp}-{other}.csv"'
    lines = list(csv.reader(io.StringIO(both.text)))
    assert lines[0][9:] == ["metrics.score", "params.i"]
    assert len(lines) == 1 + 8
    invalid = app_client.get(f"/experiments/{exp}/runs.csv", params={"filter": "nope nope"})
    assert invalid.status_code == 400
    assert "error-message" in invalid.text
