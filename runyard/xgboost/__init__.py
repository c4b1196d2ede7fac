"""The ``xgboost`` flavor: save, log and load XGBoost models in MLflow's format.

Boosters and scikit-learn-API models (``XGBClassifier``, ``XGBRegressor``, ...) are written with
their own ``save_model`` to ``model.<model_format>`` (``ubj`` by default, ``json`` or ``xgb``);
the MLmodel's ``flavors.xgboost`` is ``{xgb_version, data, model_class, model_format, code}`` and
loading recreates the same class. xgboost is imported only when a model is saved or loaded.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

from runyard._flavor_utils import (
    add_code_to_sys_path,
    class_path,
    code_subdir,
    flavor_configuration,
    import_class,
    local_model_dir,
    log_flavor_model,
    new_flavor_model_dir,
    require,
)
from runyard.errors import InvalidParameterValue

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "xgboost"

log = logging.getLogger(__name__)

_PYFUNC_LOADER_MODULE = "mlflow.xgboost"
_MODEL_FORMATS = ("ubj", "json", "xgb")


def _xgb() -> Any:
    return require("xgboost", package="xgboost", extra="xgboost")


def autolog(*args: Any, **kwargs: Any) -> None:
    """Enable (or disable) XGBoost autologging; see :func:`runyard.autolog.xgboost.autolog`
    for the options (MLflow's: ``log_models``, ``log_input_examples``, ``silent``, ...)."""
    from runyard.autolog.xgboost import autolog as xgboost_autolog

    xgboost_autolog(*args, **kwargs)


def get_default_pip_requirements() -> list[str]:
    """The pinned pip requirements every saved XGBoost model lists: xgboost."""
    from runyard.models.env import get_pinned_requirement

    return [get_pinned_requirement("xgboost")]


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Save an ``xgboost.Booster`` or scikit-learn-API XGBoost model at ``path``.

    Args:
        xgb_model: The trained model.
        path: Directory to create; it must not exist or be empty.
        conda_env: A conda environment (dict or YAML file path) instead of the default one.
        code_paths: Local files or directories copied into ``code/`` and put on ``sys.path``
            when the model is loaded.
        mlflow_model: A :class:`runyard.models.Model` to add the flavors to (a new one if None).
        signature: A ModelSignature; inferred from ``input_example`` when None; ``False``
            saves none.
        input_example: Saved as ``input_example.json`` (and a serving payload).
        pip_requirements: Replace the default pip requirements.
        extra_pip_requirements: Added to the default pip requirements.
        model_format: XGBoost's file format: ``"ubj"`` (default), ``"json"`` or ``"xgb"``.
        metadata: Free-form metadata stored in the MLmodel file.
        kwargs: Passed to the model's ``save_model``.
    """
    xgb = _xgb()
    from runyard.models import Model
    from runyard.models.save import finish_model_dir
    from runyard.pyfunc import add_to_model

    if model_format not in _MODEL_FORMATS:
        raise InvalidParameterValue(
            f"Unsupported model_format '{model_format}': use one of {list(_MODEL_FORMATS)}."
        )
    if not isinstance(xgb_model, (xgb.Booster, xgb.XGBModel)):
        raise TypeError(
            "Argument 'xgb_model' should be an xgboost.Booster or an XGBoost scikit-learn model, "
            f"not {type(xgb_model)}"
        )
    code = code_subdir(code_paths)
    with new_flavor_model_dir(path) as model_dir:
        model = mlflow_model if mlflow_model is not None else Model()
        subpath = f"model.{model_format}"
        xgb_model.save_model(os.fspath(model_dir / subpath), **kwargs)
        add_to_model(model, loader_module=_PYFUNC_LOADER_MODULE, data=subpath, code=code)
        model.add_flavor(
            FLAVOR_NAME,
            xgb_version=xgb.__version__,
            data=subpath,
            model_class=class_path(xgb_model),
            model_format=model_format,
            code=code,
        )
        finish_model_dir(
            model_dir,
            model,
            signature=signature,
            input_example=input_example,
            default_pip_requirements=get_default_pip_requirements(),
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            conda_env=conda_env,
            metadata=metadata,
            code_paths=code_paths,
            predict_fn=_XGBModelWrapper(xgb_model).predict,
        )


def log_model(
    xgb_model: Any,
    name: str | None = None,
    artifact_path: str | None = None,
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    registered_model_name: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    await_registration_for: int = 300,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    model_format: str = "ubj",
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **kwargs: Any,
) -> Any:
    """Log an XGBoost model as an MLflow 3 logged model of the active run; returns ModelInfo.

    Arguments are those of :func:`save_model` plus the logged model's ``params``, ``tags``,
    ``model_type``, ``step`` and ``registered_model_name``; ``artifact_path`` is MLflow's
    deprecated alias of ``name``.
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
        xgb_model=xgb_model,
        conda_env=conda_env,
        code_paths=code_paths,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        model_format=model_format,
        metadata=metadata,
        **kwargs,
    )


def _load_model(path: str | os.PathLike[str]) -> Any:
    """Recreate the saved class and load its file; ``path`` is the model dir or the file."""
    _xgb()
    path = os.fspath(path)
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    cls = import_class(conf.get("model_class", "xgboost.core.Booster"), allowed_package="xgboost")
    model = cls()
    model.load_model(os.path.join(model_dir, conf["data"]))
    return model


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """Load the XGBoost model saved at ``model_uri``, as the class it was saved from."""
    _xgb()
    model_dir = local_model_dir(model_uri, dst_path)
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    add_code_to_sys_path(model_dir, conf)
    return _load_model(model_dir)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _XGBModelWrapper:
    """The python_function loader: ``path`` is the model file (or its directory)."""
    return _XGBModelWrapper(_load_model(path))


def _accepted_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The params ``fn`` takes; others are dropped with a warning, as MLflow does."""
    allowed = inspect.signature(fn).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in allowed.values()):
        return kwargs
    dropped = sorted(k for k in kwargs if k not in allowed)
    if dropped:
        log.warning(
            "Params %s are not accepted by the xgboost model, ignoring them during predict.",
            dropped,
        )
    return {k: v for k, v in kwargs.items() if k in allowed}


class _XGBModelWrapper:
    """``predict(data, params=None)``: a Booster scores a ``DMatrix`` of ``data``; scikit-learn-API
    models score ``data`` directly. Params the predict method accepts are passed on."""

    def __init__(self, xgb_model: Any) -> None:
        self.xgb_model = xgb_model

    def get_raw_model(self) -> Any:
        """The wrapped XGBoost model."""
        return self.xgb_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (DataFrame, ndarray, ...)."""
        xgb = _xgb()
        kwargs = _accepted_kwargs(self.xgb_model.predict, dict(params or {}))
        kwargs.setdefault("validate_features", True)
        if isinstance(self.xgb_model, xgb.Booster):
            return self.xgb_model.predict(xgb.DMatrix(data), **kwargs)
        return self.xgb_model.predict(data, **kwargs)
