"""Writing and reading scikit-learn-API objects in MLflow's three formats: ``skops`` (safe, the
default), ``cloudpickle`` and ``pickle``. ``runyard.lightgbm`` reuses this for LGBM* estimators.

skops refuses to load types it does not know unless they are listed as trusted. MLflow makes the
user list them (a RandomForest needs ``sklearn.tree._tree.Tree``); runyard trusts, at save time,
the types that belong to the framework that built the model (``auto_trusted_roots``) and records
them in the MLmodel's ``skops_trusted_types``, where MLflow also reads them. Any other type, such
as a user's own estimator class, still has to be named in ``skops_trusted_types`` by the caller.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Collection
from typing import Any

from runyard._flavor_utils import require
from runyard.errors import InvalidParameterValue, RunyardError

__all__ = [
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "SUPPORTED_SERIALIZATION_FORMATS",
    "check_serialization_format",
    "default_serialization_format",
    "dump_model",
    "load_model_file",
]

SERIALIZATION_FORMAT_SKOPS = "skops"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SUPPORTED_SERIALIZATION_FORMATS = [
    SERIALIZATION_FORMAT_SKOPS,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
]

#: Plain standard-library containers that skops does not trust by default but that carry no code.
_SAFE_STDLIB_TYPES = frozenset({"collections.OrderedDict", "collections.defaultdict"})


def default_serialization_format() -> str:
    """``skops`` when installed (MLflow 3's default), else ``cloudpickle``, else ``pickle``."""
    for module, fmt in (
        ("skops", SERIALIZATION_FORMAT_SKOPS),
        ("cloudpickle", SERIALIZATION_FORMAT_CLOUDPICKLE),
    ):
        with contextlib.suppress(ImportError):
            __import__(module)
            return fmt
    return SERIALIZATION_FORMAT_PICKLE


def check_serialization_format(serialization_format: str) -> None:
    """Raise MLflow's INVALID_PARAMETER_VALUE error for an unknown format."""
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterValue(
            f"Unrecognized serialization format: {serialization_format}. Please specify one"
            f" of the following supported formats: {SUPPORTED_SERIALIZATION_FORMATS}."
        )


def dump_model(
    model: Any,
    path: str | os.PathLike[str],
    serialization_format: str,
    *,
    skops_trusted_types: Collection[str] | None = None,
    auto_trusted_roots: Collection[str] = ("sklearn", "numpy", "scipy"),
    extra: str = "sklearn",
) -> list[str] | None:
    """Serialize ``model`` to the file ``path``.

    Returns:
        For skops, the sorted list of types the file needs trusted to load (the caller's plus
        the framework's own), or None when none are needed; None for the pickle formats.
    """
    check_serialization_format(serialization_format)
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        return _dump_skops(model, os.fspath(path), skops_trusted_types, auto_trusted_roots, extra)
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        pickler: Any = require("cloudpickle", package="cloudpickle", extra=extra)
    else:
        pickler = pickle
    with open(path, "wb") as out:
        # Python's default protocol rather than cloudpickle's newest keeps older readers working.
        pickler.dump(model, out, protocol=pickle.DEFAULT_PROTOCOL)
    return None


def _dump_skops(
    model: Any,
    path: str,
    user_trusted: Collection[str] | None,
    auto_trusted_roots: Collection[str],
    extra: str,
) -> list[str] | None:
    skops_io = require("skops.io", package="skops", extra=extra)
    try:
        skops_io.dump(model, path)
    except Exception as exc:  # skops raises assorted errors for objects it cannot represent
        _remove(path)
        raise RunyardError(
            "The sklearn model could not be serialized in the skops serialization format. "
            "skops does not support custom functions or classes that are not defined at the "
            "top level. To work around this limitation, you can set the serialization_format "
            "'cloudpickle', while exercising caution due to the possible arbitrary "
            f"code during model deserialization using CloudPickle. Root error: {exc!r}"
        ) from exc
    found = set(skops_io.get_untrusted_types(file=path))
    user = set(user_trusted or ())
    framework = {
        t for t in found if t.split(".", 1)[0] in auto_trusted_roots or t in _SAFE_STDLIB_TYPES
    }
    unreviewed = sorted(found - user - framework)
    if any("<" in t for t in unreviewed):
        # A lambda or a function/class defined inside a function: skops only stores a name
        # for it, which cannot be imported back.
        _remove(path)
        raise RunyardError(
            "The sklearn model could not be serialized in the skops serialization format: it "
            f"references {[t for t in unreviewed if '<' in t]}, which skops cannot import back "
            "(skops does not support custom functions or classes that are not defined at the "
            "top level). Set serialization_format='cloudpickle' instead, while exercising "
            "caution: loading a cloudpickle file can run arbitrary code."
        )
    if unreviewed:
        _remove(path)
        raise RunyardError(
            "The saved sklearn model references untrusted types. "
            "If you are sure loading these types is safe, "
            "set the 'skops_trusted_types' parameter when calling 'log_model' or 'save_model' "
            f"to the list of trusted types. Untrusted types: {unreviewed}"
        )
    trusted = sorted(user | (framework & found))
    return trusted or None


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def load_model_file(
    path: str | os.PathLike[str],
    serialization_format: str,
    skops_trusted_types: list[str] | None = None,
    *,
    extra: str = "sklearn",
) -> Any:
    """Read a model written by :func:`dump_model` (or by MLflow) from the file ``path``."""
    check_serialization_format(serialization_format)
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        skops_io = require("skops.io", package="skops", extra=extra)
        return skops_io.load(os.fspath(path), trusted=skops_trusted_types or None)
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        # A cloudpickled model may hold classes pickled by value, which plain pickle cannot read.
        unpickler: Any = require("cloudpickle", package="cloudpickle", extra=extra)
    else:
        unpickler = pickle
    with open(path, "rb") as f:
        return unpickler.load(f)
