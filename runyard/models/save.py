"""What every flavor's ``save_model`` shares: the target directory and everything after the model.

A flavor calls :func:`new_model_dir`, writes its own files, adds its flavor sections to a
:class:`~runyard.models.model.Model` (``runyard.pyfunc.add_to_model`` for ``python_function``),
then calls :func:`finish_model_dir`, which copies code, saves the input example, settles the
signature, writes the MLmodel file and the environment files.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, RunyardError
from runyard.models.enforce import validate_prediction_input
from runyard.models.env import validate_env_arguments, write_env_files
from runyard.models.examples import Example, save_example
from runyard.models.infer import infer_param_schema, infer_schema
from runyard.models.model import MLMODEL_FILE_NAME, Model
from runyard.models.signature import ModelSignature
from runyard.types.composite import AnyType
from runyard.types.schema import ColSpec, Schema

__all__ = [
    "CODE_DIR",
    "copy_code_paths",
    "directory_size",
    "finish_model_dir",
    "infer_signature_from_example",
    "new_model_dir",
]

_logger = logging.getLogger(__name__)

#: Where ``code_paths`` are copied inside a model directory.
CODE_DIR = "code"
PYFUNC_FLAVOR = "python_function"


def new_model_dir(path: str | os.PathLike[str]) -> Path:
    """Create the model directory ``path``; it must not exist or be an empty directory."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ResourceAlreadyExists(f"Path '{target}' already exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    return target


def copy_code_paths(code_paths: list[str] | None, path: str | os.PathLike[str]) -> str | None:
    """Copy each file or directory of ``code_paths`` into ``<path>/code/``; return ``"code"``."""
    if code_paths is None:
        return None
    if not isinstance(code_paths, list):
        raise TypeError(f"Argument code_paths should be a list, not {type(code_paths)}")
    destination = Path(path) / CODE_DIR
    destination.mkdir(parents=True, exist_ok=True)
    for source in code_paths:
        src = Path(source)
        if not src.exists():
            raise InvalidParameterValue(
                f"Failed to copy the specified code path '{source}' into the model artifacts. "
                "The specified code path does not exist."
            )
        target = destination / src.resolve().name
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
    return CODE_DIR


def directory_size(path: str | os.PathLike[str]) -> int:
    """Total size in bytes of the files under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def infer_signature_from_example(
    example: Example, predict: Callable[..., Any] | None = None
) -> ModelSignature | None:
    """A signature from a saved example: its input (and params) and, given ``predict``, output.

    ``predict(data, params=...)`` runs on the example after the same enforcement
    ``PyFuncModel.predict`` applies. Failures are logged and give None (as in MLflow).
    """
    try:
        data = deepcopy(example.inference_data)
        params = example.inference_params
        input_schema = infer_schema(data)
        params_schema = infer_param_schema(params) if params else None
        if predict is None:
            return ModelSignature(input_schema, None, params_schema)
        data, params = validate_prediction_input(data, params, input_schema, params_schema)
        prediction = predict(data, params=params)
        if (
            not input_schema.is_tensor_spec()
            and isinstance(prediction, np.ndarray)
            and prediction.ndim == 1
        ):
            # Row-wise predictions of a column input are one output column.
            prediction = pd.Series(prediction)
        try:
            output_schema = infer_schema(prediction)
        except (RunyardError, TypeError, ValueError):
            _logger.warning(
                "Failed to infer model output schema from prediction result, setting output "
                "schema to AnyType."
            )
            output_schema = Schema([ColSpec(AnyType())])
        return ModelSignature(input_schema, output_schema, params_schema)
    except Exception as exc:  # noqa: BLE001 - inference is best effort, as in MLflow
        _logger.warning(
            "Failed to infer the model signature from the input example. Reason: %r.", exc
        )
        return None


def _point_flavors_at_code(model: Model, code_dir: str) -> None:
    for name, conf in model.flavors.items():
        if isinstance(conf, dict) and (name == PYFUNC_FLAVOR or "code" in conf):
            conf["code"] = code_dir


def finish_model_dir(
    path: Path,
    model: Model,
    *,
    signature: ModelSignature | Literal[False] | None,
    input_example: Any | None,
    default_pip_requirements: list[str],
    pip_requirements: list[str] | str | None,
    extra_pip_requirements: list[str] | str | None,
    conda_env: dict[str, Any] | str | None,
    metadata: dict[str, Any] | None,
    code_paths: list[str] | None,
    predict_fn: Callable[..., Any] | None = None,
) -> None:
    """Complete a model directory after the flavor wrote its own files and flavor sections.

    Copies ``code_paths`` into ``code/`` (and points the pyfunc section, and every flavor
    section that has a ``code`` key, at it); saves the input example; when ``signature`` is
    None and an example is given, infers the signature from the example (its output too when
    ``predict_fn(data, params=...)`` is given; ``signature=False`` disables inference); sets
    metadata and ``model_size_bytes``; writes MLmodel, requirements.txt, conda.yaml and
    python_env.yaml.
    """
    path = Path(path)
    validate_env_arguments(conda_env, pip_requirements, extra_pip_requirements)
    code_dir = copy_code_paths(code_paths, path)
    if code_dir is not None:
        _point_flavors_at_code(model, code_dir)
    example = save_example(model, input_example, path)
    if signature is None and example is not None:
        signature = infer_signature_from_example(example, predict_fn)
    if isinstance(signature, ModelSignature):
        model.signature = signature
    if metadata is not None:
        model.metadata = metadata
    model.model_size_bytes = directory_size(path)
    model.save(path / MLMODEL_FILE_NAME)
    write_env_files(
        path, default_pip_requirements, pip_requirements, extra_pip_requirements, conda_env
    )
