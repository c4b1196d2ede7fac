"""Logged models through ``RestStore`` against a real tracking server process (the session's
``tracking_server``): the official client's requests, end to end over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from runyard.entities import (
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    Metric,
    ViewType,
)
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.http_session import HttpConfig
from runyard.store.rest import RestStore
from tests.live_server import TrackingServer

pytestmark = pytest.mark.slow


@pytest.fixture
def rest(tracking_server: TrackingServer) -> Iterator[RestStore]:
    config = HttpConfig(max_retries=1, backoff_factor=0.0, backoff_jitter=0.0)
    store = RestStore(tracking_server.url, config)
    yield store
    store.close()


@pytest.fixture
def exp_id(rest: RestStore) -> str:
    return rest.create_experiment(f"models-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def run_id(rest: RestStore, exp_id: str) -> str:
    return rest.create_run(exp_id, "alice", 1000, [], "producer").info.run_id


def test_lifecycle(rest: RestStore, exp_id: str, run_id: str) -> None:
    params = [LoggedModelParameter(f"p{i:03d}", str(i)) for i in range(150)]
    model = rest.create_logged_model(
        exp_id, "clf", run_id, [LoggedModelTag("team", "a")], params, "sklearn"
    )
    assert model.model_id.startswith("m-")
    assert (model.name, model.source_run_id, model.model_type) == ("clf", run_id, "sklearn")
    assert model.status is LoggedModelStatus.PENDING
    assert model.artifact_location.endswith(f"/models/{model.model_id}/artifacts")
    # 100 params travel with the create, the other 50 in a second request.
    assert model.params == {p.key: p.value for p in params}
    assert rest.get_logged_model(model.model_id) == model

    ready = rest.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status is LoggedModelStatus.READY
    assert ready.last_updated_timestamp >= model.last_updated_timestamp
    rest.set_logged_model_tags(
        model.model_id, [LoggedModelTag("team", "b"), LoggedModelTag("x", "y")]
    )
    rest.delete_logged_model_tag(model.model_id, "x")
    assert rest.get_logged_model(model.model_id).tags == {"team": "b"}
    with pytest.raises(ResourceDoesNotExist):
        rest.delete_logged_model_tag(model.model_id, "x")
    rest.log_logged_model_params(model.model_id, [LoggedModelParameter("extra", "1")])
    assert rest.get_logged_model(model.model_id).params["extra"] == "1"

    rest.delete_logged_model(model.model_id)
    with pytest.raises(ResourceDoesNotExist, match=f"Logged model with ID '{model.model_id}'"):
        rest.get_logged_model(model.model_id)
    assert rest.get_logged_model(model.model_id, allow_deleted=True).name == "clf"


def test_search_filters_orders_and_pages(rest: RestStore, exp_id: str, run_id: str) -> None:
    made = {}
    for name, acc in (("a", 0.5), ("b", 0.9), ("c", 0.7), ("d", 0.6), ("e", 0.8)):
        model = rest.create_logged_model(exp_id, name, run_id)
        rest.log_batch(run_id, [Metric("acc", acc, 1, 0, None, model.model_id)])
        made[name] = model.model_id
    order = [{"field_name": "metrics.acc", "ascending": False}]
    seen: list[str] = []
    token = None
    while True:
        page = rest.search_logged_models(
            [exp_id], "metrics.acc > 0.55", max_results=2, order_by=order, page_token=token
        )
        assert len(page) <= 2
        seen.extend(m.name for m in page)
        token = page.token
        if token is None:
            break
    assert seen == ["b", "e", "c", "d"]
    (found,) = rest.search_logged_models([exp_id], filter_string="name = 'c'")
    assert found.model_id == made["c"]
    assert [(m.key, m.value, m.run_id) for m in found.metrics or []] == [("acc", 0.7, run_id)]
    newest = rest.search_logged_models([exp_id])
    assert [m.name for m in newest] == ["e", "d", "c", "b", "a"]
    assert newest.token is None
    with pytest.raises(InvalidParameterValue):
        rest.search_logged_models([exp_id], filter_string="metrics.acc LIKE '0.5'")


def test_run_outputs_and_inputs(rest: RestStore, exp_id: str, run_id: str) -> None:
    produced = rest.create_logged_model(exp_id, "produced", run_id).model_id
    used = rest.create_logged_model(exp_id, "used").model_id
    rest.log_outputs(run_id, [LoggedModelOutput(produced, 4)])
    rest.log_inputs(run_id, models=[LoggedModelInput(used)])
    run = rest.get_run(run_id)
    assert run.outputs.model_outputs == [LoggedModelOutput(produced, 4)]
    assert run.inputs.model_inputs == [LoggedModelInput(used)]
    (searched,) = rest.search_runs([exp_id], run_view_type=ViewType.ALL)
    assert searched.outputs == run.outputs


def test_metrics_logged_with_a_model(rest: RestStore, exp_id: str, run_id: str) -> None:
    model_id = rest.create_logged_model(exp_id, "m", run_id).model_id
    rest.log_batch(
        run_id,
        [
            Metric("f1", 0.25, 10, 1, None, model_id, "val", "d1"),
            Metric("f1", 0.5, 11, 2, None, model_id),
            Metric("run-only", 1.0, 10, 0),
        ],
    )
    points = rest.get_logged_model(model_id).metrics or []
    assert [(m.key, m.step, m.dataset_name, m.dataset_digest) for m in points] == [
        ("f1", 1, "val", "d1"),
        ("f1", 2, None, None),
    ]
    assert [m.value for m in points] == [0.25, 0.5]
    assert all(m.model_id == model_id and m.run_id == run_id for m in points)
    assert set(rest.get_run(run_id).data.metrics) == {"f1", "run-only"}
