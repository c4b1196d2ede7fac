"""Artifacts through the official client and the proxied ``mlflow-artifacts`` service: upload,
list, download and load, including a 20 MB file checked byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

BIG_SIZE = 20 * 1024 * 1024
TEXT = "Héllo, artifacts ✓\nsecond line\n"
BINARY = bytes(range(256)) * 4

SCRIPT = """
import hashlib
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

P = PARAMS["prefix"]
work = pathlib.Path.cwd()


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def listing(run_id, path=None):
    return [[f.path, f.is_dir, f.file_size] for f in client.list_artifacts(run_id, path)]


def tree_of(root):
    root = pathlib.Path(root)
    return {
        p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


exp_id = mlflow.set_experiment(f"{P}-artifacts").experiment_id

with section("upload") as out:
    (work / "hello.txt").write_text(PARAMS["text"], encoding="utf-8")
    tree = work / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "nested" / "b.bin").write_bytes(bytes.fromhex(PARAMS["binary"]))
    (tree / "nested" / "deeper" / "c.json").write_text('{"c": 3}')
    (tree / "empty.txt").write_bytes(b"")
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [2, 1, 3])
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(work / "hello.txt"))
        mlflow.log_artifact(str(work / "hello.txt"), artifact_path="docs/sub")
        mlflow.log_artifacts(str(tree), artifact_path="tree")
        mlflow.log_text(PARAMS["text"], "notes/readme.md")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "cfg/config.json")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "cfg/config.yaml")
        mlflow.log_image(np.zeros((8, 6, 3), dtype=np.uint8), "images/black.png")
        mlflow.log_figure(fig, "figs/plot.png")
    rid = run.info.run_id
    out["run_id"] = rid
    out["exp_id"] = exp_id
    out["artifact_uri"] = client.get_run(rid).info.artifact_uri
    out["expected_tree"] = tree_of(tree)

rid = RESULT["upload"]["run_id"]

with section("list") as out:
    out["root"] = listing(rid)
    out["docs"] = listing(rid, "docs")
    out["docs_sub"] = listing(rid, "docs/sub")
    out["tree"] = listing(rid, "tree")
    out["tree_nested"] = listing(rid, "tree/nested")
    out["cfg"] = listing(rid, "cfg")
    out["missing"] = listing(rid, "no/such/dir")
    out["of_a_file"] = listing(rid, "hello.txt")
    out["fluent"] = [
        f.path for f in mlflow.artifacts.list_artifacts(run_id=rid, artifact_path="tree")
    ]

with section("download") as out:
    local = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="docs/sub/hello.txt", dst_path=str(work / "dl1")
    )
    out["file_name"] = pathlib.Path(local).name
    out["file_text"] = pathlib.Path(local).read_text(encoding="utf-8")
    local_dir = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="tree", dst_path=str(work / "dl2")
    )
    out["dir_name"] = pathlib.Path(local_dir).name
    out["dir_tree"] = tree_of(local_dir)
    via_uri = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{rid}/tree/nested", dst_path=str(work / "dl3")
    )
    out["uri_tree"] = tree_of(via_uri)
    via_client = client.download_artifacts(rid, "cfg", str(work / "dl4"))
    out["client_tree"] = sorted(tree_of(via_client))
    everything = mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(work / "dl5"))
    out["all_files"] = sorted(tree_of(everything))
    out["png_magic"] = (pathlib.Path(everything) / "images" / "black.png").read_bytes()[:8].hex()
    out["fig_magic"] = (pathlib.Path(everything) / "figs" / "plot.png").read_bytes()[:8].hex()
    out["missing"] = error_of(
        mlflow.artifacts.download_artifacts,
        run_id=rid,
        artifact_path="nope.txt",
        dst_path=str(work / "dl6"),
    )

with section("load") as out:
    out["text"] = mlflow.artifacts.load_text(f"runs:/{rid}/notes/readme.md")
    out["dict_json"] = mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/config.json")
    out["dict_yaml_text"] = mlflow.artifacts.load_text(f"runs:/{rid}/cfg/config.yaml")
    out["image_size"] = list(mlflow.artifacts.load_image(f"runs:/{rid}/images/black.png").size)

with section("big") as out:
    big = work / "blob.bin"
    with big.open("wb") as fh:
        for _ in range(PARAMS["big_size"] // (1024 * 1024)):
            fh.write(os.urandom(1024 * 1024))
    out["sha"] = sha(big)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), artifact_path="big")
    out["run_id"] = run.info.run_id
    out["listing"] = listing(run.info.run_id, "big")
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="big/blob.bin", dst_path=str(work / "dl-big")
    )
    out["downloaded_sha"] = sha(local)
    out["downloaded_size"] = pathlib.Path(local).stat().st_size
"""


@pytest.fixture(scope="module")
def res(run_client: Any, prefix: str) -> Any:
    params = {"prefix": prefix, "text": TEXT, "binary": BINARY.hex(), "big_size": BIG_SIZE}
    return run_client(SCRIPT, params)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_layout_on_the_server(res: Any, compat_server: Any) -> None:
    out = res["upload"]
    root = f"mlflow-artifacts:/{out['exp_id']}/{out['run_id']}/artifacts"
    assert out["artifact_uri"] == root
    # Proxied uploads land under --artifacts-destination/<exp>/<run>/artifacts/...
    stored = Path(compat_server.artifacts) / out["exp_id"] / out["run_id"] / "artifacts"
    assert (stored / "hello.txt").read_text(encoding="utf-8") == TEXT
    assert (stored / "docs" / "sub" / "hello.txt").read_text(encoding="utf-8") == TEXT
    assert (stored / "tree" / "nested" / "b.bin").read_bytes() == BINARY
    assert (stored / "tree" / "empty.txt").read_bytes() == b""


def test_list_root_and_subdirectories(res: Any) -> None:
    out = res["list"]
    size = len(TEXT.encode())
    assert out["root"] == [
        ["cfg", True, None],
        ["docs", True, None],
        ["figs", True, None],
        ["hello.txt", False, size],
        ["images", True, None],
        ["notes", True, None],
        ["tree", True, None],
    ]
    assert out["docs"] == [["docs/sub", True, None]]
    assert out["docs_sub"] == [["docs/sub/hello.txt", False, size]]
    # MLflow omits file_size for an empty file (the client then reads None); 0 is as good.
    empty_size = out["tree"][1][2]
    assert empty_size in (0, None)
    assert out["tree"] == [
        ["tree/a.txt", False, 1],
        ["tree/empty.txt", False, empty_size],
        ["tree/nested", True, None],
    ]
    assert out["tree_nested"] == [
        ["tree/nested/b.bin", False, len(BINARY)],
        ["tree/nested/deeper", True, None],
    ]
    assert [p for p, _, _ in out["cfg"]] == ["cfg/config.json", "cfg/config.yaml"]
    assert out["missing"] == []
    assert out["of_a_file"] == []
    assert out["fluent"] == ["tree/a.txt", "tree/empty.txt", "tree/nested"]


def test_download_file_and_directories(res: Any) -> None:
    out = res["download"]
    expected = res["upload"]["expected_tree"]
    assert out["file_name"] == "hello.txt"
    assert out["file_text"] == TEXT
    assert out["dir_name"] == "tree"
    assert out["dir_tree"] == expected
    assert out["uri_tree"] == {
        k.removeprefix("nested/"): v for k, v in expected.items() if k.startswith("nested/")
    }
    assert out["client_tree"] == ["config.json", "config.yaml"]
    assert out["all_files"] == sorted(
        [
            "hello.txt",
            "docs/sub/hello.txt",
            "notes/readme.md",
            "cfg/config.json",
            "cfg/config.yaml",
            "images/black.png",
            "figs/plot.png",
            *(f"tree/{k}" for k in expected),
        ]
    )
    png = "89504e470d0a1a0a"
    assert out["png_magic"] == png
    assert out["fig_magic"] == png
    assert out["missing"] is not None, "downloading a missing artifact succeeded"


def test_load_text_dict_image(res: Any) -> None:
    out = res["load"]
    assert out["text"] == TEXT
    assert out["dict_json"] == {"a": 1, "b": [1, 2]}
    assert out["dict_yaml_text"].split() == ["a:", "1", "b:", "-", "1", "-", "2"]
    assert out["image_size"] == [6, 8]


def test_20mb_round_trip(res: Any, compat_server: Any) -> None:
    out = res["big"]
    assert out["listing"] == [["big/blob.bin", False, BIG_SIZE]]
    assert out["downloaded_size"] == BIG_SIZE
    assert out["downloaded_sha"] == out["sha"]
    exp_id = res["upload"]["exp_id"]
    stored = Path(compat_server.artifacts) / exp_id / out["run_id"] / "artifacts" / "big"
    assert sha((stored / "blob.bin").read_bytes()) == out["sha"]


def test_artifact_endpoints_over_http(res: Any, http: httpx.Client) -> None:
    out = res["upload"]
    run_root = f"{out['exp_id']}/{out['run_id']}/artifacts"
    proxied = "/api/2.0/mlflow-artifacts/artifacts"
    # mlflow-artifacts listing: basenames relative to the listed directory
    listing = http.get(proxied, params={"path": f"{run_root}/tree/nested"})
    assert listing.status_code == 200, listing.text
    assert sorted(listing.json()["files"], key=lambda f: f["path"]) == [
        {"path": "b.bin", "is_dir": False, "file_size": len(BINARY)},
        {"path": "deeper", "is_dir": True},
    ]
    assert http.get(proxied, params={"path": f"{run_root}/hello.txt"}).json() == {}
    assert http.get(proxied, params={"path": f"{run_root}/no-such-dir"}).json() == {}
    got = http.get(f"{proxied}/{run_root}/tree/nested/b.bin")
    assert got.status_code == 200
    assert got.content == BINARY
    # filename=b.bin (MLflow) or the equivalent quoted form
    disposition = got.headers["content-disposition"].replace('"', "")
    assert disposition == "attachment; filename=b.bin"
    missing = http.get(f"{proxied}/{run_root}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # run-artifact listing: paths relative to the run root, root_uri = the run's artifact_uri
    runs_list = http.get(
        "/api/2.0/mlflow/artifacts/list", params={"run_id": out["run_id"], "path": "docs/sub"}
    )
    assert runs_list.status_code == 200, runs_list.text
    assert runs_list.json() == {
        "root_uri": out["artifact_uri"],
        "files": [{"path": "docs/sub/hello.txt", "is_dir": False, "file_size": len(TEXT.encode())}],
    }
