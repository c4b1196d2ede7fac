"""The run page's artifact previews (``/runs/<id>/artifact-preview?path=``) and the run page
itself over HTTP: a real app on a temp SQLite store, real artifact files, a real trained model."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from runyard.entities import Metric, Param, RunTag
from runyard.server.ui.artifact_preview import (
    CSV_MAX_ROWS,
    PREVIEW_LIMIT,
    format_size,
    preview_kind,
    read_head,
)
from runyard.store.artifact import ArtifactRepository
from runyard.store.artifact.local import LocalArtifactRepository

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5c1d2b50000000049454e44ae426082"
)


class Fixture:
    """The app's store and one run whose artifacts a test writes."""

    def __init__(self, api: TestClient) -> None:
        self.api = api
        self.ctx = api.app.state.context  # type: ignore[attr-defined]
        self.store = self.ctx.store
        self.experiment_id = self.store.create_experiment("previews")
        run = self.store.create_run(self.experiment_id, "alice", 1000, [], "with-files")
        self.run_id = run.info.run_id
        self.repo: ArtifactRepository = self.ctx.repo_for(run.info.artifact_uri)

    def write(self, path: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.repo.write_chunks(path, [raw])

    def preview(self, path: str) -> Any:
        return self.api.get(f"/runs/{self.run_id}/artifact-preview", params={"path": path})


@pytest.fixture
def fx(api: TestClient) -> Fixture:
    return Fixture(api)


def text_of(fragment: str) -> str:
    """The fragment's visible text (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def pre_text(fragment: str) -> str:
    match = re.search(r"<pre[^>]*><code>(.*?)</code></pre>", fragment, re.S)
    assert match, fragment
    return html.unescape(match.group(1))


def test_text_preview_is_escaped(fx: Fixture) -> None:
    fx.write("logs/train.log", "epoch 1 <script>alert('x')</script>\nepoch 2 done\n")

    response = fx.preview("logs/train.log")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert 'data-kind="text"' in body
    assert "<script>" not in body
    assert pre_text(body) == "epoch 1 <script>alert('x')</script>\nepoch 2 done\n"
    assert f'href="/get-artifact?run_id={fx.run_id}&amp;path=logs%2Ftrain.log"' in body
    assert "showing the first 1 MB" not in body


@pytest.mark.parametrize("name", ["notes.txt", "README.md", "train.py", "run.sh"])
def test_text_kinds(fx: Fixture, name: str) -> None:
    fx.write(name, "# hello\n")

    body = fx.preview(name).text

    assert 'data-kind="text"' in body
    assert pre_text(body) == "# hello\n"


def test_json_is_pretty_printed(fx: Fixture) -> None:
    fx.write("config.json", json.dumps({"layers": [64, 32], "dropout": 0.1, "name": "<b>"}))

    body = fx.preview("config.json").text

    assert 'data-kind="json"' in body
    assert pre_text(body) == json.dumps(
        {"layers": [64, 32], "dropout": 0.1, "name": "<b>"}, indent=2
    )
    assert "<b>" not in body


def test_invalid_json_is_shown_as_text(fx: Fixture) -> None:
    fx.write("broken.json", '{"a": ')

    body = fx.preview("broken.json").text

    assert "not valid JSON" in body
    assert pre_text(body) == '{"a": '


def test_yaml_is_text(fx: Fixture) -> None:
    fx.write("params.yaml", "optimizer: adam\nepochs: 3\n")

    body = fx.preview("params.yaml").text

    assert 'data-kind="yaml"' in body
    assert pre_text(body) == "optimizer: adam\nepochs: 3\n"


def table_cells(fragment: str) -> tuple[list[str], list[list[str]]]:
    head = re.search(r"<thead>(.*?)</thead>", fragment, re.S)
    body = re.search(r"<tbody>(.*?)</tbody>", fragment, re.S)
    assert head, fragment
    assert body, fragment
    header = [html.unescape(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", head.group(1), re.S)]
    rows = [
        [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]
    return header, rows


def test_csv_table(fx: Fixture) -> None:
    fx.write("data/table.csv", 'a,b,label\n1,2,x\n3,4,"<y, z>"\n')

    body = fx.preview("data/table.csv").text

    assert 'data-kind="table"' in body
    header, rows = table_cells(body)
    assert header == ["a", "b", "label"]
    assert rows == [["1", "2", "x"], ["3", "4", "<y, z>"]]
    assert "2 rows." in body


def test_tsv_table(fx: Fixture) -> None:
    fx.write("scores.tsv", "name\tscore\nann\t0.9\n")

    header, rows = table_cells(fx.preview("scores.tsv").text)

    assert header == ["name", "score"]
    assert rows == [["ann", "0.9"]]


def test_csv_shows_the_first_rows(fx: Fixture) -> None:
    lines = ["i,square"] + [f"{i},{i * i}" for i in range(CSV_MAX_ROWS + 100)]
    fx.write("big.csv", "\n".join(lines) + "\n")

    body = fx.preview("big.csv").text

    header, rows = table_cells(body)
    assert header == ["i", "square"]
    assert len(rows) == CSV_MAX_ROWS
    assert rows[-1] == [str(CSV_MAX_ROWS - 1), str((CSV_MAX_ROWS - 1) ** 2)]
    assert f"Showing the first {CSV_MAX_ROWS} rows." in body


@pytest.mark.parametrize("name", ["images/sample.png", "plot.JPG", "chart.svg", "x.webp"])
def test_images_use_the_download_url(fx: Fixture, name: str) -> None:
    fx.write(name, PNG_1x1)

    body = fx.preview(name).text

    assert 'data-kind="image"' in body
    src = re.search(r'<img class="preview-image" src="([^"]+)"', body)
    assert src, body
    image = fx.api.get(html.unescape(src.group(1)))
    assert image.status_code == 200
    assert image.content == PNG_1x1


def test_svg_is_never_inlined(fx: Fixture) -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    fx.write("evil.svg", svg)

    body = fx.preview("evil.svg").text

    assert "<svg" not in body
    assert "<script" not in body
    assert "<img" in body


def test_binary_and_unknown_files(fx: Fixture) -> None:
    fx.write("model.pkl", bytes(range(256)) * 8)

    body = fx.preview("model.pkl").text

    assert 'data-kind="none"' in body
    assert "No preview for this file type" in body
    assert "2.0 KB" in body
    assert f'href="/get-artifact?run_id={fx.run_id}&amp;path=model.pkl"' in body


def test_files_without_extension_are_sniffed(fx: Fixture) -> None:
    fx.write("LICENSE", "MIT License\n")
    fx.write("blob", b"\x00\x01\x02binary")

    assert pre_text(fx.preview("LICENSE").text) == "MIT License\n"
    assert "No preview for this file type" in fx.preview("blob").text


def test_large_file_reads_the_first_megabyte(fx: Fixture) -> None:
    line = "x" * 99 + "\n"
    fx.write("huge.log", line * (3 * PREVIEW_LIMIT // len(line)))

    body = fx.preview("huge.log").text

    assert "showing the first 1 MB" in body
    shown = pre_text(body)
    assert len(shown) == PREVIEW_LIMIT
    assert shown.startswith(line)


def test_large_json_is_shown_as_truncated_text(fx: Fixture) -> None:
    fx.write("big.json", json.dumps(list(range(400_000))))

    body = fx.preview("big.json").text

    assert "showing the first 1 MB" in body
    assert pre_text(body).startswith("[0, 1, 2")


def _save_model(tmp_path: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    import runyard.sklearn
    from runyard.models import infer_signature

    X = pd.DataFrame({"sepal_length": [5.1, 4.9, 6.2, 5.9], "petal_width": [0.2, 0.2, 2.3, 1.8]})
    y = np.array([0.0, 0.0, 2.0, 2.0])
    model = LinearRegression().fit(X, y)
    signature = infer_signature(X, model.predict(X), params={"threshold": 0.5})
    path = tmp_path / "model"
    runyard.sklearn.save_model(model, str(path), signature=signature)
    return path


def test_mlmodel_preview(fx: Fixture, tmp_path: Path) -> None:
    fx.repo.log_artifacts(str(_save_model(tmp_path)), "model")

    body = fx.preview("model/MLmodel").text

    assert 'data-kind="mlmodel"' in body
    text = text_of(body)
    assert "python_function" in text
    assert "sklearn" in text
    assert "Model UUID" in text
    header, _ = table_cells(body.split('id="signature-inputs"')[1])
    assert header == ["Name", "Type", "Required", "Shape"]
    inputs = re.search(r'id="signature-inputs".*?</table>', body, re.S)
    assert inputs
    cells = text_of(inputs.group(0))
    assert "sepal_length" in cells
    assert "petal_width" in cells
    assert "double" in cells
    assert 'id="signature-outputs"' in body
    params = re.search(r'id="signature-params".*?</table>', body, re.S)
    assert params
    assert "threshold" in text_of(params.group(0))
    assert "0.5" in params.group(0)
    assert "MLmodel file (YAML)" in body
    assert "flavors:" in pre_text(body)


def test_model_directory_shows_its_mlmodel(fx: Fixture, tmp_path: Path) -> None:
    fx.repo.log_artifacts(str(_save_model(tmp_path)), "model")

    body = fx.preview("model").text

    assert 'data-kind="model-dir"' in body
    assert 'data-path="model"' in body
    assert 'id="signature-inputs"' in body
    assert "sepal_length" in body
    assert "model.pkl" in body or "model.skops" in body  # the directory's files are listed
    assert f'href="/get-artifact?run_id={fx.run_id}&amp;path=model%2FMLmodel"' in body


def test_tensor_signature(fx: Fixture, tmp_path: Path) -> None:
    from runyard.models import Model, infer_signature

    model = Model(flavors={"python_function": {"loader_module": "x"}})
    model.signature = infer_signature(np.zeros((3, 2)), np.zeros(3))
    model.save(tmp_path / "MLmodel")
    fx.write("tensor/MLmodel", (tmp_path / "MLmodel").read_text())

    body = fx.preview("tensor/MLmodel").text

    inputs = re.search(r'id="signature-inputs".*?</table>', body, re.S)
    assert inputs
    assert "tensor of float64" in inputs.group(0)
    assert "(-1, 2)" in inputs.group(0)


def test_broken_mlmodel(fx: Fixture) -> None:
    fx.write("bad/MLmodel", "flavors: [unclosed")

    body = fx.preview("bad/MLmodel").text

    assert "could not be read" in body
    assert "flavors: [unclosed" in pre_text(body)


def test_plain_directory(fx: Fixture) -> None:
    fx.write("data/a.csv", "x\n1\n")
    fx.write("data/deeper/b.txt", "b")

    body = fx.preview("data").text

    assert 'data-kind="dir"' in body
    assert "Folder with 2 items." in body
    assert "a.csv" in body
    assert "deeper/" in body


def test_missing_path_run_and_bad_input(fx: Fixture) -> None:
    missing = fx.preview("nope/none.txt")
    assert missing.status_code == 404
    assert 'class="error-message"' in missing.text
    assert f"No artifact at &#39;nope/none.txt&#39; in run {fx.run_id}." in missing.text

    no_run = fx.api.get("/runs/" + "0" * 32 + "/artifact-preview", params={"path": "a.txt"})
    assert no_run.status_code == 404
    assert f"Run &#39;{'0' * 32}&#39; does not exist." in no_run.text

    no_path = fx.api.get(f"/runs/{fx.run_id}/artifact-preview")
    assert no_path.status_code == 400
    assert "path" in no_path.text

    escape = fx.preview("../../etc/passwd")
    assert escape.status_code == 400
    assert "inside the artifact root" in escape.text


def test_read_head_streams_at_most_a_chunk_past_the_limit(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path))
    (tmp_path / "exact.bin").write_bytes(b"a" * 1000)
    (tmp_path / "long.bin").write_bytes(b"b" * 5000)

    assert read_head(repo, "exact.bin", limit=1000) == (b"a" * 1000, False)
    assert read_head(repo, "long.bin", limit=1000) == (b"b" * 1000, True)
    assert read_head(repo, "long.bin") == (b"b" * 5000, False)


def test_preview_kinds_and_sizes() -> None:
    assert preview_kind("a/MLmodel") == "mlmodel"
    assert preview_kind("x.JSON") == "json"
    assert preview_kind("x.yml") == "yaml"
    assert preview_kind("t.tsv") == "table"
    assert preview_kind("Dockerfile") == "sniff"
    assert preview_kind(".bashrc") == "sniff"
    assert preview_kind("w.safetensors") == "none"
    assert [format_size(n) for n in (None, 0, 532, 2048, 3 * 1024 * 1024)] == [
        "",
        "0 B",
        "532 B",
        "2.0 KB",
        "3.0 MB",
    ]


# -- the run page over HTTP --------------------------------------------------------------------


def test_run_page_over_http(fx: Fixture) -> None:
    store = fx.store
    store.log_batch(
        fx.run_id,
        metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(50)],
        params=[Param("lr", "0.1")],
        tags=[
            RunTag("mlflow.note.content", "# Notes\n\n<script>alert(1)</script>"),
            RunTag("team", "<vision>"),
            RunTag("mlflow.source.git.repoURL", "javascript:alert(1)"),
            RunTag("mlflow.source.git.commit", "abc123"),
        ],
    )
    child = store.create_run(
        fx.experiment_id, "bob", 2000, [RunTag("mlflow.parentRunId", fx.run_id)], "kid"
    )

    page = fx.api.get(f"/runs/{fx.run_id}")

    assert page.status_code == 200
    body = page.text
    assert "<h1>with-files</h1>" in body
    assert f'href="/experiments/{fx.experiment_id}">previews</a>' in body
    assert f'href="/runs/{child.info.run_id}">kid</a>' in body
    assert "<h3>Notes</h3>" in body  # the note, rendered as Markdown
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;vision&gt;" in body
    assert 'href="javascript:' not in body  # an unsafe repo URL is shown, never linked
    row = re.search(r'<tr data-key="loss">(.*?)</tr>', body, re.S)
    assert row
    cells = [text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells == ["loss", "0.02", "49", "0.02", "1", "50"]
    assert f'href="/metrics?runs={fx.run_id}&amp;keys=loss"' in body

    child_page = fx.api.get(f"/runs/{child.info.run_id}").text
    assert f'href="/runs/{fx.run_id}">with-files</a>' in child_page


def test_missing_run_page(api: TestClient) -> None:
    response = api.get("/runs/" + "f" * 32)

    assert response.status_code == 404
    assert f"Run &#39;{'f' * 32}&#39; does not exist." in response.text
    assert "<header" in response.text  # the page wrapper, so the user can navigate on


def test_run_page_lists_datasets_models_and_versions(fx: Fixture) -> None:
    from runyard.entities import (
        Dataset,
        DatasetInput,
        InputTag,
        LoggedModelInput,
        LoggedModelOutput,
    )

    store = fx.store
    dataset = Dataset("iris", "d1g3st", "local", '{"uri": "/data/iris.csv"}')
    produced = store.create_logged_model(fx.experiment_id, name="clf", source_run_id=fx.run_id)
    used = store.create_logged_model(fx.experiment_id, name="base")
    store.log_inputs(
        fx.run_id,
        [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])],
        [LoggedModelInput(used.model_id)],
    )
    store.log_outputs(fx.run_id, [LoggedModelOutput(produced.model_id, step=3)])
    store.create_registered_model("my model?#v")
    store.create_model_version("my model?#v", "runs:/x/model", run_id=fx.run_id)

    body = fx.api.get(f"/runs/{fx.run_id}").text

    datasets = re.search(r'id="run-datasets".*?</table>', body, re.S)
    assert datasets
    cells = re.findall(r"<td[^>]*>(.*?)</td>", datasets.group(0))
    assert cells == ["iris", "d1g3st", "local", "training"]
    models = re.search(r'id="logged-models">(.*?)</ul>', body, re.S)
    assert models
    items = [
        " ".join(text_of(i).split()) for i in re.findall(r"<li>(.*?)</li>", models.group(1), re.S)
    ]
    assert items == [
        f"clf {produced.model_id} logged by this run at step 3",
        f"base {used.model_id} used by this run",
    ]
    assert 'href="/models/my%20model%3F%23v/versions/1">my model?#v version 1</a>' in body
