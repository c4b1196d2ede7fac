"""The mlflow-artifacts proxy: streamed upload/download, listing, deletion, path safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

ART = "/api/2.0/mlflow-artifacts/artifacts"


def test_round_trip(api: TestClient, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    assert api.put(f"{ART}/0/run/artifacts/model/weights.bin", content=data).status_code == 200
    assert (tmp_path / "artifacts/0/run/artifacts/model/weights.bin").read_bytes() == data
    got = api.get(f"{ART}/0/run/artifacts/model/weights.bin")
    assert got.content == data
    assert "attachment" in got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff"
    listing = api.get(ART, params={"path": "0/run/artifacts/model"}).json()
    assert listing == {"files": [{"path": "weights.bin", "is_dir": False, "file_size": len(data)}]}
    assert api.get(ART, params={"path": "0/run/artifacts/model/weights.bin"}).json() == {}
    assert api.get(ART, params={"path": "0/nothing"}).json() == {}
    assert api.delete(f"{ART}/0/run/artifacts/model").json() == {}
    assert api.get(ART, params={"path": "0/run/artifacts"}).json() == {}


def test_missing_file(api: TestClient) -> None:
    response = api.get(f"{ART}/0/none.txt")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "path", ["..%2F..%2Fescape.txt", "%2E%2E/%2E%2E/escape.txt", "a/../../escape.txt"]
)
def test_traversal_refused(api: TestClient, tmp_path: Path, path: str) -> None:
    response = api.put(f"{ART}/{path}", content=b"x")
    assert response.status_code in (400, 404)
    assert not (tmp_path / "escape.txt").exists()
    assert not any(p.name == "escape.txt" for p in tmp_path.rglob("*"))
    listing = api.get(ART, params={"path": "../.."})
    assert listing.status_code == 400


def test_multipart_not_implemented(api: TestClient) -> None:
    response = api.post("/api/2.0/mlflow-artifacts/mpu/create/0/run", json={"path": "f"})
    assert response.status_code == 501
    assert response.json()["error_code"] == "NOT_IMPLEMENTED"


def test_no_serve_artifacts_and_artifacts_only(tmp_path: Path) -> None:
    from runyard.server.app import create_app
    from runyard.server.settings import ServerSettings

    base = {
        "backend_store_uri": f"sqlite:///{tmp_path / 's.db'}",
        "artifacts_destination": str(tmp_path / "a"),
    }
    with TestClient(create_app(ServerSettings(serve_artifacts=False, **base))) as api:
        assert api.put(f"{ART}/0/x", content=b"x").status_code == 503
        exp = api.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}).json()
        assert not exp["experiment"]["artifact_location"].startswith("mlflow-artifacts:")
    with TestClient(create_app(ServerSettings(artifacts_only=True, **base))) as api:
        assert api.get("/api/2.0/mlflow/experiments/get?experiment_id=0").status_code == 503
        assert api.put(f"{ART}/0/x", content=b"x").status_code == 200


def test_static_prefix(tmp_path: Path) -> None:
    from runyard.server.app import create_app
    from runyard.server.settings import ServerSettings

    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 's.db'}",
        artifacts_destination=str(tmp_path / "a"),
        static_prefix="/runyard",
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/runyard/health").text == "OK"
        assert api.get("/health").status_code == 404
        got = api.get("/runyard/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
        assert got.json()["experiment"]["name"] == "Default"


def test_get_artifact_of_a_run(api: TestClient, run_id: str) -> None:
    api.put(f"{ART}/1/{run_id}/artifacts/logs/train.log", content=b"epoch 1\n")
    got = api.get("/get-artifact", params={"run_id": run_id, "path": "logs/train.log"})
    assert got.content == b"epoch 1\n"
    assert "train.log" in got.headers["content-disposition"]
    missing = api.get("/get-artifact", params={"run_id": run_id, "path": "logs/none.log"})
    assert missing.status_code == 404
    escape = api.get("/get-artifact", params={"run_id": run_id, "path": "../../../db.sqlite"})
    assert escape.status_code == 400


# Found by the API fuzz run (tests/server/test_api_fuzz.py): these answered 500.
def test_upload_over_a_directory_or_too_long_is_refused(api: TestClient, tmp_path: Path) -> None:
    assert api.put(f"{ART}/0/dir/file.txt", content=b"x").status_code == 200
    for path in ["0/dir", "0/dir/file.txt/inner", "0/" + "n" * 300]:
        response = api.put(f"{ART}/{path}", content=b"y")
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert api.get(f"{ART}/0/{'n' * 300}").json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert (tmp_path / "artifacts/0/dir/file.txt").read_bytes() == b"x"
