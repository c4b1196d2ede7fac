"""What every page shares: the header, module loading, the 404 page, a narrow window."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("page_of", ["runs", "compare"])
def test_each_module_loads_once_and_versioned(ui: UI, seed: Seed, page_of: str) -> None:
    scripts: list[str] = []
    ui.page.on(
        "request",
        lambda request: scripts.append(request.url) if "/static-files/js/" in request.url else None,
    )
    path = (
        f"/experiments/{seed.experiment_id}"
        if page_of == "runs"
        else "/compare?runs=" + ",".join(seed.child_run_ids)
    )
    ui.goto(path)

    assert scripts, "the page loads its modules"
    assert all(re.search(r"\.js\?v=", url) for url in scripts), scripts
    assert len(scripts) == len(set(scripts)), scripts  # common.js once, not once per importer
    ui.shot(f"layout-modules-{page_of}")


def test_header_navigates_and_searches(ui: UI, seed: Seed) -> None:
    ui.goto("/models")
    header = ui.page.locator(".site-header")
    header.get_by_role("link", name="Experiments").click()
    expect(ui.page).to_have_url(re.compile(r"/experiments$"))
    expect(header.get_by_role("link", name="Experiments")).to_have_attribute("aria-current", "page")
    search = ui.page.locator("#site-search")
    search.fill(seed.artifact_run_id)
    search.press("Enter")
    expect(ui.page).to_have_url(re.compile(rf"/runs/{seed.artifact_run_id}$"))
    ui.shot("layout-header")


def test_unknown_page_is_a_404_page_with_navigation(ui: UI) -> None:
    ui.allow_console_error("404")
    response = ui.goto("/no/such/page")

    assert response is not None
    assert response.status == 404
    expect(ui.page.locator("h1")).to_have_text("Not found")
    expect(ui.page.locator(".error-message")).to_contain_text("/no/such/page")
    expect(ui.page.locator(".site-header")).to_be_visible()
    ui.shot("layout-404")


def test_skip_link_is_the_first_tab_stop(ui: UI) -> None:
    ui.goto("/experiments")
    ui.page.keyboard.press("Tab")
    expect(ui.page.locator(".skip-link")).to_be_focused()
    ui.page.keyboard.press("Enter")
    expect(ui.page).to_have_url(re.compile(r"#main$"))
