"""``runyard.artifacts``: download, list and read artifacts by ``runs:/`` URI, run id or path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import runyard
from runyard import artifacts
from runyard.exceptions import MlflowException
from runyard.tracking.client import Client
from runyard.tracking.registry import release

pytestmark = pytest.mark.usefixtures("tracking_env")


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def run_id(client: Client) -> str:
    """A run with notes.txt, cfg.json, cfg.yaml, cfg.yml, bad.json, img.png and sub/x/deep.txt."""
    rid = client.create_run("0").info.run_id
    client.log_text(rid, "hello\nworld", "notes.txt")
    client.log_dict(rid, {"lr": 0.1, "layers": [8, 4]}, "cfg.json")
    client.log_dict(rid, {"lr": 0.1, "layers": [8, 4]}, "cfg.yaml")
    client.log_dict(rid, {"k": "v"}, "cfg.yml")
    client.log_text(rid, "{not json", "bad.json")
    client.log_text(rid, "deep", "sub/x/deep.txt")
    client.log_image(rid, np.full((2, 3, 3), 7, dtype=np.uint8), "img.png")
    return rid


def test_download_by_runs_uri(run_id: str, tmp_path: Path) -> None:
    local = Path(artifacts.download_artifacts(f"runs:/{run_id}/notes.txt", dst_path=str(tmp_path)))
    assert local == (tmp_path / "notes.txt").resolve()
    assert local.read_text() == "hello\nworld"
    deep = Path(artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/sub/x/deep.txt"))
    assert deep.read_text() == "deep"
    tree = Path(artifacts.download_artifacts(f"runs:/{run_id}/sub", dst_path=str(tmp_path / "t")))
    assert (tree / "x" / "deep.txt").read_text() == "deep"
    whole = Path(artifacts.download_artifacts(f"runs:/{run_id}", dst_path=str(tmp_path / "w")))
    assert sorted(p.name for p in whole.iterdir()) == [
        "bad.json",
        "cfg.json",
        "cfg.yaml",
        "cfg.yml",
        "img.png",
        "notes.txt",
        "sub",
    ]


def test_download_by_run_id_and_path(run_id: str, tmp_path: Path) -> None:
    local = artifacts.download_artifacts(run_id=run_id, artifact_path="sub/x/deep.txt")
    assert Path(local).read_text() == "deep"
    everything = Path(artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all")))
    assert (everything / "sub" / "x" / "deep.txt").is_file()
    assert (everything / "notes.txt").is_file()


def test_download_by_plain_and_file_uri(client: Client, run_id: str, tmp_path: Path) -> None:
    root = client.get_run(run_id).info.artifact_uri
    local = artifacts.download_artifacts(f"{root}/notes.txt", dst_path=str(tmp_path / "p"))
    assert Path(local).read_text() == "hello\nworld"
    sub = artifacts.download_artifacts(f"file://{root}/sub/", dst_path=str(tmp_path / "f"))
    assert (Path(sub) / "x" / "deep.txt").read_text() == "deep"


def test_download_with_explicit_tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"sqlite:///{tmp_path}/other.db"
    try:
        other_client = Client(other)
        rid = other_client.create_run("0").info.run_id
        other_client.log_text(rid, "elsewhere", "e.txt")
        path = artifacts.download_artifacts(run_id=rid, artifact_path="e.txt", tracking_uri=other)
        assert Path(path).read_text() == "elsewhere"
        listed = artifacts.list_artifacts(run_id=rid, tracking_uri=other)
        assert [f.path for f in listed] == ["e.txt"]
        # the default store does not know that run
        with pytest.raises(MlflowException) as info:
            artifacts.download_artifacts(run_id=rid, artifact_path="e.txt")
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    finally:
        release(other, flush=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"artifact_uri": "runs:/abc/x", "run_id": "abc"},
        {"artifact_uri": "runs:/abc/x", "artifact_path": "x"},
        {"artifact_uri": "runs:/"},
    ],
)
def test_download_argument_errors(kwargs: dict[str, str]) -> None:
    with pytest.raises(MlflowException) as info:
        artifacts.download_artifacts(**kwargs)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_download_missing(run_id: str) -> None:
    for uri in (f"runs:/{run_id}/nope.txt", "runs:/0123456789abcdef0123456789abcdef/x"):
        with pytest.raises(MlflowException) as info:
            artifacts.download_artifacts(uri)
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        artifacts.download_artifacts(f"runs:/{run_id}/../../escape")


def test_load_text(client: Client, run_id: str) -> None:
    assert artifacts.load_text(f"runs:/{run_id}/notes.txt") == "hello\nworld"
    root = client.get_run(run_id).info.artifact_uri
    assert artifacts.load_text(f"{root}/sub/x/deep.txt") == "deep"
    with pytest.raises(MlflowException, match="directory"):
        artifacts.load_text(f"runs:/{run_id}/sub")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cfg.json", {"lr": 0.1, "layers": [8, 4]}),
        ("cfg.yaml", {"lr": 0.1, "layers": [8, 4]}),
        ("cfg.yml", {"k": "v"}),
    ],
)
def test_load_dict(run_id: str, name: str, expected: dict[str, object]) -> None:
    assert artifacts.load_dict(f"runs:/{run_id}/{name}") == expected


def test_load_dict_invalid_json(run_id: str) -> None:
    with pytest.raises(MlflowException, match="JSON") as info:
        artifacts.load_dict(f"runs:/{run_id}/bad.json")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_load_image(run_id: str) -> None:
    img = artifacts.load_image(f"runs:/{run_id}/img.png")
    assert img.size == (3, 2)
    assert np.asarray(img)[1, 2].tolist() == [7, 7, 7]


def test_list_artifacts(client: Client, run_id: str) -> None:
    top = [(f.path, f.is_dir) for f in artifacts.list_artifacts(f"runs:/{run_id}")]
    assert top == [
        ("bad.json", False),
        ("cfg.json", False),
        ("cfg.yaml", False),
        ("cfg.yml", False),
        ("img.png", False),
        ("notes.txt", False),
        ("sub", True),
    ]
    assert [f.path for f in artifacts.list_artifacts(f"runs:/{run_id}/sub")] == ["sub/x"]
    by_id = artifacts.list_artifacts(run_id=run_id, artifact_path="sub/x")
    assert [(f.path, f.file_size) for f in by_id] == [("sub/x/deep.txt", 4)]
    root = client.get_run(run_id).info.artifact_uri
    plain = artifacts.list_artifacts(f"{root}/sub")
    assert [(f.path, f.is_dir) for f in plain] == [("x", True)]
    assert artifacts.list_artifacts(f"runs:/{run_id}/absent") == []
    with pytest.raises(MlflowException):
        artifacts.list_artifacts()


def test_round_trip_with_fluent_api(tmp_path: Path) -> None:
    with runyard.start_run() as run:
        runyard.log_dict({"a": 1}, "d/config.json")
    uri = f"runs:/{run.info.run_id}/d/config.json"
    assert artifacts.load_dict(uri) == {"a": 1}
    assert runyard.active_run() is None
