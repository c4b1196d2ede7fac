"""An unpaged metrics/get-history of a long series is streamed in chunks: the bytes are one valid
document with every point, equal to reading it page by page."""

from __future__ import annotations

import orjson
import pytest
from starlette.testclient import TestClient

from runyard.server.handlers import runs

API = "/api/2.0/mlflow"


def _log(api: TestClient, run_id: str, count: int) -> None:
    for start in range(0, count, 1000):
        metrics = [
            {"key": "loss", "value": i / 3, "timestamp": 1000 + i, "step": i}
            for i in range(start, min(count, start + 1000))
        ]
        assert api.post(
            f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
        ).is_success


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 250])
def test_streamed_history_is_the_whole_history(
    api: TestClient, run_id: str, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "HISTORY_STREAM_CHUNK", 100)
    _log(api, run_id, count)
    response = api.get(
        f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = orjson.loads(response.content)
    points = doc.get("metrics", [])
    assert [p["step"] for p in points] == list(range(count))
    assert all(p == {"key": "loss", "value": p["step"] / 3, "timestamp": 1000 + p["step"],
                     "step": p["step"]} for p in points)  # fmt: skip
    assert "next_page_token" not in doc
    # The same points as the paged reads the official client makes.
    paged: list[dict] = []
    token = None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 70}
        page = api.get(f"{API}/metrics/get-history", params={**params, "page_token": token or ""})
        body = page.json()
        paged += body.get("metrics", [])
        token = body.get("next_page_token")
        if not token:
            break
    assert paged == points
