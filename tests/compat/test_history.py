"""A 30,000-point metric history: the client logs it in chunks and pages it back (25,000 a page)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

POINTS = 30_000
T0 = 1_700_000_000_000

SCRIPT = """
from mlflow.entities import Metric

P = PARAMS["prefix"]
N = PARAMS["points"]
T0 = PARAMS["t0"]

with section("history") as out:
    exp_id = client.create_experiment(f"{P}-history")
    run_id = client.create_run(exp_id).info.run_id
    # Two points share each timestamp, so the order also depends on the step tie-break.
    points = [Metric("loss", step * 0.5, T0 + step // 2, step) for step in range(N)]
    # Logged newest first: the server has to sort.
    client.log_batch(run_id, metrics=points[::-1])
    client.log_batch(run_id, metrics=[Metric("other", 1.0, T0, s) for s in range(10)])
    history = client.get_metric_history(run_id, "loss")
    out["run_id"] = run_id
    out["count"] = len(history)
    out["keys"] = sorted({m.key for m in history})
    out["steps_in_order"] = [m.step for m in history] == list(range(N))
    out["values_match"] = all(m.value == m.step * 0.5 for m in history)
    out["timestamps_match"] = all(m.timestamp == T0 + m.step // 2 for m in history)
    out["first"] = [history[0].value, history[0].step, history[0].timestamp]
    out["last"] = [history[-1].value, history[-1].step, history[-1].timestamp]
    out["latest"] = client.get_run(run_id).data.metrics
    out["other_count"] = len(client.get_metric_history(run_id, "other"))
"""


@pytest.fixture(scope="module")
def res(run_client: Any, prefix: str) -> Any:
    return run_client(SCRIPT, {"prefix": prefix, "points": POINTS, "t0": T0})


def test_history_is_complete_and_ordered(res: Any) -> None:
    out = res["history"]
    assert out["count"] == POINTS
    assert out["keys"] == ["loss"]
    assert out["steps_in_order"] is True
    assert out["values_match"] is True
    assert out["timestamps_match"] is True
    assert out["first"] == [0.0, 0, T0]
    assert out["last"] == [(POINTS - 1) * 0.5, POINTS - 1, T0 + (POINTS - 1) // 2]


def test_history_leaves_latest_and_other_keys_alone(res: Any) -> None:
    out = res["history"]
    assert out["latest"] == {"loss": (POINTS - 1) * 0.5, "other": 1.0}
    assert out["other_count"] == 10


def test_history_pages_over_http(res: Any, http: httpx.Client) -> None:
    run_id = res["history"]["run_id"]
    url = "/api/2.0/mlflow/metrics/get-history"
    # The client's own request: run_uuid, run_id and max_results=25000.
    query = {"run_uuid": run_id, "run_id": run_id, "metric_key": "loss", "max_results": 25000}
    first = http.get(url, params=query)
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["metrics"]) == 25_000
    assert body["metrics"][0] == {"key": "loss", "value": 0.0, "timestamp": T0, "step": 0}
    token = body["next_page_token"]
    assert isinstance(token, str)
    assert token
    second = http.get(url, params={**query, "page_token": token}).json()
    assert len(second["metrics"]) == POINTS - 25_000
    assert second["metrics"][-1]["step"] == POINTS - 1
    assert "next_page_token" not in second or second["next_page_token"] == ""
    # Without max_results: everything in one answer, no token.
    whole = http.get(url, params={"run_id": run_id, "metric_key": "loss"}).json()
    assert len(whole["metrics"]) == POINTS
    assert not whole.get("next_page_token")
