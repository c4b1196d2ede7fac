"""safe_patch: the guarantees autologging makes to the training code it wraps."""

from __future__ import annotations

import inspect
import logging
import threading
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import runyard
from runyard.autolog.config import AutologConfig, set_config
from runyard.autolog.patching import (
    capture_warnings,
    current_call,
    is_outermost,
    is_patched,
    nested_call,
    revert_patches,
    safe_patch,
)
from runyard.errors import InvalidParameterValue

INTEGRATION = "patching-test"


class Trainer:
    """A small training class of the kind autologging patches."""

    def __init__(self) -> None:
        self.fitted = 0

    def fit(self, x: int, scale: int = 2) -> int:
        """Train; negative data is refused the way libraries refuse bad input."""
        if x < 0:
            raise ValueError("negative data")
        self.fitted += 1
        return x * scale

    @staticmethod
    def version() -> str:
        return "1.0"

    @classmethod
    def create(cls) -> Trainer:
        return cls()

    @property
    def size(self) -> int:
        return 3


class SubTrainer(Trainer):
    """Calls the parent's fit, as Pipeline.fit calls step.fit."""

    def fit(self, x: int, scale: int = 2) -> int:
        return super().fit(x, scale) + 1


class Inherits(Trainer):
    """Inherits fit without overriding it."""


@pytest.fixture
def enabled() -> Iterator[AutologConfig]:
    config = AutologConfig()
    set_config(INTEGRATION, config)
    yield config
    set_config(INTEGRATION, AutologConfig(disable=True))
    revert_patches(INTEGRATION)


def recording_wrapper(calls: list[tuple[Any, ...]]) -> Any:
    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((type(self).__name__, args, kwargs, is_outermost()))
        return original(self, *args, **kwargs)

    return wrapper


def test_wrapper_receives_original_and_arguments(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(calls))
    trainer = Trainer()
    assert trainer.fit(3, scale=5) == 15
    assert calls == [("Trainer", (3,), {"scale": 5}, True)]
    assert trainer.fitted == 1
    assert is_patched(INTEGRATION, Trainer, "fit")


def test_disabled_integration_calls_the_original_only(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(calls))
    set_config(INTEGRATION, AutologConfig(disable=True))
    assert Trainer().fit(2) == 4
    assert calls == []
    set_config(INTEGRATION, AutologConfig())
    assert Trainer().fit(2) == 4
    assert len(calls) == 1


def test_autolog_failure_after_training_returns_the_result(
    enabled: AutologConfig, caplog: pytest.LogCaptureFixture
) -> None:
    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)
        raise RuntimeError("metric upload broke")

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    trainer = Trainer()
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        assert trainer.fit(4) == 8
    assert trainer.fitted == 1  # trained once, not again
    assert "Encountered unexpected error during patching-test autologging" in caplog.text
    assert "metric upload broke" in caplog.text


def test_autolog_failure_before_training_still_trains(
    enabled: AutologConfig, caplog: pytest.LogCaptureFixture
) -> None:
    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("params")

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    trainer = Trainer()
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        assert trainer.fit(4) == 8
    assert trainer.fitted == 1
    assert "params" in caplog.text


def test_silent_hides_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    set_config(INTEGRATION, AutologConfig(silent=True))
    try:

        def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("quiet please")

        safe_patch(INTEGRATION, Trainer, "fit", wrapper)
        with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
            assert Trainer().fit(1) == 2
        assert "quiet please" not in caplog.text
    finally:
        set_config(INTEGRATION, AutologConfig(disable=True))
        revert_patches(INTEGRATION)


def test_library_exception_propagates_unchanged(enabled: AutologConfig) -> None:
    seen: list[BaseException] = []

    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except ValueError as exc:
            seen.append(exc)
            raise

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    with pytest.raises(ValueError, match="negative data") as info:
        Trainer().fit(-1)
    assert info.value is seen[0]


def test_library_exception_wins_over_a_failing_handler(
    enabled: AutologConfig, caplog: pytest.LogCaptureFixture
) -> None:
    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except ValueError:
            raise RuntimeError("cleanup failed") from None

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    with (
        caplog.at_level(logging.WARNING, logger="runyard.autolog"),
        pytest.raises(ValueError, match="negative data"),
    ):
        Trainer().fit(-1)
    assert "cleanup failed" in caplog.text


def test_keyboard_interrupt_in_autolog_code_is_not_swallowed(enabled: AutologConfig) -> None:
    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    with pytest.raises(KeyboardInterrupt):
        Trainer().fit(1)


def test_only_the_outermost_call_runs_the_wrapper(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    wrapper = recording_wrapper(calls)
    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    safe_patch(INTEGRATION, SubTrainer, "fit", wrapper)
    assert SubTrainer().fit(2) == 5
    assert calls == [("SubTrainer", (2,), {}, True)]


def test_nested_patches_see_they_are_not_outermost(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    wrapper = recording_wrapper(calls)
    safe_patch(INTEGRATION, Trainer, "fit", wrapper, nested=True)
    safe_patch(INTEGRATION, SubTrainer, "fit", wrapper)
    assert SubTrainer().fit(2) == 5
    assert calls == [("SubTrainer", (2,), {}, True), ("SubTrainer", (2, 2), {}, False)]


def test_nested_call_block_runs_originals(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    nested_calls: list[tuple[Any, ...]] = []
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(calls))
    safe_patch(INTEGRATION, SubTrainer, "fit", recording_wrapper(nested_calls), nested=True)
    with nested_call():
        assert Trainer().fit(1) == 2
        with nested_call():
            assert SubTrainer().fit(1) == 3
    assert calls == []
    assert nested_calls == [("SubTrainer", (1,), {}, False)]
    assert is_outermost()


def test_guard_is_per_thread(enabled: AutologConfig) -> None:
    calls: list[tuple[Any, ...]] = []
    inner_done = threading.Event()

    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        if threading.current_thread() is threading.main_thread():
            worker = threading.Thread(target=lambda: Trainer().fit(1), name="worker")
            worker.start()
            worker.join()
            inner_done.set()
        return original(self, *args, **kwargs)

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    Trainer().fit(1)
    assert inner_done.is_set()
    assert sorted(calls) == ["MainThread", "worker"]


def test_current_call_tracks_the_original(enabled: AutologConfig) -> None:
    states: list[Any] = []

    def wrapper(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        state = current_call()
        assert state is not None
        states.append((state.called, state.done))
        result = original(self, *args, **kwargs)
        states.append((state.called, state.done, state.result))
        return result

    safe_patch(INTEGRATION, Trainer, "fit", wrapper)
    Trainer().fit(3)
    assert states == [(False, False), (True, True, 6)]
    assert current_call() is None


def test_patching_twice_swaps_the_wrapper(enabled: AutologConfig) -> None:
    first: list[tuple[Any, ...]] = []
    second: list[tuple[Any, ...]] = []
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(first))
    patched = Trainer.fit
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(second))
    assert Trainer.fit is patched
    Trainer().fit(1)
    assert (len(first), len(second)) == (0, 1)


def test_revert_restores_own_and_inherited_attributes(enabled: AutologConfig) -> None:
    original_fit = Trainer.__dict__["fit"]
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper([]))
    safe_patch(INTEGRATION, Inherits, "fit", recording_wrapper([]))
    assert "fit" in Inherits.__dict__
    # The subclass wraps the genuine function, not the parent's patch.
    assert Inherits.__dict__["fit"].__runyard_original__ is original_fit
    revert_patches(INTEGRATION)
    assert Trainer.__dict__["fit"] is original_fit
    assert "fit" not in Inherits.__dict__
    assert not is_patched(INTEGRATION, Trainer, "fit")


def test_patched_function_keeps_name_and_signature(enabled: AutologConfig) -> None:
    safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper([]))
    assert Trainer.fit.__name__ == "fit"
    assert list(inspect.signature(Trainer.fit).parameters) == ["self", "x", "scale"]


def test_static_and_class_methods(enabled: AutologConfig) -> None:
    seen: list[str] = []

    def wrapper(original: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(original.__name__)
        return original(*args, **kwargs)

    safe_patch(INTEGRATION, Trainer, "version", wrapper)
    safe_patch(INTEGRATION, Trainer, "create", wrapper)
    assert Trainer.version() == "1.0"
    assert isinstance(Trainer.create(), Trainer)
    assert isinstance(SubTrainer.create(), SubTrainer)
    assert seen == ["version", "create", "create"]


def test_properties_are_refused(enabled: AutologConfig) -> None:
    with pytest.raises(InvalidParameterValue, match="unsupported attribute type property"):
        safe_patch(INTEGRATION, Trainer, "size", recording_wrapper([]))
    assert Trainer().size == 3


def test_available_if_descriptor(enabled: AutologConfig) -> None:
    from sklearn.utils.metaestimators import available_if

    class Model:
        def __init__(self, ready: bool) -> None:
            self.ready = ready

        @available_if(lambda self: self.ready)
        def predict(self, x: int) -> int:
            return x + 1

    calls: list[tuple[Any, ...]] = []
    safe_patch(INTEGRATION, Model, "predict", recording_wrapper(calls))
    assert Model(True).predict(1) == 2
    assert not hasattr(Model(False), "predict")
    assert calls == [("Model", (1,), {}, True)]


def test_module_function(enabled: AutologConfig) -> None:
    lib = types.ModuleType("fake_lib")

    def train(params: dict[str, int], rounds: int = 10) -> int:
        return params["depth"] * rounds

    lib.train = train  # type: ignore[attr-defined]
    seen: list[Any] = []

    def wrapper(original: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("rounds"))
        return original(*args, **kwargs)

    safe_patch(INTEGRATION, lib, "train", wrapper)
    assert lib.train({"depth": 3}, rounds=2) == 6
    assert seen == [2]
    revert_patches(INTEGRATION)
    assert lib.train is train


def test_exclusive_skips_user_runs(tracking_env: str) -> None:
    calls: list[tuple[Any, ...]] = []
    set_config(INTEGRATION, AutologConfig(exclusive=True))
    try:
        safe_patch(INTEGRATION, Trainer, "fit", recording_wrapper(calls))
        with runyard.start_run():
            assert Trainer().fit(1) == 2
        assert calls == []
        Trainer().fit(1)
        assert len(calls) == 1
    finally:
        set_config(INTEGRATION, AutologConfig(disable=True))
        revert_patches(INTEGRATION)


def test_capture_warnings_turns_warnings_into_log_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        with capture_warnings():
            warnings.warn("ill-defined metric", UserWarning, stacklevel=1)
        with capture_warnings(silent=True):
            warnings.warn("hidden", UserWarning, stacklevel=1)
    assert "UserWarning: ill-defined metric" in caplog.text
    assert "hidden" not in caplog.text
