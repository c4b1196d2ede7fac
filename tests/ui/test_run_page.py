"""The run page in Chromium: overview, parameters, metrics, tags, description, artifacts."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

import runyard
from tests.ui.conftest import UI, Seed

pytestmark = pytest.mark.slow


def own_run(seed: Seed, **tags: str) -> tuple[Any, str]:
    """A run of a fresh experiment of this test's own (seeded runs are never changed)."""
    client = runyard.Client(tracking_uri=seed.url)
    experiment = client.create_experiment(f"run-page-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment, run_name="editable", tags=tags or None)
    return client, run.info.run_id


def tab(ui: UI, name: str) -> Any:
    return ui.page.get_by_role("tab", name=re.compile(f"^{name}"))


def test_overview(ui: UI, seed: Seed) -> None:
    run_id = seed.artifact_run_id
    ui.goto(f"/runs/{run_id}")
    page = ui.page

    expect(page.locator(".run-title h1")).to_have_text("with-artifacts")
    crumbs = page.locator("nav.breadcrumbs")
    expect(crumbs.get_by_role("link", name="Experiments")).to_have_attribute("href", "/experiments")
    expect(crumbs.get_by_role("link", name="ui-demo")).to_have_attribute(
        "href", f"/experiments/{seed.experiment_id}"
    )
    expect(page.locator(".run-title .badge")).to_have_text("Finished")
    expect(page.locator("#run-id-value")).to_have_text(run_id)
    details = page.locator("#run-details")
    expect(details.locator("tr", has_text="Lifecycle stage")).to_contain_text("active")
    expect(details.locator("tr", has_text="Duration")).not_to_contain_text("—")
    expect(details.locator("tr", has_text="Artifact URI")).to_contain_text(run_id)
    expect(details.locator("tr", has_text="Start time")).to_contain_text(re.compile(r"\d{4}-"))
    # The description is Markdown rendered by the server.
    body = page.locator("#description-body")
    expect(body.locator("h3")).to_have_text("Notes")
    expect(body.locator("em")).to_have_text("iris")
    versions = page.locator("#model-versions")
    expect(versions.get_by_role("link", name="ui-model version 1")).to_have_attribute(
        "href", "/models/ui-model/versions/1"
    )
    expect(versions.get_by_role("link", name="ui-model version 2")).to_be_visible()
    for name in ("Overview", "Parameters", "Metrics", "Tags", "Artifacts"):
        expect(tab(ui, name)).to_be_visible()
    page.get_by_role("button", name="Copy run ID").click()
    expect(page.locator("#toast")).to_have_text("Run ID copied")
    ui.shot("run-overview")


def test_parent_and_child_links(ui: UI, seed: Seed) -> None:
    ui.goto(f"/runs/{seed.parent_run_id}")
    page = ui.page

    children = page.locator("#child-runs a")
    expect(children).to_have_text(["trial-0", "trial-1", "trial-2"])
    for link, child_id in zip(children.all(), seed.child_run_ids, strict=True):
        expect(link).to_have_attribute("href", f"/runs/{child_id}")
    ui.shot("run-overview-parent")

    page.get_by_role("link", name="trial-1").click()
    expect(page).to_have_url(f"{seed.url}/runs/{seed.child_run_ids[1]}")
    parent = page.locator("#parent-run a")
    expect(parent).to_have_text("sweep")
    parent.click()
    expect(page.locator(".run-title h1")).to_have_text("sweep")


def test_params_and_metrics(ui: UI, seed: Seed) -> None:
    child = seed.child_run_ids[0]  # lr 0.1: loss = 1 / (step + 1) + 0.1 over 50 steps
    ui.goto(f"/runs/{child}#params")
    page = ui.page

    rows = page.locator("#params-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#params-table tr", has_text="optimizer")).to_contain_text("sgd")
    expect(page.locator("#params-table tr", has_text="lr")).to_contain_text("0.1")
    page.get_by_label("Filter parameters").fill("opt")
    expect(page.locator("#params-table tbody tr:visible")).to_have_count(1)
    expect(page.locator("#params-table tbody tr:visible")).to_contain_text("optimizer")
    page.get_by_label("Filter parameters").fill("no-such-param")
    expect(page.get_by_text("No parameters match the filter.")).to_be_visible()
    page.get_by_label("Filter parameters").fill("")
    expect(rows).to_have_count(3)
    ui.shot("run-params")

    tab(ui, "Metrics").click()
    expect(page).to_have_url(re.compile("#metrics$"))
    loss = page.locator('#metrics-table tr[data-key="loss"] td')
    # key, latest, latest step, min, max, points
    expect(loss).to_have_text(["loss", "0.12", "49", "0.12", "1.1", "50"])
    expect(page.locator('#metrics-table tr[data-key="accuracy"] td').nth(5)).to_have_text("1")
    expect(page.get_by_role("link", name="loss", exact=True)).to_have_attribute(
        "href", f"/metrics?runs={child}&keys=loss"
    )
    expect(page.get_by_role("link", name="Chart all")).to_have_attribute(
        "href", f"/metrics?runs={child}&keys=accuracy%2Closs"
    )
    ui.shot("run-metrics")


def test_tags_add_edit_delete(ui: UI, seed: Seed) -> None:
    client, run_id = own_run(seed)
    ui.goto(f"/runs/{run_id}#tags")
    page = ui.page
    table = page.locator("#tags-table")
    expect(page.locator("#no-tags")).to_be_visible()

    page.get_by_label("Key").fill("reviewer")
    page.get_by_label("Value").fill("<ann>")
    page.get_by_role("button", name="Add tag").click()
    row = table.locator('tr[data-key="reviewer"]')
    expect(row.locator(".tag-value")).to_have_text("<ann>")
    expect(page.locator("#no-tags")).to_be_hidden()
    expect(tab(ui, "Tags")).to_contain_text("1")
    assert client.get_run(run_id).data.tags["reviewer"] == "<ann>"

    row.get_by_role("button", name="Edit tag reviewer").click()
    editor = row.get_by_label("Value of tag reviewer")
    editor.fill("bob")
    row.get_by_role("button", name="Save").click()
    expect(table.locator('tr[data-key="reviewer"] .tag-value')).to_have_text("bob")
    assert client.get_run(run_id).data.tags["reviewer"] == "bob"

    # System tags stay behind the toggle.
    system = table.locator('tr[data-key="mlflow.runName"]')
    expect(system).to_be_hidden()
    page.get_by_label("Show system tags").check()
    expect(system).to_be_visible()
    expect(system).to_contain_text("editable")
    ui.shot("run-tags")

    table.locator('tr[data-key="reviewer"]').get_by_role(
        "button", name="Delete tag reviewer"
    ).click()
    dialog = page.locator("#delete-tag-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("reviewer")
    ui.shot("run-tags-delete")
    dialog.get_by_role("button", name="Delete").click()
    expect(table.locator('tr[data-key="reviewer"]')).to_have_count(0)
    expect(system).to_be_visible()  # the toggle still applies to the refreshed table
    assert "reviewer" not in client.get_run(run_id).data.tags


def test_edit_description(ui: UI, seed: Seed) -> None:
    client, run_id = own_run(seed)
    ui.goto(f"/runs/{run_id}")
    page = ui.page
    expect(page.locator("#description-body")).to_contain_text("No description yet")

    page.get_by_role("button", name="Edit").click()
    note = "## Result\n\nIt was **good**. <script>window.__pwned = 1</script>"
    page.get_by_label("Description (Markdown)").fill(note)
    ui.shot("run-description-edit")
    page.get_by_role("button", name="Save").click()

    body = page.locator("#description-body")
    expect(body.locator("h4")).to_have_text("Result")
    expect(body.locator("strong")).to_have_text("good")
    expect(body).to_contain_text("<script>window.__pwned = 1</script>")  # shown as text
    expect(page.get_by_label("Description (Markdown)")).to_be_hidden()
    assert page.evaluate("window.__pwned") is None
    assert client.get_run(run_id).data.tags["mlflow.note.content"] == note
    ui.shot("run-description")

    page.reload()
    expect(page.locator("#description-body h4")).to_have_text("Result")
    assert page.evaluate("window.__pwned") is None


def open_node(ui: UI, path: str) -> Any:
    node = ui.page.locator(f'#artifact-tree button.node[data-path="{path}"]')
    node.click()
    return node


def test_artifact_tree_and_previews(ui: UI, seed: Seed) -> None:
    run_id = seed.artifact_run_id
    ui.goto(f"/runs/{run_id}#artifacts")
    page = ui.page
    pane = page.locator("#artifact-preview")

    top = page.locator("#artifact-tree > li > button.node .node-name")
    expect(top).to_have_text(
        ["config.json", "data", "images", "logs", "model", "notes.txt", "params.yaml"]
    )
    expect(page.locator('#artifact-tree a[aria-label="Download notes.txt"]')).to_have_attribute(
        "href", f"/get-artifact?run_id={run_id}&path=notes.txt"
    )

    open_node(ui, "notes.txt")
    expect(pane.locator("pre")).to_have_text("hello from runyard\n")
    expect(page).to_have_url(re.compile(r"\?path=notes\.txt#artifacts$"))
    expect(pane.get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/get-artifact?run_id={run_id}&path=notes.txt"
    )
    ui.shot("run-artifacts-text")

    open_node(ui, "config.json")
    expect(pane.locator(".preview[data-kind=json] pre")).to_contain_text('"layers": [\n    64,')
    ui.shot("run-artifacts-json")

    open_node(ui, "params.yaml")
    expect(pane.locator(".preview[data-kind=yaml] pre")).to_contain_text("optimizer: adam")
    ui.shot("run-artifacts-yaml")

    data = open_node(ui, "data")
    expect(data).to_have_attribute("aria-expanded", "true")
    open_node(ui, "data/table.csv")
    expect(pane.locator("thead th")).to_have_text(["a", "b", "label"])
    expect(pane.locator("tbody tr").first.locator("td")).to_have_text(["1", "2", "x"])
    expect(pane.locator("tbody tr").nth(1).locator("td")).to_have_text(["3", "4", "y"])
    ui.shot("run-artifacts-csv")

    open_node(ui, "images")
    open_node(ui, "images/sample.png")
    image = pane.locator("img.preview-image")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.preview-image')?.complete === true")
    assert image.evaluate("img => img.naturalWidth") == 48
    ui.shot("run-artifacts-image")

    open_node(ui, "logs")
    open_node(ui, "logs/train.log")
    expect(pane.locator("pre")).to_have_text("epoch 1 done\nepoch 2 done\n")

    model = open_node(ui, "model")
    expect(model).to_have_attribute("aria-expanded", "true")
    expect(pane.locator(".preview")).to_have_attribute("data-kind", "model-dir")
    expect(pane.locator(".flavors")).to_contain_text("sklearn")
    expect(pane.locator(".flavors")).to_contain_text("python_function")
    inputs = pane.locator("#signature-inputs tbody tr td")
    expect(inputs).to_have_text(["—", "tensor of float64", "yes", "(-1, 2)"])
    expect(pane.locator("#signature-outputs")).to_be_visible()
    ui.shot("run-artifacts-model")

    open_node(ui, "model/MLmodel")
    expect(pane.locator(".preview")).to_have_attribute("data-kind", "mlmodel")
    expect(pane.locator("#signature-inputs")).to_contain_text("tensor of float64")
    pane.get_by_text("MLmodel file (YAML)").click()
    expect(pane.locator(".raw-yaml pre")).to_contain_text("flavors:")
    ui.shot("run-artifacts-mlmodel")

    binary = page.locator('#artifact-tree button.node.file[data-path^="model/model."]').first
    binary.click()
    expect(pane).to_contain_text("No preview for this file type")
    ui.shot("run-artifacts-binary")


def test_artifact_tree_keyboard(ui: UI, seed: Seed) -> None:
    ui.goto(f"/runs/{seed.artifact_run_id}#artifacts")
    page = ui.page
    data = page.locator('#artifact-tree button.node[data-path="data"]')
    expect(data).to_have_attribute("aria-expanded", "false")

    data.focus()
    page.keyboard.press("Enter")
    expect(data).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    csv = page.locator('#artifact-tree button.node[data-path="data/table.csv"]')
    expect(csv).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#artifact-preview thead th")).to_have_text(["a", "b", "label"])
    data.focus()
    page.keyboard.press("ArrowLeft")
    expect(data).to_have_attribute("aria-expanded", "false")


def test_path_in_url_restores_the_preview(ui: UI, seed: Seed) -> None:
    run_id = seed.artifact_run_id
    ui.goto(f"/runs/{run_id}?path=data/table.csv#artifacts")
    page = ui.page
    pane = page.locator("#artifact-preview")

    expect(tab(ui, "Artifacts")).to_have_attribute("aria-selected", "true")
    expect(pane.locator("thead th")).to_have_text(["a", "b", "label"])
    selected = page.locator('#artifact-tree button[aria-current="true"]')
    expect(selected).to_have_attribute("data-path", "data/table.csv")

    open_node(ui, "config.json")
    expect(page).to_have_url(re.compile(r"\?path=config\.json#artifacts$"))
    page.reload()
    expect(pane.locator(".preview")).to_have_attribute("data-kind", "json")
    expect(selected).to_have_attribute("data-path", "config.json")

    # A shared link without the tab's hash still opens the Artifacts tab.
    ui.goto(f"/runs/{run_id}?path=model")
    expect(tab(ui, "Artifacts")).to_have_attribute("aria-selected", "true")
    expect(pane.locator("#signature-inputs")).to_be_visible()
    ui.shot("run-artifacts-restored")


def test_narrow_screen_stacks_the_preview(ui: UI, seed: Seed) -> None:
    page = ui.page
    page.set_viewport_size({"width": 400, "height": 800})
    ui.goto(f"/runs/{seed.artifact_run_id}?path=data/table.csv#artifacts")

    tree = page.locator(".artifact-tree").bounding_box()
    preview = page.locator("#artifact-preview thead")
    expect(preview).to_be_visible()
    pane = page.locator("#artifact-preview").bounding_box()
    assert tree is not None
    assert pane is not None
    assert pane["y"] >= tree["y"] + tree["height"]
    assert pane["width"] <= 400
    ui.shot("run-artifacts-narrow")


def test_missing_artifact_preview(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("404")
    ui.goto(f"/runs/{seed.artifact_run_id}?path=gone/nothing.txt#artifacts")

    expect(ui.page.locator("#artifact-preview .error-message")).to_have_text(
        f"No artifact at 'gone/nothing.txt' in run {seed.artifact_run_id}."
    )
    ui.shot("run-artifacts-missing")


def test_run_without_artifacts(ui: UI, seed: Seed) -> None:
    ui.goto(f"/runs/{seed.failed_run_id}#artifacts")

    expect(ui.page.locator("#artifact-tree-status")).to_have_text(
        "No artifacts recorded for this run."
    )
    expect(ui.page.locator(".run-title .badge")).to_have_text("Failed")
    ui.shot("run-artifacts-empty")


def test_missing_run_is_a_404_page(ui: UI, seed: Seed) -> None:
    ui.allow_console_error("404")  # the browser logs the page's own 404 status
    missing = "0" * 32
    response = ui.goto(f"/runs/{missing}")

    assert response.status == 404
    expect(ui.page.locator(".error-message")).to_have_text(f"Run '{missing}' does not exist.")
    expect(ui.page.get_by_role("link", name="Back to experiments")).to_be_visible()
    ui.shot("run-missing")
