"""Datasets logged as run inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from runyard.entities.logged_model import LoggedModelInput

__all__ = ["Dataset", "DatasetInput", "InputTag", "RunInputs"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset's identity and description; ``source``, ``schema``, ``profile`` are JSON text."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class InputTag:
    """A tag on a dataset input, e.g. ``mlflow.data.context = training``."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset used by a run, with its input tags."""

    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunInputs:
    """Inputs of a run: datasets and logged models it used."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[LoggedModelInput] = field(default_factory=list)
