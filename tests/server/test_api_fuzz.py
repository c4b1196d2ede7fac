"""API fuzzing: schemathesis drives a live ``runyard server`` from its own ``/openapi.json``.

Every operation of the document gets schema-valid and schema-violating requests (a bounded
number, ``RUNYARD_FUZZ_EXAMPLES`` per operation), many with the ids of things that exist (an
experiment, a run with metrics, a registered model with a version and an alias, a logged model,
an artifact; made afresh for each operation, since the fuzzer deletes and renames them) so that
requests reach the store and not only the "not found" answers. Each answer must be:

* never a 500 INTERNAL_ERROR (a 5xx only where MLflow answers one by design: NOT_IMPLEMENTED,
  INVALID_STATE, TEMPORARILY_UNAVAILABLE);
* for every error, MLflow's error body ``{"error_code", "message"}`` with the HTTP status of its
  code.

The run repeats on a server with ``--app-name basic-auth`` (as the admin), which adds the auth
endpoints. The server logs of both runs must hold no traceback.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from runyard.errors import ERROR_CODE_TO_HTTP_STATUS
from runyard.server.app import ENDPOINTS
from runyard.server.auth.endpoints import ENDPOINTS as AUTH_ENDPOINTS
from runyard.server.openapi import openapi_document
from tests.live_server import start_server, stop_server
from tests.server.auth.conftest import ADMIN, start_auth_server, stop_auth_server

#: Examples per operation (each is one request); ~70 operations, ~95 with auth.
EXAMPLES = int(os.environ.get("RUNYARD_FUZZ_EXAMPLES", "10"))
#: 5xx answers MLflow gives by design, never for a bug.
DESIGNED_5XX = {"NOT_IMPLEMENTED", "FEATURE_DISABLED", "INVALID_STATE", "TEMPORARILY_UNAVAILABLE"}
API = "/api/2.0/mlflow"


def _operations(document: dict[str, Any]) -> list[str]:
    return sorted(
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    )


PLAIN_OPERATIONS = _operations(openapi_document(ENDPOINTS))
AUTH_OPERATIONS = _operations(openapi_document([*ENDPOINTS, *AUTH_ENDPOINTS]))


@dataclass
class Target:
    """A live server and its schema as schemathesis loaded it."""

    url: str
    log: Path
    schema: Any
    auth: tuple[str, str] | None


def _seed(url: str, auth: tuple[str, str] | None) -> dict[str, list[Any]]:
    """Create one of everything; return field name → values that name something real."""
    tag = uuid.uuid4().hex[:8]
    exp_name, model_name = f"fuzz-exp-{tag}", f"fuzz-model-{tag}"
    with httpx.Client(base_url=url, auth=auth, timeout=30) as client:

        def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.request(method, f"{API}{path}", json=body)
            assert response.status_code == 200, (path, response.text)
            return dict(response.json())

        exp = call("POST", "/experiments/create", {"name": exp_name})["experiment_id"]
        run = call("POST", "/runs/create", {"experiment_id": exp, "run_name": f"run-{tag}"})
        run_id = run["run"]["info"]["run_id"]
        metrics = [{"key": "loss", "value": 0.5, "timestamp": 1, "step": i} for i in range(3)]
        tags = [{"key": "team", "value": "ml"}]
        call("POST", "/runs/log-batch", {"run_id": run_id, "metrics": metrics, "tags": tags})
        call("POST", "/registered-models/create", {"name": model_name})
        version = {"name": model_name, "source": f"runs:/{run_id}/model", "run_id": run_id}
        call("POST", "/model-versions/create", version)
        alias = {"name": model_name, "alias": "champion", "version": "1"}
        call("POST", "/registered-models/alias", alias)
        model = call("POST", "/logged-models", {"experiment_id": exp, "name": f"lm-{tag}"})
        model_id = model["model"]["info"]["model_id"]
        upload = client.put(f"/api/2.0/mlflow-artifacts/artifacts/{exp}/fuzz.txt", content=b"x")
        assert upload.status_code == 200, upload.text
        known: dict[str, list[Any]] = {
            "experiment_id": [exp, "0"],
            "experiment_ids": [[exp], [exp, "0"]],
            "experiment_name": [exp_name],
            "run_id": [run_id],
            "run_ids": [[run_id]],
            "source_run_id": [run_id],
            "name": [model_name, exp_name],
            "version": ["1"],
            "alias": ["champion"],
            "model_id": [model_id],
            "key": ["loss", "team"],
            "metric_key": ["loss"],
            "path": [f"{exp}/fuzz.txt", str(exp)],
            "stage": ["Staging", "Production", "Archived", "None"],
        }
        if auth is not None:
            user = {"username": f"fuzz-user-{tag}", "password": "fuzz-pass-1"}
            created = client.post(f"{API}/users/create", json=user)
            assert created.status_code == 200, created.text
            known["username"] = [user["username"]]
            known["resource_id"] = [exp, model_name]
            known["resource_type"] = ["experiment", "registered_model"]
            known["permission"] = ["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]
        return known


def _target(url: str, log: Path, auth: tuple[str, str] | None) -> Target:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", auth=auth, timeout=30)
    return Target(url, log, schema, auth)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_server(tmp_path_factory.mktemp("fuzz"), kind="runyard")
    try:
        yield _target(server.url, server.root / "server.log", None)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_auth_server(tmp_path_factory.mktemp("fuzz-auth"))
    try:
        yield _target(server.url, server.root / "server.log", ADMIN)
    finally:
        stop_auth_server(server)


# --- One operation ------------------------------------------------------------------------------


def _substitute(container: Any, known: dict[str, list[Any]], data: st.DataObject) -> None:
    """Replace some generated values by ids of things that exist (in place)."""
    if not isinstance(container, dict):
        return
    for name, values in known.items():
        if data.draw(st.booleans(), label=f"use a real {name}"):
            container[name] = data.draw(st.sampled_from(values), label=name)


def _check_answer(case: Any, response: schemathesis.Response) -> None:
    """No internal error; every error in MLflow's shape with its code's status."""
    status = response.status_code
    text = response.content.decode(errors="replace")
    where = f"{case.method} {case.formatted_path} -> {status}: {text[:300]}"
    if status < 400:
        return
    media = (response.headers.get("content-type") or [""])[0]
    if status == 404 and media.startswith("text/plain"):
        # No route for the path at all: the router's bare 404, as MLflow's Flask gives for a
        # path it has no route for. That happens when a path parameter holds a '/' or a newline
        # (route patterns stop at either) or is '.' / '..' (the client normalises them away).
        values = [unquote(str(v)) for v in (case.path_parameters or {}).values()]
        assert any("/" in v or "\n" in v or v.strip(".") == "" for v in values), where
        return
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pytest.fail(f"error without a JSON body: {where}")
    assert isinstance(body, dict), where
    assert isinstance(body.get("error_code"), str), where
    assert isinstance(body.get("message"), str), where
    code = body["error_code"]
    assert ERROR_CODE_TO_HTTP_STATUS.get(code) == status, where
    if status >= 500:
        assert code in DESIGNED_5XX, where


def _fuzz(target: Target, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = target.schema[path][method]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))
    known = _seed(target.url, target.auth)
    # A query string carries strings (or lists of them); a path, one string.
    in_query = {k: [v if isinstance(v, list) else str(v) for v in vs] for k, vs in known.items()}
    in_path = {k: [str(v) for v in vs if not isinstance(v, list)] for k, vs in known.items()}
    session = requests.Session()
    if target.auth is not None:
        session.auth = target.auth

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: a failure prints the request as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, data=st.data())
    def check(case: Any, data: st.DataObject) -> None:
        _substitute(case.body, known, data)
        _substitute(case.query, in_query, data)
        params = case.path_parameters or {}
        for name in list(params):
            if in_path.get(name) and data.draw(st.booleans(), label=f"use a real {name}"):
                params[name] = data.draw(st.sampled_from(in_path[name]), label=name)
        response = case.call(base_url=target.url, session=session, timeout=30)
        _check_answer(case, response)

    try:
        check()
    finally:
        session.close()


def _fuzz_and_read_log(target: Target, label: str) -> None:
    """Fuzz one operation; the server's log of that time must hold no traceback."""
    start = target.log.stat().st_size
    _fuzz(target, label)
    with open(target.log, "rb") as log:
        log.seek(start)
        written = log.read().decode(errors="replace")
    assert "Traceback" not in written, written[-5000:]


@pytest.mark.slow
@pytest.mark.parametrize("label", PLAIN_OPERATIONS)
def test_fuzz_operation(plain: Target, label: str) -> None:
    _fuzz_and_read_log(plain, label)


@pytest.mark.slow
@pytest.mark.parametrize("label", AUTH_OPERATIONS)
def test_fuzz_operation_with_auth(with_auth: Target, label: str) -> None:
    _fuzz_and_read_log(with_auth, label)


# --- The document itself --------------------------------------------------------------------------


def test_document_is_usable_by_schemathesis() -> None:
    """Every operation loads: path parameters declared, schemas valid (no server needed)."""
    document = openapi_document([*ENDPOINTS, *AUTH_ENDPOINTS])
    schema = schemathesis.openapi.from_dict(document)
    loaded = [result.ok() for result in schema.get_all_operations()]
    assert len(loaded) == len(AUTH_OPERATIONS)
    templated = schema["/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}"]["DELETE"]
    names = {p.name for p in templated.path_parameters}
    assert names == {"model_id", "tag_key"}
    run_create = document["paths"][f"{API}/runs/create"]["post"]
    start_time = run_create["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "start_time"
    ]
    assert (start_time["minimum"], start_time["maximum"]) == (-(2**63), 2**63 - 1)
