"""Custom Python models: ``PythonModel``, its ``PythonModelContext``, and how they are loaded.

A saved custom model is ``python_model.pkl`` (cloudpickle) plus an ``artifacts/`` directory; its
``python_function`` section names ``loader_module: mlflow.pyfunc.model`` so MLflow loads it too,
and runyard maps that module to this one. Pickles written by MLflow refer to
``mlflow.pyfunc.model.PythonModel``; when MLflow is not installed those references resolve to
runyard's classes of the same name.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pickle
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import pandas as pd

from runyard.errors import RunyardError
from runyard.models.model import Model
from runyard.models.signature import (
    ModelSignature,
    _extract_type_hints,
    _is_context_in_predict_signature,
    _TypeHints,
)

__all__ = [
    "CONFIG_KEY_ARTIFACTS",
    "CONFIG_KEY_CLOUDPICKLE_VERSION",
    "CONFIG_KEY_PYTHON_MODEL",
    "PythonModel",
    "PythonModelContext",
    "load_python_model",
]

_logger = logging.getLogger(__name__)

CONFIG_KEY_ARTIFACTS = "artifacts"
CONFIG_KEY_ARTIFACT_RELATIVE_PATH = "path"
CONFIG_KEY_ARTIFACT_URI = "uri"
CONFIG_KEY_PYTHON_MODEL = "python_model"
CONFIG_KEY_CLOUDPICKLE_VERSION = "cloudpickle_version"
CONFIG_KEY_COMPRESSION = "compression"
PYFUNC_FLAVOR = "python_function"


class PythonModelContext:
    """What a PythonModel sees at load and predict time: artifact paths and model config."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None) -> None:
        self._artifacts = artifacts
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name → absolute local path of the copy inside the model directory."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The model configuration saved with the model (updated by ``load_model``)."""
        return self._model_config


class PythonModel:
    """Base class of custom models: override ``predict`` (and optionally ``load_context``).

    ``predict`` may be ``predict(self, context, model_input, params=None)`` or, without the
    context, ``predict(self, model_input, params=None)``.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, with the artifacts and model config."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Compute predictions for ``model_input`` (subclasses must override this)."""
        raise NotImplementedError("PythonModel subclasses must implement predict()")

    def predict_stream(
        self, context: Any, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """Yield predictions incrementally (optional)."""
        raise NotImplementedError()

    @property
    def predict_type_hints(self) -> _TypeHints:
        """The type hints of ``predict``'s input and output (MLflow reads this when loading)."""
        cached = self.__dict__.get("_predict_type_hints")
        if isinstance(cached, _TypeHints):
            return cached
        params = inspect.signature(self.predict).parameters
        index = 1 if _is_context_in_predict_signature(params) else 0
        hints = _extract_type_hints(self.predict, input_arg_index=index)
        self.__dict__["_predict_type_hints"] = hints
        return hints


class _FunctionPythonModel(PythonModel):
    """Wraps a plain function passed as ``python_model``."""

    def __init__(self, func: Callable[[Any], Any], signature: ModelSignature | None = None):
        self.func = func
        self.signature = signature

    @property
    def predict_type_hints(self) -> _TypeHints:
        """The wrapped function's type hints."""
        return _extract_type_hints(self.func, input_arg_index=0)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        """Call the function on the input (a function takes no params)."""
        return self.func(model_input)


def _call_with_optional_context(
    method: Callable[..., Any], context: PythonModelContext, model_input: Any, params: Any
) -> Any:
    parameters = inspect.signature(method).parameters
    kwargs: dict[str, Any] = {}
    if "params" in parameters:
        kwargs["params"] = params
    elif params:
        _logger.warning(
            "The underlying model does not support passing additional parameters to the predict "
            "function. `params` %s will be ignored.",
            params,
        )
    if _is_context_in_predict_signature(parameters):
        return method(context, model_input, **kwargs)
    return method(model_input, **kwargs)


def _first_string_column(frame: pd.DataFrame) -> Any:
    if frame.empty:
        return None
    return next((col for col, val in frame.iloc[0].items() if isinstance(val, str)), None)


class _PythonModelPyfuncWrapper:
    """The object ``_load_pyfunc`` returns for a PythonModel: ``predict(model_input, params)``."""

    def __init__(
        self,
        python_model: PythonModel,
        context: PythonModelContext,
        signature: ModelSignature | None,
    ) -> None:
        self.python_model = python_model
        self.context = context
        self.signature = signature

    def _convert_input(self, model_input: Any) -> Any:
        hints = getattr(self.python_model, "predict_type_hints", _TypeHints())
        # A `list[str]` predict gets the first string column, as MLflow does.
        if isinstance(model_input, pd.DataFrame) and hints.input in (list[str],):
            column = _first_string_column(model_input)
            if column is None:
                raise RunyardError(
                    "Expected model input to contain at least one string column",
                    error_code="INVALID_PARAMETER_VALUE",
                )
            return model_input[column].tolist()
        return model_input

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Run the user's ``predict`` with or without the context, as it is declared."""
        return _call_with_optional_context(
            self.python_model.predict, self.context, self._convert_input(model_input), params
        )

    def predict_stream(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Run the user's ``predict_stream``."""
        return _call_with_optional_context(
            self.python_model.predict_stream, self.context, model_input, params
        )


def _subimport(name: str) -> Any:
    """cloudpickle's module re-import, with ``mlflow.*`` falling back to ``runyard.*``."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        if name != "mlflow" and not name.startswith("mlflow."):
            raise
        return importlib.import_module("runyard" + name[len("mlflow") :])


class _CompatUnpickler(pickle.Unpickler):
    """Unpickler that resolves MLflow's classes to runyard's when MLflow is not installed."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("cloudpickle") and name == "subimport":
            return _subimport
        try:
            return super().find_class(module, name)
        except ModuleNotFoundError:
            if module != "mlflow" and not module.startswith("mlflow."):
                raise
        alias = "runyard" + module[len("mlflow") :]
        try:
            return super().find_class(alias, name)
        except (ImportError, AttributeError) as exc:
            raise RunyardError(
                f"This model's pickle refers to {module}.{name}, which runyard does not provide "
                f"({exc}); load it with MLflow installed"
            ) from exc


def _unpickle(path: str) -> Any:
    try:
        import cloudpickle  # noqa: F401 - pickles reference cloudpickle's reconstructors
    except ImportError as exc:
        raise RunyardError(
            "Loading a custom Python model needs the 'cloudpickle' package: pip install cloudpickle"
        ) from exc
    if not os.path.exists(path):
        raise RunyardError(
            f"The model's python_model file is missing: '{path}'",
            error_code="RESOURCE_DOES_NOT_EXIST",
        )
    with open(path, "rb") as handle:
        try:
            return _CompatUnpickler(handle).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise RunyardError(
                f"'{path}' is not a readable cloudpickle file: {exc}",
                error_code="INVALID_PARAMETER_VALUE",
            ) from exc


def load_python_model(
    model_path: str, model_config: dict[str, Any] | None = None
) -> tuple[PythonModelContext, Any, ModelSignature | None]:
    """Unpickle a saved PythonModel and call its ``load_context``."""
    model = Model.load(model_path)
    conf = model.flavors.get(PYFUNC_FLAVOR) or {}
    if conf.get("model_code_path"):
        raise RunyardError(
            "This model was saved as code (models-from-code); runyard cannot load it yet",
            error_code="NOT_IMPLEMENTED",
        )
    subpath = conf.get(CONFIG_KEY_PYTHON_MODEL)
    if subpath is None:
        raise RunyardError("Python model path was not specified in the model configuration")
    python_model = _unpickle(os.path.join(model_path, subpath))
    if callable(python_model) and not hasattr(python_model, "predict"):
        python_model = _FunctionPythonModel(python_model, model.signature)
    artifacts = {
        name: os.path.join(model_path, info[CONFIG_KEY_ARTIFACT_RELATIVE_PATH])
        for name, info in (conf.get(CONFIG_KEY_ARTIFACTS) or {}).items()
    }
    context = PythonModelContext(artifacts, deepcopy(model_config))
    python_model.load_context(context=context)
    return context, python_model, model.signature


def _load_pyfunc(
    model_path: str, model_config: dict[str, Any] | None = None
) -> _PythonModelPyfuncWrapper:
    """The loader-module entry point: the wrapped custom model in ``model_path``."""
    context, python_model, signature = load_python_model(model_path, model_config)
    return _PythonModelPyfuncWrapper(python_model, context, signature)
