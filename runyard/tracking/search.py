"""Fluent ``search_runs``: every page, as a pandas DataFrame (default) or a list of runs."""

from __future__ import annotations

from typing import Any

from runyard.entities import Run, ViewType
from runyard.errors import InvalidParameterValue
from runyard.tracking import fluent

__all__ = ["runs_to_dataframe", "search_runs"]

_PAGE = 1000


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = 100000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs matching ``filter_string`` across experiments (default: the active experiment)."""
    if output_format not in ("pandas", "list"):
        raise InvalidParameterValue(
            f"Unsupported output_format '{output_format}': use 'pandas' or 'list'."
        )
    client = fluent._client()
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            ids.append(exp.experiment_id)
    if not ids and not experiment_names:
        if search_all_experiments:
            ids = [e.experiment_id for e in fluent.search_experiments(ViewType.ALL)]
        else:
            ids = [fluent.active_experiment_id()]
    runs: list[Run] = []
    token = None
    while ids and len(runs) < max_results:
        page = client.search_runs(
            ids,
            filter_string,
            run_view_type,
            min(_PAGE * 10, max_results - len(runs)),
            order_by,
            token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs if output_format == "list" else runs_to_dataframe(runs)


def runs_to_dataframe(runs: list[Run]) -> Any:
    """MLflow's search_runs frame: info columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
    import pandas as pd

    info_cols = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    records: list[dict[str, Any]] = []
    metric_keys: set[str] = set()
    param_keys: set[str] = set()
    tag_keys: set[str] = set()
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": info.start_time,
            "end_time": info.end_time,
        }
        for prefix, values, keys in (
            ("metrics.", run.data.metrics, metric_keys),
            ("params.", run.data.params, param_keys),
            ("tags.", run.data.tags, tag_keys),
        ):
            for key, value in values.items():
                row[prefix + key] = value
                keys.add(prefix + key)
        records.append(row)
    columns = info_cols + sorted(metric_keys) + sorted(param_keys) + sorted(tag_keys)
    frame = pd.DataFrame.from_records(records, columns=columns)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    for col in metric_keys:
        frame[col] = frame[col].astype("float64")
    return frame
