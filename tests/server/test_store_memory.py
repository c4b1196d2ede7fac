"""The server's SQLite connections get a bounded page cache (its memory stays bounded)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from starlette.testclient import TestClient

from runyard.server.app import open_store
from runyard.server.settings import ServerSettings
from runyard.store.sql.engine import SERVER_SQLITE_CACHE_KIB
from runyard.store.sql.store import SqlTrackingStore


def test_open_store_bounds_the_page_cache_of_every_connection(tmp_path: Path) -> None:
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    store = open_store(settings)
    assert isinstance(store, SqlTrackingStore)
    with store.engine.connect() as first, store.engine.connect() as second:
        for conn in (first, second):
            assert conn.execute(text("PRAGMA cache_size")).scalar() == -SERVER_SQLITE_CACHE_KIB
    store.engine.dispose()


def test_served_requests_work_with_the_bounded_cache(api: TestClient) -> None:
    exp = api.post("/api/2.0/mlflow/experiments/create", json={"name": "m"}).json()
    body = {"experiment_id": exp["experiment_id"], "start_time": 1, "run_name": "r"}
    run = api.post("/api/2.0/mlflow/runs/create", json=body).json()["run"]["info"]
    metrics = [{"key": "loss", "value": i / 10, "timestamp": 1, "step": i} for i in range(50)]
    api.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run["run_id"], "metrics": metrics})
    params = {"run_id": run["run_id"], "metric_key": "loss"}
    history = api.get("/api/2.0/mlflow/metrics/get-history", params=params).json()
    assert sorted(int(m["step"]) for m in history["metrics"]) == list(range(50))
    page = api.get(f"/experiments/{exp['experiment_id']}")
    assert page.status_code == 200
    assert run["run_id"] in page.text
