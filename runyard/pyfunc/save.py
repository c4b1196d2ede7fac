"""Saving custom Python models: ``save_model`` and ``log_model`` of ``runyard.pyfunc``.

Two styles, as in MLflow: a ``python_model`` (a PythonModel instance or a function), pickled to
``python_model.pkl`` with its ``artifacts`` copied into ``artifacts/``; or a ``loader_module``
with a ``data_path`` copied into ``data/``.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.env import conda_env_dict, get_pinned_requirement
from runyard.models.model import Model, ModelInfo
from runyard.models.save import finish_model_dir, new_model_dir
from runyard.models.signature import ModelSignature
from runyard.pyfunc.model import (
    CONFIG_KEY_ARTIFACTS,
    PythonModel,
    PythonModelContext,
    _FunctionPythonModel,
    _PythonModelPyfuncWrapper,
)

__all__ = [
    "add_to_model",
    "get_default_conda_env",
    "get_default_pip_requirements",
    "log_model",
    "save_model",
]

_logger = logging.getLogger(__name__)

FLAVOR_NAME = "python_function"
PYTHON_MODEL_LOADER = "mlflow.pyfunc.model"
PYTHON_MODEL_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
DATA_DIR = "data"


def add_to_model(
    model: Model,
    loader_module: str,
    data: str | None = None,
    code: str | None = None,
    conda_env: str | None = "conda.yaml",
    python_env: str | None = "python_env.yaml",
    model_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Model:
    """Add the ``python_function`` flavor: loader module, data, code, env files, config, extras.

    Paths are relative to the model directory; ``kwargs`` go into the section unchanged.
    """
    params = dict(kwargs)
    params["loader_module"] = loader_module
    params["python_version"] = platform.python_version()
    if code:
        params["code"] = code
    if data:
        params["data"] = data
    if conda_env or python_env:
        params["env"] = {}
        if conda_env:
            params["env"]["conda"] = conda_env
        if python_env:
            params["env"]["virtualenv"] = python_env
    if model_config:
        params["config"] = model_config
    return model.add_flavor(FLAVOR_NAME, **params)


def get_default_pip_requirements() -> list[str]:
    """The requirements a custom Python model needs at least (cloudpickle, pinned)."""
    return [get_pinned_requirement("cloudpickle")]


def get_default_conda_env() -> dict[str, Any]:
    """The default conda environment of a custom Python model."""
    return conda_env_dict(get_default_pip_requirements())


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:
        raise RunyardError(
            "Saving a custom Python model needs the 'cloudpickle' package: pip install cloudpickle"
        ) from exc
    return cloudpickle


def _fetch_artifact(uri: str, staging: Path) -> Path:
    parsed = urlparse(uri)
    local = parsed.path if parsed.scheme == "file" else (uri if len(parsed.scheme) <= 1 else None)
    if local is not None:
        if not os.path.exists(local):
            raise InvalidParameterValue(f"Artifact '{uri}' does not exist")
        return Path(local)
    from runyard.artifacts import download_artifacts  # the tracking side, for remote URIs

    return Path(download_artifacts(artifact_uri=uri, dst_path=str(staging)))


def _copy_artifacts(artifacts: dict[str, str], path: Path) -> dict[str, dict[str, str]]:
    config: dict[str, dict[str, str]] = {}
    target_root = path / ARTIFACTS_DIR
    target_root.mkdir()
    with tempfile.TemporaryDirectory() as staging:
        for name, uri in artifacts.items():
            source = _fetch_artifact(uri, Path(staging) / name)
            target = target_root / source.name
            if target.exists():
                # Two artifacts with the same file name: keep the later one under its own name.
                target = target_root / name / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
            config[name] = {"path": target.relative_to(path).as_posix(), "uri": uri}
    return config


def _save_python_model(
    path: Path,
    model: Model,
    python_model: Any,
    artifacts: dict[str, str] | None,
    model_config: dict[str, Any] | None,
    streamable: bool | None,
) -> PythonModel:
    if callable(python_model) and not isinstance(python_model, PythonModel):
        python_model = _FunctionPythonModel(python_model)
    if not isinstance(python_model, PythonModel):
        raise InvalidParameterValue(
            "`python_model` must be a PythonModel instance, callable object, or path to a "
            f"script that uses set_model() to set a PythonModel instance or callable object. "
            f"Got: {type(python_model)}"
        )
    cloudpickle = _cloudpickle()
    extras: dict[str, Any] = {}
    if artifacts:
        extras[CONFIG_KEY_ARTIFACTS] = _copy_artifacts(artifacts, path)
    with open(path / PYTHON_MODEL_FILE, "wb") as out:
        cloudpickle.dump(python_model, out)
    if streamable is None:
        streamable = type(python_model).predict_stream is not PythonModel.predict_stream
    add_to_model(
        model,
        loader_module=PYTHON_MODEL_LOADER,
        code=None,
        model_config=model_config,
        python_model=PYTHON_MODEL_FILE,
        cloudpickle_version=cloudpickle.__version__,
        streamable=streamable,
        **extras,
    )
    # MLflow writes `code: null` for custom models; finish_model_dir fills it in if needed.
    model.flavors[FLAVOR_NAME]["code"] = None
    return python_model


def _copy_data(data_path: str, path: Path) -> str:
    source = Path(data_path)
    if not source.exists():
        raise InvalidParameterValue(f"data_path '{data_path}' does not exist")
    target = path / DATA_DIR / source.resolve().name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target.relative_to(path).as_posix()


def _example_predictor(
    python_model: PythonModel,
    artifacts_conf: dict[str, Any],
    path: Path,
    model_config: dict[str, Any] | None,
) -> Any:
    artifacts = {name: str(path / info["path"]) for name, info in artifacts_conf.items()}
    context = PythonModelContext(artifacts, model_config)

    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        python_model.load_context(context)
        return _PythonModelPyfuncWrapper(python_model, context, None).predict(data, params)

    return predict


def save_model(
    path: str | os.PathLike[str],
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: list[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: dict[str, Any] | str | None = None,
    mlflow_model: Model | None = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    streamable: bool | None = None,
    **kwargs: Any,
) -> None:
    """Save a custom model: ``python_model`` (+ ``artifacts``) or ``loader_module`` (+ data).

    Without a signature, one is inferred from ``input_example`` by running the model on it.
    """
    if infer_code_paths:
        raise InvalidParameterValue("infer_code_paths is not supported; pass code_paths")
    if isinstance(python_model, (str, os.PathLike)):
        raise InvalidParameterValue(
            "Saving a model from code (python_model as a script path) is not supported by runyard"
        )
    if (loader_module is None) == (python_model is None):
        raise InvalidParameterValue(
            "Either `loader_module` or `python_model` must be specified. A `loader_module` "
            "should be a python module. A `python_model` should be a subclass of PythonModel"
        )
    if python_model is None and artifacts:
        raise InvalidParameterValue("`artifacts` can only be used together with `python_model`")
    target = new_model_dir(path)
    model = mlflow_model if mlflow_model is not None else Model()
    predict = None
    try:
        if python_model is not None:
            instance = _save_python_model(
                target, model, python_model, artifacts, model_config, streamable
            )
            conf = model.flavors[FLAVOR_NAME].get(CONFIG_KEY_ARTIFACTS) or {}
            predict = _example_predictor(instance, conf, target, model_config)
        else:
            assert loader_module is not None
            data = _copy_data(data_path, target) if data_path is not None else None
            add_to_model(
                model,
                loader_module=loader_module,
                data=data,
                model_config=model_config,
                streamable=bool(streamable),
                **kwargs,
            )
        finish_model_dir(
            target,
            model,
            signature=signature,
            input_example=input_example,
            default_pip_requirements=get_default_pip_requirements(),
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            conda_env=conda_env,
            metadata=metadata,
            code_paths=code_paths,
            predict_fn=predict,
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def log_model(
    artifact_path: str | None = None,
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: list[str] | None = None,
    infer_code_paths: bool = False,
    conda_env: dict[str, Any] | str | None = None,
    python_model: Any = None,
    artifacts: dict[str, str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    streamable: bool | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a custom model as a LoggedModel of the active run (see :func:`save_model`)."""
    from runyard.models.logging import log_model as _log_model  # the lead's tracking glue

    return _log_model(  # type: ignore[no-any-return]
        sys.modules["runyard.pyfunc"],
        name or artifact_path,
        registered_model_name=registered_model_name,
        await_registration_for=await_registration_for,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
        model_id=model_id,
        loader_module=loader_module,
        data_path=data_path,
        code_paths=code_paths,
        infer_code_paths=infer_code_paths,
        conda_env=conda_env,
        python_model=python_model,
        artifacts=artifacts,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        model_config=model_config,
        streamable=streamable,
        **kwargs,
    )
