"""Client search_runs: filters, order, paging, view types."""

from __future__ import annotations

import pytest

from runyard import Client
from tests.tracking.helpers import (
    INVALID,
    expect_error,
)


# -- search -----------------------------------------------------------------------------------
@pytest.fixture
def three_runs(client: Client) -> dict[str, str]:
    exp_id = client.create_experiment("search")
    ids = {}
    for i, (acc, lr, team) in enumerate(
        [(0.95, "0.1", "a"), (0.80, "0.01", "b"), (0.99, "0.1", "b")]
    ):
        rid = client.create_run(exp_id, start_time=1000 + i, run_name=f"run-{i}").info.run_id
        client.log_metric(rid, "acc", acc)
        client.log_param(rid, "lr", lr)
        client.set_tag(rid, "team", team)
        ids[f"run-{i}"] = rid
    client.set_terminated(ids["run-0"])
    ids["exp"] = exp_id
    return ids


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ["run-2", "run-1", "run-0"]),
        ("metrics.acc > 0.9", ["run-2", "run-0"]),
        ("metrics.acc >= 0.8 AND metrics.acc < 0.99", ["run-1", "run-0"]),
        ("params.lr = '0.1'", ["run-2", "run-0"]),
        ("tags.team = 'b'", ["run-2", "run-1"]),
        ("tags.team = 'b' and params.lr = '0.1'", ["run-2"]),
        ("attributes.status = 'FINISHED'", ["run-0"]),
        ("attributes.run_name = 'run-1'", ["run-1"]),
        ("tags.`mlflow.runName` LIKE 'run-%'", ["run-2", "run-1", "run-0"]),
        ("metrics.missing > 0", []),
    ],
)
def test_search_runs_filters(
    client: Client, three_runs: dict[str, str], filter_string: str, expected: list[str]
) -> None:
    found = client.search_runs([three_runs["exp"]], filter_string)
    assert [r.info.run_name for r in found] == expected
    assert found.token is None


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc DESC"], ["run-2", "run-0", "run-1"]),
        (["metrics.acc"], ["run-1", "run-0", "run-2"]),
        (["params.lr ASC", "metrics.acc DESC"], ["run-1", "run-2", "run-0"]),
        (["attributes.start_time ASC"], ["run-0", "run-1", "run-2"]),
        (["run_name DESC"], ["run-2", "run-1", "run-0"]),
    ],
)
def test_search_runs_order(
    client: Client, three_runs: dict[str, str], order_by: list[str], expected: list[str]
) -> None:
    found = client.search_runs(three_runs["exp"], order_by=order_by)
    assert [r.info.run_name for r in found] == expected


def test_search_runs_metric_order_puts_missing_last(
    client: Client, three_runs: dict[str, str]
) -> None:
    no_acc = client.create_run(three_runs["exp"], run_name="no-acc").info.run_id
    for direction in ("ASC", "DESC"):
        found = client.search_runs(three_runs["exp"], order_by=[f"metrics.acc {direction}"])
        assert found[-1].info.run_id == no_acc


def test_search_runs_pages(client: Client, three_runs: dict[str, str]) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs([three_runs["exp"]], max_results=2, page_token=token)
        assert len(page) <= 2
        seen.extend(r.info.run_name for r in page)
        token = page.token
        if token is None:
            break
    assert seen == ["run-2", "run-1", "run-0"]
    expect_error(INVALID, client.search_runs, [three_runs["exp"]], page_token="%%%")
    expect_error(INVALID, client.search_runs, [three_runs["exp"]], max_results=0)
    expect_error(INVALID, client.search_runs, [three_runs["exp"]], max_results=50001)


def test_search_runs_returns_full_runs(client: Client, three_runs: dict[str, str]) -> None:
    (run,) = client.search_runs([three_runs["exp"]], "attributes.run_name = 'run-0'")
    assert run == client.get_run(three_runs["run-0"])
    assert run.data.metrics == {"acc": 0.95}
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["team"] == "a"


def test_search_runs_grammar_errors_and_multi_experiment(
    client: Client, three_runs: dict[str, str]
) -> None:
    other = client.create_run("0", run_name="default-run").info.run_id
    found = client.search_runs(["0", three_runs["exp"]])
    assert len(found) == 4
    assert other in {r.info.run_id for r in found}
    for bad in ("tags.team = 'a' OR tags.team = 'b'", "metrics.acc > 'x'", "params.lr = 0.1"):
        expect_error(INVALID, client.search_runs, [three_runs["exp"]], bad)
    expect_error(INVALID, client.search_runs, [three_runs["exp"]], order_by=["metrics.acc UP"])
