"""Gated promotion: ``Client.promote_model_version(..., require=[...])`` moves a version only when
its source run meets every condition, and records what the conditions were checked against."""

from __future__ import annotations

import pytest

from runyard import Client
from runyard.entities import RegistryEvent
from runyard.tracking.promotion import PromotionRefused, check_requirements
from tests.tracking.helpers import INVALID, MISSING, expect_error


@pytest.fixture
def run_id(client: Client) -> str:
    """A finished run: auc 0.92 (last of two steps), latency_ms 40, data v3, team fraud."""
    run_id = client.create_run("0", run_name="train").info.run_id
    client.log_metric(run_id, "auc", 0.81, step=0)
    client.log_metric(run_id, "auc", 0.92, step=1)
    client.log_metric(run_id, "latency_ms", 40)
    client.log_param(run_id, "data", "v3")
    client.set_tag(run_id, "team", "fraud")
    client.set_terminated(run_id)
    return run_id


@pytest.fixture
def model(client: Client, run_id: str) -> str:
    """Registered model ``fraud`` with versions 1 and 2, both from ``run_id``."""
    client.create_registered_model("fraud")
    client.create_model_version("fraud", "/models/fraud/1", run_id)
    client.create_model_version("fraud", "/models/fraud/2", run_id)
    return "fraud"


def _history(client: Client, name: str) -> list[RegistryEvent]:
    return list(client.get_registered_model_history(name))


def test_passing_promotion_to_stage_records_evidence(
    client: Client, model: str, run_id: str
) -> None:
    promoted = client.promote_model_version(
        model,
        1,
        stage="Production",
        require=["metrics.auc >= 0.9", "params.data = 'v3'", "tags.team = 'fraud'"],
    )
    assert promoted.current_stage == "Production"
    assert client.get_model_version(model, 1).current_stage == "Production"
    event = _history(client, model)[-1]
    assert (event.action, event.version, event.from_stage, event.to_stage) == (
        "promote",
        "1",
        "None",
        "Production",
    )
    assert event.evidence == {
        "run_id": run_id,
        "requirements": [
            {"condition": "metrics.auc >= 0.9", "passed": True, "values": {"metrics.auc": 0.92}},
            {"condition": "params.data = 'v3'", "passed": True, "values": {"params.data": "v3"}},
            {
                "condition": "tags.team = 'fraud'",
                "passed": True,
                "values": {"tags.team": "fraud"},
            },
        ],
    }


def test_passing_promotion_to_alias_moves_it(client: Client, model: str, run_id: str) -> None:
    client.set_registered_model_alias(model, "champion", 1)
    promoted = client.promote_model_version(
        model, 2, alias="champion", require=["metrics.latency_ms < 50 AND metrics.auc > 0.9"]
    )
    assert promoted.version == "2"
    assert promoted.aliases == ["champion"]
    assert client.get_model_version_by_alias(model, "champion").version == "2"
    event = _history(client, model)[-1]
    assert (event.action, event.version, event.alias, event.previous_version) == (
        "promote",
        "2",
        "champion",
        "1",
    )
    assert event.evidence is not None
    assert event.evidence["requirements"] == [
        {
            "condition": "metrics.latency_ms < 50 AND metrics.auc > 0.9",
            "passed": True,
            "values": {"metrics.latency_ms": 40.0, "metrics.auc": 0.92},
        }
    ]


def test_refused_promotion_names_each_failure_and_changes_nothing(
    client: Client, model: str, run_id: str
) -> None:
    client.set_registered_model_alias(model, "champion", 1)
    before = _history(client, model)
    with pytest.raises(PromotionRefused) as info:
        client.promote_model_version(
            model,
            2,
            alias="champion",
            require=[
                "metrics.auc >= 0.95",
                "metrics.latency_ms < 50",  # holds: not named
                "params.data = 'v4'",
                "metrics.recall > 0.5",  # never logged
            ],
        )
    error = info.value
    assert error.error_code == "INVALID_STATE"
    assert error.failed == [
        "metrics.auc >= 0.95 (got metrics.auc = 0.92)",
        "params.data = 'v4' (got params.data = 'v3')",
        "metrics.recall > 0.5 (got metrics.recall = None)",
    ]
    assert f"Version 2 of model 'fraud' (run {run_id}) does not meet:" in error.message
    for failed in error.failed:
        assert failed in error.message
    assert "latency_ms" not in error.message
    # nothing moved, nothing recorded
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert client.get_model_version(model, 2).current_stage == "None"
    assert _history(client, model) == before


def test_refused_stage_promotion_keeps_the_stage(client: Client, model: str) -> None:
    client.transition_model_version_stage(model, 1, "Production")
    before = _history(client, model)
    with pytest.raises(PromotionRefused) as info:
        client.promote_model_version(
            model,
            2,
            stage="Production",
            require=["metrics.auc > 0.99"],
            archive_existing_versions=True,
        )
    assert info.value.failed == ["metrics.auc > 0.99 (got metrics.auc = 0.92)"]
    assert client.get_model_version(model, 1).current_stage == "Production"
    assert client.get_model_version(model, 2).current_stage == "None"
    assert _history(client, model) == before


def test_promotion_with_archive_existing_versions(client: Client, model: str) -> None:
    client.transition_model_version_stage(model, 1, "Production")
    client.promote_model_version(
        model, 2, stage="production", require=["metrics.auc > 0.9"], archive_existing_versions=True
    )
    assert client.get_model_version(model, 1).current_stage == "Archived"
    assert client.get_model_version(model, 2).current_stage == "Production"
    last = _history(client, model)[-2:]
    assert [(e.action, e.version, e.from_stage, e.to_stage) for e in last] == [
        ("promote", "2", "None", "Production"),
        ("transition_stage", "1", "Production", "Archived"),
    ]
    assert last[0].evidence is not None
    assert last[1].evidence is None


def test_conditions_on_run_attributes(client: Client, model: str, run_id: str) -> None:
    client.promote_model_version(
        model,
        1,
        alias="finished",
        require=["attributes.status = 'FINISHED'", "attributes.run_name = 'train'"],
    )
    evidence = _history(client, model)[-1].evidence
    assert evidence is not None
    assert [c["values"] for c in evidence["requirements"]] == [
        {"attributes.status": "FINISHED"},
        {"attributes.run_name": "train"},
    ]
    with pytest.raises(PromotionRefused) as info:
        client.promote_model_version(
            model, 1, alias="failed", require=["attributes.status = 'FAILED'"]
        )
    assert info.value.failed == [
        "attributes.status = 'FAILED' (got attributes.status = 'FINISHED')"
    ]


@pytest.mark.parametrize(
    "condition",
    ["metrics.auc >>> 0.9", "metrics.auc > 0.9 OR metrics.auc < 0.1", "auc > 0.9", "   "],
)
def test_bad_condition_syntax_is_invalid_and_changes_nothing(
    client: Client, model: str, condition: str
) -> None:
    before = _history(client, model)
    expect_error(
        INVALID,
        client.promote_model_version,
        model,
        1,
        stage="Production",
        require=["metrics.auc > 0.9", condition],
    )
    assert client.get_model_version(model, 1).current_stage == "None"
    assert _history(client, model) == before


def test_version_without_run_cannot_be_gated(client: Client) -> None:
    client.create_registered_model("manual")
    client.create_model_version("manual", "/models/manual")
    error = expect_error(
        INVALID,
        client.promote_model_version,
        "manual",
        1,
        stage="Staging",
        require=["metrics.auc > 0.9"],
    )
    assert "no source run" in error.message
    assert client.get_model_version("manual", 1).current_stage == "None"
    # without conditions there is nothing to check: the promotion goes through
    assert client.promote_model_version("manual", 1, stage="Staging").current_stage == "Staging"


def test_deleted_source_run_is_still_checked(client: Client, model: str, run_id: str) -> None:
    client.delete_run(run_id)
    promoted = client.promote_model_version(
        model, 1, alias="champion", require=["metrics.auc > 0.9"]
    )
    assert promoted.aliases == ["champion"]


def test_missing_source_run_is_an_error(client: Client) -> None:
    client.create_registered_model("orphan")
    client.create_model_version("orphan", "/models/orphan", "0123456789abcdef0123456789abcdef")
    expect_error(
        MISSING,
        client.promote_model_version,
        "orphan",
        1,
        alias="champion",
        require=["metrics.auc > 0.9"],
    )
    assert client.get_registered_model("orphan").aliases == {}


def test_check_requirements_directly(client: Client, model: str, run_id: str) -> None:
    version = client.get_model_version(model, 1)
    assert check_requirements(client, version, []) is None
    assert check_requirements(client, version, ["metrics.auc > 0.5"]) == {
        "run_id": run_id,
        "requirements": [
            {"condition": "metrics.auc > 0.5", "passed": True, "values": {"metrics.auc": 0.92}}
        ],
    }
    with pytest.raises(PromotionRefused) as info:
        check_requirements(client, version, ["params.data != 'v3'"])
    assert info.value.failed == ["params.data != 'v3' (got params.data = 'v3')"]
