"""Client artifact methods: log_artifact(s), list, download, log_text/dict/image/figure/table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from PIL import Image

from runyard import Client
from runyard.exceptions import (
    MlflowException,
)
from tests.tracking.helpers import (
    INVALID,
    MISSING,
    expect_error,
)


# -- artifacts --------------------------------------------------------------------------------
def _artifact_dir(client: Client, run_id: str) -> Path:
    return Path(client.get_run(run_id).info.artifact_uri)


def test_log_artifact_file_and_list(client: Client, run_id: str, tmp_path: Path) -> None:
    src = tmp_path / "model.txt"
    src.write_text("weights")
    client.log_artifact(run_id, str(src))
    client.log_artifact(run_id, str(src), artifact_path="nested/deeper")
    listing = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in listing] == [
        ("model.txt", False, 7),
        ("nested", True, None),
    ]
    assert [f.path for f in client.list_artifacts(run_id, "nested")] == ["nested/deeper"]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "nested/deeper")] == [
        ("nested/deeper/model.txt", 7)
    ]
    assert client.list_artifacts(run_id, "absent") == []
    assert (_artifact_dir(client, run_id) / "nested/deeper/model.txt").read_text() == "weights"


def test_log_artifact_directory_and_missing_path(
    client: Client, run_id: str, tmp_path: Path
) -> None:
    folder = tmp_path / "outputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("bb")
    client.log_artifact(run_id, str(folder))
    assert [f.path for f in client.list_artifacts(run_id)] == ["outputs"]
    assert [f.path for f in client.list_artifacts(run_id, "outputs")] == [
        "outputs/a.txt",
        "outputs/sub",
    ]
    expect_error(INVALID, client.log_artifact, run_id, str(tmp_path / "nope.txt"))


def test_log_artifacts_and_download(client: Client, run_id: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    client.log_artifacts(run_id, str(folder))
    client.log_artifacts(run_id, str(folder), artifact_path="copy")
    assert [f.path for f in client.list_artifacts(run_id)] == ["a.txt", "copy", "sub"]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "copy/sub")] == [
        ("copy/sub/b.bin", 2560)
    ]

    dst = tmp_path / "dl"
    local = client.download_artifacts(run_id, "sub/b.bin", str(dst))
    assert Path(local).read_bytes() == bytes(range(256)) * 10
    assert Path(local).is_relative_to(dst.resolve())
    tree = Path(client.download_artifacts(run_id, "copy", str(tmp_path / "dl2")))
    assert (tree / "a.txt").read_text() == "a"
    assert (tree / "sub" / "b.bin").stat().st_size == 2560
    whole = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl3")))
    assert sorted(p.name for p in whole.iterdir()) == ["a.txt", "copy", "sub"]
    default_dst = Path(client.download_artifacts(run_id, "a.txt"))
    assert default_dst.read_text() == "a"
    expect_error(MISSING, client.download_artifacts, run_id, "nope.txt", str(dst))
    expect_error(INVALID, client.log_artifacts, run_id, str(folder / "a.txt"))


@pytest.mark.parametrize("path", ["../escape", "/etc", "a/../../x"])
def test_artifact_paths_cannot_escape(
    client: Client, run_id: str, tmp_path: Path, path: str
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(MlflowException):
        client.log_artifact(run_id, str(src), artifact_path=path)
    with pytest.raises(MlflowException):
        client.download_artifacts(run_id, path, str(tmp_path / "dl"))
    with pytest.raises(MlflowException):
        client.log_text(run_id, "x", f"{path}/f.txt")


def test_log_text(client: Client, run_id: str) -> None:
    client.log_text(run_id, "héllo\nwörld", "notes.txt")
    client.log_text(run_id, "deep", "a/b/c.md")
    root = _artifact_dir(client, run_id)
    assert (root / "notes.txt").read_text(encoding="utf-8") == "héllo\nwörld"
    assert (root / "a/b/c.md").read_text() == "deep"


@pytest.mark.parametrize("artifact_file", ["conf.json", "cfg/conf.yaml", "conf.yml"])
def test_log_dict(client: Client, run_id: str, artifact_file: str) -> None:
    data = {"lr": 0.1, "layers": [64, 32], "name": "net", "nested": {"a": True}}
    client.log_dict(run_id, data, artifact_file)
    text = (_artifact_dir(client, run_id) / artifact_file).read_text()
    if artifact_file.endswith(".json"):
        assert json.loads(text) == data
    else:
        assert yaml.safe_load(text) == data
        assert not text.lstrip().startswith("{")  # block style, not JSON


def _read_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        return np.asarray(img)


def test_log_image_numpy_uint8(client: Client, run_id: str) -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    rgb[1, 2] = [1, 2, 3]
    client.log_image(run_id, rgb, "img/rgb.png")
    assert np.array_equal(_read_png(_artifact_dir(client, run_id) / "img/rgb.png"), rgb)

    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    client.log_image(run_id, gray, "gray.png")
    assert np.array_equal(_read_png(_artifact_dir(client, run_id) / "gray.png"), gray)


def test_log_image_numpy_float(client: Client, run_id: str) -> None:
    img = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float64)
    client.log_image(run_id, img, "float.png")
    got = _read_png(_artifact_dir(client, run_id) / "float.png")
    assert got.dtype == np.uint8
    assert got.tolist() == [[0, 128], [255, 64]]
    expect_error(INVALID, client.log_image, run_id, img * 2, "bad.png")
    expect_error(INVALID, client.log_image, run_id, np.zeros((2, 2, 5)), "bad.png")
    expect_error(INVALID, client.log_image, run_id, np.zeros((2,)), "bad.png")


def test_log_image_pil_and_key(client: Client, run_id: str) -> None:
    img = Image.new("RGB", (5, 3), color=(10, 20, 30))
    client.log_image(run_id, img, "pil.png")
    got = _read_png(_artifact_dir(client, run_id) / "pil.png")
    assert got.shape == (3, 5, 3)
    assert got[0, 0].tolist() == [10, 20, 30]

    client.log_image(run_id, img, key="val/sample", step=3, timestamp=77)
    (entry,) = client.list_artifacts(run_id, "images")
    assert entry.path.startswith("images/")
    assert entry.path.endswith(".png")
    assert "3" in entry.path
    expect_error(INVALID, client.log_image, run_id, img)  # neither artifact_file nor key


def test_log_figure(client: Client, run_id: str) -> None:
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 4])
    client.log_figure(run_id, fig, "plots/curve.png")
    client.log_figure(run_id, fig, "plots/curve.svg")
    root = _artifact_dir(client, run_id)
    assert _read_png(root / "plots/curve.png").shape[:2] == (200, 200)
    assert "<svg" in (root / "plots/curve.svg").read_text()
    expect_error(INVALID, client.log_figure, run_id, object(), "x.png")


@pytest.mark.parametrize("as_frame", [False, True])
def test_log_table(client: Client, run_id: str, as_frame: bool) -> None:
    data = {"q": ["a", "b"], "score": [0.5, 0.75]}
    client.log_table(run_id, pd.DataFrame(data) if as_frame else data, "tables/eval.json")
    table = json.loads((_artifact_dir(client, run_id) / "tables/eval.json").read_text())
    assert table == {"columns": ["q", "score"], "data": [["a", 0.5], ["b", 0.75]]}
    logged = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "tables/eval.json", "type": "table"}]
    client.log_table(run_id, data, "other.json")
    logged = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert {"path": "other.json", "type": "table"} in logged
    assert len(logged) == 2
    expect_error(INVALID, client.log_table, run_id, data, "eval.csv")
    expect_error(INVALID, client.log_table, run_id, [1, 2], "x.json")


def test_log_table_twice_appends_rows(client: Client, run_id: str) -> None:
    # MLflow's log_table appends to an existing table file of the run instead of replacing it.
    client.log_table(run_id, {"q": ["a"], "score": [1]}, "t.json")
    client.log_table(run_id, {"q": ["b"], "score": [2]}, "t.json")
    table = json.loads((_artifact_dir(client, run_id) / "t.json").read_text())
    assert table["columns"] == ["q", "score"]
    assert table["data"] == [["a", 1], ["b", 2]]
    logged = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "t.json", "type": "table"}]


def test_artifact_uri_relative_to_cwd(client: Client, run_id: str) -> None:
    uri = client.get_run(run_id).info.artifact_uri
    assert os.path.isabs(uri)
    client.log_text(run_id, "x", "x.txt")
    assert Path(uri, "x.txt").is_file()
