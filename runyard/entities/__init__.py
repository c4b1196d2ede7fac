"""Frozen entity dataclasses with MLflow's field names; no I/O, no wire format."""

from runyard.entities.dataset import Dataset, DatasetInput, InputTag, RunInputs
from runyard.entities.enums import LifecycleStage, RunStatus, SourceType, ViewType
from runyard.entities.experiment import Experiment, ExperimentTag
from runyard.entities.file_info import FileInfo
from runyard.entities.paged_list import PagedList
from runyard.entities.run import Metric, Param, Run, RunData, RunInfo, RunTag

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "InputTag",
    "LifecycleStage",
    "Metric",
    "PagedList",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]
