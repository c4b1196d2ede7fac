"""search_runs through the official client: the filter grammar, ordering, paging and DataFrames.

The script builds one experiment of 250 runs whose values are functions of the run index ``i``
(below), so every expected result is computed here from the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ErrorCheck = Callable[..., None]
N = 250
T0 = 1_700_000_000_000

SCRIPT = """
from mlflow.entities import Metric, Param, RunTag, ViewType

P = PARAMS["prefix"]
N = PARAMS["n"]
T0 = PARAMS["t0"]
RARE = {50: 1.0, 100: 3.0, 150: 2.0, 200: float("nan")}


def names(runs):
    return [r.info.run_name for r in runs]


with section("setup") as out:
    main = client.create_experiment(f"{P}-main", tags={"suite": P})
    ids = []
    for i in range(N):
        run = client.create_run(
            main,
            run_name=f"run-{i:03d}",
            start_time=T0 + i * 1000,
            tags={"group": f"g{i % 10}", "Team": "Fraud" if i % 3 == 0 else "risk", "suite": P},
        )
        rid = run.info.run_id
        ids.append(rid)
        metrics = [Metric("score", float(i), T0, 0)]
        if i in RARE:
            metrics.append(Metric("rare", RARE[i], T0, 0))
        if i < 3:
            metrics.append(Metric("val acc", float(i), T0, 0))
        params = [Param("model", "lr" if i % 2 == 0 else "rf"), Param("alpha", str(i % 5))]
        if i < 10:
            params.append(Param("only_some", "yes"))
        client.log_batch(rid, metrics=metrics, params=params)
        if i % 4 == 0:
            client.set_terminated(rid, "FINISHED", end_time=T0 + i * 1000 + 500)
    out["ids"] = ids
    out["main"] = main

    other = client.create_experiment(f"{P}-other")
    other_ids = []
    for j in range(5):
        run = client.create_run(other, run_name=f"other-{j}", tags={"suite": P})
        client.log_metric(run.info.run_id, "score", 1000.0 + j)
        other_ids.append(run.info.run_id)
    client.delete_run(other_ids[4])
    out["other"] = other
    out["other_ids"] = other_ids

ids, main, other = RESULT["setup"]["ids"], RESULT["setup"]["main"], RESULT["setup"]["other"]

FILTERS = {
    "metric_gt": "metrics.score > 200",
    "metric_range": "metrics.score >= 10 AND metrics.score < 20",
    "metric_eq": "metric.score = 42",
    "metric_ne": "metrics.score != 0",
    "metric_backticks": "metrics.`val acc` >= 1",
    "metric_rare": "metrics.rare >= 2",
    "param_eq": "params.model = 'lr'",
    "param_ne": "params.model != 'lr'",
    "param_double_quotes": 'param.alpha = "3"',
    "param_like": "params.model LIKE 'l%'",
    "param_is_null": "params.only_some IS NULL",
    "param_is_not_null": "params.only_some IS NOT NULL",
    "tag_eq": "tags.group = 'g3'",
    "tag_like_case_sensitive": "tags.Team LIKE 'fraud'",
    "tag_ilike": "tags.Team ILIKE 'fraud'",
    "tag_like_wildcard": "tag.group LIKE 'g_'",
    "tag_is_not_null": "tags.group IS NOT NULL",
    "tag_missing_is_null": "tags.nosuch IS NULL",
    "tag_backticks": "tags.`mlflow.runName` = 'run-007'",
    "run_name": "attributes.run_name = 'run-007'",
    "run_name_like": "run_name LIKE 'run-00%'",
    "run_name_like_upper": "attributes.run_name LIKE 'RUN-00%'",
    "run_name_ilike": "attributes.run_name ILIKE 'RUN-00%'",
    "status": "attributes.status = 'FINISHED'",
    "start_time": f"attributes.start_time >= {T0 + 240_000}",
    "run_id_in": f"attributes.run_id IN ('{ids[5]}', '{ids[17]}')",
    "run_id_not_in": f"attributes.run_id NOT IN ('{ids[5]}', '{ids[17]}')",
    "combined": "params.model = 'lr' AND metrics.score < 10 AND tags.group != 'g0'",
    "nothing": "metrics.score > 100000",
}

with section("filters") as out:
    for name, flt in FILTERS.items():
        found = client.search_runs([main], filter_string=flt, max_results=1000)
        out[name] = sorted(names(found))
    out["empty_token"] = repr(
        client.search_runs([main], filter_string=FILTERS["nothing"]).token
    )

def top(order_by, n):
    return names(client.search_runs([main], order_by=order_by, max_results=n))


with section("order_by") as out:
    out["default"] = names(client.search_runs([main], max_results=5))
    out["metric_asc"] = top(["metrics.score ASC"], 3)
    out["rare_desc"] = top(["metrics.rare DESC"], 7)
    out["rare_asc"] = top(["metrics.rare ASC"], 7)
    out["param_then_metric"] = top(["params.alpha DESC", "metrics.score ASC"], 4)
    out["name_desc"] = top(["attributes.run_name DESC"], 2)
    out["start_asc"] = top(["start_time asc"], 2)
    out["tag_then_name"] = top(["tags.group DESC", "run_name ASC"], 3)

with section("paging") as out:
    pages, token = [], None
    while True:
        page = client.search_runs([main], max_results=100, page_token=token)
        pages.append(names(page))
        token = page.token
        if not token:
            break
    out["default_pages"] = pages
    pages, token = [], None
    while True:
        page = client.search_runs(
            [main], order_by=["metrics.score ASC"], max_results=100, page_token=token
        )
        pages.append([r.data.metrics["score"] for r in page])
        token = page.token
        if not token:
            break
    out["score_pages"] = pages
    page = client.search_runs([main], max_results=N)
    out["exact_fit"] = [len(page), repr(page.token)]

with section("view_types") as out:
    for view in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        found = client.search_runs([other], run_view_type=getattr(ViewType, view))
        out[view] = sorted(names(found))
    out["two_experiments"] = len(client.search_runs([main, other], max_results=1000))

with section("dataframe") as out:
    df = mlflow.search_runs(experiment_ids=[main])
    out["rows"] = len(df)
    out["columns"] = sorted(df.columns)
    out["first_name"] = df["tags.mlflow.runName"].iloc[0]
    out["score_sum"] = float(df["metrics.score"].sum())
    out["rare_non_null"] = int(df["metrics.rare"].notna().sum())
    out["start_time_dtype"] = str(df["start_time"].dtype)
    out["status_counts"] = {k: int(v) for k, v in df["status"].value_counts().items()}
    filtered = mlflow.search_runs(
        experiment_ids=[main], filter_string="params.model = 'rf'", order_by=["metrics.score DESC"]
    )
    out["filtered_rows"] = len(filtered)
    out["filtered_first_score"] = float(filtered["metrics.score"].iloc[0])
    out["limited_rows"] = len(mlflow.search_runs(experiment_ids=[main], max_results=10))
    by_names = mlflow.search_runs(experiment_names=[f"{P}-main", f"{P}-other"])
    out["by_names_rows"] = len(by_names)
    counts = by_names["experiment_id"].value_counts()
    out["by_names_experiments"] = {k: int(v) for k, v in counts.items()}
    everywhere = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.suite = '{P}'"
    )
    out["all_experiments_rows"] = len(everywhere)
    as_list = mlflow.search_runs(
        experiment_ids=[other], output_format="list", order_by=["metrics.score ASC"]
    )
    out["as_list"] = [[r.info.run_name, r.data.metrics["score"]] for r in as_list]

with section("invalid") as out:
    for name, flt in {
        "dangling": "metrics.score >",
        "or": "metrics.score > 1 OR metrics.score < 0",
        "unquoted_string": "params.model = lr",
        "metric_is_null": "metrics.score IS NULL",
        "bad_entity": "foo.bar = 'x'",
        "bad_comparator": "metrics.score LIKE '1'",
    }.items():
        out[name] = error_of(client.search_runs, [main], filter_string=flt)
    out["bad_order"] = error_of(client.search_runs, [main], order_by=["metrics.score SIDEWAYS"])
    out["bad_token"] = error_of(client.search_runs, [main], page_token="not-a-token")
    out["too_many"] = error_of(client.search_runs, [main], max_results=50001)
"""


def name(i: int) -> str:
    return f"run-{i:03d}"


def names_where(pred: Callable[[int], bool]) -> list[str]:
    return sorted(name(i) for i in range(N) if pred(i))


@pytest.fixture(scope="module")
def res(run_client: Any, prefix: str) -> Any:
    return run_client(SCRIPT, {"prefix": prefix, "n": N, "t0": T0})


def test_setup_created_all_runs(res: Any) -> None:
    assert len(set(res["setup"]["ids"])) == N


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("metric_gt", names_where(lambda i: i > 200)),
        ("metric_range", names_where(lambda i: 10 <= i < 20)),
        ("metric_eq", [name(42)]),
        ("metric_ne", names_where(lambda i: i != 0)),
        ("metric_backticks", [name(1), name(2)]),
        ("metric_rare", [name(100), name(150)]),
        ("param_eq", names_where(lambda i: i % 2 == 0)),
        ("param_ne", names_where(lambda i: i % 2 == 1)),
        ("param_double_quotes", names_where(lambda i: i % 5 == 3)),
        ("param_like", names_where(lambda i: i % 2 == 0)),
        ("param_is_null", names_where(lambda i: i >= 10)),
        ("param_is_not_null", names_where(lambda i: i < 10)),
        ("tag_eq", names_where(lambda i: i % 10 == 3)),
        ("tag_like_case_sensitive", []),
        ("tag_ilike", names_where(lambda i: i % 3 == 0)),
        ("tag_like_wildcard", names_where(lambda i: True)),
        ("tag_is_not_null", names_where(lambda i: True)),
        ("tag_missing_is_null", names_where(lambda i: True)),
        ("tag_backticks", [name(7)]),
        ("run_name", [name(7)]),
        ("run_name_like", names_where(lambda i: i < 10)),
        ("run_name_like_upper", []),
        ("run_name_ilike", names_where(lambda i: i < 10)),
        ("status", names_where(lambda i: i % 4 == 0)),
        ("start_time", names_where(lambda i: i >= 240)),
        ("run_id_in", [name(5), name(17)]),
        ("run_id_not_in", names_where(lambda i: i not in (5, 17))),
        ("combined", [name(2), name(4), name(6), name(8)]),
        ("nothing", []),
    ],
)
def test_filter(res: Any, key: str, expected: list[str]) -> None:
    assert res["filters"][key] == expected


def test_no_token_without_more_results(res: Any) -> None:
    assert res["filters"]["empty_token"] == "None"


def test_order_by(res: Any) -> None:
    out = res["order_by"]
    # default: start_time DESC
    assert out["default"] == [name(i) for i in (249, 248, 247, 246, 245)]
    assert out["metric_asc"] == [name(0), name(1), name(2)]
    assert out["name_desc"] == [name(249), name(248)]
    assert out["start_asc"] == [name(0), name(1)]
    # alpha '4' first, ties broken by score ascending
    assert out["param_then_metric"] == [name(4), name(9), name(14), name(19)]
    assert out["tag_then_name"] == [name(9), name(19), name(29)]


def test_order_by_metric_puts_nan_then_missing_last(res: Any) -> None:
    out = res["order_by"]
    # values first, then NaN (run 200), then runs without the metric (start_time DESC)
    assert out["rare_desc"] == [name(i) for i in (100, 150, 50, 200, 249, 248, 247)]
    assert out["rare_asc"] == [name(i) for i in (50, 150, 100, 200, 249, 248, 247)]


def test_paging_across_250_runs(res: Any) -> None:
    out = res["paging"]
    assert out["default_pages"] == [
        [name(i) for i in range(249, 149, -1)],
        [name(i) for i in range(149, 49, -1)],
        [name(i) for i in range(49, -1, -1)],
    ]
    assert out["score_pages"] == [
        [float(i) for i in range(0, 100)],
        [float(i) for i in range(100, 200)],
        [float(i) for i in range(200, 250)],
    ]
    assert out["exact_fit"] == [N, "None"]


def test_run_view_types(res: Any) -> None:
    out = res["view_types"]
    assert out["ACTIVE_ONLY"] == ["other-0", "other-1", "other-2", "other-3"]
    assert out["DELETED_ONLY"] == ["other-4"]
    assert out["ALL"] == ["other-0", "other-1", "other-2", "other-3", "other-4"]
    assert out["two_experiments"] == N + 4


def test_search_runs_dataframe(res: Any) -> None:
    out = res["dataframe"]
    assert out["rows"] == N
    assert out["columns"] == sorted(
        [
            "run_id",
            "experiment_id",
            "status",
            "artifact_uri",
            "start_time",
            "end_time",
            "metrics.score",
            "metrics.rare",
            "metrics.val acc",
            "params.model",
            "params.alpha",
            "params.only_some",
            "tags.group",
            "tags.Team",
            "tags.suite",
            "tags.mlflow.runName",
        ]
    )
    assert out["first_name"] == name(249)
    assert out["score_sum"] == float(sum(range(N)))
    assert out["rare_non_null"] == 3  # the NaN point reads back as NaN
    assert out["start_time_dtype"].startswith("datetime64")
    assert out["status_counts"] == {"RUNNING": 187, "FINISHED": 63}


def test_search_runs_dataframe_filters_and_experiments(res: Any) -> None:
    out = res["dataframe"]
    setup = res["setup"]
    assert out["filtered_rows"] == N // 2
    assert out["filtered_first_score"] == 249.0
    assert out["limited_rows"] == 10
    assert out["by_names_rows"] == N + 4
    assert out["by_names_experiments"] == {setup["main"]: N, setup["other"]: 4}
    assert out["all_experiments_rows"] == N + 4
    assert out["as_list"] == [[f"other-{j}", 1000.0 + j] for j in range(4)]


@pytest.mark.parametrize(
    "key",
    [
        "dangling",
        "or",
        "unquoted_string",
        "metric_is_null",
        "bad_entity",
        "bad_comparator",
        "bad_order",
        "bad_token",
        "too_many",
    ],
)
def test_invalid_search_is_invalid_parameter_value(
    res: Any, key: str, assert_error: ErrorCheck
) -> None:
    assert_error(res["invalid"][key], "INVALID_PARAMETER_VALUE", 400)
