"""The ``sklearn`` flavor: save, log and load scikit-learn models in MLflow's format.

A saved model directory holds ``model.skops`` (the default, safe format) or ``model.pkl``
(``cloudpickle``/``pickle``) plus the MLmodel file, whose sections read::

    flavors:
      python_function: {loader_module: mlflow.sklearn, model_path: model.skops, predict_fn: predict,
                        env: {...}, python_version: ..., code: null}
      sklearn: {pickled_model: model.skops, sklearn_version: ..., serialization_format: skops,
                code: null, skops_trusted_types: [...] | null}

MLflow loads such a directory with ``mlflow.sklearn`` and runyard loads MLflow's. scikit-learn is
imported only when a model is saved or loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from runyard._flavor_utils import (
    add_code_to_sys_path,
    code_subdir,
    flavor_configuration,
    local_model_dir,
    log_flavor_model,
    new_flavor_model_dir,
    require,
)
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.sklearn._serialize import (
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    SUPPORTED_SERIALIZATION_FORMATS,
    check_serialization_format,
    default_serialization_format,
    dump_model,
    load_model_file,
)

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "SUPPORTED_SERIALIZATION_FORMATS",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"

log = logging.getLogger(__name__)

_PICKLE_MODEL_DATA_SUBPATH = "model.pkl"
_SKOPS_MODEL_DATA_SUBPATH = "model.skops"
_PYFUNC_LOADER_MODULE = "mlflow.sklearn"
#: Methods a pyfunc can be told to call instead of ``predict`` (``pyfunc_predict_fn``).
_SUPPORTED_PYFUNC_PREDICT_FNS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "predict_joint_log_proba",
    "score",
)


def autolog(*args: Any, **kwargs: Any) -> None:
    """Enable (or disable) scikit-learn autologging; see :func:`runyard.autolog.sklearn.autolog`
    for the options (MLflow's: ``log_models``, ``max_tuning_runs``, ``silent``, ...)."""
    from runyard.autolog.sklearn import autolog as sklearn_autolog

    sklearn_autolog(*args, **kwargs)


def get_default_pip_requirements(
    include_cloudpickle: bool = False, include_skops: bool = False
) -> list[str]:
    """The pinned pip requirements every saved sklearn model lists (scikit-learn, plus cloudpickle
    or skops when that format wrote the model)."""
    from runyard.models.env import get_pinned_requirement

    reqs = [get_pinned_requirement("scikit-learn")]
    if include_cloudpickle:
        reqs.append(get_pinned_requirement("cloudpickle"))
    if include_skops:
        reqs.append(get_pinned_requirement("skops"))
    return reqs


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    mlflow_model: Any = None,
    serialization_format: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    skops_trusted_types: list[str] | None = None,
) -> None:
    """Save a scikit-learn model (estimator or pipeline) as an MLflow model directory at ``path``.

    Args:
        sk_model: The fitted scikit-learn model.
        path: Directory to create; it must not exist or be empty.
        conda_env: A conda environment (dict or YAML file path) instead of the default one.
        code_paths: Local files or directories copied into the model's ``code/`` directory and
            put on ``sys.path`` when the model is loaded.
        mlflow_model: A :class:`runyard.models.Model` to add the flavors to (a new one if None).
        serialization_format: ``"skops"`` (default when skops is installed), ``"cloudpickle"``
            or ``"pickle"``.
        signature: A ModelSignature; inferred from ``input_example`` and the pyfunc predict
            method when None and an example is given; ``False`` saves none.
        input_example: Saved as ``input_example.json`` (and a serving payload).
        pip_requirements: Replace the default pip requirements.
        extra_pip_requirements: Added to the default pip requirements.
        pyfunc_predict_fn: The method the python_function flavor calls: ``"predict"``,
            ``"predict_proba"``, ``"predict_log_proba"``, ``"predict_joint_log_proba"`` or
            ``"score"``.
        metadata: Free-form metadata stored in the MLmodel file.
        skops_trusted_types: Types beyond scikit-learn's own that the skops file may load
            (e.g. the class path of a custom estimator).
    """
    sklearn = require("sklearn", package="scikit-learn", extra="sklearn")
    from runyard.models import Model
    from runyard.models.save import finish_model_dir
    from runyard.pyfunc import add_to_model

    fmt = serialization_format or default_serialization_format()
    check_serialization_format(fmt)
    if pyfunc_predict_fn not in _SUPPORTED_PYFUNC_PREDICT_FNS:
        raise InvalidParameterValue(
            f"Unsupported pyfunc_predict_fn '{pyfunc_predict_fn}': use one of "
            f"{list(_SUPPORTED_PYFUNC_PREDICT_FNS)}."
        )
    if fmt != SERIALIZATION_FORMAT_SKOPS:
        log.warning(
            "Saving scikit-learn models in the pickle or cloudpickle format requires exercising "
            "caution because these formats rely on Python's object serialization mechanism, "
            "which can execute arbitrary code during deserialization. "
            "The recommended safe alternative is the 'skops' format."
        )
    code = code_subdir(code_paths)
    with new_flavor_model_dir(path) as model_dir:
        model = mlflow_model if mlflow_model is not None else Model()
        skops = fmt == SERIALIZATION_FORMAT_SKOPS
        subpath = _SKOPS_MODEL_DATA_SUBPATH if skops else _PICKLE_MODEL_DATA_SUBPATH
        trusted = dump_model(
            sk_model, model_dir / subpath, fmt, skops_trusted_types=skops_trusted_types
        )
        predict = None
        if hasattr(sk_model, pyfunc_predict_fn):
            predict = getattr(_SklearnModelWrapper(sk_model), pyfunc_predict_fn)
            add_to_model(
                model,
                loader_module=_PYFUNC_LOADER_MODULE,
                code=code,
                model_path=subpath,
                predict_fn=pyfunc_predict_fn,
            )
        else:
            log.warning(
                "Model was missing function: %s. Not logging python_function flavor!",
                pyfunc_predict_fn,
            )
        model.add_flavor(
            FLAVOR_NAME,
            pickled_model=subpath,
            sklearn_version=sklearn.__version__,
            serialization_format=fmt,
            code=code,
            skops_trusted_types=trusted,
        )
        finish_model_dir(
            model_dir,
            model,
            signature=signature,
            input_example=input_example,
            default_pip_requirements=get_default_pip_requirements(
                include_cloudpickle=fmt == SERIALIZATION_FORMAT_CLOUDPICKLE,
                include_skops=skops,
            ),
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            conda_env=conda_env,
            metadata=metadata,
            code_paths=code_paths,
            # The output schema describes what the pyfunc returns, so infer it with that method.
            predict_fn=None if predict is None else _ignoring_params(predict),
        )


def _ignoring_params(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        return fn(data)

    return predict


def log_model(
    sk_model: Any,
    name: str | None = None,
    artifact_path: str | None = None,
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    skops_trusted_types: list[str] | None = None,
) -> Any:
    """Log a scikit-learn model as an MLflow 3 logged model of the active run; returns ModelInfo.

    ``artifact_path`` is MLflow's deprecated alias of ``name``; the other arguments are those of
    :func:`save_model` plus the logged model's ``params``, ``tags``, ``model_type``, ``step`` and
    ``registered_model_name`` (register it as a new version of that model).
    """
    return log_flavor_model(
        __name__,
        name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        await_registration_for=await_registration_for,
        params=params,
        tags=tags,
        model_type=model_type,
        step=step,
        model_id=model_id,
        sk_model=sk_model,
        conda_env=conda_env,
        code_paths=code_paths,
        serialization_format=serialization_format,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        pyfunc_predict_fn=pyfunc_predict_fn,
        metadata=metadata,
        skops_trusted_types=skops_trusted_types,
    )


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """Load the scikit-learn model saved at ``model_uri`` (a path, ``runs:/``, ``models:/`` ...)."""
    require("sklearn", package="scikit-learn", extra="sklearn")
    model_dir = local_model_dir(model_uri, dst_path)
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    add_code_to_sys_path(model_dir, conf)
    return load_model_file(
        model_dir / conf["pickled_model"],
        conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
        conf.get("skops_trusted_types"),
    )


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _SklearnModelWrapper:
    """The python_function loader: ``path`` is the model directory or its serialized model file."""
    require("sklearn", package="scikit-learn", extra="sklearn")
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    try:
        conf = flavor_configuration(model_dir, FLAVOR_NAME)
    except RunyardError:  # no MLmodel or no sklearn section there: MLflow assumes plain pickle
        log.warning(
            "Could not find scikit-learn flavor configuration during model loading process."
            " Assuming 'pickle' serialization format."
        )
        conf = {}
    if not os.path.isfile(path):
        pyfunc_conf = flavor_configuration(model_dir, "python_function")
        relative = pyfunc_conf.get("model_path") or pyfunc_conf.get("data")
        path = os.path.join(model_dir, relative or conf["pickled_model"])
    model = load_model_file(
        path,
        conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
        conf.get("skops_trusted_types"),
    )
    return _SklearnModelWrapper(model)


class _SklearnModelWrapper:
    """What pyfunc calls: ``predict(data, params=None)`` plus whichever of ``predict_proba``,
    ``predict_log_proba``, ``predict_joint_log_proba`` and ``score`` the model has, so that
    ``predict_fn`` in the MLmodel can name any of them."""

    _CUSTOM_PREDICT_FNS = _SUPPORTED_PYFUNC_PREDICT_FNS[1:]

    def __init__(self, sklearn_model: Any) -> None:
        self.sklearn_model = sklearn_model
        for name in self._CUSTOM_PREDICT_FNS:
            fn = getattr(sklearn_model, name, None)
            if fn is not None:
                setattr(self, name, fn)

    def get_raw_model(self) -> Any:
        """The wrapped scikit-learn model."""
        return self.sklearn_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict(data)``; scikit-learn takes no inference params."""
        return self.sklearn_model.predict(data)
