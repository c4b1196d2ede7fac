"""The ``pytorch`` flavor: save, log and load ``torch.nn.Module`` models in MLflow's format.

Layout of a saved model (MLflow's)::

    data/model.pth               torch.save of the whole module (format "pickle")
    data/pickle_module_info.txt  its pickle module (mlflow.pytorch.pickle_module = cloudpickle)
    data/model.pt2               torch.export archive instead (format "pt2")
    MLmodel                      flavors.pytorch: {model_data: data, pytorch_version, code}
                                 flavors.python_function: {loader_module: mlflow.pytorch,
                                     data: data, pickle_module_name, config: {device: null}}

plus ``save_state_dict`` / ``load_state_dict`` / ``log_state_dict`` for plain ``state_dict``
checkpoints (``state_dict.pth``). torch is imported only when a model is saved or loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType
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
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.pytorch._export import export_pt2
from runyard.pytorch._wrapper import _PyTorchWrapper

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_PT2",
    "autolog",
    "load_checkpoint",
    "get_default_pip_requirements",
    "load_model",
    "load_state_dict",
    "log_model",
    "log_state_dict",
    "save_model",
    "save_state_dict",
]

FLAVOR_NAME = "pytorch"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_PT2 = "pt2"

log = logging.getLogger(__name__)

_MODEL_DATA_SUBPATH = "data"
_SERIALIZED_TORCH_MODEL_FILE_NAME = "model.pth"
_EXPORTED_TORCH_MODEL_FILE_NAME = "model.pt2"
_TORCH_STATE_DICT_FILE_NAME = "state_dict.pth"
_PICKLE_MODULE_INFO_FILE_NAME = "pickle_module_info.txt"
_PYFUNC_LOADER_MODULE = "mlflow.pytorch"
#: The name MLmodel files give runyard's default pickle module (MLflow's module of that name).
_DEFAULT_PICKLE_MODULE_NAME = "mlflow.pytorch.pickle_module"


def _torch() -> Any:
    return require("torch", package="torch", extra="pytorch")


def autolog(*args: Any, **kwargs: Any) -> None:
    """Enable (or disable) autologging of PyTorch Lightning's ``Trainer.fit``.

    The options are ``mlflow.pytorch.autolog``'s; see :func:`runyard.autolog.pytorch.autolog`.
    Raw training loops are not patched: log them with :func:`log_model`.
    """
    from runyard.autolog.pytorch import autolog as _autolog

    _autolog(*args, **kwargs)


def load_checkpoint(
    model_class: Any,
    run_id: str | None = None,
    epoch: int | None = None,
    global_step: int | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Any:
    """Load a Lightning model from a checkpoint that autolog saved (latest, or by epoch/step)."""
    from runyard.autolog.pytorch import load_checkpoint as _load

    return _load(model_class, run_id, epoch, global_step, kwargs)


def get_default_pip_requirements() -> list[str]:
    """The pinned pip requirements every saved PyTorch model lists: torch and cloudpickle."""
    from runyard.models.env import get_pinned_requirement

    return [get_pinned_requirement("torch"), get_pinned_requirement("cloudpickle")]


def _pickle_module_name(pickle_module: ModuleType) -> str:
    from runyard.pytorch import pickle_module as default_module

    return (
        _DEFAULT_PICKLE_MODULE_NAME if pickle_module is default_module else pickle_module.__name__
    )


def _import_pickle_module(name: str) -> ModuleType:
    """Import the pickle module an MLmodel names; MLflow's own modules map to runyard's."""
    candidates = [name]
    if name.startswith("mlflow."):
        candidates.insert(0, "runyard." + name[len("mlflow.") :])
    for candidate in candidates:
        try:
            return importlib.import_module(candidate)
        except ImportError:
            continue
    raise ResourceDoesNotExist(
        "Failed to import the pickle module that was used to save the PyTorch"
        f" model. Pickle module name: `{name}`"
    )


def save_model(
    pytorch_model: Any,
    path: str | os.PathLike[str],
    conda_env: dict[str, Any] | str | None = None,
    mlflow_model: Any = None,
    code_paths: list[str] | None = None,
    pickle_module: ModuleType | None = None,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
    serialization_format: str | None = None,
    **kwargs: Any,
) -> None:
    """Save a ``torch.nn.Module`` (eager or TorchScript) as an MLflow model directory at ``path``.

    Args:
        pytorch_model: The module; its class must be importable where the model is loaded
            (or be captured by cloudpickle, the default pickle module, or be in ``code_paths``).
        path: Directory to create; it must not exist or be empty.
        conda_env: A conda environment (dict or YAML file path) instead of the default one.
        mlflow_model: A :class:`runyard.models.Model` to add the flavors to (a new one if None).
        code_paths: Local files or directories copied into ``code/`` and put on ``sys.path``
            when the model is loaded.
        pickle_module: Passed to ``torch.save``; runyard's cloudpickle module by default.
        signature: A ModelSignature; inferred from ``input_example`` when None; ``False``
            saves none.
        input_example: An ndarray or DataFrame (a tensor is stored as an ndarray).
        pip_requirements: Replace the default pip requirements.
        extra_pip_requirements: Added to the default pip requirements.
        metadata: Free-form metadata stored in the MLmodel file.
        serialization_format: ``"pickle"`` (default: ``torch.save`` of the module) or ``"pt2"``
            (``torch.export``; needs an ndarray/tensor ``input_example``).
        kwargs: Passed to ``torch.save``.
    """
    torch = _torch()
    import numpy as np

    from runyard.models import Model
    from runyard.models.save import finish_model_dir
    from runyard.pyfunc import add_to_model

    fmt = serialization_format or SERIALIZATION_FORMAT_PICKLE
    if fmt not in (SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_PT2):
        raise InvalidParameterValue(
            "The `serialization_format` param value must be one of 'pickle' or 'pt2'."
        )
    if not isinstance(pytorch_model, torch.nn.Module):
        raise TypeError("Argument 'pytorch_model' should be a torch.nn.Module")
    if serialization_format == SERIALIZATION_FORMAT_PICKLE:
        log.warning(
            "Saving pytorch model by Pickle or CloudPickle format requires exercising caution "
            "because these formats rely on Python's object serialization mechanism, which can "
            "execute arbitrary code during deserialization. The safe alternative is "
            "serialization_format='pt2'."
        )
    if pickle_module is None:
        from runyard.pytorch import pickle_module as default_pickle_module

        pickle_module = default_pickle_module
    example = _example_as_numpy(torch, input_example)
    code = code_subdir(code_paths)
    predict = _PyTorchWrapper(pytorch_model, device="cpu").predict
    if fmt == SERIALIZATION_FORMAT_PT2 and signature is None and isinstance(example, np.ndarray):
        # Export needs the input tensor spec before the model directory is finished.
        from runyard.models import infer_signature

        signature = infer_signature(example, predict(example))
    with new_flavor_model_dir(path) as model_dir:
        model = mlflow_model if mlflow_model is not None else Model()
        data_dir = model_dir / _MODEL_DATA_SUBPATH
        data_dir.mkdir()
        if fmt == SERIALIZATION_FORMAT_PT2:
            export_pt2(
                pytorch_model, example, signature, data_dir / _EXPORTED_TORCH_MODEL_FILE_NAME
            )
        else:
            _save_pickled(torch, pytorch_model, data_dir, pickle_module, kwargs)

        model.add_flavor(
            FLAVOR_NAME,
            model_data=_MODEL_DATA_SUBPATH,
            pytorch_version=str(torch.__version__),
            code=code,
        )
        if fmt == SERIALIZATION_FORMAT_PICKLE or _is_single_example(example):
            add_to_model(
                model,
                loader_module=_PYFUNC_LOADER_MODULE,
                data=_MODEL_DATA_SUBPATH,
                code=code,
                model_config={"device": None},
                pickle_module_name=_pickle_module_name(pickle_module),
            )
        finish_model_dir(
            model_dir,
            model,
            signature=signature,
            input_example=example if _is_single_example(example) else None,
            default_pip_requirements=get_default_pip_requirements(),
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            conda_env=conda_env,
            metadata=metadata,
            code_paths=code_paths,
            predict_fn=predict,
        )


def _save_pickled(
    torch: Any, pytorch_model: Any, data_dir: Path, pickle_module: ModuleType, kwargs: Any
) -> None:
    # The pickle module's name sits next to the weights because pyfunc's loader is handed only
    # the data directory (MLflow's layout).
    (data_dir / _PICKLE_MODULE_INFO_FILE_NAME).write_text(_pickle_module_name(pickle_module))
    model_path = data_dir / _SERIALIZED_TORCH_MODEL_FILE_NAME
    if isinstance(pytorch_model, torch.jit.ScriptModule):
        torch.jit.save(pytorch_model, str(model_path))
    else:
        torch.save(pytorch_model, model_path, pickle_module=pickle_module, **kwargs)


def _example_as_numpy(torch: Any, input_example: Any) -> Any:
    """Tensors (also inside a tuple/list) become ndarrays, which model examples can store."""
    if isinstance(input_example, torch.Tensor):
        return input_example.detach().cpu().numpy()
    if isinstance(input_example, (list, tuple)) and any(
        isinstance(x, torch.Tensor) for x in input_example
    ):
        return [
            x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x for x in input_example
        ]
    return input_example


def _is_single_example(example: Any) -> bool:
    """An example pyfunc can score: a DataFrame or one ndarray (not a list of tensors)."""
    if example is None:
        return False
    return not (isinstance(example, list) and len(example) > 0 and hasattr(example[0], "shape"))


def log_model(
    pytorch_model: Any,
    name: str | None = None,
    artifact_path: str | None = None,
    conda_env: dict[str, Any] | str | None = None,
    code_paths: list[str] | None = None,
    pickle_module: ModuleType | None = None,
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
    **kwargs: Any,
) -> Any:
    """Log a PyTorch model as an MLflow 3 logged model of the active run; returns ModelInfo.

    Arguments are those of :func:`save_model` plus the logged model's ``params``, ``tags``,
    ``model_type``, ``step`` and ``registered_model_name``; ``artifact_path`` is MLflow's
    deprecated alias of ``name``; ``kwargs`` go to ``torch.save``.
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
        pytorch_model=pytorch_model,
        conda_env=conda_env,
        code_paths=code_paths,
        pickle_module=pickle_module,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        serialization_format=serialization_format,
        **kwargs,
    )


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def _load_model(path: str | os.PathLike[str], device: str | None = None, **kwargs: Any) -> Any:
    """Load the module stored in ``path``: a model's ``data`` directory or a saved file."""
    torch = _torch()
    path = Path(path)
    exported = False
    if path.is_dir():
        model_path = path / _SERIALIZED_TORCH_MODEL_FILE_NAME
        if model_path.exists():
            info = path / _PICKLE_MODULE_INFO_FILE_NAME
            saved_name = info.read_text().strip() if info.exists() else _DEFAULT_PICKLE_MODULE_NAME
            given = kwargs.get("pickle_module")
            if given is not None and given.__name__ != saved_name:
                log.warning(
                    "Attempting to load the PyTorch model with a pickle module, '%s', that does "
                    "not match the pickle module that was used to save the model: '%s'.",
                    given.__name__,
                    saved_name,
                )
            elif given is None:
                kwargs["pickle_module"] = _import_pickle_module(saved_name)
        else:
            exported = True
            model_path = path / _EXPORTED_TORCH_MODEL_FILE_NAME
    else:
        model_path = path
    if not model_path.exists():
        raise ResourceDoesNotExist(f"No PyTorch model file at '{model_path}'.")
    if "map_location" not in kwargs and not exported and not torch.cuda.is_available():
        kwargs["map_location"] = "cpu"  # a model trained on a GPU still loads on this machine
    if exported:
        model = torch.export.load(str(model_path)).module()
    elif _is_torchscript_archive(model_path):
        kwargs.pop("pickle_module", None)
        kwargs.pop("weights_only", None)
        model = torch.jit.load(str(model_path), **kwargs)
    else:
        model = torch.load(model_path, **kwargs)
    if not exported:
        model.eval()
        if device:
            model.to(device=device)
    elif device and device != "cpu":
        raise RunyardError(
            "The saved model is exported by `torch.export` API; its weights cannot be moved to "
            f"'{device}'. Save the model moved to that device instead."
        )
    return model


def load_model(
    model_uri: str | os.PathLike[str], dst_path: str | None = None, **kwargs: Any
) -> Any:
    """Load the PyTorch module saved at ``model_uri`` (a path, ``runs:/``, ``models:/`` ...).

    ``kwargs`` go to ``torch.load`` (e.g. ``map_location``; CPU when no GPU is present).
    """
    torch = _torch()
    model_dir = local_model_dir(model_uri, dst_path)
    conf = flavor_configuration(model_dir, FLAVOR_NAME)
    add_code_to_sys_path(model_dir, conf)
    if str(torch.__version__) != conf.get("pytorch_version"):
        log.warning(
            "Stored model version '%s' does not match installed PyTorch version '%s'",
            conf.get("pytorch_version"),
            torch.__version__,
        )
    return _load_model(model_dir / conf["model_data"], **kwargs)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _PyTorchWrapper:
    """The python_function loader: ``path`` is the model's ``data`` directory.

    ``model_config={"device": "cuda"}`` picks the device; by default the GPU when one is
    present, else the CPU.
    """
    torch = _torch()
    device = (model_config or {}).get("device")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # The module was written by torch.save of a whole nn.Module, so weights-only loading (the
    # torch>=2.6 default) cannot read it.
    return _PyTorchWrapper(_load_model(path, device=device, weights_only=False), device=device)


def save_state_dict(
    state_dict: dict[str, Any], path: str | os.PathLike[str], **kwargs: Any
) -> None:
    """Save a ``state_dict`` as ``<path>/state_dict.pth`` (``kwargs`` go to ``torch.save``)."""
    torch = _torch()
    # A model passed by mistake would save fine and then fail far away at load time.
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"Invalid object type for `state_dict`: {type(state_dict)}. Must be an instance of "
            "`dict`"
        )
    os.makedirs(path, exist_ok=True)
    torch.save(state_dict, os.path.join(path, _TORCH_STATE_DICT_FILE_NAME), **kwargs)


def load_state_dict(state_dict_uri: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Load a ``state_dict`` saved by :func:`save_state_dict` or :func:`log_state_dict`.

    ``kwargs`` go to ``torch.load``; tensors are mapped to the CPU when no GPU is present.
    """
    torch = _torch()
    local = local_model_dir(state_dict_uri)
    if "map_location" not in kwargs and not torch.cuda.is_available():
        kwargs["map_location"] = "cpu"
    return torch.load(local / _TORCH_STATE_DICT_FILE_NAME, **kwargs)


def log_state_dict(state_dict: dict[str, Any], artifact_path: str, **kwargs: Any) -> None:
    """Log a ``state_dict`` as artifacts of the active run under ``artifact_path``.

    This stores a checkpoint, not an MLflow model: load it back with :func:`load_state_dict`.
    """
    from runyard.tracking.fluent import log_artifacts

    with tempfile.TemporaryDirectory(prefix="runyard-state-dict-") as tmp:
        save_state_dict(state_dict, tmp, **kwargs)
        log_artifacts(tmp, artifact_path)
