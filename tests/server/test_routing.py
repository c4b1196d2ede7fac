"""Request decoding and error shapes, as MLflow's server does them (spec §1.2–§1.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

API = "/api/2.0/mlflow"


@pytest.mark.parametrize(
    "prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/preview/mlflow"]
)
def test_every_prefix_serves_the_api(api: TestClient, prefix: str) -> None:
    response = api.post(f"{prefix}/experiments/create", json={"name": prefix})
    assert response.status_code == 200
    exp_id = response.json()["experiment_id"]
    got = api.get(f"{prefix}/experiments/get", params={"experiment_id": exp_id})
    assert got.json()["experiment"]["name"] == prefix


def test_camel_case_numeric_strings_and_enum_names(api: TestClient, run_id: str) -> None:
    body = {"runId": run_id, "key": "m", "value": "NaN", "timestamp": "1700000000000", "step": "3"}
    assert api.post(f"{API}/runs/log-metric", json=body).json() == {}
    update = {"run_uuid": run_id, "status": "FINISHED", "endTime": "5"}
    info = api.post(f"{API}/runs/update", json=update).json()["run_info"]
    assert (info["status"], info["end_time"]) == ("FINISHED", 5)
    run = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    assert run["data"]["metrics"] == [
        {"key": "m", "value": "NaN", "timestamp": 1700000000000, "step": 3}
    ]


def test_both_spellings_of_a_field_refused(api: TestClient, run_id: str) -> None:
    body = {"run_id": run_id, "runId": run_id, "key": "k", "value": "v"}
    response = api.post(f"{API}/runs/set-tag", json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_missing_required_parameter(api: TestClient) -> None:
    response = api.post(f"{API}/runs/log-metric", json={"key": "m", "value": 1, "timestamp": 1})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Missing value for required parameter 'run_id'. "
        "See the API docs for more information about request parameters.",
    }


def test_wrong_content_type(api: TestClient) -> None:
    response = api.post(f"{API}/experiments/create", content=b'{"name": "x"}')
    assert response.status_code == 400
    assert "Content-Type must be one of ['application/json']" in response.json()["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"x"'])
def test_malformed_bodies(api: TestClient, body: bytes) -> None:
    response = api.post(
        f"{API}/experiments/create", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_wrong_types_and_unknown_fields(api: TestClient, run_id: str) -> None:
    bad = {"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1}
    response = api.post(f"{API}/runs/log-metric", json=bad)
    assert response.status_code == 400
    assert "'value'" in response.json()["message"]
    ok = {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 1, "surprise": [1]}
    assert api.post(f"{API}/runs/log-metric", json=ok).status_code == 200


def test_get_with_repeated_query_keys_and_capitalised_bools(api: TestClient) -> None:
    api.post(f"{API}/experiments/create", json={"name": "a"})
    got = api.get(f"{API}/experiments/search", params={"max_results": "10", "view_type": "ALL"})
    assert [e["name"] for e in got.json()["experiments"]] == ["a", "Default"]


def test_double_encoded_body(api: TestClient) -> None:
    response = api.post(
        f"{API}/experiments/create",
        content=b'"{\\"name\\": \\"twice\\"}"',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200


def test_unknown_route_and_method(api: TestClient) -> None:
    assert api.get(f"{API}/nothing/here").status_code == 404
    assert api.get(f"{API}/runs/search").status_code == 405


def test_service_endpoints(api: TestClient) -> None:
    assert api.get("/health").text == "OK"
    from packaging.version import Version

    assert Version(api.get("/version").text) >= Version("3.0")
    info = api.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False
    assert info["artifact_serving_enabled"] is True
    home = api.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (302, "/experiments")


def test_openapi_describes_every_endpoint(api: TestClient) -> None:
    from runyard.server.app import ENDPOINTS
    from runyard.server.routing import api_prefixes

    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for endpoint in ENDPOINTS:
        path = api_prefixes(endpoint.major, endpoint.namespace)[0] + endpoint.path
        assert set(doc["paths"][path]) == {m.lower() for m in endpoint.methods}
    assert "/api/2.0/mlflow-artifacts/artifacts/{path}" in doc["paths"]


def test_allowed_hosts_and_cors(tmp_path: Path) -> None:
    from runyard.server.app import create_app
    from runyard.server.settings import ServerSettings

    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 's.db'}",
        artifacts_destination=str(tmp_path / "a"),
        allowed_hosts=("tracking.example", "testserver"),
        cors_allowed_origins=("https://ui.example",),
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/health").status_code == 200
        assert api.get("/health", headers={"Host": "evil.example"}).status_code == 400
        preflight = api.options(
            "/api/2.0/mlflow/runs/search",
            headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
        other = api.get("/health", headers={"Origin": "https://other.example"})
        assert "access-control-allow-origin" not in other.headers


def test_unknown_paths_are_404_for_every_method(api: TestClient) -> None:
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = api.request(method, "/api/2.0/mlflow/no-such-endpoint")
        assert response.status_code == 404, method
    page = api.get("/no/such/page")
    assert page.status_code == 404
    assert "There is no page at /no/such/page." in page.text
