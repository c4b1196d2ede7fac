"""The permission table covers every endpoint; reads are not audited, writes are."""

from __future__ import annotations

from runyard.server.app import ENDPOINTS
from runyard.server.auth.endpoints import ENDPOINTS as AUTH_ENDPOINTS
from runyard.server.auth.layer import _is_write
from runyard.server.auth.policy import RULES, Rule, rule_for

KINDS = {"resource", "authenticated", "admin", "self_or_admin", "narrow", "filter"}
NEEDS = {"read", "use", "update", "delete", "manage"}


def test_every_endpoint_and_method_has_a_rule() -> None:
    missing = [
        f"{e.namespace} {e.major} {m} {e.path}"
        for e in [*ENDPOINTS, *AUTH_ENDPOINTS]
        for m in e.methods
        if rule_for(e.namespace, e.major, e.path, m) is None
    ]
    assert missing == []


def test_the_table_names_no_endpoint_that_does_not_exist() -> None:
    known = {(e.namespace, e.major, e.path) for e in [*ENDPOINTS, *AUTH_ENDPOINTS]}
    assert set(RULES) - known == set()


def test_rules_are_well_formed() -> None:
    for key, value in RULES.items():
        rules = value.values() if isinstance(value, dict) else [value]
        for rule in rules:
            assert rule.kind in KINDS, key
            assert rule.need in NEEDS, key
            if rule.kind == "resource":
                assert rule.res, key
            if rule.kind == "filter":
                assert all((rule.items, rule.item_type, rule.item_id)), key


def test_changes_need_more_than_read() -> None:
    assert rule_for("mlflow", 2, "/runs/log-batch", "POST") == Rule("resource", "update", "run")
    assert rule_for("mlflow", 2, "/runs/delete", "POST") == Rule("resource", "delete", "run")
    assert rule_for("mlflow", 2, "/logged-models/{model_id}", "DELETE") == Rule(
        "resource", "delete", "logged_model"
    )
    assert rule_for("mlflow", 2, "/logged-models/{model_id}", "GET") == Rule(
        "resource", "read", "logged_model"
    )
    assert rule_for("runyard", 2, "/audit", "GET") == Rule("admin")


def test_writes_are_audited_and_reads_are_not() -> None:
    assert _is_write(rule_for("mlflow", 2, "/runs/log-batch", "POST"), "POST")
    assert _is_write(rule_for("mlflow", 2, "/experiments/create", "POST"), "POST")
    assert _is_write(rule_for("mlflow", 2, "/users/create", "POST"), "POST")
    assert not _is_write(rule_for("mlflow", 2, "/runs/search", "POST"), "POST")
    assert not _is_write(rule_for("mlflow", 2, "/experiments/search", "POST"), "POST")
    assert not _is_write(rule_for("mlflow", 2, "/runs/get", "GET"), "GET")
    assert not _is_write(
        rule_for("mlflow", 2, "/registered-models/get-latest-versions", "POST"), "POST"
    )
    assert _is_write(None, "POST")  # an endpoint without a rule is refused and audited
