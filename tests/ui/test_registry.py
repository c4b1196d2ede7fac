"""Browser tests of the model registry pages: ``/models``, a model, a model version.

Read-only tests look at the seeded ``ui-model`` (versions 1 and 2, ``@champion`` → 1) and
``other-model``; every test that writes creates its own registered model first.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

import runyard
from runyard.server.ui.registry_pages import model_path, signature_tables
from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


def _client(seed: Seed) -> Any:
    return runyard.Client(tracking_uri=seed.url, registry_uri=seed.url)


def _own_model(seed: Seed, name: str, versions: int = 1, subpath: str = "model") -> str:
    """A registered model of this test with ``versions`` versions of the seeded sklearn model."""
    client = _client(seed)
    client.create_registered_model(name)
    source = client.get_run(seed.artifact_run_id).info.artifact_uri + "/" + subpath
    for _ in range(versions):
        client.create_model_version(name, source, run_id=seed.artifact_run_id)
    return name


def _toast(ui: UI) -> Any:
    return ui.page.locator("#toast")


# -- the models list --------------------------------------------------------------------------
def test_models_list_shows_models_aliases_and_latest_versions(ui: UI, seed: Seed) -> None:
    ui.goto("/models")
    expect(ui.page.locator("h1")).to_have_text("Registered models")
    row = ui.page.locator(f"tr[data-model='{seed.model_name}']")
    expect(row.locator("a.model-link")).to_have_attribute("href", f"/models/{seed.model_name}")
    expect(row.locator(".alias-chip")).to_have_text("@champion → v1")
    expect(row.locator("td").nth(1)).to_have_text("Version 2")
    expect(ui.page.locator("tr[data-model='other-model']")).to_contain_text("none")
    ui.shot("registry-models")

    row.locator("a.model-link").click()
    expect(ui.page).to_have_url(re.compile(f"/models/{seed.model_name}$"))
    expect(ui.page.locator("h1")).to_have_text(seed.model_name)


def test_models_search_by_name_substring(ui: UI, seed: Seed) -> None:
    ui.goto("/models")
    ui.page.fill("#model-search", "OTHER")
    ui.page.press("#model-search", "Enter")
    expect(ui.page).to_have_url(re.compile(r"/models\?q=OTHER$"))
    expect(ui.page.locator("tr[data-model='other-model']")).to_be_visible()
    expect(ui.page.locator(f"tr[data-model='{seed.model_name}']")).to_have_count(0)
    ui.shot("registry-models-search")

    ui.goto("/models?q=" + quote("no-such-model-o'neil"))
    expect(ui.page.locator(".empty-state")).to_contain_text("No registered models match")
    ui.shot("registry-models-search-empty")
    ui.page.get_by_role("link", name="Clear search").click()
    expect(ui.page.locator(f"tr[data-model='{seed.model_name}']")).to_be_visible()


def test_create_model_dialog(ui: UI, seed: Seed) -> None:
    ui.goto("/models")
    ui.page.get_by_role("button", name="Create model").click()
    expect(ui.page.locator("#create-model-dialog")).to_be_visible()
    ui.page.fill("#new-model-name", "registry-test-created")
    ui.page.fill("#new-model-description", "Made **here**.")
    ui.shot("registry-create-dialog")
    ui.page.locator("#create-model-dialog button[type=submit]").click()
    expect(ui.page).to_have_url(re.compile("/models/registry-test-created$"))
    expect(ui.page.locator(".description strong")).to_have_text("here")
    expect(ui.page.locator("#versions-section .empty-state")).to_contain_text("No versions yet")

    # A second model of the same name: MLflow's message, the dialog stays open.
    ui.allow_console_error("status of 400")
    ui.goto("/models")
    ui.page.get_by_role("button", name="Create model").click()
    ui.page.fill("#new-model-name", "registry-test-created")
    ui.page.locator("#create-model-dialog button[type=submit]").click()
    expect(_toast(ui)).to_contain_text("already exists")
    expect(ui.page.locator("#create-model-dialog")).to_be_visible()


# -- a model's page -----------------------------------------------------------------------------
def test_model_page_shows_versions_aliases_and_history(ui: UI, seed: Seed) -> None:
    ui.goto(f"/models/{seed.model_name}")
    expect(ui.page.locator("h1")).to_have_text(seed.model_name)
    expect(ui.page.locator(".breadcrumbs")).to_contain_text("Models")
    expect(ui.page.locator(".description")).to_have_text("A demo classifier.")
    expect(ui.page.locator("#aliases-section .alias-chip")).to_have_text("@champion → v1")
    rows = ui.page.locator(".versions-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Version 2")
    expect(rows.nth(0)).to_contain_text("retrained")
    expect(rows.nth(1).locator(".aliases")).to_have_text("@champion")
    run_link = rows.nth(1).locator(f"a[href='/runs/{seed.artifact_run_id}']")
    expect(run_link).to_have_text(seed.artifact_run_id[:8])
    history = ui.page.locator(".history-table tbody tr")
    expect(history).to_have_count(3)
    # Newest first: the alias was set after both versions were created.
    expect(history.nth(0)).to_contain_text("Alias set")
    expect(history.nth(0)).to_contain_text("@champion")
    expect(history.nth(2)).to_contain_text("Version created")
    expect(history.nth(2)).to_contain_text("v1")
    ui.shot("registry-model")


def test_set_alias_in_dialog_then_remove_it(ui: UI, seed: Seed) -> None:
    name = _own_model(seed, "registry-test-alias", versions=2)
    ui.goto(f"/models/{name}")
    ui.page.get_by_role("button", name="Set alias").click()
    ui.page.fill("#alias-name", "candidate")
    ui.page.select_option("#alias-version", "2")
    ui.shot("registry-alias-dialog")
    ui.page.locator("#alias-dialog button[type=submit]").click()
    expect(_toast(ui)).to_contain_text("@candidate now points at version 2")
    expect(ui.page.locator("#alias-dialog")).to_be_hidden()
    expect(ui.page.locator("#aliases-section .alias-chip")).to_have_text("@candidate → v2")
    expect(ui.page.locator(".versions-table tr[data-version='2'] .aliases")).to_have_text(
        "@candidate"
    )
    expect(ui.page.locator(".history-table tbody tr").first).to_contain_text("@candidate")

    # An invalid alias: MLflow's message, the dialog stays open for a correction.
    ui.allow_console_error("status of 400")
    ui.page.get_by_role("button", name="Set alias").click()
    ui.page.fill("#alias-name", "v7")
    ui.page.locator("#alias-dialog button[type=submit]").click()
    expect(_toast(ui)).to_contain_text("reserved")
    expect(ui.page.locator("#alias-dialog")).to_be_visible()
    ui.page.locator("#alias-dialog").get_by_role("button", name="Cancel").click()
    expect(ui.page.locator("#alias-dialog")).to_be_hidden()

    ui.goto(f"/models?q={name}")
    expect(ui.page.locator(f"tr[data-model='{name}'] .alias-chip")).to_have_text("@candidate → v2")
    ui.goto(f"/models/{name}/versions/2")
    expect(ui.page.locator(".version-kv .alias-chip")).to_have_text("@candidate")
    ui.page.get_by_role("button", name="Remove alias candidate").click()
    expect(_toast(ui)).to_contain_text("@candidate removed")
    expect(ui.page.locator(".version-kv .alias-chip")).to_have_count(0)
    ui.goto(f"/models/{name}")
    expect(ui.page.locator("#aliases-section .alias-chip")).to_have_count(0)
    expect(ui.page.locator(".history-table tbody tr").first).to_contain_text("Alias removed")


def test_add_alias_on_version_page(ui: UI, seed: Seed) -> None:
    name = _own_model(seed, "registry-test-version-alias")
    ui.goto(f"/models/{name}/versions/1")
    ui.page.fill("#alias-name", "shadow")
    ui.page.get_by_role("button", name="Add alias").click()
    expect(ui.page.locator(".version-kv .alias-chip")).to_have_text("@shadow")
    ui.goto(f"/models/{name}")
    expect(ui.page.locator("#aliases-section .alias-chip")).to_have_text("@shadow → v1")


def test_transition_stage(ui: UI, seed: Seed) -> None:
    name = _own_model(seed, "registry-test-stage", versions=2)
    ui.goto(f"/models/{name}/versions/1")
    ui.page.select_option("#transition-stage", "Staging")
    ui.page.get_by_role("button", name="Transition").click()
    expect(_toast(ui)).to_contain_text("moved to Staging")
    expect(ui.page.locator(".version-kv .stage")).to_have_text("Staging")
    ui.shot("registry-version-staging")

    # Version 2 to Staging, archiving the versions already there.
    ui.goto(f"/models/{name}/versions/2")
    ui.page.select_option("#transition-stage", "Staging")
    ui.page.check("input[name=archive_existing_versions]")
    ui.page.get_by_role("button", name="Transition").click()
    expect(ui.page.locator(".version-kv .stage")).to_have_text("Staging")

    ui.goto(f"/models/{name}")
    expect(ui.page.locator("tr[data-version='2'] .stage")).to_have_text("Staging")
    expect(ui.page.locator("tr[data-version='1'] .stage")).to_have_text("Archived")
    history = ui.page.locator(".history-table tbody tr")
    expect(history.filter(has_text="None → Staging")).to_have_count(2)
    expect(history.filter(has_text="Staging → Archived")).to_have_count(1)
    ui.goto(f"/models?q={name}")
    expect(ui.page.locator(f"tr[data-model='{name}'] td").nth(3)).to_have_text("Version 2")


def test_edit_descriptions_render_markdown(ui: UI, seed: Seed) -> None:
    name = _own_model(seed, "registry-test-description")
    ui.goto(f"/models/{name}")
    expect(ui.page.locator(".description")).to_contain_text("No description")
    ui.page.get_by_role("button", name="Edit description").click()
    ui.page.fill("#description-input", "Has **bold** and <b>raw</b> text.")
    ui.page.locator("#description-dialog button[type=submit]").click()
    expect(_toast(ui)).to_contain_text("Description saved")
    expect(ui.page.locator(".description strong")).to_have_text("bold")
    # Raw HTML is shown as text, never rendered.
    expect(ui.page.locator(".description")).to_contain_text("<b>raw</b>")
    expect(ui.page.locator(".description b")).to_have_count(0)

    ui.goto(f"/models/{name}/versions/1")
    ui.page.get_by_role("button", name="Edit description").click()
    ui.page.fill("#description-input", "# Tuned\n\n- lr *0.1*")
    ui.page.locator("#description-dialog button[type=submit]").click()
    expect(ui.page.locator(".description h3")).to_have_text("Tuned")
    expect(ui.page.locator(".description li em")).to_have_text("0.1")
    ui.shot("registry-version-description")
    ui.goto(f"/models/{name}")
    expect(ui.page.locator("tr[data-version='1'] .description-cell")).to_contain_text("# Tuned")


@pytest.mark.parametrize("where", ["model", "version"])
def test_add_edit_and_delete_a_tag(ui: UI, seed: Seed, where: str) -> None:
    name = _own_model(seed, f"registry-test-tags-{where}")
    ui.goto(f"/models/{name}" + ("/versions/1" if where == "version" else ""))
    expect(ui.page.locator("#tags-section")).to_contain_text("No tags")
    ui.page.fill("#tag-key", "team")
    ui.page.fill("#tag-value", "vision")
    ui.page.get_by_role("button", name="Set tag").click()
    row = ui.page.locator("tr[data-tag='team']")
    expect(row.locator(".tag-value")).to_have_text("vision")

    row.get_by_role("button", name="Edit tag team").click()
    expect(ui.page.locator("#tag-key")).to_have_value("team")
    ui.page.fill("#tag-value", "speech")
    ui.page.get_by_role("button", name="Set tag").click()
    expect(row.locator(".tag-value")).to_have_text("speech")
    ui.shot(f"registry-{where}-tags")

    row.get_by_role("button", name="Delete tag team").click()
    expect(_toast(ui)).to_contain_text('Tag "team" deleted')
    expect(ui.page.locator("tr[data-tag='team']")).to_have_count(0)
    client = _client(seed)
    tags = (
        client.get_model_version(name, "1").tags
        if where == "version"
        else client.get_registered_model(name).tags
    )
    assert tags == {}


# -- a version's page -----------------------------------------------------------------------------
def test_version_page_shows_signature_mlmodel_and_source_run(ui: UI, seed: Seed) -> None:
    ui.goto(f"/models/{seed.model_name}/versions/1")
    expect(ui.page.locator("h1")).to_contain_text("version 1")
    expect(ui.page.locator(".version-kv .alias-chip")).to_have_text("@champion")
    expect(ui.page.locator(".version-kv .stage")).to_have_text("None")
    # The seeded model was saved with a numpy signature: one float64 tensor of 2 columns.
    inputs = ui.page.locator("table.signature-table[data-part='inputs'] tbody tr")
    expect(inputs).to_have_count(1)
    expect(inputs.first).to_contain_text("tensor float64")
    expect(inputs.first).to_contain_text("(-1, 2)")
    expect(ui.page.locator("table.signature-table[data-part='outputs']")).to_contain_text("int64")
    expect(ui.page.locator("pre.mlmodel")).to_contain_text("sklearn")
    expect(ui.page.get_by_role("link", name="Browse model files")).to_have_attribute(
        "href", f"/runs/{seed.artifact_run_id}?path=model#artifacts"
    )
    download = ui.page.get_by_role("link", name="Download MLmodel")
    href = download.get_attribute("href")
    assert href is not None
    response = ui.page.request.get(seed.url + href)
    assert response.ok
    assert "flavors:" in response.text()
    ui.shot("registry-version")

    run_link = ui.page.locator("a.source-run")
    expect(run_link).to_have_attribute("href", f"/runs/{seed.artifact_run_id}")
    # The link's target is the run page of the run the version came from.
    run_page = ui.page.request.get(seed.url + f"/runs/{seed.artifact_run_id}")
    assert run_page.ok
    assert "with-artifacts" in run_page.text()


def test_version_page_names_dataframe_columns(ui: UI, seed: Seed) -> None:
    from sklearn.linear_model import LinearRegression

    import runyard.sklearn
    from runyard.models import infer_signature

    client = _client(seed)
    experiment = client.create_experiment("registry-test-columns")
    run_id = client.create_run(experiment, run_name="columns").info.run_id
    frame = pd.DataFrame({"sepal_width": [1.0, 2.0, 3.0], "petal_count": [1, 3, 2]})
    model = LinearRegression().fit(frame, np.array([0.5, 1.0, 1.5]))
    with tempfile.TemporaryDirectory() as tmp:
        runyard.sklearn.save_model(
            model,
            os.path.join(tmp, "model"),
            signature=infer_signature(frame, model.predict(frame)),
        )
        client.log_artifacts(run_id, os.path.join(tmp, "model"), "model")
    client.set_terminated(run_id)
    runyard.flush()
    client.create_registered_model("registry-test-columns")
    source = client.get_run(run_id).info.artifact_uri + "/model"
    client.create_model_version("registry-test-columns", source, run_id=run_id)

    ui.goto("/models/registry-test-columns/versions/1")
    inputs = ui.page.locator("table.signature-table[data-part='inputs'] tbody tr")
    expect(inputs).to_have_count(2)
    expect(inputs.nth(0)).to_contain_text("sepal_width")
    expect(inputs.nth(0)).to_contain_text("double")
    expect(inputs.nth(1)).to_contain_text("petal_count")
    expect(inputs.nth(1)).to_contain_text("long")
    ui.shot("registry-version-columns")


def test_version_without_mlmodel(ui: UI, seed: Seed) -> None:
    name = _own_model(seed, "registry-test-no-mlmodel", subpath="not-a-model")
    ui.goto(f"/models/{name}/versions/1")
    expect(ui.page.locator(".no-mlmodel")).to_contain_text("No MLmodel found")
    expect(ui.page.locator("#signature-section")).to_contain_text("No signature")
    ui.shot("registry-version-no-mlmodel")


@pytest.mark.parametrize("page", ["models", "model", "version"])
def test_pages_fit_a_narrow_screen(ui: UI, seed: Seed, page: str) -> None:
    ui.page.set_viewport_size({"width": 400, "height": 800})
    path = {"models": "/models", "model": model_path(seed.model_name)}.get(
        page, model_path(seed.model_name, 1)
    )
    ui.goto(path)
    expect(ui.page.locator("h1")).to_be_visible()
    # Wide tables scroll inside their .table-wrap; the page itself never scrolls sideways.
    overflow = ui.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    ui.shot(f"registry-{page}-narrow")


# -- errors --------------------------------------------------------------------------------------
def test_unknown_model_and_version_are_404_pages(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("404")
    response = ui.goto("/models/no-such-model")
    assert response.status == 404
    expect(ui.page.locator("h1")).to_have_text("Not found")
    expect(ui.page.locator(".error-message")).to_have_text(
        "Registered Model with name=no-such-model not found"
    )
    ui.shot("registry-404")
    response = ui.goto(f"/models/{seed.model_name}/versions/99")
    assert response.status == 404
    expect(ui.page.locator(".error-message")).to_contain_text(
        f"Model Version (name={seed.model_name}, version=99) not found"
    )


# -- helpers without a browser -------------------------------------------------------------------
def test_model_path_encodes_each_segment() -> None:
    assert model_path("a b/c") == "/models/a%20b/c"
    assert model_path("m#1", 3) == "/models/m%231/versions/3"


def test_signature_tables_read_params_and_nested_types() -> None:
    tables = signature_tables(
        {
            "signature": {
                "inputs": '[{"type": "array", "items": {"type": "string"}, "name": "words",'
                ' "required": false}]',
                "outputs": '[{"type": "double"}]',
                "params": '[{"name": "k", "type": "long", "default": 5, "shape": null}]',
            }
        }
    )
    assert [t.title for t in tables] == ["Inputs", "Outputs", "Params"]
    assert tables[0].rows == [["words", "array<string>", "", "no"]]
    assert tables[1].rows == [["(unnamed)", "double", "", "yes"]]
    assert tables[2].rows == [["k", "long", "5", ""]]
    assert signature_tables({"flavors": {}}) == []


def test_models_list_pages_by_100(ui: UI, seed: Seed) -> None:
    client = _client(seed)
    for i in range(105):
        client.create_registered_model(f"zz-page-{i:03d}")
    ui.goto("/models?q=zz-page-")
    rows = ui.page.locator(".models-table tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_have_attribute("data-model", "zz-page-000")
    expect(ui.page.get_by_role("link", name="First page")).to_have_count(0)
    ui.page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(5)
    expect(rows.last).to_have_attribute("data-model", "zz-page-104")
    expect(ui.page).to_have_url(re.compile(r"q=zz-page-&page_token="))
    expect(ui.page.get_by_role("link", name="Next page")).to_have_count(0)
    ui.shot("registry-models-page-2")
    ui.page.get_by_role("link", name="First page").click()
    expect(rows).to_have_count(100)
