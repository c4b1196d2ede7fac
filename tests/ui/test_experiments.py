"""The experiments list in Chromium: counts, search, views, create / rename / delete / restore,
multi-select into the runs table; and the run-id shortcut of the search box."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import runyard
from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


def row(ui: UI, name: str) -> Any:
    return ui.page.locator("#experiments-table tbody tr").filter(
        has=ui.page.get_by_role("link", name=name, exact=True)
    )


def test_list_shows_experiments_with_counts(ui: UI, seed: Seed) -> None:
    ui.goto("/experiments")
    page = ui.page
    expect(page.locator("h1")).to_have_text("Experiments")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Experiments")
    ).to_have_attribute("aria-current", "page")
    demo = row(ui, "ui-demo")
    expect(demo.locator(".run-count")).to_have_text(str(len(seed.run_names)))
    expect(demo.get_by_role("link", name="ui-demo")).to_have_attribute(
        "href", f"/experiments/{seed.experiment_id}"
    )
    expect(demo.locator("td").nth(2)).to_have_text(seed.experiment_id)
    expect(demo.locator(".tag-chip")).to_have_text("team: vision")
    expect(demo.locator("td").nth(4)).to_have_text(re.compile(r"ago|just now"))
    expect(row(ui, "ui-second").locator(".run-count")).to_have_text("1")
    expect(row(ui, "ui-deleted")).to_have_count(0)
    ui.shot("experiments-list")

    demo.get_by_role("link", name="ui-demo").click()
    expect(page).to_have_url(f"{seed.url}/experiments/{seed.experiment_id}")
    expect(page.locator("h1")).to_have_text("ui-demo")


def test_search_by_name(ui: UI, seed: Seed) -> None:
    ui.goto("/experiments")
    page = ui.page
    search = page.get_by_role("searchbox", name="Search experiments by name")
    search.fill("DEMO")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"q=DEMO"))
    names = page.locator("#experiments-table tbody .experiment-name a")
    expect(names).to_have_text(["ui-demo"])
    ui.shot("experiments-search")

    search = page.get_by_role("searchbox", name="Search experiments by name")
    search.fill("no-such-experiment-anywhere")
    search.press("Enter")
    expect(page.locator(".empty-state")).to_contain_text("No experiments match")
    page.get_by_role("link", name="Clear the search").click()
    expect(row(ui, "ui-demo")).to_have_count(1)
    # A quote in the search is text, not syntax.
    ui.goto("/experiments?q=it%27s")
    expect(page.locator(".empty-state")).to_contain_text("No experiments match “it's”")


def test_header_search_goes_to_a_run(ui: UI, seed: Seed) -> None:
    ui.goto("/experiments")
    header = ui.page.get_by_role("search").get_by_placeholder("Search experiments, or a run id")
    header.fill(seed.artifact_run_id)
    header.press("Enter")
    expect(ui.page).to_have_url(f"{seed.url}/runs/{seed.artifact_run_id}")


def test_run_id_search_redirects(seed: Seed) -> None:
    found = httpx.get(f"{seed.url}/experiments", params={"q": seed.artifact_run_id})
    assert found.status_code == 302
    assert found.headers["location"] == f"/runs/{seed.artifact_run_id}"
    # Upper-case hex and surrounding spaces still find it.
    found = httpx.get(f"{seed.url}/experiments", params={"q": f" {seed.artifact_run_id.upper()} "})
    assert found.headers["location"] == f"/runs/{seed.artifact_run_id}"
    unknown = httpx.get(f"{seed.url}/experiments", params={"q": "0" * 32})
    assert unknown.status_code == 200
    assert "No experiments match" in unknown.text


def test_deleted_and_all_views(ui: UI, seed: Seed) -> None:
    ui.goto("/experiments")
    page = ui.page
    views = page.get_by_role("navigation", name="Which experiments")
    views.get_by_role("link", name="Deleted").click()
    expect(views.get_by_role("link", name="Deleted")).to_have_attribute("aria-current", "page")
    deleted = row(ui, "ui-deleted")
    expect(deleted).to_have_count(1)
    expect(deleted.get_by_role("button", name="Restore")).to_be_visible()
    expect(row(ui, "ui-demo")).to_have_count(0)
    ui.shot("experiments-deleted")
    views.get_by_role("link", name="All").click()
    expect(row(ui, "ui-deleted")).to_have_count(1)
    expect(row(ui, "ui-demo")).to_have_count(1)


def test_create_rename_delete_restore(ui: UI, seed: Seed) -> None:
    name = f"ui-made-{uuid.uuid4().hex[:8]}"
    ui.allow_console_error("status of 400")  # the refused duplicate name
    ui.goto("/experiments")
    page = ui.page
    page.get_by_role("button", name="New experiment").click()
    dialog = page.get_by_role("dialog", name="New experiment")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    # A taken name is refused with MLflow's message, inside the dialog.
    dialog.get_by_label("Name").fill("ui-demo")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator(".error-message")).to_contain_text("already exists")
    ui.shot("experiments-create-dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator(".empty-state")).to_contain_text("No runs yet")
    exp_id = page.url.rstrip("/").rsplit("/", 1)[1]

    ui.goto("/experiments")
    row(ui, name).get_by_role("button", name=f"Rename {name}").click()
    dialog = page.get_by_role("dialog", name="Rename experiment")
    expect(dialog.get_by_label("New name")).to_have_value(name)
    dialog.get_by_label("New name").fill(f"{name}-renamed")
    dialog.get_by_role("button", name="Rename").click()
    renamed = row(ui, f"{name}-renamed")
    expect(renamed).to_have_count(1)
    expect(renamed.locator("td").nth(2)).to_have_text(exp_id)

    renamed.get_by_role("button", name=f"Delete {name}-renamed").click()
    dialog = page.get_by_role("dialog", name="Delete experiment?")
    expect(dialog).to_contain_text(f"{name}-renamed")
    dialog.get_by_role("button", name="Delete").click()
    expect(row(ui, f"{name}-renamed")).to_have_count(0)
    client = runyard.Client(tracking_uri=seed.url)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"

    ui.goto("/experiments?view=deleted")
    row(ui, f"{name}-renamed").get_by_role("button", name="Restore").click()
    expect(row(ui, f"{name}-renamed")).to_have_count(0)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    ui.goto("/experiments")
    expect(row(ui, f"{name}-renamed")).to_have_count(1)


def test_select_experiments_and_show_runs(ui: UI, seed: Seed) -> None:
    ui.goto("/experiments")
    page = ui.page
    show = page.get_by_role("button", name=re.compile("^Show runs"))
    expect(show).to_be_disabled()
    row(ui, "ui-demo").get_by_role("checkbox").check()
    row(ui, "ui-second").get_by_role("checkbox").check()
    expect(show).to_have_text("Show runs of 2 experiments")
    ui.shot("experiments-selected")
    show.click()
    expect(page).to_have_url(re.compile(r"/runs\?experiment_ids=\d+&experiment_ids=\d+"))
    ids = sorted(re.findall(r"experiment_ids=(\d+)", page.url))
    assert ids == sorted([seed.experiment_id, seed.second_experiment_id])
    expect(page.locator("h1")).to_have_text("2 experiments")
    expect(page.locator("#runs-table tbody tr")).to_have_count(len(seed.run_names) + 1)
    expect(page.get_by_role("link", name="second-exp-run")).to_be_visible()
    ui.shot("runs-of-two-experiments")


def test_keyboard_and_narrow_window(ui: UI, seed: Seed) -> None:
    ui.page.set_viewport_size({"width": 400, "height": 800})
    ui.goto("/experiments")
    page = ui.page
    expect(row(ui, "ui-demo")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400
    ui.shot("experiments-narrow")
    # The create dialog works from the keyboard and Escape closes it.
    page.get_by_role("button", name="New experiment").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New experiment")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
