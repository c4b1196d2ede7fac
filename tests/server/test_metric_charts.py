"""``GET /api/2.0/runyard/metrics/get-history-downsampled``: in-process over the ASGI app, and
once over a socket against a real ``runyard server`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.live_server import TrackingServer, start_server, stop_server

PATH = "/api/2.0/runyard/metrics/get-history-downsampled"
T0 = 1_700_000_000_000


def _run(api: TestClient, exp_id: str, points: int, key: str = "loss") -> str:
    body = {"experiment_id": exp_id, "start_time": 1000}
    run_id = str(api.post("/api/2.0/mlflow/runs/create", json=body).json()["run"]["info"]["run_id"])
    for start in range(0, points, 1000):
        metrics = [
            {"key": key, "value": 1.0 / (i + 1), "timestamp": T0 + i * 10, "step": i}
            for i in range(start, min(points, start + 1000))
        ]
        response = api.post(
            "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
        )
        assert response.status_code == 200, response.text
    return run_id


@pytest.fixture
def exp_id(api: TestClient) -> str:
    response = api.post("/api/2.0/mlflow/experiments/create", json={"name": "charts"})
    return str(response.json()["experiment_id"])


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code
    return str(body["message"])


def test_series_of_several_runs(api: TestClient, exp_id: str) -> None:
    long_run = _run(api, exp_id, 5_000)
    short_run = _run(api, exp_id, 20)
    other = _run(api, exp_id, 10, key="acc")
    response = api.get(
        f"{PATH}?run_ids={long_run}&run_ids={short_run}&run_ids={other}&metric_key=loss"
        "&max_points=100"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    series = response.json()["series"]
    assert [s["run_id"] for s in series] == [long_run, short_run, other]
    long_series, short_series, missing = series
    assert {k: long_series[k] for k in ("metric_key", "total_points", "downsampled")} == {
        "metric_key": "loss",
        "total_points": 5_000,
        "downsampled": True,
    }
    assert 0 < len(long_series["points"]) <= 100
    assert long_series["points"][0] == {"step": 0, "timestamp": T0, "value": 1.0}
    assert long_series["points"][-1]["step"] == 4_999
    steps = [p["step"] for p in long_series["points"]]
    assert steps == sorted(steps)
    assert short_series["downsampled"] is False
    assert short_series["points"] == [
        {"step": i, "timestamp": T0 + i * 10, "value": 1.0 / (i + 1)} for i in range(20)
    ]
    # A run without the metric: an empty series, not an error.
    assert missing == {
        "run_id": other,
        "metric_key": "loss",
        "total_points": 0,
        "downsampled": False,
        "points": [],
    }


def test_default_budget_step_range_and_nan(api: TestClient, exp_id: str) -> None:
    run_id = _run(api, exp_id, 3_000)
    series = api.get(PATH, params={"run_ids": run_id, "metric_key": "loss"}).json()["series"][0]
    assert series["downsampled"] is True  # 3,000 points > the default 1,000
    # A falling curve: each of the 250 buckets starts at its max and ends at its min.
    assert 500 <= len(series["points"]) <= 1000
    zoom = api.get(
        PATH,
        params={"run_ids": run_id, "metric_key": "loss", "start_step": 100, "end_step": 199},
    ).json()["series"][0]
    assert (zoom["total_points"], zoom["downsampled"]) == (100, False)
    assert [p["step"] for p in zoom["points"]] == list(range(100, 200))
    api.post(
        "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run_id, "key": "loss", "value": "NaN", "timestamp": T0, "step": 3_000},
    )
    live = api.get(
        f"/ajax-api/2.0/runyard/metrics/get-history-downsampled?run_ids={run_id}"
        "&metric_key=loss&start_step=3000"
    ).json()["series"][0]
    assert live["points"] == [{"step": 3_000, "timestamp": T0, "value": "NaN"}]
    # Repeated ids are answered once.
    twice = api.get(f"{PATH}?run_ids={run_id}&run_ids={run_id}&metric_key=loss&max_points=10")
    assert len(twice.json()["series"]) == 1


def test_errors(api: TestClient, exp_id: str) -> None:
    run_id = _run(api, exp_id, 10)
    message = _error(
        api.get(PATH, params={"run_ids": "f" * 32, "metric_key": "loss"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert message == f"Run with id={'f' * 32} not found"
    for params in (
        {"run_ids": run_id},  # no metric_key
        {"metric_key": "loss"},  # no run_ids
        {"run_ids": run_id, "metric_key": "loss", "max_points": 9},
        {"run_ids": run_id, "metric_key": "loss", "max_points": 100_001},
        {"run_ids": run_id, "metric_key": "loss", "max_points": "many"},
        {"run_ids": run_id, "metric_key": "loss", "start_step": 5, "end_step": 1},
    ):
        _error(api.get(PATH, params=params), 400, "INVALID_PARAMETER_VALUE")
    too_many = [f"{i:032x}" for i in range(101)]
    message = _error(
        api.get(PATH, params={"run_ids": too_many, "metric_key": "loss"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "At most 100 run_ids" in message
    assert api.post(PATH, json={"run_ids": [run_id], "metric_key": "loss"}).status_code == 405


def test_declared_in_openapi(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    operation = doc["paths"][PATH]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"run_ids", "metric_key", "max_points", "start_step", "end_step"} <= names


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    process = start_server(tmp_path_factory.mktemp("charts-server"), kind="runyard")
    yield process
    stop_server(process)


@pytest.mark.slow
def test_over_a_socket(server: TrackingServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        exp = http.post("/api/2.0/mlflow/experiments/create", json={"name": "socket"}).json()
        run = http.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": exp["experiment_id"]}
        ).json()["run"]["info"]["run_id"]
        metrics = [
            {"key": "loss", "value": float(i % 17), "timestamp": T0 + i, "step": i}
            for i in range(1000)
        ]
        http.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run, "metrics": metrics})
        response = http.get(PATH, params={"run_ids": run, "metric_key": "loss", "max_points": 40})
        assert response.status_code == 200
        (series,) = response.json()["series"]
        assert (series["total_points"], series["downsampled"]) == (1000, True)
        values = [p["value"] for p in series["points"]]
        assert len(values) <= 40
        assert (min(values), max(values)) == (0.0, 16.0)
        missing = http.get(PATH, params={"run_ids": "0" * 32, "metric_key": "loss"})
        assert missing.status_code == 404
