"""Runs and what is logged to them: metrics, params and tags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from runyard.entities.dataset import RunInputs

__all__ = ["Metric", "Param", "Run", "RunData", "RunInfo", "RunTag"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series: ``value`` at ``step``, logged at ``timestamp`` (ms)."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    run_id: str | None = None


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
    """A run: ``info``, ``data`` and ``inputs`` (dataset inputs)."""

    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
