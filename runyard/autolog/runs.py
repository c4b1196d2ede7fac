"""The run an autologged training call logs into: the active one, or one autologging manages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runyard.autolog.config import AutologConfig
from runyard.autolog.patching import current_call, register_autolog_run
from runyard.entities import RunStatus
from runyard.errors import InvalidParameterValue
from runyard.tracking import fluent

__all__ = ["AUTOLOGGING_TAG", "autolog_run", "check_extra_tags", "resolve_tags"]

#: MLflow's tag naming the integration that created a run.
AUTOLOGGING_TAG = "mlflow.autologging"

log = logging.getLogger("runyard.autolog")


def check_extra_tags(extra_tags: object) -> None:
    """MLflow's refusal of an ``extra_tags`` that is not a dict (raised by ``autolog()``)."""
    if extra_tags is not None and not isinstance(extra_tags, dict):
        raise InvalidParameterValue(
            "Invalid `extra_tags` type: expecting dictionary, "
            f"received `{type(extra_tags).__name__}`"
        )


def resolve_tags(integration: str, extra_tags: dict[str, Any] | None) -> dict[str, str]:
    """The tags of a run autologging creates: ``mlflow.autologging`` plus ``extra_tags``."""
    check_extra_tags(extra_tags)
    tags = {k: str(v) for k, v in (extra_tags or {}).items() if k != AUTOLOGGING_TAG}
    if extra_tags and AUTOLOGGING_TAG in extra_tags:
        log.warning("Tag `%s` is ignored as it is a reserved tag by autologging.", AUTOLOGGING_TAG)
    tags[AUTOLOGGING_TAG] = integration
    return tags


@contextmanager
def autolog_run(integration: str, config: AutologConfig) -> Iterator[fluent.ActiveRun]:
    """Yield the active run, or start one (tagged ``mlflow.autologging=<integration>`` and
    ``extra_tags``) and end it when the block ends.

    A run started here ends FINISHED, or FAILED when the training call raised (or never
    finished); the exception is re-raised unchanged. When autolog code failed after training
    succeeded, the run still ends FINISHED and the error propagates to ``safe_patch``, which
    logs it and returns the training result.
    """
    active = fluent.active_run()
    if active is not None:
        yield active
        return
    run = fluent.start_run(tags=resolve_tags(integration, config.extra_tags))
    register_autolog_run(run.info.run_id)
    log.info(
        "Created autologging run with ID '%s', which will track hyperparameters, performance "
        "metrics, model artifacts, and lineage information for the current %s workflow",
        run.info.run_id,
        integration,
    )
    try:
        yield run
    except BaseException as exc:
        call = current_call()
        trained = call is not None and call.done and call.error is not exc
        _end(run, RunStatus.FINISHED if trained else RunStatus.FAILED)
        raise
    _end(run, RunStatus.FINISHED)


def _end(run: fluent.ActiveRun, status: int) -> None:
    current = fluent.active_run()
    # Code inside the block may have ended the run itself; end only ours, and only once.
    if current is not None and current.info.run_id == run.info.run_id:
        fluent.end_run(RunStatus.to_string(status))
