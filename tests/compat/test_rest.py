"""The REST API over raw HTTP, as curl users and non-Python clients see it (spec §1, §2, §14).

Where MLflow 3.17.2 itself departs from the spec (the removed ``/api/2.0/preview/`` prefix,
camelCase spellings of required fields, the 1 MB log-batch body limit), the expected answer is
chosen by ``server_kind``: runyard must follow the spec, the real MLflow server is held to what it
actually does, so the suite passes against it too.
"""

from __future__ import annotations

import json
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from packaging.version import Version

pytestmark = pytest.mark.slow

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
MAX_DOUBLE = 1.7976931348623157e308
MISSING_RUN_ID = (
    "Missing value for required parameter 'run_id'. "
    "See the API docs for more information about request parameters."
)


def now_ms() -> int:
    return int(time.time() * 1000)


def error_of(resp: httpx.Response) -> tuple[int, str, str]:
    """(status, error_code, message) of a JSON error answer."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    return resp.status_code, body["error_code"], body["message"]


@pytest.fixture(scope="module")
def experiment_id(http: httpx.Client) -> str:
    resp = http.post(f"{API}/experiments/create", json={"name": f"rest-{uuid.uuid4().hex[:8]}"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["experiment_id"])


@pytest.fixture
def run_id(http: httpx.Client, experiment_id: str) -> str:
    resp = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["run"]["info"]["run_id"])


def get_run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    resp = http.get(f"{API}/runs/get", params={"run_id": run_id})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["run"])


def cheat_sheet_flow(http: httpx.Client, prefix: str, experiment_id: str) -> None:
    """The cheat sheet's two curl calls, then a check through the current prefix."""
    ts = now_ms()
    created = http.post(
        f"{prefix}/runs/create", json={"experiment_id": experiment_id, "start_time": ts}
    )
    assert created.status_code == 200, created.text
    info = created.json()["run"]["info"]
    assert info["experiment_id"] == experiment_id
    assert info["start_time"] == ts
    assert info["status"] == "RUNNING"
    logged = http.post(
        f"{prefix}/runs/log-metric",
        json={"run_id": info["run_id"], "key": "accuracy", "value": 0.95, "timestamp": ts + 1},
    )
    assert logged.status_code == 200, logged.text
    assert logged.json() == {}
    metrics = get_run(http, info["run_id"])["data"]["metrics"]
    assert metrics == [{"key": "accuracy", "value": 0.95, "timestamp": ts + 1, "step": 0}]


# -- cheat sheet and prefixes --------------------------------------------------------------------


def test_cheat_sheet_curl_calls_on_the_preview_prefix(
    http: httpx.Client, experiment_id: str, server_kind: str
) -> None:
    if server_kind == "runyard":
        cheat_sheet_flow(http, "/api/2.0/preview/mlflow", experiment_id)
    else:
        # MLflow 2.0 dropped the prefix (mlflow/mlflow#6667); runyard keeps it for the cheat sheet.
        resp = http.post("/api/2.0/preview/mlflow/runs/create", json={"experiment_id": "0"})
        assert resp.status_code == 404


def test_cheat_sheet_curl_calls_on_the_current_prefix(
    http: httpx.Client, experiment_id: str
) -> None:
    cheat_sheet_flow(http, API, experiment_id)


def test_api_and_ajax_api_prefixes_answer_alike(http: httpx.Client, experiment_id: str) -> None:
    params = {"experiment_id": experiment_id}
    api = http.get(f"{API}/experiments/get", params=params)
    ajax = http.get("/ajax-api/2.0/mlflow/experiments/get", params=params)
    assert api.status_code == ajax.status_code == 200
    assert api.json() == ajax.json()
    assert api.json()["experiment"]["experiment_id"] == experiment_id


def test_get_query_string_and_post_json_agree(http: httpx.Client, experiment_id: str) -> None:
    name = http.get(f"{API}/experiments/get", params={"experiment_id": experiment_id}).json()
    flt = f"name = '{name['experiment']['name']}'"
    by_get = http.get(f"{API}/experiments/search", params={"max_results": "5", "filter": flt})
    by_post = http.post(f"{API}/experiments/search", json={"max_results": 5, "filter": flt})
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json() == by_post.json()
    assert [e["experiment_id"] for e in by_get.json()["experiments"]] == [experiment_id]
    # an enum given by name in a query string
    viewed = http.get(
        f"{API}/experiments/search", params={"max_results": 5, "filter": flt, "view_type": "ALL"}
    )
    assert viewed.json() == by_get.json()


def test_runs_get_accepts_run_uuid_alias(http: httpx.Client, run_id: str) -> None:
    resp = http.get(f"{API}/runs/get", params={"run_uuid": run_id})
    assert resp.status_code == 200, resp.text
    assert resp.json()["run"]["info"]["run_id"] == run_id
    both = http.get(f"{API}/runs/get", params={"run_uuid": run_id, "run_id": run_id})
    assert both.json() == resp.json()


# -- request decoding ---------------------------------------------------------------------------


def test_camel_case_optional_fields(http: httpx.Client, experiment_id: str) -> None:
    resp = http.post(
        f"{API}/runs/create",
        json={"experimentId": experiment_id, "runName": "camel", "startTime": 1_700_000_000_000},
    )
    assert resp.status_code == 200, resp.text
    info = resp.json()["run"]["info"]
    assert (info["experiment_id"], info["run_name"]) == (experiment_id, "camel")
    assert info["start_time"] == 1_700_000_000_000
    found = http.post(
        f"{API}/runs/search",
        json={"experimentIds": [experiment_id], "maxResults": 1, "runViewType": "ALL"},
    )
    assert found.status_code == 200, found.text
    assert len(found.json()["runs"]) == 1


def test_camel_case_required_field(http: httpx.Client, run_id: str, server_kind: str) -> None:
    resp = http.post(f"{API}/runs/set-tag", json={"runId": run_id, "key": "camel", "value": "1"})
    if server_kind == "runyard":
        # spec §1.2: either spelling of a field is accepted
        assert resp.status_code == 200, resp.text
        tags = {t["key"]: t["value"] for t in get_run(http, run_id)["data"]["tags"]}
        assert tags["camel"] == "1"
    else:
        # MLflow 3.17.2 checks required fields on the raw snake_case JSON keys.
        assert error_of(resp) == (400, "INVALID_PARAMETER_VALUE", MISSING_RUN_ID)


def test_both_spellings_of_one_field_are_refused(http: httpx.Client, run_id: str) -> None:
    resp = http.post(
        f"{API}/runs/set-tag", json={"run_id": run_id, "runId": run_id, "key": "k", "value": "v"}
    )
    status, code, _ = error_of(resp)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")


def test_int64_as_strings_and_special_doubles(http: httpx.Client, run_id: str) -> None:
    metric = {"run_id": run_id, "timestamp": "1700000000001", "step": "3"}
    for key, value in (("nan", "NaN"), ("inf", "Infinity"), ("ninf", "-Infinity"), ("n", "2.5")):
        resp = http.post(f"{API}/runs/log-metric", json={**metric, "key": key, "value": value})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {}
    metrics = {m["key"]: m for m in get_run(http, run_id)["data"]["metrics"]}
    assert metrics["nan"] == {
        "key": "nan",
        "value": "NaN",
        "timestamp": 1_700_000_000_001,
        "step": 3,
    }
    assert metrics["inf"]["value"] == MAX_DOUBLE
    assert metrics["ninf"]["value"] == -MAX_DOUBLE
    assert metrics["n"]["value"] == 2.5
    history = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "nan"})
    assert history.json() == {"metrics": [metrics["nan"]]}


def test_enum_names_and_numbers(http: httpx.Client, run_id: str) -> None:
    resp = http.post(
        f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": 5}
    )
    assert resp.status_code == 200, resp.text
    info = resp.json()["run_info"]
    assert (info["status"], info["end_time"]) == ("FINISHED", 5)
    numbered = http.post(f"{API}/runs/update", json={"run_id": run_id, "status": 4})
    assert numbered.json()["run_info"]["status"] == "FAILED"


def test_double_encoded_json_body(http: httpx.Client, run_id: str) -> None:
    body = json.dumps(json.dumps({"run_id": run_id, "key": "legacy", "value": "yes"}))
    resp = http.post(
        f"{API}/runs/set-tag", content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    tags = {t["key"]: t["value"] for t in get_run(http, run_id)["data"]["tags"]}
    assert tags["legacy"] == "yes"


def test_content_type_with_charset_is_accepted(http: httpx.Client, run_id: str) -> None:
    resp = http.post(
        f"{API}/runs/set-tag",
        content=json.dumps({"run_id": run_id, "key": "cs", "value": "1"}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 200, resp.text


# -- response encoding --------------------------------------------------------------------------


def test_run_response_shape(http: httpx.Client, experiment_id: str) -> None:
    resp = http.post(
        f"{API}/runs/create",
        json={"experiment_id": experiment_id, "start_time": 1_700_000_000_000, "run_name": "shape"},
    )
    assert resp.headers["content-type"].startswith("application/json")
    run = resp.json()["run"]
    info = run["info"]
    assert info["run_uuid"] == info["run_id"]
    assert len(info["run_id"]) == 32
    assert isinstance(info["start_time"], int)
    assert "end_time" not in info  # unset optional: omitted
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    # empty repeated fields are omitted; the only tag is the mirrored run name
    assert run["data"] == {"tags": [{"key": "mlflow.runName", "value": "shape"}]}
    assert run["inputs"] == {}
    experiment = http.get(f"{API}/experiments/get", params={"experiment_id": experiment_id})
    exp = experiment.json()["experiment"]
    assert isinstance(exp["experiment_id"], str)
    assert isinstance(exp["creation_time"], int)
    assert isinstance(exp["last_update_time"], int)
    assert "tags" not in exp


def test_empty_results_are_empty_objects(http: httpx.Client, experiment_id: str) -> None:
    search = http.post(
        f"{API}/runs/search",
        json={"experiment_ids": [experiment_id], "filter": "metrics.never > 0"},
    )
    assert search.status_code == 200
    assert search.json() == {}
    run = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()
    rid = run["run"]["info"]["run_id"]
    assert http.post(f"{API}/runs/delete", json={"run_id": rid}).json() == {}
    assert http.post(f"{API}/runs/restore", json={"run_id": rid}).json() == {}
    history = http.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "x"})
    assert history.json() == {}


# -- errors -------------------------------------------------------------------------------------


def test_malformed_json(http: httpx.Client) -> None:
    resp = http.post(
        f"{API}/experiments/create",
        content=b'{"name": "broken',
        headers={"Content-Type": "application/json"},
    )
    status, code, _ = error_of(resp)
    assert status == 400
    assert code in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_or_missing_content_type(http: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    resp = http.post(
        f"{API}/experiments/create", content=json.dumps({"name": "ct-x"}), headers=headers
    )
    status, code, message = error_of(resp)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    # "Content-Type must be one of ['application/json']." or "Content-Type header is missing."
    assert message.startswith("Bad Request. Content-Type"), message
    lookup = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "ct-x"})
    assert lookup.status_code == 404


def test_missing_required_field(http: httpx.Client) -> None:
    resp = http.post(f"{API}/runs/log-metric", json={"key": "k", "value": 1, "timestamp": 1})
    assert error_of(resp) == (400, "INVALID_PARAMETER_VALUE", MISSING_RUN_ID)
    empty = http.post(f"{API}/runs/log-metric", json={"run_id": "", "key": "k", "value": 1})
    assert error_of(empty) == (400, "INVALID_PARAMETER_VALUE", MISSING_RUN_ID)


def test_invalid_values(http: httpx.Client, run_id: str) -> None:
    metric = {"run_id": run_id, "key": "x", "value": 1.0, "timestamp": 5}
    for bad in ({"timestamp": -5}, {"value": "abc"}, {"key": "../x"}):
        status, code, _ = error_of(http.post(f"{API}/runs/log-metric", json={**metric, **bad}))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), bad
    status, code, message = error_of(
        http.get(f"{API}/experiments/get", params={"experiment_id": "abc"})
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "abc" in message


def test_unknown_resources_are_404(http: httpx.Client) -> None:
    status, code, message = error_of(http.get(f"{API}/runs/get", params={"run_id": "f" * 32}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "f" * 32 in message
    status, code, _ = error_of(
        http.get(f"{API}/experiments/get", params={"experiment_id": "987654321"})
    )
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    status, code, _ = error_of(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "no-such-exp-x"})
    )
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    metric = {"run_id": "f" * 32, "key": "k", "value": 1, "timestamp": 1}
    status, code, _ = error_of(http.post(f"{API}/runs/log-metric", json=metric))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_route_and_wrong_method(http: httpx.Client) -> None:
    assert http.get(f"{API}/no-such-endpoint").status_code == 404
    assert http.post(f"{API}/runs/get", json={}).status_code == 405


def test_duplicate_experiment(http: httpx.Client) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    assert http.post(f"{API}/experiments/create", json={"name": name}).status_code == 200
    status, code, message = error_of(http.post(f"{API}/experiments/create", json={"name": name}))
    assert (status, code) == (400, "RESOURCE_ALREADY_EXISTS")
    assert name in message


def test_search_experiments_needs_max_results(http: httpx.Client) -> None:
    status, code, message = error_of(http.post(f"{API}/experiments/search", json={}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "max_results" in message


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"metrics": [{"key": f"m{i}", "value": i, "timestamp": 1} for i in range(1001)]}, "1000"),
        ({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "100"),
        (
            {
                "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 801,
                "params": [{"key": f"p{i}", "value": "1"} for i in range(100)],
                "tags": [{"key": f"t{i}", "value": "1"} for i in range(100)],
            },
            "1000",
        ),
        ({"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, "p"),
        ({"metrics": [{"key": "m", "value": 1}]}, "metrics[0].timestamp"),
    ],
    ids=["1001-metrics", "101-params", "1001-entities", "duplicate-param", "no-timestamp"],
)
def test_log_batch_limits(
    http: httpx.Client, run_id: str, payload: dict[str, Any], fragment: str
) -> None:
    status, code, message = error_of(
        http.post(f"{API}/runs/log-batch", json={"run_id": run_id, **payload})
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert fragment in message
    # nothing half-written: the run still holds only its name tag
    assert list(get_run(http, run_id)["data"]) == ["tags"]
    assert len(get_run(http, run_id)["data"]["tags"]) == 1


def test_log_batch_body_over_one_megabyte(
    http: httpx.Client, run_id: str, server_kind: str
) -> None:
    tags = [{"key": f"t{i}", "value": "x" * 12_000} for i in range(100)]
    resp = http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "tags": tags})
    if server_kind == "runyard":
        # spec §2.3/§5: the raw body may not exceed 1,000,000 bytes
        status, code, _ = error_of(resp)
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    else:
        # MLflow 3.17.2 measures len() of the parsed dict, so the limit never triggers; the
        # values are truncated to 8000 characters instead.
        assert resp.status_code == 200, resp.text
        tags_back = {t["key"]: t["value"] for t in get_run(http, run_id)["data"]["tags"]}
        assert len(tags_back["t0"]) == 8000


def test_writes_to_a_deleted_run_are_refused(http: httpx.Client, run_id: str) -> None:
    assert http.post(f"{API}/runs/delete", json={"run_id": run_id}).status_code == 200
    status, code, message = error_of(
        http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert message == (f"The run {run_id} must be in the 'active' state. Current state is deleted.")
    assert get_run(http, run_id)["info"]["lifecycle_stage"] == "deleted"


# -- artifact path safety -----------------------------------------------------------------------


def raw_request(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send ``path`` byte for byte (httpx would normalise the dot segments away)."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def refused(status: int) -> bool:
    """400/404 as MLflow answers; a redirect (MLflow merges the ``//`` of an absolute path into a
    path inside the destination) is no acceptance either."""
    return status in (400, 404) or 300 <= status < 400


def escapes(outside: Path) -> list[str]:
    """Ways to name ``outside`` (a sibling of the artifacts destination) in an artifact path."""
    name = outside.name
    absolute = str(outside)
    return [
        f"../{name}",
        f"%2e%2e/{name}",
        f"%2E%2E%2F{name}",
        f"1/../../{name}",
        f"1/%2e%2e/%2e%2e/{name}",
        absolute,
        absolute.replace("/", "%2F"),
    ]


def test_artifact_upload_cannot_escape(compat_server: Any) -> None:
    outside = Path(compat_server.root) / f"escaped-{uuid.uuid4().hex[:6]}.txt"
    for path in escapes(outside):
        status, _ = raw_request(compat_server.url, "PUT", f"{ARTIFACTS}/{path}", b"pwned")
        assert refused(status), (path, status)
        assert not outside.exists(), path
    assert not list(Path(compat_server.root).glob("escaped-*"))


def test_artifact_download_and_delete_cannot_escape(compat_server: Any) -> None:
    secret = Path(compat_server.root) / f"secret-{uuid.uuid4().hex[:6]}.txt"
    secret.write_text("TOP-SECRET")
    for path in escapes(secret):
        for method in ("GET", "DELETE"):
            status, body = raw_request(compat_server.url, method, f"{ARTIFACTS}/{path}")
            assert refused(status), (method, path, status)
            assert b"TOP-SECRET" not in body
            assert secret.read_text() == "TOP-SECRET", (method, path)


@pytest.mark.parametrize("path", ["..", "../", "1/../..", "%2e%2e", "/etc", "%2Fetc"])
def test_artifact_listing_cannot_escape(compat_server: Any, path: str) -> None:
    status, body = raw_request(compat_server.url, "GET", f"{ARTIFACTS}?path={path}")
    assert refused(status), (path, status, body)
    assert b"server.log" not in body
    assert b"passwd" not in body


# -- service endpoints --------------------------------------------------------------------------


def test_health(http: httpx.Client) -> None:
    resp = http.get("/health")
    assert resp.status_code == 200
    assert resp.text == "OK"


def test_version(http: httpx.Client) -> None:
    resp = http.get("/version")
    assert resp.status_code == 200
    assert Version(resp.text.strip()) >= Version("3.0")


@pytest.mark.parametrize("prefix", ["/api", "/ajax-api"])
def test_server_info(http: httpx.Client, prefix: str) -> None:
    resp = http.get(f"{prefix}/3.0/mlflow/server-info")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    info = resp.json()
    assert isinstance(info, dict)
    # Nothing the client would then try: no multipart and no presigned-only artifact access.
    assert info.get("multipart_uploads_enabled", False) is False
    assert info.get("multipart_downloads_enabled", False) is False
    assert info.get("artifacts_presigned_only", False) is False


def test_multipart_upload_is_not_implemented(http: httpx.Client, experiment_id: str) -> None:
    resp = http.post(
        f"/api/2.0/mlflow-artifacts/mpu/create/{experiment_id}/some-run/artifacts",
        json={"path": "big.bin", "num_parts": 2},
    )
    status, code, message = error_of(resp)
    assert (status, code) == (501, "NOT_IMPLEMENTED")
    assert "Multipart upload is not supported" in message
