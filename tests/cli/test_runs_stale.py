"""``runyard runs list --stale AGE`` and ``runyard runs mark-stale``: runs whose process died."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from click.testing import Result

from runyard.cli.runs import parse_age
from runyard.tracking.client import Client
from runyard.utils.time import now_ms
from tests.live_server import TrackingServer, tracking_server  # noqa: F401  (fixture)

Invoke = Callable[..., Result]
HOUR = 3_600_000
MINUTE = 60_000


def _runs(client: Client) -> tuple[str, str, dict[str, str]]:
    """Two experiments; in the first: a RUNNING run silent for 2 h (metrics), one silent since
    its start 90 min ago (no metrics), one started 3 h ago that logged a minute ago, a fresh
    one, and a finished old one; in the second, one more silent run."""
    now = now_ms()
    tag = uuid.uuid4().hex[:8]  # the REST test shares its server with other tests
    exp = client.create_experiment(f"stale-{tag}")
    other = client.create_experiment(f"other-{tag}")
    ids: dict[str, str] = {}

    def run(name: str, experiment: str, start: int, metric_at: int | None) -> str:
        run_id = client.create_run(experiment, start_time=start, run_name=name).info.run_id
        if metric_at is not None:
            client.log_metric(run_id, "loss", 0.5, timestamp=metric_at - MINUTE, step=0)
            client.log_metric(run_id, "loss", 0.4, timestamp=metric_at, step=1)
        ids[name] = run_id
        return run_id

    run("silent", exp, now - 3 * HOUR, now - 2 * HOUR)
    run("never-logged", exp, now - 90 * MINUTE, None)
    run("alive", exp, now - 3 * HOUR, now - MINUTE)
    run("fresh", exp, now - 5 * MINUTE, None)
    client.set_terminated(run("done", exp, now - 5 * HOUR, now - 4 * HOUR), "FINISHED")
    run("elsewhere", other, now - 4 * HOUR, None)
    return exp, other, ids


def _json(result: Result) -> list[dict[str, object]]:
    assert result.exit_code == 0, result.output
    doc: list[dict[str, object]] = json.loads(result.stdout)
    return doc


def _names(doc: list[dict[str, object]]) -> list[str]:
    return [str(run["info"]["run_name"]) for run in doc]  # type: ignore[index]


def test_parse_age() -> None:
    assert parse_age("90s") == 90_000
    assert parse_age("1h30m") == 90 * MINUTE
    assert parse_age("2d") == 48 * HOUR
    assert parse_age("1.5h") == 90 * MINUTE
    assert parse_age(" 1W ") == 7 * 24 * HOUR
    for bad in ("", "1", "h", "1x", "1h-2m", "-1h"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_age(bad)


def test_list_shows_running_runs_silent_for_longer_than_the_age(
    cli: Invoke, client: Client
) -> None:
    exp, _, ids = _runs(client)
    doc = _json(cli("runs", "list", "-e", exp, "--stale", "1h", "--output", "json"))
    assert _names(doc) == ["silent", "never-logged"]  # oldest activity first
    silent = client.get_run(ids["silent"])
    assert doc[0]["last_activity"] == silent.data.metric_objs[0].timestamp
    assert doc[1]["last_activity"] == client.get_run(ids["never-logged"]).info.start_time
    assert _names(_json(cli("runs", "list", "-e", exp, "--stale", "100m", "--output", "json"))) == [
        "silent"
    ]
    assert _names(_json(cli("runs", "list", "-e", exp, "--stale", "30s", "--output", "json"))) == [
        "silent",
        "never-logged",
        "fresh",
        "alive",
    ]
    # Combined with a filter.
    result = cli("runs", "list", "-e", exp, "--stale", "1h", "--filter", "metrics.loss < 1")
    table = result.stdout
    assert result.exit_code == 0, result.output
    assert "Last activity" in table
    assert ids["silent"] in table
    assert ids["never-logged"] not in table


def test_mark_stale_dry_run_changes_nothing(cli: Invoke, client: Client) -> None:
    exp, other, ids = _runs(client)
    result = cli("runs", "mark-stale", "--older-than", "1h", "--dry-run")
    assert result.exit_code == 0, result.output
    for name in ("silent", "never-logged", "elsewhere"):
        assert ids[name] in result.stdout
    assert "Would mark 3 stale run(s) as KILLED." in result.stderr
    statuses = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert statuses == {n: "FINISHED" if n == "done" else "RUNNING" for n in ids}


def test_mark_stale_ends_silent_runs_at_their_last_activity(cli: Invoke, client: Client) -> None:
    exp, other, ids = _runs(client)
    before = {name: client.get_run(run_id) for name, run_id in ids.items()}
    doc = _json(cli("runs", "mark-stale", "--older-than", "1h", "--output", "json"))
    assert sorted(_names(doc)) == ["elsewhere", "never-logged", "silent"]
    after = {name: client.get_run(run_id).info for name, run_id in ids.items()}
    for name in ("silent", "never-logged", "elsewhere"):
        assert after[name].status == "KILLED"
    assert after["silent"].end_time == before["silent"].data.metric_objs[0].timestamp
    assert after["never-logged"].end_time == before["never-logged"].info.start_time
    assert after["alive"].status == after["fresh"].status == "RUNNING"
    assert after["done"].status == "FINISHED"
    assert after["done"].end_time == before["done"].info.end_time
    # Run again: nothing is left to mark.
    again = cli("runs", "mark-stale", "--older-than", "1h")
    assert again.exit_code == 0, again.output
    assert "Marked 0 stale run(s) as KILLED." in again.stderr


def test_mark_stale_in_one_experiment_as_failed(cli: Invoke, client: Client) -> None:
    exp, other, ids = _runs(client)
    result = cli("runs", "mark-stale", "--older-than", "1h", "-e", other, "--status", "failed")
    assert result.exit_code == 0, result.output
    assert "Marked 1 stale run(s) as FAILED." in result.stderr
    assert client.get_run(ids["elsewhere"]).info.status == "FAILED"
    assert client.get_run(ids["silent"]).info.status == "RUNNING"


def test_bad_ages_and_unknown_experiments_are_usage_errors(cli: Invoke, client: Client) -> None:
    exp, _, _ = _runs(client)
    result = cli("runs", "list", "-e", exp, "--stale", "soon")
    assert result.exit_code == 2
    assert "'soon' is not a duration" in result.output
    result = cli("runs", "mark-stale", "--older-than", "1 hour")
    assert result.exit_code == 2
    assert cli("runs", "mark-stale", "--older-than", "1h", "-e", "999").exit_code == 1
    assert "--status" in cli("runs", "mark-stale", "--older-than", "1h", "--status", "X").output


@pytest.mark.slow
def test_stale_runs_over_rest(
    cli: Invoke,
    tracking_server: TrackingServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same against a tracking server: last activity comes from the metric timestamps the
    server sends with each run."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    client = Client(tracking_server.url)
    exp, other, ids = _runs(client)
    doc = _json(cli("runs", "list", "-e", exp, "--stale", "1h", "--output", "json"))
    assert _names(doc) == ["silent", "never-logged"]
    result = cli("runs", "mark-stale", "--older-than", "1h", "-e", exp, "-e", other)
    assert result.exit_code == 0, result.output
    assert "Marked 3 stale run(s) as KILLED." in result.stderr
    assert client.get_run(ids["silent"]).info.status == "KILLED"
    assert client.get_run(ids["alive"]).info.status == "RUNNING"
