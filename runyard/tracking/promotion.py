"""Promotion gates: a model version moves to a stage or alias only when its source run meets
conditions written in the run search grammar (``metrics.auc >= 0.9``, ``params.data = 'v3'``).

Each condition is checked by the store itself (a ``search_runs`` restricted to the version's run),
so it means exactly what it means in ``runyard.search_runs``. The values the conditions were
checked against are returned as evidence and kept in the registry history.
"""

from __future__ import annotations

from typing import Any, Protocol

from runyard.entities import ModelVersion, PagedList, Run, ViewType
from runyard.errors import InvalidParameterValue, InvalidState
from runyard.store.search.grammar import Comparison, parse_run_filter

__all__ = ["PromotionRefused", "check_requirements"]


class PromotionRefused(InvalidState):
    """A gated promotion whose conditions the version's run does not meet."""

    def __init__(self, message: str, failed: list[str]) -> None:
        super().__init__(message)
        self.failed = failed


class _RunSearcher(Protocol):
    def get_run(self, run_id: str) -> Run: ...

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]: ...


def _actual_value(run: Run, clause: Comparison) -> Any:
    if clause.entity == "metric":
        return run.data.metrics.get(clause.key)
    if clause.entity == "param":
        return run.data.params.get(clause.key)
    if clause.entity == "tag":
        return run.data.tags.get(clause.key)
    if clause.entity == "attribute":
        return getattr(run.info, clause.key, None)
    return None


def check_requirements(
    client: _RunSearcher, version: ModelVersion, require: list[str]
) -> dict[str, Any] | None:
    """Check every condition against the version's source run.

    Returns:
        The evidence (run id, each condition with the value it was checked against), or None
        when there are no conditions.

    Raises:
        PromotionRefused: naming every condition that failed (all are checked, not just the first).
        InvalidParameterValue: a condition that is not valid search syntax, or a version
            without a source run.
    """
    if not require:
        return None
    if not version.run_id:
        raise InvalidParameterValue(
            f"Version {version.version} of model '{version.name}' has no source run, "
            "so conditions on its metrics cannot be checked."
        )
    run = client.get_run(version.run_id)
    checks = []
    failed = []
    for condition in require:
        clauses = parse_run_filter(condition)  # raises on bad syntax, naming the problem
        if not clauses:
            raise InvalidParameterValue(f"Empty promotion condition: '{condition}'.")
        found = client.search_runs(
            [run.info.experiment_id],
            f"attributes.run_id = '{run.info.run_id}' AND {condition}",
            ViewType.ALL,
            max_results=1,
        )
        passed = len(found) == 1
        values = {f"{c.entity}s.{c.key}": _actual_value(run, c) for c in clauses}
        checks.append({"condition": condition, "passed": passed, "values": values})
        if not passed:
            shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            failed.append(f"{condition} (got {shown})")
    if failed:
        raise PromotionRefused(
            f"Version {version.version} of model '{version.name}' (run {run.info.run_id}) "
            f"does not meet: {'; '.join(failed)}",
            failed,
        )
    return {"run_id": run.info.run_id, "requirements": checks}
