"""``runyard models list|versions|register|transition|alias|history|promote``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from runyard.protocol.registry_codec import (
    model_version_to_json,
    registered_model_to_json,
    registry_event_to_json,
)
from runyard.tracking.client import Client
from runyard.tracking.context import current_user

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


@pytest.fixture
def run_id(client: Client) -> str:
    """A finished training run: auc 0.92, latency_ms 40."""
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "auc", 0.92)
    client.log_metric(run_id, "latency_ms", 40)
    client.set_terminated(run_id)
    return run_id


@pytest.fixture
def fraud(client: Client, run_id: str) -> str:
    """``fraud`` v1-v3 from ``run_id``; v2 in Production with alias champion. Also ``churn``."""
    client.create_registered_model("fraud")
    for number in (1, 2, 3):
        client.create_model_version("fraud", f"/models/fraud/{number}", run_id)
    client.transition_model_version_stage("fraud", 2, "Production")
    client.set_registered_model_alias("fraud", "champion", 2)
    client.create_registered_model("churn")
    return "fraud"


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _rows(stdout: str) -> list[list[str]]:
    """The table's body rows, split on runs of two or more spaces."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()[2:] if line.strip()]


# -- list -----------------------------------------------------------------------------------------
def test_list_table(cli: Invoke, fraud: str) -> None:
    stdout = _ok(cli("models", "list"))
    assert stdout.splitlines()[0].split() == ["Name", "Latest", "versions", "Aliases", "Updated"]
    rows = _rows(stdout)
    assert [row[0] for row in rows] == ["churn", "fraud"]
    assert rows[1][1:3] == ["None: v3, Production: v2", "@champion → v2"]


def test_list_json_matches_store(cli: Invoke, client: Client, fraud: str) -> None:
    listed = json.loads(_ok(cli("models", "list", "--output", "json")))
    assert listed == [
        registered_model_to_json(client.get_registered_model(name)) for name in ("churn", "fraud")
    ]
    assert listed[1]["aliases"] == [{"alias": "champion", "version": "2"}]


def test_list_filter_and_max_results(cli: Invoke, fraud: str) -> None:
    found = json.loads(
        _ok(cli("models", "list", "--filter", "name LIKE 'fr%'", "--output", "json"))
    )
    assert [m["name"] for m in found] == ["fraud"]
    result = cli("models", "list", "--max-results", "1", "--output", "json")
    assert [m["name"] for m in json.loads(_ok(result))] == ["churn"]
    assert result.stderr == "Showing the first 1; pass --max-results to see more.\n"


def test_list_bad_filter_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("models", "list", "--filter", "name >> 'x'"), "Invalid comparison clause")


# -- versions -------------------------------------------------------------------------------------
def test_versions_table_newest_first(cli: Invoke, fraud: str, run_id: str) -> None:
    stdout = _ok(cli("models", "versions", "fraud"))
    header = stdout.splitlines()[0].split()
    assert header == ["Version", "Stage", "Aliases", "Run", "ID", "Source", "Created"]
    rows = _rows(stdout)
    assert [row[:2] for row in rows] == [["3", "None"], ["2", "Production"], ["1", "None"]]
    assert rows[1][2:5] == ["@champion", run_id, "/models/fraud/2"]


def test_versions_json_and_limit(cli: Invoke, client: Client, fraud: str) -> None:
    listed = json.loads(_ok(cli("models", "versions", "fraud", "--output", "json")))
    assert listed == [model_version_to_json(client.get_model_version("fraud", v)) for v in "321"]
    result = cli("models", "versions", "fraud", "--max-results", "2", "--output", "json")
    assert [v["version"] for v in json.loads(_ok(result))] == ["3", "2"]
    assert "Showing the first 2" in result.stderr


def test_versions_of_unknown_model(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("models", "versions", "nope"), "Registered Model with name=nope not found")


def test_versions_of_a_model_without_versions(cli: Invoke, fraud: str) -> None:
    assert json.loads(_ok(cli("models", "versions", "churn", "--output", "json"))) == []


# -- register -------------------------------------------------------------------------------------
def test_register_a_logged_model(cli: Invoke, client: Client, run_id: str) -> None:
    model = client.create_logged_model("0", "net", run_id)
    client.finalize_logged_model(model.model_id, "READY")
    stdout = _ok(cli("models", "register", "-m", f"models:/{model.model_id}", "-n", "net"))
    assert stdout == "Registered version 1 of 'net'.\n"
    mv = client.get_model_version("net", 1)
    assert (mv.model_id, mv.run_id) == (model.model_id, run_id)
    stdout = _ok(
        cli("models", "register", "--model-uri", f"models:/{model.model_id}", "--name", "net")
    )
    assert stdout == "Registered version 2 of 'net'.\n"


def test_register_errors(cli: Invoke, user_error: ErrorCheck, usage_error: ErrorCheck) -> None:
    user_error(
        cli("models", "register", "-m", "models:/m-0123456789abcdef0123456789abcdef", "-n", "x"),
        "m-0123456789abcdef0123456789abcdef",
    )
    user_error(cli("models", "register", "-m", "models:/a/b/c", "-n", "x"), "models:/a/b/c")
    usage_error(cli("models", "register", "-n", "x"), "--model-uri")


# -- transition -----------------------------------------------------------------------------------
def test_transition(cli: Invoke, client: Client, fraud: str) -> None:
    stdout = _ok(cli("models", "transition", "fraud", "--version", "1", "--stage", "staging"))
    assert stdout == "Version 1 of 'fraud' is now in stage Staging.\n"
    assert client.get_model_version("fraud", 1).current_stage == "Staging"
    stdout = _ok(
        cli("models", "transition", "fraud", "-v", "3", "-s", "Production", "--archive-existing")
    )
    assert stdout == "Version 3 of 'fraud' is now in stage Production.\n"
    assert client.get_model_version("fraud", 2).current_stage == "Archived"


def test_transition_errors(
    cli: Invoke, client: Client, fraud: str, user_error: ErrorCheck, usage_error: ErrorCheck
) -> None:
    usage_error(cli("models", "transition", "fraud", "-v", "1", "-s", "Live"), "--stage")
    usage_error(cli("models", "transition", "fraud", "-s", "Staging"), "--version")
    user_error(cli("models", "transition", "nope", "-v", "1", "-s", "Staging"), "nope")
    user_error(cli("models", "transition", "fraud", "-v", "9", "-s", "Staging"), "version=9")
    assert client.get_model_version("fraud", 1).current_stage == "None"


# -- alias ----------------------------------------------------------------------------------------
def test_alias_set_and_delete(cli: Invoke, client: Client, fraud: str) -> None:
    stdout = _ok(cli("models", "alias", "set", "fraud", "champion", "--version", "3"))
    assert stdout == "Alias 'champion' of 'fraud' now points at version 3.\n"
    assert client.get_model_version_by_alias("fraud", "champion").version == "3"
    stdout = _ok(cli("models", "alias", "delete", "fraud", "champion"))
    assert stdout == "Alias 'champion' of 'fraud' deleted.\n"
    assert client.get_registered_model("fraud").aliases == {}


def test_alias_errors(
    cli: Invoke, fraud: str, user_error: ErrorCheck, usage_error: ErrorCheck
) -> None:
    user_error(cli("models", "alias", "set", "fraud", "x", "-v", "9"), "version=9")
    user_error(cli("models", "alias", "set", "nope", "x", "-v", "1"), "nope")
    user_error(cli("models", "alias", "delete", "nope", "x"), "nope")
    usage_error(cli("models", "alias", "set", "fraud", "x"), "--version")


# -- history --------------------------------------------------------------------------------------
def test_history_table(cli: Invoke, fraud: str) -> None:
    stdout = _ok(cli("models", "history", "fraud"))
    assert stdout.splitlines()[0].split() == ["When", "Who", "Action", "Change", "Evidence"]
    rows = _rows(stdout)
    assert [row[1:4] for row in rows] == [
        [current_user(), "create_version", "v1"],
        [current_user(), "create_version", "v2"],
        [current_user(), "create_version", "v3"],
        [current_user(), "transition_stage", "v2: None → Production"],
        [current_user(), "set_alias", "@champion → v2"],
    ]


def test_history_json_matches_store(cli: Invoke, client: Client, fraud: str) -> None:
    client.set_registered_model_alias("fraud", "champion", 3)
    client.delete_registered_model_alias("fraud", "champion")
    listed = json.loads(_ok(cli("models", "history", "fraud", "--output", "json")))
    assert listed == [
        registry_event_to_json(e) for e in client.get_registered_model_history("fraud")
    ]
    assert [e["action"] for e in listed][-2:] == ["set_alias", "delete_alias"]
    assert listed[-2]["previous_version"] == "2"
    rows = _rows(_ok(cli("models", "history", "fraud")))
    assert [row[3] for row in rows[-2:]] == [
        "@champion → v3 (was v2)",
        "@champion removed (was v3)",
    ]


def test_history_of_unknown_model(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("models", "history", "nope"), "nope")


# -- promote --------------------------------------------------------------------------------------
def test_promote_to_alias_with_conditions(
    cli: Invoke, client: Client, fraud: str, run_id: str
) -> None:
    result = cli(
        "models",
        "promote",
        "fraud",
        "--version",
        "3",
        "--alias",
        "champion",
        "--require",
        "metrics.auc >= 0.9",
        "--require",
        "metrics.latency_ms < 50",
    )
    assert _ok(result) == "Promoted version 3 of 'fraud' to alias 'champion' (2 conditions met).\n"
    assert client.get_model_version_by_alias("fraud", "champion").version == "3"
    event = json.loads(_ok(cli("models", "history", "fraud", "--output", "json")))[-1]
    assert event["action"] == "promote"
    assert event["previous_version"] == "2"
    assert event["evidence"]["run_id"] == run_id
    assert [c["condition"] for c in event["evidence"]["requirements"]] == [
        "metrics.auc >= 0.9",
        "metrics.latency_ms < 50",
    ]
    # the table shows the evidence too (a long cell wraps onto the next lines)
    promoted = [row for row in _rows(_ok(cli("models", "history", "fraud"))) if "promote" in row]
    assert len(promoted) == 1
    assert promoted[0][2:4] == ["promote", "@champion → v3 (was v2)"]
    assert promoted[0][4].startswith('[{"condition": "metrics.auc >= 0.9", "passed": true')


def test_promote_to_stage(cli: Invoke, client: Client, fraud: str) -> None:
    result = cli(
        "models",
        "promote",
        "fraud",
        "-v",
        "3",
        "--stage",
        "production",
        "--archive-existing",
        "--require",
        "metrics.auc > 0.5",
    )
    assert _ok(result) == "Promoted version 3 of 'fraud' to stage Production (1 condition met).\n"
    assert client.get_model_version("fraud", 3).current_stage == "Production"
    assert client.get_model_version("fraud", 2).current_stage == "Archived"
    assert _ok(cli("models", "promote", "fraud", "-v", "1", "--stage", "Staging")) == (
        "Promoted version 1 of 'fraud' to stage Staging.\n"
    )


def test_refused_promotion_exits_1_and_changes_nothing(
    cli: Invoke, client: Client, fraud: str, user_error: ErrorCheck
) -> None:
    before = list(client.get_registered_model_history("fraud"))
    result = cli(
        "models",
        "promote",
        "fraud",
        "-v",
        "3",
        "--alias",
        "champion",
        "--require",
        "metrics.auc >= 0.95",
        "--require",
        "metrics.latency_ms < 50",
    )
    user_error(result, "metrics.auc >= 0.95 (got metrics.auc = 0.92)")
    assert "latency_ms" not in result.stderr  # the condition that held is not named
    assert client.get_model_version_by_alias("fraud", "champion").version == "2"
    assert list(client.get_registered_model_history("fraud")) == before


def test_promote_errors(
    cli: Invoke, client: Client, fraud: str, user_error: ErrorCheck, usage_error: ErrorCheck
) -> None:
    both = cli("models", "promote", "fraud", "-v", "3", "--stage", "Staging", "--alias", "x")
    usage_error(both, "exactly one of --stage or --alias")
    usage_error(cli("models", "promote", "fraud", "-v", "3"), "exactly one of --stage or --alias")
    usage_error(cli("models", "promote", "fraud", "-v", "3", "--stage", "None"), "--stage")
    user_error(
        cli("models", "promote", "fraud", "-v", "3", "--alias", "x", "--require", "auc >>> 1"),
        "Invalid comparison clause",
    )
    user_error(cli("models", "promote", "nope", "-v", "1", "--alias", "x"), "nope")
    assert client.get_model_version("fraud", 3).current_stage == "None"
    assert client.get_registered_model("fraud").aliases == {"champion": "2"}
