"""Frozen entity dataclasses with MLflow's field names; no I/O, no wire format."""

from runyard.entities.dataset import Dataset, DatasetInput, InputTag, RunInputs
from runyard.entities.enums import LifecycleStage, RunStatus, SourceType, ViewType
from runyard.entities.experiment import Experiment, ExperimentTag
from runyard.entities.file_info import FileInfo
from runyard.entities.logged_model import (
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelRegistration,
    LoggedModelStatus,
    LoggedModelTag,
    RunOutputs,
)
from runyard.entities.model_registry import (
    ModelVersion,
    ModelVersionStatus,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    RegistryEvent,
)
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
    "LoggedModel",
    "LoggedModelInput",
    "LoggedModelOutput",
    "LoggedModelParameter",
    "LoggedModelRegistration",
    "LoggedModelStatus",
    "LoggedModelTag",
    "Metric",
    "ModelVersion",
    "ModelVersionStatus",
    "ModelVersionTag",
    "PagedList",
    "Param",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegisteredModelTag",
    "RegistryEvent",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunOutputs",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]
