"""The ``lightgbm`` flavor: save, log and load LightGBM models in MLflow's format.

A ``lightgbm.Booster`` is written with its own ``save_model`` as text to ``model.lgb``; a
scikit-learn-API model (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``) is serialized like a
scikit-learn model: ``model.skops`` by default, or ``model.pkl`` (``cloudpickle``/``pickle``).
The MLmodel's ``flavors.lightgbm`` is ``{lgb_version, data, model_class, code,
serialization_format, skops_trusted_types}``. lightgbm is imported only when a model is saved or
loaded.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from runyard._flavor_utils import (
    add_code_to_sys_path,
    class_path,
    code_subdir,
    flavor_configuration,
    local_model_dir,
    log_flavor_model,
    new_flavor_model_dir,
    require,
)
from runyard.sklearn._serialize import (
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    check_serialization_format,
    default_serialization_format,
    dump_model,
    load_model_file,
)

__all__ = [
    "FLAVOR_NAME",
    "autolog",
    "get_default_pip_requirements",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "lightgbm"

log = logging.getLogger(__name__)

_PYFUNC_LOADER_MODULE = "mlflow.lightgbm"
_BOOSTER_CLASS = "lightgbm.basic.Booster"
#: Types a skops file of an LGBM* estimator always needs (MLflow trusts the same built-ins).
_SKOPS_TRUSTED_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
    }
)


def _lgb() -> Any:
    return require("lightgbm", package="lightgbm", extra="lightgbm")


def autolog(*args: Any, **kwargs: Any) -> None:
    """Enable (or disable) LightGBM autologging; see :func:`runyard.autolog.lightgbm.autolog`
    for the options (MLflow's: ``log_models``, ``log_input_examples``, ``silent``, ...)."""
    from runyard.autolog.lightgbm import autolog as lightgbm_autolog

    lightgbm_autolog(*args, **kwargs)


def get_default_pip_requirements(
    include_cloudpickle: bool = False, include_skops: bool = False
) -> list[str]:
    """The pinned pip requirements every saved LightGBM model lists (lightgbm, plus cloudpickle
    or skops when that format wrote a scikit-learn-API model)."""
    from runyard.models.env import get_pinned_requirement

    reqs = [get_pinned_requirement("lightgbm")]
    if include_cloudpickle:
        reqs.append(get_pinned_requirement("cloudpickle"))
    if include_skops:
        reqs.append(get_pinned_requirement("skops"))
    return reqs


def save_model(
    lgb_model: Any,
    path: str | os.PathLike[str],
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    mlflow_model: Any = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
    serialization_format: str | None = None,
    skops_trusted_types: list[str] | None = None,
) -> None:
    """Save a ``lightgbm.Booster`` or LGBM* scikit-learn-API model at ``path``.

    Args:
        lgb_model: The trained model.
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
        metadata: Free-form metadata stored in the MLmodel file.
        serialization_format: For scikit-learn-API models: ``"skops"`` (default when skops is
            installed), ``"cloudpickle"`` or ``"pickle"``. Boosters are always saved as text.
        skops_trusted_types: Types beyond LightGBM's and scikit-learn's own that the skops file
            may load.
    """
    lgb = _lgb()
    from runyard.models import Model
    from runyard.models.save import finish_model_dir
    from runyard.pyfunc import add_to_model

    fmt = serialization_format or default_serialization_format()
    check_serialization_format(fmt)
    is_booster = isinstance(lgb_model, lgb.Booster)
    code = code_subdir(code_paths)
    with new_flavor_model_dir(path) as model_dir:
        model = mlflow_model if mlflow_model is not None else Model()
        trusted: list[str] | None = None
        if is_booster:
            subpath = "model.lgb"
            lgb_model.save_model(os.fspath(model_dir / subpath))
        else:
            subpath = "model.skops" if fmt == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
            if fmt != SERIALIZATION_FORMAT_SKOPS:
                log.warning(
                    "Saving the models in the pickle or cloudpickle format requires exercising "
                    "caution because these formats rely on Python's object serialization "
                    "mechanism, which can execute arbitrary code during deserialization. "
                    "The recommended safe alternative is the 'skops' format."
                )
            user_trusted = set(skops_trusted_types or ())
            if fmt == SERIALIZATION_FORMAT_SKOPS:
                user_trusted |= _SKOPS_TRUSTED_TYPES
            trusted = dump_model(
                lgb_model,
                model_dir / subpath,
                fmt,
                skops_trusted_types=sorted(user_trusted),
                auto_trusted_roots=("lightgbm", "sklearn", "numpy", "scipy"),
                extra="lightgbm",
            )

        add_to_model(model, loader_module=_PYFUNC_LOADER_MODULE, data=subpath, code=code)
        model.add_flavor(
            FLAVOR_NAME,
            lgb_version=lgb.__version__,
            data=subpath,
            model_class=class_path(lgb_model),
            code=code,
            serialization_format=fmt,
            skops_trusted_types=trusted,
        )
        finish_model_dir(
            model_dir,
            model,
            signature=signature,
            input_example=input_example,
            default_pip_requirements=get_default_pip_requirements(
                include_cloudpickle=not is_booster and fmt == SERIALIZATION_FORMAT_CLOUDPICKLE,
                include_skops=not is_booster and fmt == SERIALIZATION_FORMAT_SKOPS,
            ),
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            conda_env=conda_env,
            metadata=metadata,
            code_paths=code_paths,
            predict_fn=_LGBModelWrapper(lgb_model).predict,
        )


def log_model(
    lgb_model: Any,
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
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    serialization_format: str | None = None,
    skops_trusted_types: list[str] | None = None,
) -> Any:
    """Log a LightGBM model as an MLflow 3 logged model of the active run; returns ModelInfo.

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
        lgb_model=lgb_model,
        conda_env=conda_env,
        code_paths=code_paths,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        serialization_format=serialization_format,
        skops_trusted_types=skops_trusted_types,
    )


def _load_model(path: str | os.PathLike[str]) -> Any:
    """Load the saved model; ``path`` is the model directory or its model file."""
    lgb = _lgb()
    path = os.fspath(path)
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    model_file = os.path.join(model_dir, conf["data"])
    if conf.get("model_class", _BOOSTER_CLASS) == _BOOSTER_CLASS:
        return lgb.Booster(model_file=model_file)
    # MLflow wrote scikit-learn-API models with cloudpickle before skops became the default.
    return load_model_file(
        model_file,
        conf.get("serialization_format", SERIALIZATION_FORMAT_CLOUDPICKLE),
        conf.get("skops_trusted_types"),
        extra="lightgbm",
    )


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """Load the LightGBM model saved at ``model_uri``: a Booster or the LGBM* estimator."""
    _lgb()
    model_dir = local_model_dir(model_uri, dst_path)
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    add_code_to_sys_path(model_dir, conf)
    return _load_model(model_dir)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _LGBModelWrapper:
    """The python_function loader: ``path`` is the model file (or its directory)."""
    return _LGBModelWrapper(_load_model(path))


class _LGBModelWrapper:
    """``predict(data, params=None)`` over a Booster or LGBM* estimator (params are ignored)."""

    def __init__(self, lgb_model: Any) -> None:
        self.lgb_model = lgb_model

    def get_raw_model(self) -> Any:
        """The wrapped LightGBM model."""
        return self.lgb_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict(data)``."""
        return self.lgb_model.predict(data)
