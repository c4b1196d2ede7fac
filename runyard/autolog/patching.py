"""Safe, reversible patches of library functions for autologging.

:func:`safe_patch` replaces ``owner.name`` (a method of a class, or a function of a module) by a
function that calls ``wrapper(original, *args, **kwargs)`` while the integration is enabled and
the original untouched otherwise. The guarantees autologging makes to training code live here:

* **Training never breaks because of autologging.** An exception raised by autolog code (not by
  the original) is logged as a warning and the original's result is returned; when autolog code
  failed before it called the original, the original is called then.
* **The library's own exceptions propagate unchanged**, the very object the library raised.
* **Only the outermost call logs.** A thread-local guard marks "inside an autologged call", so
  ``Pipeline.fit`` → ``step.fit`` or ``GridSearchCV.fit`` → ``estimator.fit`` run the inner
  originals directly (unless a patch is installed with ``nested=True``; its wrapper can then ask
  :func:`is_outermost`). Autolog code that calls patched functions for itself (``self.score(X,
  y)`` to compute a training metric) is inside the guard too, so those calls do not log.
* **Warnings raised by autolog code** should be wrapped in :func:`capture_warnings`, which turns
  them into log records: a user running with ``-W error`` must not see training fail because a
  metric was ill-defined on the training set.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from runyard.autolog.config import AutologConfig, get_config
from runyard.errors import InvalidParameterValue
from runyard.tracking import fluent

__all__ = [
    "CallState",
    "capture_warnings",
    "current_call",
    "is_autolog_run",
    "is_outermost",
    "is_patched",
    "nested_call",
    "register_autolog_run",
    "revert_patches",
    "safe_patch",
]

log = logging.getLogger("runyard.autolog")

_ORIGINAL_ATTR = "__runyard_original__"
_INTEGRATION_ATTR = "__runyard_integration__"
_MISSING = object()


@dataclass
class CallState:
    """What happened to the original inside one autologged call."""

    called: bool = False
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class _Guard(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.calls: list[CallState] = []


_guard = _Guard()
_autolog_run_ids: set[str] = set()


@contextmanager
def nested_call() -> Iterator[None]:
    """Run the block as if inside an autologged call: patched functions called in it only run
    their originals (a ``nested=True`` patch runs its wrapper with ``is_outermost()`` False)."""
    _guard.depth += 1
    try:
        yield
    finally:
        _guard.depth -= 1


def is_outermost() -> bool:
    """True outside any autologged call and in the wrapper of the outermost one; False in the
    wrapper of a nested call (only ``nested=True`` patches run wrappers there)."""
    return _guard.depth <= 1


def current_call() -> CallState | None:
    """The state of the original of the innermost autologged call running in this thread."""
    return _guard.calls[-1] if _guard.calls else None


def register_autolog_run(run_id: str) -> None:
    """Remember that autologging created run ``run_id`` (``exclusive`` still logs into it)."""
    _autolog_run_ids.add(run_id)


def is_autolog_run(run_id: str) -> bool:
    """Whether autologging created run ``run_id``."""
    return run_id in _autolog_run_ids


@contextmanager
def capture_warnings(silent: bool = False) -> Iterator[None]:
    """Turn warnings raised in the block into log records (dropped when ``silent``).

    Wrap autolog code (metric computation, signature inference, model logging) in it; never wrap
    the library's original call: the user's warning filters apply to their training.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    if not silent:
        for item in caught:
            log.warning("%s: %s", item.category.__name__, item.message)


@dataclass
class _Patch:
    integration: str
    owner: Any
    name: str
    saved: Any  # the owner's own attribute before patching, or _MISSING when it was inherited
    replacement: Any
    wrapper: Callable[..., Any]
    nested: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_lock = threading.RLock()
_patches: dict[tuple[str, Any, str], _Patch] = {}


def _excluded(config: AutologConfig) -> bool:
    """``exclusive``: autologging stays out of runs the user created."""
    if not config.exclusive:
        return False
    run = fluent.active_run()
    return run is not None and not is_autolog_run(run.info.run_id)


def _run_wrapper(
    integration: str,
    config: AutologConfig,
    wrapper: Callable[..., Any],
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    state = CallState()

    # Looks like the original (name, signature) to wrappers that inspect it.
    @functools.wraps(original)
    def call_original(*a: Any, **kw: Any) -> Any:
        state.called = True
        try:
            result = original(*a, **kw)
        except BaseException as exc:
            state.error = exc
            raise
        state.done, state.result = True, result
        return result

    _guard.depth += 1
    _guard.calls.append(state)
    try:
        try:
            return wrapper(call_original, *args, **kwargs)
        except BaseException as exc:
            if state.error is not None:
                if exc is state.error:
                    raise
                # Autolog code failed while handling the library's error: the user gets theirs.
                _report(integration, config, exc)
                raise state.error from None
            if not isinstance(exc, Exception):
                raise
            _report(integration, config, exc)
            if state.done:
                return state.result
            return original(*args, **kwargs)
    finally:
        _guard.calls.pop()
        _guard.depth -= 1


def _report(integration: str, config: AutologConfig, exc: BaseException) -> None:
    if not config.silent:
        log.warning("Encountered unexpected error during %s autologging: %s", integration, exc)
    log.debug("%s autologging failure", integration, exc_info=exc)


def _make_patched(patch: _Patch, original: Callable[..., Any]) -> Callable[..., Any]:
    integration = patch.integration

    @functools.wraps(original)
    def patched(*args: Any, **kwargs: Any) -> Any:
        config = get_config(integration)
        if config is None or (_guard.depth > 0 and not patch.nested) or _excluded(config):
            return original(*args, **kwargs)
        return _run_wrapper(integration, config, patch.wrapper, original, args, kwargs)

    setattr(patched, _ORIGINAL_ATTR, original)
    setattr(patched, _INTEGRATION_ATTR, integration)
    return patched


def _unwrap(fn: Any, integration: str) -> Any:
    """The genuine function under this integration's patch (an inherited, patched base method)."""
    while getattr(fn, _INTEGRATION_ATTR, None) == integration:
        fn = getattr(fn, _ORIGINAL_ATTR)
    return fn


def _lookup(owner: Any, name: str) -> tuple[Any, Any]:
    """(the attribute as stored, the owner's own stored attribute or _MISSING)."""
    if isinstance(owner, ModuleType):
        raw = getattr(owner, name)
        return raw, vars(owner).get(name, _MISSING)
    for klass in inspect.getmro(owner):
        if name in vars(klass):
            return vars(klass)[name], vars(owner).get(name, _MISSING)
    raise AttributeError(f"{owner!r} has no attribute {name!r}")


def _replacement(patch: _Patch, raw: Any) -> Any:
    if isinstance(raw, staticmethod):
        return staticmethod(_make_patched(patch, _unwrap(raw.__func__, patch.integration)))
    if isinstance(raw, classmethod):
        return classmethod(_make_patched(patch, _unwrap(raw.__func__, patch.integration)))
    if inspect.isfunction(raw) or inspect.isbuiltin(raw):
        return _make_patched(patch, _unwrap(raw, patch.integration))
    fn = getattr(raw, "fn", None)
    if hasattr(raw, "__get__") and callable(fn):
        # A descriptor holding the function (scikit-learn's ``available_if``): patch a copy.
        descriptor = copy.copy(raw)
        descriptor.fn = _make_patched(patch, _unwrap(fn, patch.integration))
        return descriptor
    raise InvalidParameterValue(
        f"Cannot patch {getattr(patch.owner, '__name__', patch.owner)}.{patch.name}: "
        f"unsupported attribute type {type(raw).__name__}."
    )


def safe_patch(
    integration: str,
    owner: type | ModuleType,
    name: str,
    wrapper: Callable[..., Any],
    *,
    nested: bool = False,
) -> None:
    """Patch ``owner.name`` so that, while ``integration`` is enabled, calls run
    ``wrapper(original, *args, **kwargs)`` (for a method, ``args[0]`` is the instance).

    Idempotent: patching the same attribute again for the same integration only swaps in the new
    ``wrapper``. ``nested=True`` also runs the wrapper for calls nested in another autologged call.
    Raises InvalidParameterValue for attributes that are not functions, static/class methods or
    function-holding descriptors (scikit-learn's ``available_if``).
    """
    with _lock:
        key = (integration, owner, name)
        existing = _patches.get(key)
        if existing is not None:
            existing.wrapper, existing.nested = wrapper, nested
            return
        raw, saved = _lookup(owner, name)
        patch = _Patch(integration, owner, name, saved, None, wrapper, nested)
        patch.replacement = _replacement(patch, raw)
        setattr(owner, name, patch.replacement)
        _patches[key] = patch


def revert_patches(integration: str) -> None:
    """Put back every attribute the integration patched."""
    with _lock:
        keys = [key for key in _patches if key[0] == integration]
        for key in reversed(keys):
            patch = _patches.pop(key)
            if patch.saved is _MISSING:
                if vars(patch.owner).get(patch.name) is patch.replacement:
                    delattr(patch.owner, patch.name)
            else:
                setattr(patch.owner, patch.name, patch.saved)


def is_patched(integration: str, owner: type | ModuleType, name: str) -> bool:
    """Whether ``integration`` has a patch installed on ``owner.name``."""
    return (integration, owner, name) in _patches
