"""autolog_run: reuse the active run or manage one; FAILED when training raises."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import runyard
from runyard.autolog.config import AutologConfig, get_config, set_config
from runyard.autolog.patching import revert_patches, safe_patch
from runyard.autolog.runs import AUTOLOGGING_TAG, autolog_run, resolve_tags
from runyard.errors import InvalidParameterValue

INTEGRATION = "runs-test"


class Booster:
    """Trains by adding; fails on negative rounds."""

    def train(self, rounds: int) -> int:
        if rounds < 0:
            raise ValueError("rounds must be >= 0")
        return rounds + 1


def _log_wrapper(original: Any, self: Any, rounds: int) -> Any:
    config = get_config(INTEGRATION)
    assert config is not None
    with autolog_run(INTEGRATION, config):
        runyard.log_param("rounds", rounds)
        result = original(self, rounds)
        runyard.log_metric("result", result)
        if rounds == 13:
            raise RuntimeError("autolog bug after training")
    return result


@pytest.fixture
def patched(tracking_env: str) -> Iterator[None]:
    set_config(INTEGRATION, AutologConfig(extra_tags={"team": "vision", "ver": 2}))
    safe_patch(INTEGRATION, Booster, "train", _log_wrapper)
    yield
    set_config(INTEGRATION, AutologConfig(disable=True))
    revert_patches(INTEGRATION)


def test_creates_tags_and_finishes_its_own_run(patched: None) -> None:
    assert Booster().train(3) == 4
    assert runyard.active_run() is None
    run = runyard.last_active_run()
    assert run is not None
    assert run.info.status == "FINISHED"
    assert run.data.tags[AUTOLOGGING_TAG] == INTEGRATION
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["ver"] == "2"
    assert run.data.params == {"rounds": "3"}
    assert run.data.metrics == {"result": 4.0}


def test_reuses_the_active_run_and_leaves_it_open(patched: None) -> None:
    with runyard.start_run() as user_run:
        Booster().train(2)
        active = runyard.active_run()
        assert active is not None
        assert active.info.run_id == user_run.info.run_id
    run = runyard.get_run(user_run.info.run_id)
    assert run.info.status == "FINISHED"
    assert AUTOLOGGING_TAG not in run.data.tags
    assert "team" not in run.data.tags
    assert run.data.metrics == {"result": 3.0}


def test_failing_training_ends_the_run_failed_and_reraises(patched: None) -> None:
    with pytest.raises(ValueError, match="rounds must be >= 0"):
        Booster().train(-1)
    assert runyard.active_run() is None
    run = runyard.last_active_run()
    assert run is not None
    assert run.info.status == "FAILED"
    assert run.data.params == {"rounds": "-1"}


def test_autolog_failure_after_training_ends_finished(
    patched: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        assert Booster().train(13) == 14
    run = runyard.last_active_run()
    assert run is not None
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"result": 14.0}
    assert "autolog bug after training" in caplog.text


def test_run_ended_inside_the_block_is_not_ended_twice(tracking_env: str) -> None:
    with autolog_run(INTEGRATION, AutologConfig()) as run:
        runyard.end_run("KILLED")
    assert runyard.get_run(run.info.run_id).info.status == "KILLED"
    assert runyard.active_run() is None


def test_resolve_tags(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runyard.autolog"):
        tags = resolve_tags("sklearn", {AUTOLOGGING_TAG: "other", "a": 1})
    assert tags == {"a": "1", AUTOLOGGING_TAG: "sklearn"}
    assert "reserved tag" in caplog.text
    assert resolve_tags("xgboost", None) == {AUTOLOGGING_TAG: "xgboost"}
    with pytest.raises(InvalidParameterValue, match="Invalid `extra_tags` type"):
        resolve_tags("sklearn", ["a"])  # type: ignore[arg-type]
