"""Runs and what is logged to them: metrics, params and tags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runyard.entities.dataset import RunInputs
from runyard.entities.logged_model import RunOutputs

__all__ = [
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunTag",
    "metric_series",
    "new_metric",
    "new_point",
]


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series: ``value`` at ``step``, logged at ``timestamp`` (ms).

    MLflow 3 adds ``model_id`` (the logged model the point also belongs to) and the dataset
    the value was computed on (``dataset_name`` and ``dataset_digest``, both or neither).
    """

    key: str
    value: float
    timestamp: int
    step: int = 0
    run_id: str | None = None
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None

    if not TYPE_CHECKING:  # hidden from mypy, which would then accept any attribute name

        def __getattr__(self, name: str) -> None:
            # new_metric() leaves the three MLflow 3 slots unset (setting them would make the
            # bulk reads a third slower); an unset one reads as its default, None.
            if name in _OPTIONAL_FIELDS:
                return None
            raise AttributeError(f"'Metric' object has no attribute '{name}'")


_OPTIONAL_FIELDS = frozenset({"model_id", "dataset_name", "dataset_digest"})


_new = object.__new__
_set_key = vars(Metric)["key"].__set__
_set_value = vars(Metric)["value"].__set__
_set_timestamp = vars(Metric)["timestamp"].__set__
_set_step = vars(Metric)["step"].__set__
_set_run_id = vars(Metric)["run_id"].__set__
_set_model_id = vars(Metric)["model_id"].__set__


def new_metric(key: str, value: float, timestamp: int, step: int, run_id: str | None) -> Metric:
    """``Metric(key, value, timestamp, step, run_id)`` for trusted values, twice as fast.

    It fills the slots directly instead of going through the frozen ``__init__``'s per-field
    ``object.__setattr__``; reads build hundreds of thousands of metrics.
    """
    metric = _new(Metric)
    _set_key(metric, key)
    _set_value(metric, value)
    _set_timestamp(metric, timestamp)
    _set_step(metric, step)
    _set_run_id(metric, run_id)
    return metric


def new_point(key: str, value: float, timestamp: int, step: int) -> Metric:
    """``Metric(key, value, timestamp, step)`` for checked values on the write path.

    Like :func:`new_metric`, but ``model_id`` is set (to None): writers read it for every
    point, and an unset slot is read through ``__getattr__`` at ~20 times the cost.
    """
    metric = _new(Metric)
    _set_key(metric, key)
    _set_value(metric, value)
    _set_timestamp(metric, timestamp)
    _set_step(metric, step)
    _set_run_id(metric, None)
    _set_model_id(metric, None)
    return metric


def metric_series(
    key: str, run_id: str | None, points: Iterable[tuple[float, int, int]]
) -> list[Metric]:
    """Metrics for the ``(value, timestamp, step)`` points of one series, built in bulk."""
    return [new_metric(key, value, ts, step, run_id) for value, ts, step in points]


@dataclass(frozen=True, slots=True)
class Param:
    """An immutable run parameter (value up to 6,000 characters)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    """A mutable key/value tag on a run (value up to 8,000 characters)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Run metadata. ``status`` is the status name (``"RUNNING"``, ``"FINISHED"``, ...)."""

    run_id: str
    experiment_id: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    run_name: str = ""

    @property
    def run_uuid(self) -> str:
        """Deprecated MLflow alias of ``run_id``."""
        return self.run_id


@dataclass(frozen=True, slots=True)
class RunData:
    """What a run holds: the latest value per metric key, params and tags, as dicts."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metric_objs: tuple[Metric, ...] = ()

    @classmethod
    def from_lists(
        cls,
        metrics: Iterable[Metric] = (),
        params: Iterable[Param] = (),
        tags: Iterable[RunTag] = (),
    ) -> RunData:
        """Build from entity lists, as MLflow's ``RunData(metrics=[...], ...)`` does."""
        metric_objs = tuple(metrics)
        return cls(
            metrics={m.key: m.value for m in metric_objs},
            params={p.key: p.value for p in params},
            tags={t.key: t.value for t in tags},
            metric_objs=metric_objs,
        )

    @property
    def _metric_objs(self) -> list[Metric]:
        """MLflow's private name for the latest metric entities, used by some tools."""
        return list(self.metric_objs)


@dataclass(frozen=True, slots=True)
class Run:
    """A run: ``info``, ``data``, ``inputs`` (datasets and models used) and ``outputs``
    (logged models produced)."""

    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)
