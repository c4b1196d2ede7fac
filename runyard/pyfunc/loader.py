"""Loading any model with a ``python_function`` flavor: ``load_model`` → ``PyFuncModel``.

MLmodel files name MLflow's loader modules (``mlflow.sklearn``, ``mlflow.pyfunc.model``, ...);
``mlflow.X`` is imported as ``runyard.X``, any other module as written. The module's
``_load_pyfunc(data_path[, model_config])`` returns the object whose ``predict`` is called after
the signature has been enforced.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

import yaml

from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.models.download import download_model
from runyard.models.enforce import enforce_params, validate_prediction_input
from runyard.models.env import REQUIREMENTS_FILE_NAME
from runyard.models.model import Model

__all__ = ["PyFuncModel", "load_model", "resolve_loader_module"]

_logger = logging.getLogger(__name__)

FLAVOR_NAME = "python_function"
MAIN = "loader_module"
CODE = "code"
DATA = "data"
MODEL_CONFIG = "config"
PY_VERSION = "python_version"

#: Import names whose pip package is called differently.
_PIP_PACKAGE = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "skops": "skops",
    "PIL": "pillow",
    "cv2": "opencv-python",
}


def resolve_loader_module(name: str) -> str:
    """The module runyard imports for a loader module named in an MLmodel file."""
    if name == "mlflow" or name.startswith("mlflow."):
        return "runyard" + name[len("mlflow") :]
    return name


class PyFuncModel:
    """A loaded model: ``predict`` enforces the signature, then calls the flavor's model."""

    def __init__(
        self,
        model_meta: Model,
        model_impl: Any,
        predict_fn: str = "predict",
        predict_stream_fn: str | None = None,
        model_id: str | None = None,
    ) -> None:
        if not hasattr(model_impl, predict_fn):
            raise RunyardError(f"Model implementation is missing required {predict_fn} method.")
        if not model_meta:
            raise RunyardError("Model is missing metadata.")
        self._model_meta = model_meta
        self._model_impl = model_impl
        self._predict_fn = getattr(model_impl, predict_fn)
        self._predict_stream_fn = (
            getattr(model_impl, predict_stream_fn) if predict_stream_fn else None
        )
        self._model_id = model_id
        self._input_example: Any = None

    @property
    def model_id(self) -> str | None:
        """The LoggedModel id, for models logged with MLflow 3 semantics."""
        return self._model_id

    @property
    def input_example(self) -> Any:
        """The input example saved with the model, if any."""
        return self._input_example

    @input_example.setter
    def input_example(self, value: Any) -> None:
        self._input_example = value

    @property
    def metadata(self) -> Model:
        """The model's MLmodel metadata."""
        return self._model_meta

    @property
    def model_config(self) -> dict[str, Any]:
        """The ``python_function`` section's model configuration."""
        config: dict[str, Any] = self._model_meta.flavors[FLAVOR_NAME].get(MODEL_CONFIG) or {}
        return config

    @property
    def loader_module(self) -> str | None:
        """The loader module named in the MLmodel file."""
        conf = self._model_meta.flavors.get(FLAVOR_NAME)
        return None if conf is None else conf.get(MAIN)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict on ``data`` after enforcing the input schema and the params schema.

        ``data`` may be a DataFrame, Series, ndarray, dict, list, scalar or string; column
        schemas turn it into a DataFrame. Violations raise INVALID_PARAMETER_VALUE.
        """
        meta = self._model_meta
        if meta._is_signature_from_type_hint():
            params = enforce_params(params, meta.get_params_schema())
        else:
            data, params = validate_prediction_input(
                data, params, meta.get_input_schema(), meta.get_params_schema()
            )
        accepted = inspect.signature(self._predict_fn).parameters.get("params")
        if accepted is not None and accepted.kind != inspect.Parameter.VAR_KEYWORD:
            return self._predict_fn(data, params=params)
        if params:
            _logger.warning(
                "The underlying model does not support passing additional parameters to the "
                "predict function. `params` %s will be ignored.",
                params,
            )
        return self._predict_fn(data)

    def predict_stream(self, data: Any, params: dict[str, Any] | None = None) -> Iterator[Any]:
        """Streamed predictions, for models saved with ``streamable: true``."""
        if self._predict_stream_fn is None:
            raise RunyardError("This model does not support predict_stream method.")
        meta = self._model_meta
        data, params = validate_prediction_input(
            data, params, meta.get_input_schema(), meta.get_params_schema()
        )
        if "params" in inspect.signature(self._predict_stream_fn).parameters:
            result: Iterator[Any] = self._predict_stream_fn(data, params=params)
        else:
            result = self._predict_stream_fn(data)
        return result

    def unwrap_python_model(self) -> Any:
        """The user's PythonModel instance behind a custom model."""
        python_model = getattr(self._model_impl, "python_model", None)
        if python_model is None:
            raise RunyardError("Unable to retrieve base model object from pyfunc.")
        return python_model

    def get_raw_model(self) -> Any:
        """The flavor's underlying model object, when the flavor exposes it."""
        if hasattr(self._model_impl, "get_raw_model"):
            return self._model_impl.get_raw_model()
        raise NotImplementedError("`get_raw_model` is not implemented by the underlying model")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyFuncModel) and self._model_meta == other._model_meta

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        info: dict[str, Any] = {}
        if self._model_meta.run_id is not None:
            info["run_id"] = self._model_meta.run_id
        if self._model_meta.artifact_path is not None:
            info["artifact_path"] = self._model_meta.artifact_path
        info["flavor"] = self.loader_module
        text: str = yaml.safe_dump({"mlflow.pyfunc.loaded_model": info}, default_flow_style=False)
        return text


def _read_model_config(model_config: Any) -> dict[str, Any] | None:
    if model_config is None or isinstance(model_config, dict):
        return model_config
    path = os.path.abspath(os.fspath(model_config))
    if not os.path.exists(path):
        raise InvalidParameterValue(
            "An invalid `model_config` file was passed. The provided `model_config` "
            f"file '{path}'is not a valid file path."
        )
    with open(path) as handle:
        try:
            loaded = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise InvalidParameterValue(
                f"The provided `model_config` file '{path}' is not a valid YAML file: {exc}"
            ) from exc
    if not isinstance(loaded, dict):
        raise InvalidParameterValue(f"The `model_config` file '{path}' must hold a mapping")
    return loaded


def _merged_config(saved: dict[str, Any] | None, override: dict[str, Any] | None) -> Any:
    """MLflow's rule: an override may only change keys the saved configuration has."""
    if not override:
        return saved
    if not saved:
        _logger.warning(
            "Argument(s) %s were ignored since the model's ``pyfunc`` flavor doesn't accept model "
            "configuration. Use ``model_config`` when logging the model to allow it.",
            ", ".join(override),
        )
        return None
    ignored = sorted(set(override) - set(saved))
    if ignored:
        _logger.warning(
            "Argument(s) %s were ignored since they are not valid keys in the corresponding "
            "section of the ``pyfunc`` flavor.",
            ", ".join(ignored),
        )
    return {**saved, **{k: v for k, v in override.items() if k in saved}}


def _missing_dependency(loader: str, exc: ImportError) -> RunyardError:
    missing = (exc.name or "").split(".")[0]
    if not missing or missing == loader.split(".")[0]:
        return RunyardError(
            f"Cannot import the model's loader module '{loader}': {exc}",
            error_code="RESOURCE_DOES_NOT_EXIST",
        )
    package = _PIP_PACKAGE.get(missing, missing)
    return RunyardError(
        f"Loading this model needs the '{package}' package, which is not installed ({exc}). "
        f"Install it with: pip install {package}",
        error_code="RESOURCE_DOES_NOT_EXIST",
    )


def _import_and_load(conf: dict[str, Any], data_path: str, config: Any) -> Any:
    loader = resolve_loader_module(str(conf[MAIN]))
    try:
        module = importlib.import_module(loader)
        if config:
            return module._load_pyfunc(data_path, config)
        return module._load_pyfunc(data_path)
    except ImportError as exc:
        raise _missing_dependency(loader, exc) from exc


def _warn_mismatches(model_dir: str, conf: dict[str, Any]) -> None:
    saved_python = conf.get(PY_VERSION)
    if saved_python and saved_python.split(".")[:2] != platform.python_version().split(".")[:2]:
        _logger.warning(
            "The version of Python that the model was saved in, `Python %s`, differs from the "
            "version of Python that is currently running, `Python %s`, and may be incompatible",
            saved_python,
            platform.python_version(),
        )
    requirements = os.path.join(model_dir, REQUIREMENTS_FILE_NAME)
    if not os.path.exists(requirements):
        return
    with open(requirements) as handle:
        lines = [line.strip() for line in handle if "==" in line and not line.startswith("-")]
    for line in lines:
        name, _, wanted = line.partition("==")
        if name.lower() in ("runyard", "mlflow"):
            continue
        try:
            installed: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        # A local version label (torch 2.13.0+cpu) is a build of the same release.
        if installed is None or installed.split("+")[0] != wanted.split("+")[0]:
            _logger.warning(
                "Detected one or more mismatches between the model's dependencies and the "
                "current Python environment: %s (current: %s, required: %s)",
                name,
                installed or "uninstalled",
                line,
            )


def load_model(
    model_uri: str | os.PathLike[str],
    suppress_warnings: bool = False,
    dst_path: str | None = None,
    model_config: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> PyFuncModel:
    """Load a model with a ``python_function`` flavor from a local path or model URI."""
    local = download_model(os.fspath(model_uri), dst_path)
    meta = Model.load(local)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ResourceDoesNotExist(
            f'Model does not have the "{FLAVOR_NAME}" flavor; '
            f"its flavors are: {', '.join(sorted(meta.flavors)) or 'none'}"
        )
    if not suppress_warnings:
        _warn_mismatches(local, conf)
    if conf.get(CODE):
        code_dir = os.path.join(local, conf[CODE])
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    data_path = os.path.join(local, conf[DATA]) if conf.get(DATA) else local
    config = _merged_config(conf.get(MODEL_CONFIG), _read_model_config(model_config))
    impl = _import_and_load(conf, data_path, config)
    streamable = bool(conf.get("streamable", False))
    model = PyFuncModel(
        meta,
        impl,
        predict_fn=conf.get("predict_fn", "predict"),
        predict_stream_fn=conf.get("predict_stream_fn", "predict_stream") if streamable else None,
        model_id=meta.model_id,
    )
    try:
        model.input_example = meta.load_input_example(local)
    except (OSError, RunyardError, ValueError, KeyError) as exc:
        _logger.debug("Failed to load input example from model metadata: %s", exc)
    return model
