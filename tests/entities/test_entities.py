"""Entities: MLflow field names, frozen, enum helpers."""

from __future__ import annotations

import dataclasses

import pytest

from runyard.entities import (
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from runyard.errors import InvalidParameterValue


def _info() -> RunInfo:
    return RunInfo("r1", "0", "u", "RUNNING", 1, None, "active", "/a/r1/artifacts", "name")


def test_entities_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Metric("m", 1.0, 0, 0).value = 2.0  # type: ignore[misc]


def test_mlflow_positional_order() -> None:
    m = Metric("loss", 0.5, 123, 7)
    assert (m.key, m.value, m.timestamp, m.step) == ("loss", 0.5, 123, 7)
    assert _info().run_uuid == "r1"


def test_run_data_from_lists() -> None:
    data = RunData.from_lists([Metric("m", 1.0, 0)], [Param("p", "1")], [RunTag("t", "x")])
    assert (data.metrics, data.params, data.tags) == ({"m": 1.0}, {"p": "1"}, {"t": "x"})
    assert data._metric_objs == [Metric("m", 1.0, 0)]
    run = Run(_info(), data)
    assert run.info.run_id == "r1"
    assert run.inputs.dataset_inputs == []


def test_enums() -> None:
    assert RunStatus.from_string("finished") == RunStatus.FINISHED == 3
    assert RunStatus.to_string(4) == "FAILED"
    assert RunStatus.is_terminated("KILLED")
    assert not RunStatus.is_terminated(RunStatus.RUNNING)
    assert RunStatus.all_status() == [1, 2, 3, 4, 5]
    assert ViewType.from_string("active_only") == ViewType.ACTIVE_ONLY
    assert ViewType.from_string("ALL") == 3
    assert LifecycleStage.view_type_to_stages(ViewType.DELETED_ONLY) == ["deleted"]
    assert LifecycleStage.is_valid("active")
    assert not LifecycleStage.is_valid("gone")
    with pytest.raises(InvalidParameterValue, match="Invalid RunStatus 'DONE'"):
        RunStatus.from_string("DONE")
    with pytest.raises(InvalidParameterValue):
        RunStatus.to_string(42)


def test_metric_series_equals_plain_construction() -> None:
    from runyard.entities.run import metric_series

    points = [(0.5, 10, 0), (float("inf"), 11, 1)]
    built = metric_series("loss", "r1", points)
    assert built == [Metric("loss", v, ts, st, "r1") for v, ts, st in points]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].value = 1.0  # type: ignore[misc]


def test_logged_model_status_refuses_digits_int_cannot_read() -> None:
    """Found by the grammar properties: "²" passed str.isdigit() and int() raised ValueError
    (a 500 from a logged-model search filter)."""
    from runyard.entities import LoggedModelStatus

    assert LoggedModelStatus.parse("2") is LoggedModelStatus.READY
    for text in ("²", "١"):
        with pytest.raises(InvalidParameterValue, match="Invalid logged model status"):
            LoggedModelStatus.parse(text)
