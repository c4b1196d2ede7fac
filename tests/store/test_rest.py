"""The REST tracking store: retry and error rules on a mock transport, then every store method
end to end against a real tracking server process over HTTP.

The server is ``runyard server`` or MLflow's own (``RUNYARD_TEST_SERVER=runyard|mlflow``; by
default runyard's when its ``server`` command exists). It is started once per session and shared
with ``tests/store/artifact/test_http.py``; each test uses its own experiments.
"""

from __future__ import annotations

import base64
import math
import os
import ssl
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import certifi
import httpx
import orjson
import pytest

import runyard
from runyard.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from runyard.errors import (
    InvalidParameterValue,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RunyardError,
)
from runyard.store.http_session import HttpConfig, HttpSession
from runyard.store.rest import RestStore, api_base_url
from runyard.tracking.registry import get_store, release

Handler = Callable[[httpx.Request], httpx.Response]


# -- mock-transport helpers ------------------------------------------------------------------
def make_store(
    handler: Handler, uri: str = "http://tracking.test", max_retries: int = 7
) -> tuple[RestStore, list[float]]:
    """A RestStore on a MockTransport; returns it and the list of retry waits it slept."""
    sleeps: list[float] = []
    settings = HttpConfig(max_retries=max_retries, backoff_factor=0.5, backoff_jitter=0.0)
    session = HttpSession(
        api_base_url(uri), settings, transport=httpx.MockTransport(handler), sleep=sleeps.append
    )
    return RestStore(uri, session=session), sleeps


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in turn (exceptions are raised), and its log."""
    seen: list[httpx.Request] = []
    pending = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = pending.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


RUN_INFO = {"run_id": "r1", "run_uuid": "r1", "experiment_id": "0", "status": "RUNNING"}
RUN = {"run": {"info": RUN_INFO, "data": {}, "inputs": {}}}


def error(status: int, code: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"error_code": code, "message": message})


# -- retries ---------------------------------------------------------------------------------
def test_503_then_200_is_retried() -> None:
    handler, seen = sequence(httpx.Response(503, text="busy"), httpx.Response(200, json=RUN))
    store, sleeps = make_store(handler)
    assert store.get_run("r1").info.run_id == "r1"
    assert len(seen) == 2
    assert sleeps == [0.5]


def test_backoff_doubles_and_gives_up_after_max_retries() -> None:
    handler, seen = sequence(*[httpx.Response(502, text="bad gateway")] * 4)
    store, sleeps = make_store(handler, max_retries=3)
    with pytest.raises(RunyardError) as info:
        store.get_run("r1")
    assert len(seen) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    # A non-JSON error body maps by status, in one line naming the status and the path.
    assert info.value.error_code == "INTERNAL_ERROR"
    assert "502" in info.value.message
    assert "/api/2.0/mlflow/runs/get" in info.value.message
    assert "\n" not in info.value.message


def test_429_retry_after_is_respected_even_for_a_create() -> None:
    handler, seen = sequence(
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        httpx.Response(200, json=RUN),
    )
    store, sleeps = make_store(handler)
    store.create_run("0", "u", 1, [], None)
    assert sleeps == [7.0]
    assert [r.url.path for r in seen] == ["/api/2.0/mlflow/runs/create"] * 2
    assert seen[0].content == seen[1].content


def test_retry_after_as_http_date() -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    handler, _ = sequence(
        httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json=RUN)
    )
    store, sleeps = make_store(handler)
    store.get_run("r1")
    assert 25 <= sleeps[0] <= 31


def test_500_is_not_retried_for_a_create_but_is_for_a_read() -> None:
    handler, seen = sequence(error(500, "INTERNAL_ERROR"))
    store, sleeps = make_store(handler)
    with pytest.raises(RunyardError, match="nope"):
        store.create_experiment("e")
    assert len(seen) == 1
    assert sleeps == []
    handler, seen = sequence(error(500, "INTERNAL_ERROR"), httpx.Response(200, json=RUN))
    store, _ = make_store(handler)
    store.get_run("r1")
    assert len(seen) == 2


def test_log_batch_is_retried_after_a_500() -> None:
    # Safe: duplicate points collapse and a param re-logged with its value is accepted.
    handler, seen = sequence(httpx.Response(500, text="oops"), httpx.Response(200, json={}))
    store, _ = make_store(handler)
    store.log_batch("r1", [Metric("m", 1.0, 5, 0)], [Param("p", "1")])
    assert len(seen) == 2
    assert seen[0].content == seen[1].content


def test_connection_error_before_sending_is_retried_for_any_request() -> None:
    handler, seen = sequence(httpx.ConnectError("refused"), httpx.Response(200, json=RUN))
    store, sleeps = make_store(handler)
    store.create_run("0", "u", 1, [], None)
    assert len(seen) == 2
    assert sleeps == [0.5]


def test_broken_connection_after_sending_is_not_retried_for_a_create() -> None:
    handler, seen = sequence(httpx.ReadError("reset"), httpx.Response(200, json=RUN))
    store, _ = make_store(handler)
    with pytest.raises(RunyardError) as info:
        store.create_run("0", "u", 1, [], None)
    assert len(seen) == 1
    # A code the background writer treats as temporary: it keeps the values queued.
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert "runs/create" in info.value.message


def test_broken_connection_is_retried_for_a_read() -> None:
    handler, seen = sequence(httpx.ReadError("reset"), httpx.Response(200, json=RUN))
    store, _ = make_store(handler)
    store.get_run("r1")
    assert len(seen) == 2


def test_unreachable_server_raises_a_temporary_error() -> None:
    handler, seen = sequence(*[httpx.ConnectError("refused")] * 3)
    store, _ = make_store(handler, max_retries=2)
    with pytest.raises(RunyardError) as info:
        store.get_experiment("1")
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert len(seen) == 3


def test_failures_without_a_response_are_runyard_errors_without_credentials() -> None:
    handler, seen = sequence(*[httpx.ConnectError("refused")] * 2)
    store, _ = make_store(handler, uri="http://ann:pw@tracking.test/p", max_retries=1)
    with pytest.raises(RunyardError) as info:
        store.get_run("r1")
    assert "pw" not in info.value.message
    assert "http://tracking.test/p/api/2.0/mlflow/runs/get" in info.value.message

    def redirect_loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url)})

    store, sleeps = make_store(redirect_loop)
    with pytest.raises(RunyardError) as info:
        store.get_run("r1")
    assert info.value.error_code == "INTERNAL_ERROR"
    assert "TooManyRedirects" in info.value.message
    assert sleeps == []


def test_max_retries_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_TIMEOUT", "3")
    config = HttpConfig.from_env()
    assert (config.max_retries, config.backoff_factor, config.timeout) == (1, 0.0, 3.0)
    assert config.backoff_jitter == 0.0


# -- error mapping ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "cls", "code"),
    [
        (error(404, "RESOURCE_DOES_NOT_EXIST"), ResourceDoesNotExist, "RESOURCE_DOES_NOT_EXIST"),
        (error(400, "RESOURCE_ALREADY_EXISTS"), ResourceAlreadyExists, "RESOURCE_ALREADY_EXISTS"),
        (error(400, "INVALID_PARAMETER_VALUE"), InvalidParameterValue, "INVALID_PARAMETER_VALUE"),
        (error(400, "BAD_REQUEST"), RunyardError, "BAD_REQUEST"),
    ],
)
def test_json_errors_keep_their_code_and_class(
    response: httpx.Response, cls: type[RunyardError], code: str
) -> None:
    handler, _ = sequence(response)
    store, _ = make_store(handler)
    with pytest.raises(cls) as info:
        store.get_experiment("1")
    assert info.value.error_code == code
    assert info.value.message == "nope"


@pytest.mark.parametrize(
    ("response", "cls", "code"),
    [
        (httpx.Response(404, html="<html>404</html>"), RunyardError, "ENDPOINT_NOT_FOUND"),
        (httpx.Response(404), RunyardError, "ENDPOINT_NOT_FOUND"),
        (httpx.Response(400, text="bad"), RunyardError, "BAD_REQUEST"),
        (httpx.Response(401, text="login"), RunyardError, "UNAUTHENTICATED"),
        (httpx.Response(403, text="no"), PermissionDenied, "PERMISSION_DENIED"),
        (httpx.Response(418, json={"detail": "teapot"}), RunyardError, "INTERNAL_ERROR"),
    ],
)
def test_other_error_bodies_map_by_status(
    response: httpx.Response, cls: type[RunyardError], code: str
) -> None:
    handler, _ = sequence(response)
    store, _ = make_store(handler)
    with pytest.raises(cls) as info:
        store.get_experiment("1")
    assert info.value.error_code == code
    message = info.value.message
    assert f"HTTP {response.status_code}" in message
    assert "GET /api/2.0/mlflow/experiments/get" in message
    assert "<html>" not in message
    assert "\n" not in message


def test_non_json_success_body_is_an_error() -> None:
    handler, _ = sequence(httpx.Response(200, html="<html>login page</html>"))
    store, _ = make_store(handler)
    with pytest.raises(RunyardError, match="not a JSON object"):
        store.get_experiment("1")


def test_get_experiment_by_name_missing_is_none_but_a_missing_endpoint_raises() -> None:
    handler, seen = sequence(error(404, "RESOURCE_DOES_NOT_EXIST"))
    store, _ = make_store(handler)
    assert store.get_experiment_by_name("x y") is None
    assert seen[0].method == "GET"
    assert seen[0].url.params["experiment_name"] == "x y"
    handler, _ = sequence(httpx.Response(404, html="<p>Not Found</p>"))
    store, _ = make_store(handler)
    with pytest.raises(RunyardError) as info:
        store.get_experiment_by_name("x")
    assert info.value.error_code == "ENDPOINT_NOT_FOUND"


# -- requests on the wire --------------------------------------------------------------------
def test_auth_user_agent_and_path_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USERNAME", "PASSWORD", "TOKEN"):
        monkeypatch.delenv(f"RUNYARD_TRACKING_{name}", raising=False)
        monkeypatch.delenv(f"MLFLOW_TRACKING_{name}", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "ignored-when-basic")
    handler, seen = sequence(httpx.Response(200, json=RUN), httpx.Response(200, json=RUN))
    store = RestStore("http://h:5000/mlflow/", transport=httpx.MockTransport(handler))
    store.get_run("r1")
    request = seen[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert request.headers["User-Agent"] == f"runyard/{runyard.__version__}"
    assert str(request.url).startswith("http://h:5000/mlflow/api/2.0/mlflow/runs/get?")
    assert repr(store._http.config).count("s3cret") == 0

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("RUNYARD_TRACKING_TOKEN", "tok")
    store = RestStore("http://h:5000", transport=httpx.MockTransport(handler))
    store.get_run("r1")
    assert seen[1].headers["Authorization"] == "Bearer tok"
    store.close()


def test_insecure_tls_and_ca_bundle_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert HttpConfig(insecure_tls=True).verify() is False
    default = HttpConfig().verify()
    assert isinstance(default, ssl.SSLContext)
    assert default.verify_mode == ssl.CERT_REQUIRED
    assert default.check_hostname
    assert default.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded
    # One context per process and settings: the CA bundle is read once, not per session.
    assert HttpConfig(timeout=5).verify() is default
    bundle = HttpConfig(server_cert_path=certifi.where()).verify()
    assert isinstance(bundle, ssl.SSLContext)
    assert bundle is not default
    assert bundle.verify_mode == ssl.CERT_REQUIRED


def test_methods_paths_and_bodies_follow_mlflow() -> None:
    calls: list[tuple[str, str, bytes]] = []
    answers = {
        "experiments/create": {"experiment_id": "3"},
        "runs/update": {"run_info": {**RUN_INFO, "status": "FINISHED", "end_time": 9}},
        "runs/get": RUN,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/2.0/mlflow/")
        calls.append((request.method, path, request.content))
        return httpx.Response(200, json=answers.get(path, {}))

    store, _ = make_store(handler)
    assert store.create_experiment("e", "s3://b/p", [ExperimentTag("k", "v")]) == "3"
    info = store.update_run_info("r1", "FINISHED", 9, None)
    assert (info.status, info.end_time) == ("FINISHED", 9)
    store.search_runs(["1"], "metrics.m > 0", ViewType.ALL, 5, ["metrics.m DESC"], "tok")
    store.search_experiments(ViewType.DELETED_ONLY, 7)
    store.delete_tag("r1", "t")
    store.log_inputs("r1", [DatasetInput(Dataset("d", "abc", "local", "{}"), [])])
    store.log_inputs("r1", [])  # nothing to send
    store.log_batch("r1")  # nothing to send
    assert [(m, p) for m, p, _ in calls] == [
        ("POST", "experiments/create"),
        ("POST", "runs/update"),
        ("POST", "runs/search"),
        ("POST", "experiments/search"),
        ("POST", "runs/delete-tag"),
        ("POST", "runs/log-inputs"),
    ]
    search = orjson.loads(calls[2][2])
    assert search == {
        "experiment_ids": ["1"],
        "filter": "metrics.m > 0",
        "run_view_type": "ALL",
        "max_results": 5,
        "order_by": ["metrics.m DESC"],
        "page_token": "tok",
    }
    assert orjson.loads(calls[1][2]) == {
        "run_id": "r1",
        "run_uuid": "r1",
        "status": "FINISHED",
        "end_time": 9,
    }
    assert orjson.loads(calls[3][2]) == {"view_type": "DELETED_ONLY", "max_results": 7}


def test_log_batch_limits_raise_before_any_request() -> None:
    handler, seen = sequence()
    store, _ = make_store(handler)
    with pytest.raises(InvalidParameterValue, match="at most 1000 metrics"):
        store.log_batch("r1", [Metric("m", 1.0, i, i) for i in range(1001)])
    with pytest.raises(InvalidParameterValue, match="at most 100 params"):
        store.log_batch("r1", params=[Param(f"p{i}", "v") for i in range(101)])
    with pytest.raises(InvalidParameterValue, match="at most 100 tags"):
        store.log_batch("r1", tags=[RunTag(f"t{i}", "v") for i in range(101)])
    with pytest.raises(InvalidParameterValue, match="in total"):
        store.log_batch(
            "r1",
            [Metric("m", 1.0, i, i) for i in range(950)],
            [Param(f"p{i}", "v") for i in range(51)],
        )
    assert seen == []


def test_metric_history_pages_of_25000_until_the_token_runs_out() -> None:
    def page(n: int, start: int, token: str | None) -> httpx.Response:
        metrics = [{"key": "m", "value": i, "timestamp": i, "step": i} for i in range(start, n)]
        doc: dict[str, object] = {"metrics": metrics}
        if token:
            doc["next_page_token"] = token
        return httpx.Response(200, json=doc)

    handler, seen = sequence(page(3, 0, "t1"), page(5, 3, None))
    store, _ = make_store(handler)
    points = store.get_metric_history("r1", "m")
    assert [p.step for p in points] == [0, 1, 2, 3, 4]
    assert points.token is None
    assert all(p.run_id == "r1" for p in points)
    assert [r.method for r in seen] == ["GET", "GET"]
    assert seen[0].url.params["max_results"] == "25000"
    assert "page_token" not in seen[0].url.params
    assert seen[1].url.params["page_token"] == "t1"
    assert seen[0].url.params["run_id"] == seen[0].url.params["run_uuid"] == "r1"

    handler, seen = sequence(page(2, 0, "t2"))
    store, _ = make_store(handler)
    first = store.get_metric_history("r1", "m", max_results=2)
    assert (len(first), first.token) == (2, "t2")
    assert seen[0].url.params["max_results"] == "2"


def test_get_store_opens_a_rest_store_for_http_uris() -> None:
    uri = "http://127.0.0.1:9/unused"
    try:
        assert isinstance(get_store(uri), RestStore)
    finally:
        release(uri, flush=False)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- end to end: experiments -----------------------------------------------------------------
@pytest.mark.slow
def test_experiments_round_trip(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    name = unique("exp")
    exp_id = client.create_experiment(name, tags={"team": "a"})
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == (name, {"team": "a"}, "active")
    assert exp.artifact_location.startswith(("mlflow-artifacts:", "http"))
    assert client.get_experiment_by_name(name) == exp
    assert client.get_experiment_by_name(unique("missing")) is None

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"stage": "dev"}
    renamed = unique("renamed")
    client.rename_experiment(exp_id, renamed)
    assert client.get_experiment(exp_id).name == renamed

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    deleted = client.search_experiments(ViewType.DELETED_ONLY, filter_string=f"name = '{renamed}'")
    assert [e.experiment_id for e in deleted] == [exp_id]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


@pytest.mark.slow
def test_search_experiments_pages(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    prefix = unique("page")
    ids = {client.create_experiment(f"{prefix}-{i}") for i in range(5)}
    seen: list[str] = []
    token = None
    while True:
        page = client.search_experiments(
            max_results=2, filter_string=f"name LIKE '{prefix}-%'", page_token=token
        )
        assert len(page) <= 2
        seen.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    everything = runyard.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert {e.experiment_id for e in everything} == ids


@pytest.mark.slow
def test_experiment_errors_round_trip_as_runyard_classes(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    name = unique("dup")
    client.create_experiment(name)
    with pytest.raises(ResourceAlreadyExists):
        client.create_experiment(name)
    with pytest.raises(ResourceDoesNotExist):
        client.get_experiment("987654321")
    with pytest.raises(InvalidParameterValue):
        client.search_experiments(max_results=0)
    with pytest.raises(InvalidParameterValue):
        client.search_experiments(filter_string="name ~~ 'x'")


# -- end to end: runs and logging ------------------------------------------------------------
@pytest.mark.slow
def test_runs_round_trip(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    exp_id = client.create_experiment(unique("runs"))
    run = client.create_run(exp_id, start_time=1000, tags={"t": "1"}, run_name="first")
    run_id = run.info.run_id
    assert (run.info.run_name, run.info.status, run.info.start_time) == ("first", "RUNNING", 1000)
    assert run.data.tags["t"] == "1"
    assert run.data.tags["mlflow.runName"] == "first"

    client.update_run(run_id, name="second")
    assert client.get_run(run_id).data.tags["mlflow.runName"] == "second"
    client.set_terminated(run_id, "FAILED", end_time=5000)
    info = client.get_run(run_id).info
    assert (info.status, info.end_time, info.run_name) == ("FAILED", 5000, "second")
    info = client.store.update_run_info(run_id, "FINISHED", 6000, None)
    assert (info.status, info.end_time) == ("FINISHED", 6000)

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidParameterValue):
        client.log_param(run_id, "p", 1, synchronous=True)
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    with pytest.raises(ResourceDoesNotExist):
        client.get_run(uuid.uuid4().hex)


@pytest.mark.slow
def test_logging_round_trip(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    exp_id = client.create_experiment(unique("log"))
    run_id = client.create_run(exp_id).info.run_id
    metrics = [
        Metric("acc", 0.5, 1000, 0),
        Metric("acc", 0.75, 2000, 1),
        Metric("nan", math.nan, 1000, 0),
        Metric("inf", math.inf, 1000, 0),
    ]
    params = [Param("lr", "0.1"), Param("empty", "")]
    client.log_batch(run_id, metrics, params, [RunTag("note", "x")], synchronous=True)
    # The same batch again is harmless: that is what makes retrying log-batch safe.
    client.store.log_batch(run_id, metrics, params, [RunTag("note", "x")])
    client.log_metric(run_id, "loss", 2.5, step=3)
    client.set_tag(run_id, "note", "y")
    client.flush()

    data = client.get_run(run_id).data
    assert data.metrics["acc"] == 0.75
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["inf"] > 1e308
    assert data.metrics["loss"] == 2.5
    assert data.params == {"lr": "0.1", "empty": ""}
    assert data.tags["note"] == "y"
    history = client.get_metric_history(run_id, "acc")
    assert [(m.value, m.step, m.timestamp) for m in history] == [(0.5, 0, 1000), (0.75, 1, 2000)]

    with pytest.raises(InvalidParameterValue, match="(?i)chang"):
        client.log_param(run_id, "lr", "0.2", synchronous=True)
    client.delete_tag(run_id, "note")
    assert "note" not in client.get_run(run_id).data.tags
    with pytest.raises(ResourceDoesNotExist):
        client.delete_tag(run_id, "note")
    with pytest.raises(InvalidParameterValue):
        client.store.log_batch(run_id, [Metric("m", 1.0, i, i) for i in range(1001)])


@pytest.mark.slow
def test_log_inputs_round_trip(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    run_id = client.create_run(client.create_experiment(unique("inputs"))).info.run_id
    dataset = Dataset("iris", "d1g3st", "local", '{"uri": "/data/iris.csv"}', '{"a": 1}')
    client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [("iris", "d1g3st")]
    assert inputs[0].tags == [InputTag("mlflow.data.context", "train")]


@pytest.mark.slow
def test_search_runs_filters_orders_and_pages(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    exp_id = client.create_experiment(unique("search"))
    ids = []
    for i in range(7):
        run_id = client.create_run(exp_id, start_time=1000 + i).info.run_id
        client.log_batch(run_id, [Metric("score", float(i), 1, 0)], [Param("i", str(i))])
        ids.append(run_id)
    page = client.search_runs(exp_id, "metrics.score >= 2", order_by=["metrics.score DESC"])
    assert [r.info.run_id for r in page] == ids[:1:-1]
    assert page.token is None

    collected: list[str] = []
    token = None
    while True:
        page = client.search_runs(exp_id, max_results=3, page_token=token)
        assert len(page) <= 3
        collected.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert collected == ids[::-1]  # default order: start_time DESC
    assert client.search_runs(exp_id, "params.i = '4'")[0].info.run_id == ids[4]
    with pytest.raises(InvalidParameterValue):
        client.search_runs(exp_id, "metrics.score >>> 1")


@pytest.mark.slow
def test_metric_history_over_25000_points(server_uri: str) -> None:
    client = runyard.MlflowClient(server_uri)
    run_id = client.create_run(client.create_experiment(unique("hist"))).info.run_id
    total = 26_000
    for start in range(0, total, 1000):
        batch = [Metric("loss", i / 7, 1_000_000 + i, i) for i in range(start, start + 1000)]
        client.store.log_batch(run_id, batch)
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == total
    assert [m.step for m in history] == list(range(total))
    assert history[-1].value == (total - 1) / 7

    first = client.store.get_metric_history(run_id, "loss", max_results=20_000)
    assert len(first) == 20_000
    assert first.token
    rest = client.store.get_metric_history(run_id, "loss", 20_000, first.token)
    assert len(rest) == total - 20_000
    assert not rest.token


# -- end to end: the fluent API --------------------------------------------------------------
@pytest.mark.slow
def test_fluent_api_against_the_server(server_uri: str, tmp_path: Path) -> None:
    runyard.set_tracking_uri(server_uri)
    name = unique("fluent")
    exp = runyard.set_experiment(name)
    assert runyard.get_experiment_by_name(name) == exp
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(os.urandom(3000))
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "conf.yaml").write_text("a: 1\n")
    (tmp_path / "readme.txt").write_text("hello")
    with runyard.start_run(run_name="fluent-run") as run:
        runyard.log_param("alpha", 0.5)
        runyard.log_params({"beta": 2, "gamma": "g"})
        for step in range(250):
            runyard.log_metric("loss", 1 / (step + 1), step=step)
        runyard.log_metrics({"acc": 0.9, "f1": 0.8}, step=1)
        runyard.set_tags({"kind": "test"})
        runyard.log_artifact(str(tmp_path / "readme.txt"))
        runyard.log_artifact(str(tmp_path / "model"), "models")
        runyard.log_dict({"k": [1, 2]}, "meta/info.json")
    run_id = run.info.run_id

    client = runyard.MlflowClient()
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "fluent-run"
    assert finished.data.params == {"alpha": "0.5", "beta": "2", "gamma": "g"}
    assert finished.data.metrics["acc"] == 0.9
    assert len(client.get_metric_history(run_id, "loss")) == 250
    assert finished.data.tags["kind"] == "test"

    top = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert top == {("readme.txt", False), ("models", True), ("meta", True)}
    listed = client.list_artifacts(run_id, "models/model")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
        ("models/model/sub", True, None),
        ("models/model/weights.bin", False, 3000),
    ]
    local = Path(client.download_artifacts(run_id, "models", str(tmp_path / "dl")))
    assert local == (tmp_path / "dl" / "models").resolve()
    assert (local / "model" / "weights.bin").read_bytes() == (
        tmp_path / "model" / "weights.bin"
    ).read_bytes()
    assert (local / "model" / "sub" / "conf.yaml").read_text() == "a: 1\n"
    assert runyard.artifacts.load_dict(f"runs:/{run_id}/meta/info.json") == {"k": [1, 2]}

    frame = runyard.search_runs([exp.experiment_id])
    assert list(frame["run_id"]) == [run_id]
    assert frame.loc[0, "params.alpha"] == "0.5"


@pytest.mark.slow
def test_fluent_errors_round_trip(server_uri: str) -> None:
    runyard.set_tracking_uri(server_uri)
    exp = runyard.set_experiment(unique("fluent-errors"))
    with pytest.raises(ResourceAlreadyExists):
        runyard.create_experiment(exp.name)
    with pytest.raises(ResourceDoesNotExist):
        runyard.get_run(uuid.uuid4().hex)
    with runyard.start_run():
        runyard.log_param("p", 1)
        runyard.flush()
        with pytest.raises(InvalidParameterValue):
            runyard.log_param("p", 2, synchronous=True)
