"""The scoring app in-process (Starlette TestClient): every route, every payload style, CSV,
Parquet, params, schema failures, MLflow's 415s and error bodies, the 504 timeout, /metrics."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from runyard.pyfunc import PyFuncModel, load_model
from runyard.serving.app import create_scoring_app
from runyard.version import MLFLOW_COMPATIBLE_VERSION
from tests.serving.scoring_models import (
    IRIS_COLUMNS,
    Dtypes,
    Echo,
    Failing,
    Scale,
    Slow,
    iris_frame,
    save_iris_model,
    save_python_model,
    x_frame,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[PyFuncModel, Any]:
    path = tmp_path_factory.mktemp("iris") / "model"
    classifier = save_iris_model(path)
    return load_model(str(path)), classifier


@pytest.fixture(scope="module")
def iris_client(iris: tuple[PyFuncModel, Any]) -> Iterator[TestClient]:
    app = create_scoring_app(iris[0], timeout=60, model_load_seconds=1.25)
    with TestClient(app) as client:
        yield client


def _client_for(model: PyFuncModel, timeout: float = 60) -> TestClient:
    return TestClient(create_scoring_app(model, timeout=timeout, model_load_seconds=0.5))


def _python_model(tmp_path: Path, model: Any, example: Any = None, params: Any = None) -> Any:
    save_python_model(tmp_path / "model", model, example, params)
    return load_model(str(tmp_path / "model"))


def _rows() -> pd.DataFrame:
    features, _ = iris_frame()
    return features.iloc[[0, 60, 120, 7]].reset_index(drop=True)


def _expected(iris: tuple[PyFuncModel, Any], rows: pd.DataFrame) -> list[int]:
    return [int(v) for v in iris[1].predict(rows)]


def _error(response: httpx.Response, status: int, code: str, fragment: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code, body
    assert fragment in body["message"], body["message"]
    return body


# -- health and version -----------------------------------------------------------------------
@pytest.mark.parametrize("route", ["/ping", "/health"])
def test_health_routes_answer_a_newline(iris_client: TestClient, route: str) -> None:
    response = iris_client.get(route)
    assert response.status_code == 200
    assert response.text == "\n"
    assert response.headers["content-type"] == "application/json"


def test_version_is_the_mlflow_protocol_version(iris_client: TestClient) -> None:
    response = iris_client.get("/version")
    assert response.status_code == 200
    assert response.text == MLFLOW_COMPATIBLE_VERSION
    assert response.headers["content-type"] == "application/json"


def test_unknown_route_and_wrong_method(iris_client: TestClient) -> None:
    assert iris_client.get("/nope").status_code == 404
    assert iris_client.get("/invocations").status_code == 405


# -- JSON payload styles ----------------------------------------------------------------------
def test_dataframe_split(iris_client: TestClient, iris: tuple[PyFuncModel, Any]) -> None:
    rows = _rows()
    payload = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    response = iris_client.post("/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": _expected(iris, rows)}


def test_dataframe_records(iris_client: TestClient, iris: tuple[PyFuncModel, Any]) -> None:
    rows = _rows()
    payload = {"dataframe_records": rows.to_dict(orient="records")}
    response = iris_client.post("/invocations", json=payload)
    assert response.json() == {"predictions": _expected(iris, rows)}


def test_legacy_bare_columns_and_data(
    iris_client: TestClient, iris: tuple[PyFuncModel, Any]
) -> None:
    rows = _rows()
    payload = {"columns": IRIS_COLUMNS, "data": rows.to_numpy().tolist()}
    response = iris_client.post("/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected(iris, rows)}


def test_instances_and_inputs(iris_client: TestClient, iris: tuple[PyFuncModel, Any]) -> None:
    rows = _rows()
    expected = {"predictions": _expected(iris, rows)}
    instances = iris_client.post("/invocations", json={"instances": rows.to_dict("records")})
    assert instances.json() == expected
    inputs = iris_client.post("/invocations", json={"inputs": rows.to_dict(orient="list")})
    assert inputs.json() == expected


def test_split_with_index_permuted_columns_and_integers(
    iris_client: TestClient, iris: tuple[PyFuncModel, Any]
) -> None:
    rows = _rows()
    expected = {"predictions": _expected(iris, rows)}
    with_index = {"dataframe_split": rows.to_dict(orient="split")}
    assert iris_client.post("/invocations", json=with_index).json() == expected
    permuted = rows[IRIS_COLUMNS[::-1]]
    split = {"dataframe_split": permuted.to_dict(orient="split", index=False)}
    assert iris_client.post("/invocations", json=split).json() == expected
    # Integers for double columns are cast, as the signature says.
    whole = pd.DataFrame([[6, 3, 5, 2]], columns=IRIS_COLUMNS)
    ints = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [[6, 3, 5, 2]]}}
    assert iris_client.post("/invocations", json=ints).json() == {
        "predictions": _expected(iris, whole.astype("float64"))
    }


def test_nan_and_infinity_literals_are_read(iris_client: TestClient) -> None:
    template = '{"dataframe_split": {"columns": COLUMNS, "data": [[NaN, 1, 2, 3]]}}'
    body = template.replace("COLUMNS", json.dumps(IRIS_COLUMNS))
    response = iris_client.post("/invocations", content=body, headers=JSON)
    # The model itself refuses NaN: a 400 from inside predict, not a parse error.
    _error(response, 400, "BAD_REQUEST", "Encountered an unexpected error while evaluating")


# -- CSV and Parquet --------------------------------------------------------------------------
def test_csv(iris_client: TestClient, iris: tuple[PyFuncModel, Any]) -> None:
    rows = _rows()
    body = rows.to_csv(index=False)
    for content_type in ("text/csv", "text/csv; charset=utf-8", "text/csv; charset=UTF-8"):
        response = iris_client.post(
            "/invocations", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": _expected(iris, rows)}


def test_csv_that_does_not_parse(iris_client: TestClient) -> None:
    body = ",".join(IRIS_COLUMNS) + "\nabc,1,2,3\n"
    response = iris_client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    error = _error(response, 400, "BAD_REQUEST", "Failed to parse input as a Pandas DataFrame")
    assert "`pandas.DataFrame.to_csv()`" in error["message"]
    assert "Traceback" in error["stack_trace"]


def test_csv_that_is_not_utf8(iris_client: TestClient) -> None:
    response = iris_client.post(
        "/invocations", content=b"\xff\xfe", headers={"Content-Type": "text/csv"}
    )
    _error(response, 400, "BAD_REQUEST", "Ensure that input is a valid UTF-8 encoded string")


def test_parquet(iris_client: TestClient, iris: tuple[PyFuncModel, Any]) -> None:
    rows = _rows()
    buffer = io.BytesIO()
    rows.to_parquet(buffer)
    response = iris_client.post(
        "/invocations",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": _expected(iris, rows)}
    broken = iris_client.post(
        "/invocations",
        content=b"not parquet",
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    _error(broken, 400, "BAD_REQUEST", "valid Parquet Pandas DataFrame")


# -- content types ----------------------------------------------------------------------------
def test_charset_other_than_utf8_is_415(iris_client: TestClient) -> None:
    response = iris_client.post(
        "/invocations", content=b"{}", headers={"Content-Type": "application/json; charset=latin-1"}
    )
    assert response.status_code == 415
    assert response.text == "The scoring server only supports UTF-8"
    assert response.headers["content-type"].startswith("text/plain")


def test_other_content_type_parameters_are_415(iris_client: TestClient) -> None:
    response = iris_client.post(
        "/invocations",
        content=b"{}",
        headers={"Content-Type": "application/json; format=pandas-split"},
    )
    assert response.status_code == 415
    assert response.text.startswith("Unrecognized content type parameters: format. IMPORTANT:")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_unknown_content_type_is_415(iris_client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = iris_client.post("/invocations", content=b"{}", headers=headers)
    assert response.status_code == 415
    types = "['text/csv', 'application/json', 'application/vnd.apache.parquet']"
    assert response.text == (
        f"This predictor only supports the following content types: Types: {types}. "
        f"Got '{content_type or ''}'."
    )


# -- bad payloads -----------------------------------------------------------------------------
def test_invalid_json(iris_client: TestClient) -> None:
    response = iris_client.post("/invocations", content=b"{not json", headers=JSON)
    _error(response, 400, "BAD_REQUEST", "Invalid input. Ensure that input is a valid JSON")


def test_json_list_and_scalar(iris_client: TestClient) -> None:
    listed = iris_client.post("/invocations", json=[1, 2])
    _error(listed, 400, "BAD_REQUEST", "exactly one of the input fields")
    assert listed.json()["message"].endswith("Received a list.")
    scalar = iris_client.post("/invocations", json=3)
    _error(scalar, 400, "BAD_REQUEST", "Received unexpected input type")


def test_no_or_several_data_keys(iris_client: TestClient) -> None:
    none = iris_client.post("/invocations", json={"rows": [[1, 2, 3, 4]]})
    body = _error(none, 400, "BAD_REQUEST", "Received dictionary with input fields: []")
    assert "IMPORTANT: The MLflow Model scoring protocol has changed" in body["message"]
    both = iris_client.post("/invocations", json={"inputs": [1], "instances": [1]})
    _error(both, 400, "BAD_REQUEST", "exactly one of the input fields")


def test_value_that_does_not_convert(iris_client: TestClient) -> None:
    payload = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [["abc", 1, 2, 3]]}}
    response = iris_client.post("/invocations", json=payload)
    _error(
        response,
        400,
        "BAD_REQUEST",
        "Data is not compatible with model signature. Failed to convert column "
        "sepal length (cm) to type 'float64'",
    )


def test_missing_column_is_a_schema_violation(iris_client: TestClient) -> None:
    payload = {"dataframe_split": {"columns": IRIS_COLUMNS[:3], "data": [[1, 2, 3]]}}
    response = iris_client.post("/invocations", json=payload)
    body = _error(response, 400, "INVALID_PARAMETER_VALUE", "Failed to predict data")
    assert "Failed to enforce schema" in body["message"]
    assert "Model is missing inputs ['petal width (cm)']" in body["message"]


def test_bad_payloads_leave_the_app_serving(
    iris_client: TestClient, iris: tuple[PyFuncModel, Any]
) -> None:
    bad_bodies: list[bytes] = [
        b"",
        b"null",
        b'{"dataframe_split": 5}',
        b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}',
        b'{"dataframe_records": {"a": 1}}',
        b'{"dataframe_split": {"columns": [], "data": [[[[[]]]]]}}',
        b'{"inputs": {"sepal length (cm)": [1], "sepal width (cm)": [1, 2]}}',
        b'{"instances": [{"x": {"nested": [1]}}]}',
        b"\xff\xfe\x00",
        b'{"dataframe_split": {"columns": %s, "data": [[1e999, null, true, "x"]]}}'
        % json.dumps(IRIS_COLUMNS).encode(),
    ]
    for body in bad_bodies:
        response = iris_client.post("/invocations", content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert response.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    rows = _rows()
    good = iris_client.post(
        "/invocations", json={"dataframe_split": rows.to_dict(orient="split", index=False)}
    )
    assert good.json() == {"predictions": _expected(iris, rows)}


# -- params, model failures, unified LLM bodies -----------------------------------------------
def test_params_reach_the_model_and_are_checked(tmp_path: Path) -> None:
    model = _python_model(tmp_path, Scale(), x_frame(1.0, 2.0), params={"factor": 1.0})
    with _client_for(model) as client:
        split = {"dataframe_split": {"columns": ["x"], "data": [[1.5], [2.0]]}}
        plain = client.post("/invocations", json=split)
        assert plain.json() == {"predictions": [1.5, 2.0]}
        scaled = client.post("/invocations", json={**split, "params": {"factor": 3}})
        assert scaled.json() == {"predictions": [4.5, 6.0]}
        legacy = client.post(
            "/invocations", json={"columns": ["x"], "data": [[2.0]], "params": {"factor": 2}}
        )
        assert legacy.json() == {"predictions": [4.0]}
        wrong = client.post("/invocations", json={**split, "params": {"factor": "big"}})
        _error(wrong, 400, "INVALID_PARAMETER_VALUE", "Invalid parameters found")


def test_exception_inside_predict_is_400_with_stack_trace(tmp_path: Path) -> None:
    model = _python_model(tmp_path, Failing(), x_frame(1.0))
    with _client_for(model) as client:
        response = client.post(
            "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[-1.0]]}}
        )
        body = _error(
            response,
            400,
            "BAD_REQUEST",
            "Encountered an unexpected error while evaluating the model. Verify that the "
            "serialized input Dataframe is compatible with the model for inference.",
        )
        assert "ValueError: negative input reached the model" in body["stack_trace"]
        fine = client.post("/invocations", json={"dataframe_records": [{"x": 2.0}]})
        assert fine.json() == {"predictions": [2.0]}


def test_mixed_column_types_reach_the_model_with_signature_dtypes(tmp_path: Path) -> None:
    example = pd.DataFrame(
        {
            "n": np.array([1], dtype=np.int64),
            "f": np.array([0.5], dtype=np.float32),
            "flag": np.array([True]),
            "d": np.array([1.5]),
        }
    )
    model = _python_model(tmp_path, Dtypes(), example)
    with _client_for(model) as client:
        scorer = client.app.state.scorer  # type: ignore[attr-defined]
        assert scorer.lean
        assert scorer.batcher is None
        split = {"columns": ["n", "f", "flag", "d"], "data": [[3, 2, False, 7], [4, 1.5, True, 8]]}
        fast = client.post("/invocations", json={"dataframe_split": split}).json()
        indexed = {**split, "index": [0, 1]}  # takes the general path
        general = client.post("/invocations", json={"dataframe_split": indexed}).json()
    assert fast == general
    assert fast["predictions"] == {
        "n": {"dtype": "int64", "values": [3, 4]},
        "f": {"dtype": "float32", "values": [2.0, 1.5]},
        "flag": {"dtype": "bool", "values": [False, True]},
        "d": {"dtype": "float64", "values": [7.0, 8.0]},
    }


def test_unified_llm_body_is_passed_through_and_not_wrapped(tmp_path: Path) -> None:
    model = _python_model(tmp_path, Echo())
    with _client_for(model) as client:
        body = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.1}
        response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": body, "params": {}}


# -- timeout ----------------------------------------------------------------------------------
def test_slow_request_is_504_and_the_app_keeps_serving(tmp_path: Path) -> None:
    model = _python_model(tmp_path, Slow(), x_frame(1.0), params={"seconds": 2.0})
    with _client_for(model, timeout=0.3) as client:
        slow = client.post(
            "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
        )
        assert slow.status_code == 504
        assert slow.text == "Request processing time exceeded limit"
        assert slow.headers["content-type"] == "application/json"
        assert client.get("/ping").status_code == 200
        quick = client.post(
            "/invocations",
            json={"dataframe_split": {"columns": ["x"], "data": [[5.0]]}, "params": {"seconds": 0}},
        )
        assert quick.json() == {"predictions": [5.0]}
        metrics = client.get("/metrics").text
    assert 'runyard_scoring_errors_total{error_code="TIMEOUT",route="/invocations"} 1.0' in metrics


def test_timeout_must_be_positive(iris: tuple[PyFuncModel, Any]) -> None:
    from runyard.errors import InvalidParameterValue

    with pytest.raises(InvalidParameterValue, match="must be positive"):
        create_scoring_app(iris[0], timeout=0, model_load_seconds=0.1)


# -- metrics ----------------------------------------------------------------------------------
def _sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        assert match is not None, line
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if match.group(1) == name and found == labels:
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels} in:\n{metrics}")


def test_metrics_count_requests_errors_latency_and_load_time(
    iris: tuple[PyFuncModel, Any],
) -> None:
    rows = _rows()
    payload = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    with _client_for(iris[0]) as client:
        for _ in range(3):
            assert client.post("/invocations", json=payload).status_code == 200
        client.post("/invocations", content=b"{oops", headers=JSON)
        client.post("/invocations", content=b"{}", headers={"Content-Type": "text/plain"})
        client.get("/ping")
        client.get("/no-such-route")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    invocations = {"route": "/invocations", "method": "POST"}
    assert _sample(text, "runyard_scoring_requests_total", **invocations, status="200") == 3
    assert _sample(text, "runyard_scoring_requests_total", **invocations, status="400") == 1
    assert _sample(text, "runyard_scoring_requests_total", **invocations, status="415") == 1
    ping = {"route": "/ping", "method": "GET", "status": "200"}
    assert _sample(text, "runyard_scoring_requests_total", **ping) == 1
    other = {"route": "other", "method": "GET", "status": "404"}
    assert _sample(text, "runyard_scoring_requests_total", **other) == 1
    errors = "runyard_scoring_errors_total"
    assert _sample(text, errors, route="/invocations", error_code="BAD_REQUEST") == 1
    assert _sample(text, errors, route="/invocations", error_code="UNSUPPORTED_MEDIA_TYPE") == 1
    latency = "runyard_scoring_request_duration_seconds_count"
    assert _sample(text, latency, route="/invocations") == 5
    assert _sample(text, "runyard_scoring_request_duration_seconds_sum", route="/invocations") > 0
    assert _sample(text, "runyard_scoring_model_load_seconds") == 0.5
    # Three lean-path scorings, one model call each (sequential requests never batch).
    assert _sample(text, "runyard_scoring_batch_requests_count") == 3


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    iris: tuple[PyFuncModel, Any],
) -> None:
    features, _ = iris_frame()
    app = create_scoring_app(iris[0], timeout=60, model_load_seconds=0.1)

    async def score_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
            requests = [
                client.post(
                    "/invocations",
                    json={"dataframe_records": features.iloc[[i]].to_dict("records")},
                )
                for i in range(0, 150, 3)
            ]
            return await asyncio.gather(*requests)

    responses = asyncio.run(score_all())
    expected = iris[1].predict(features)
    for response, i in zip(responses, range(0, 150, 3), strict=True):
        assert response.json() == {"predictions": [int(expected[i])]}
    scorer = app.state.scorer
    assert scorer.batcher is not None
    metrics = app.state.metrics.render().decode()
    assert _sample(metrics, "runyard_scoring_batch_requests_sum") == 50
