"""The fluent API (``import runyard as mlflow``) against a real SQLite store."""

from __future__ import annotations

import getpass
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from PIL import Image

import runyard as mlflow
import runyard.data
from runyard import Client
from runyard.entities import LifecycleStage, Run
from runyard.exceptions import MlflowException

INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"


def fresh(run_id: str) -> Run:
    return Client().get_run(run_id)


# -- experiments ------------------------------------------------------------------------------
def test_set_experiment_by_name_creates_it_once() -> None:
    exp = mlflow.set_experiment("exp1")
    assert exp.name == "exp1"
    assert exp.experiment_id == "1"
    assert exp.lifecycle_stage == LifecycleStage.ACTIVE
    again = mlflow.set_experiment("exp1")
    assert again.experiment_id == exp.experiment_id
    assert [e.name for e in mlflow.search_experiments(order_by=["name"])] == ["Default", "exp1"]
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == "1"


def test_set_experiment_by_id() -> None:
    exp_id = mlflow.create_experiment("by-id", tags={"k": "v"})
    exp = mlflow.set_experiment(experiment_id=exp_id)
    assert (exp.name, exp.tags) == ("by-id", {"k": "v"})
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp_id


def test_set_experiment_errors() -> None:
    with pytest.raises(MlflowException) as info:
        mlflow.set_experiment(experiment_id="777")
    assert info.value.error_code == MISSING
    exp_id = mlflow.create_experiment("gone")
    mlflow.delete_experiment(exp_id)
    for kwargs in ({"experiment_name": "gone"}, {"experiment_id": exp_id}):
        with pytest.raises(MlflowException, match="deleted") as info:
            mlflow.set_experiment(**kwargs)
        assert info.value.error_code == INVALID
    with pytest.raises(MlflowException):
        mlflow.set_experiment()
    with pytest.raises(MlflowException):
        mlflow.set_experiment("a", "1")
    # a failed set_experiment leaves the active experiment alone
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == "0"


def test_experiment_tags_and_lookup() -> None:
    mlflow.set_experiment("tagged")
    mlflow.set_experiment_tag("a", 1)
    mlflow.set_experiment_tags({"b": "two", "c": 3.5})
    exp = mlflow.get_experiment_by_name("tagged")
    assert exp is not None
    assert exp.tags == {"a": "1", "b": "two", "c": "3.5"}
    assert mlflow.get_experiment(exp.experiment_id) == exp
    assert mlflow.get_experiment_by_name("absent") is None


def test_search_experiments_all_pages() -> None:
    for i in range(5):
        mlflow.create_experiment(f"e{i}")
    assert len(mlflow.search_experiments()) == 6
    assert len(mlflow.search_experiments(max_results=3)) == 3
    names = [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'e%'")]
    assert sorted(names) == [f"e{i}" for i in range(5)]


@pytest.mark.parametrize("env_name", ["MLFLOW_EXPERIMENT_NAME", "RUNYARD_EXPERIMENT_NAME"])
def test_experiment_name_from_environment(monkeypatch: pytest.MonkeyPatch, env_name: str) -> None:
    monkeypatch.setenv(env_name, "from-env")
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
    exp = mlflow.get_experiment_by_name("from-env")
    assert exp is not None
    assert run.info.experiment_id == exp.experiment_id
    assert fresh(run.info.run_id).data.params == {"p": "1"}


def test_experiment_id_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    exp_id = mlflow.create_experiment("env-id")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp_id)
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp_id


def test_set_experiment_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    exp = mlflow.set_experiment("explicit")
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id


def test_set_tracking_uri(other_uri: Callable[[str], str], tracking_env: str) -> None:
    assert mlflow.is_tracking_uri_set()
    assert mlflow.get_tracking_uri() == tracking_env
    uri = other_uri("elsewhere.db")
    mlflow.set_tracking_uri("elsewhere.db")  # relative to the CWD
    assert mlflow.get_tracking_uri() == uri
    with mlflow.start_run() as run:
        mlflow.log_param("where", "elsewhere")
    assert Client(uri).get_run(run.info.run_id).data.params == {"where": "elsewhere"}
    with pytest.raises(MlflowException):
        Client(tracking_env).get_run(run.info.run_id)


# -- start_run / end_run ----------------------------------------------------------------------
def test_start_run_basics(tmp_path: Path) -> None:
    mlflow.set_experiment("exp")
    run = mlflow.start_run(run_name="first", tags={"team": "fraud"}, description="**notes**")
    try:
        assert mlflow.active_run() is run
        assert run.info.run_name == "first"
        assert run.info.status == "RUNNING"
        stored = fresh(run.info.run_id)
        assert stored.data.tags["mlflow.runName"] == "first"
        assert stored.data.tags["team"] == "fraud"
        assert stored.data.tags["mlflow.note.content"] == "**notes**"
        assert stored.info.experiment_id == run.info.experiment_id
    finally:
        mlflow.end_run()
    assert mlflow.active_run() is None
    ended = fresh(run.info.run_id)
    assert ended.info.status == "FINISHED"
    assert ended.info.end_time is not None
    assert ended.info.end_time >= ended.info.start_time


def test_start_run_with_explicit_experiment_id() -> None:
    exp_id = mlflow.create_experiment("explicit")
    with mlflow.start_run(experiment_id=exp_id) as run:
        pass
    assert run.info.experiment_id == exp_id


def test_with_block_finishes_or_fails() -> None:
    with mlflow.start_run() as ok:
        assert mlflow.active_run() is ok
    assert fresh(ok.info.run_id).info.status == "FINISHED"

    def train() -> None:
        with mlflow.start_run() as bad:
            mlflow.log_metric("before", 1.0)
            raise ValueError(f"boom {bad.info.run_id}")

    with pytest.raises(ValueError, match="boom") as info:
        train()
    stored = fresh(str(info.value).split()[1])
    assert stored.info.status == "FAILED"
    assert stored.data.metrics == {"before": 1.0}  # logged values survive the failure
    assert mlflow.active_run() is None


def test_end_run_with_status() -> None:
    run = mlflow.start_run()
    mlflow.end_run("KILLED")
    assert fresh(run.info.run_id).info.status == "KILLED"
    mlflow.end_run()  # no active run: nothing to do


def test_already_active_run_refused() -> None:
    with mlflow.start_run() as run:
        with pytest.raises(MlflowException, match="already active"):
            mlflow.start_run()
        assert mlflow.active_run() is run
    assert mlflow.active_run() is None


def test_nested_runs() -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run() is child
            mlflow.log_param("depth", 1)
            with mlflow.start_run(nested=True) as grandchild:
                pass
        assert mlflow.active_run() is parent
        mlflow.log_param("depth", 0)
    child_run = fresh(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child_run.data.params == {"depth": "1"}
    assert child_run.info.status == "FINISHED"
    assert fresh(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    parent_run = fresh(parent.info.run_id)
    assert "mlflow.parentRunId" not in parent_run.data.tags
    assert parent_run.data.params == {"depth": "0"}
    found = mlflow.get_parent_run(child.info.run_id)
    assert found is not None
    assert found.info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None
    kids = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert [r.info.run_id for r in kids] == [child.info.run_id]


def test_with_block_does_not_end_another_run() -> None:
    # MLflow's ActiveRun.__exit__ only ends its own run, and only while it is still active:
    # calling end_run() inside the block is a common pattern.
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.end_run()
        assert mlflow.active_run() is parent
        assert fresh(parent.info.run_id).info.status == "RUNNING"
    assert fresh(child.info.run_id).info.status == "FINISHED"
    assert fresh(parent.info.run_id).info.status == "FINISHED"

    with mlflow.start_run() as first:
        mlflow.end_run()
        second = mlflow.start_run()
    assert fresh(first.info.run_id).info.status == "FINISHED"
    assert mlflow.active_run() is second
    assert fresh(second.info.run_id).info.status == "RUNNING"
    mlflow.end_run()


def test_parent_run_id_argument() -> None:
    with mlflow.start_run() as parent:
        pass
    with mlflow.start_run(parent_run_id=parent.info.run_id) as child:
        pass
    assert fresh(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_resume_run_by_id() -> None:
    with mlflow.start_run(run_name="resumable") as first:
        mlflow.log_param("a", 1)
        mlflow.log_metric("m", 1.0, step=0)
    assert fresh(first.info.run_id).info.status == "FINISHED"
    with mlflow.start_run(run_id=first.info.run_id) as again:
        assert again.info.run_id == first.info.run_id
        assert again.info.status == "RUNNING"
        assert again.info.run_name == "resumable"
        assert again.data.params == {"a": "1"}
        mlflow.log_metric("m", 2.0, step=1)
        mlflow.log_param("a", 1)  # same value: fine
    run = fresh(first.info.run_id)
    assert run.info.status == "FINISHED"
    assert [
        m.value for m in mlflow.tracking.client.Client().get_metric_history(run.info.run_id, "m")
    ] == [1.0, 2.0]


def test_resume_run_sets_tags_and_description() -> None:
    # MLflow: "If a run is being resumed, these tags are set on the resumed run", and the
    # description likewise.
    with mlflow.start_run(run_name="keep-name", tags={"a": "1"}) as first:
        pass
    with mlflow.start_run(
        run_id=first.info.run_id, tags={"b": "2"}, description="resumed notes"
    ) as again:
        assert again.info.run_id == first.info.run_id
    tags = fresh(first.info.run_id).data.tags
    assert tags["a"] == "1"
    assert tags["b"] == "2"
    assert tags["mlflow.note.content"] == "resumed notes"
    assert tags["mlflow.runName"] == "keep-name"


def test_resume_run_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    created = Client().create_run("0", run_name="from-env").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", created)
    with mlflow.start_run() as run:
        mlflow.log_param("x", "y")
    assert run.info.run_id == created
    assert fresh(created).data.params == {"x": "y"}
    assert fresh(created).info.status == "FINISHED"


def test_resume_errors() -> None:
    with pytest.raises(MlflowException) as info:
        mlflow.start_run(run_id="0123456789abcdef0123456789abcdef")
    assert info.value.error_code == MISSING
    client = Client()
    rid = client.create_run("0").info.run_id
    client.delete_run(rid)
    with pytest.raises(MlflowException, match="deleted") as info:
        mlflow.start_run(run_id=rid)
    assert info.value.error_code == INVALID
    assert mlflow.active_run() is None


def test_log_with_no_active_run_starts_one() -> None:
    assert mlflow.active_run() is None
    mlflow.log_param("auto", 1)
    run = mlflow.active_run()
    assert run is not None
    assert run.info.experiment_id == "0"
    mlflow.log_metric("m", 2.0)
    mlflow.set_tag("t", "v")
    assert mlflow.active_run() is run  # the same run keeps receiving values
    mlflow.end_run()
    stored = fresh(run.info.run_id)
    assert stored.data.params == {"auto": "1"}
    assert stored.data.metrics == {"m": 2.0}
    assert stored.data.tags["t"] == "v"
    assert stored.info.status == "FINISHED"


@pytest.mark.parametrize(
    "first_call",
    [
        lambda: mlflow.log_metric("m", 1.0),
        lambda: mlflow.log_metrics({"m": 1.0}),
        lambda: mlflow.log_params({"p": 1}),
        lambda: mlflow.set_tags({"t": 1}),
        lambda: mlflow.log_text("x", "x.txt"),
        lambda: mlflow.log_dict({"a": 1}, "d.json"),
    ],
)
def test_each_log_function_starts_a_run(first_call: object) -> None:
    first_call()  # type: ignore[operator]
    assert mlflow.active_run() is not None


def test_active_run_and_last_active_run() -> None:
    assert mlflow.active_run() is None
    assert mlflow.last_active_run() is None
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 3.0)
        live = mlflow.last_active_run()
        assert live is not None
        assert live.info.run_id == run.info.run_id
        assert live.data.metrics == {"m": 3.0}
    last = mlflow.last_active_run()
    assert last is not None
    assert last.info.run_id == run.info.run_id
    assert last.info.status == "FINISHED"
    assert mlflow.get_run(run.info.run_id) == last


# -- logging ----------------------------------------------------------------------------------
def test_log_metrics_with_step_and_timestamp(logging_mode: str) -> None:
    with mlflow.start_run() as run:
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=7, timestamp=5000)
        mlflow.log_metric("now", 1.0)
    rid = run.info.run_id
    client = Client()
    assert [(m.value, m.step, m.timestamp) for m in client.get_metric_history(rid, "loss")] == [
        (1.0, 0, 1000),
        (0.5, 1, 1001),
        (1.0 / 3, 2, 1002),
    ]
    (a,) = client.get_metric_history(rid, "a")
    assert (a.value, a.step, a.timestamp) == (1.0, 7, 5000)
    (now,) = client.get_metric_history(rid, "now")
    assert now.step == 0
    assert now.timestamp >= run.info.start_time
    assert fresh(rid).data.metrics == {"loss": 1.0 / 3, "a": 1.0, "b": 2.0, "now": 1.0}


def test_log_metric_with_numpy_step(logging_mode: str) -> None:
    with mlflow.start_run() as run:
        for step in np.arange(3):
            mlflow.log_metric("loss", float(step), step=step)
    history = Client().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]


def test_log_metric_validates_at_call_site(logging_mode: str) -> None:
    with mlflow.start_run() as run:
        for bad in (
            lambda: mlflow.log_metric("m", True),
            lambda: mlflow.log_metric("bad key!", 1.0),
            lambda: mlflow.log_metric("m", 1.0, timestamp=-1),
            lambda: mlflow.log_metrics({"m": "x"}),
            lambda: mlflow.log_param("k" * 251, 1),
            lambda: mlflow.set_tag("../t", 1),
        ):
            with pytest.raises(MlflowException) as info:
                bad()
            assert info.value.error_code == INVALID
    assert fresh(run.info.run_id).data.metrics == {}


def test_log_metric_to_explicit_run_id() -> None:
    target = Client().create_run("0").info.run_id
    mlflow.log_metric("m", 4.0, run_id=target)
    mlflow.flush()
    assert fresh(target).data.metrics == {"m": 4.0}


def test_params_and_tags(logging_mode: str) -> None:
    with mlflow.start_run() as run:
        assert mlflow.log_param("lr", 0.01) == 0.01
        mlflow.log_params({"layers": 3, "act": "relu"})
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"stage": "prod", "owner": "me"})
        mlflow.set_tag("temp", 1)
        mlflow.delete_tag("temp")
        mlflow.log_param("lr", 0.01)

        def change_lr() -> None:  # refused by the store: at once, or by the next flush
            mlflow.log_param("lr", 0.02)
            mlflow.flush()

        with pytest.raises(MlflowException, match="lr") as info:
            change_lr()
        assert info.value.error_code == INVALID
    data = fresh(run.info.run_id).data
    assert data.params == {"lr": "0.01", "layers": "3", "act": "relu"}
    assert data.tags["stage"] == "prod"
    assert data.tags["owner"] == "me"
    assert "temp" not in data.tags


def test_system_tags_in_process() -> None:
    with mlflow.start_run() as run:
        pass
    tags = fresh(run.info.run_id).data.tags
    assert tags["mlflow.user"] == getpass.getuser()
    assert run.info.user_id == getpass.getuser()
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"]


def test_run_context_env_adds_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_RUN_CONTEXT", json.dumps({"ci.job": "42"}))
    with mlflow.start_run(tags={"own": "x"}) as run:
        pass
    tags = fresh(run.info.run_id).data.tags
    assert tags["ci.job"] == "42"
    assert tags["own"] == "x"


def test_system_tags_from_a_script_in_a_git_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(
        "import runyard as mlflow\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('m', 1.0)\n"
        "print(run.info.run_id)\n"
    )

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    git("init", "-q")
    git("add", "train.py")
    git("commit", "-q", "-m", "init")
    commit = git("rev-parse", "HEAD")

    done = subprocess.run(
        [sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    run = fresh(run_id)
    tags = run.data.tags
    assert os.path.realpath(tags["mlflow.source.name"]) == os.path.realpath(script)
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.user"] == getpass.getuser()
    assert run.data.metrics == {"m": 1.0}
    assert run.info.status == "FINISHED"


def test_no_git_commit_outside_a_repo(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(
        "import runyard as mlflow\nwith mlflow.start_run() as run:\n    pass\n"
        "print(run.info.run_id)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    tags = fresh(done.stdout.strip().splitlines()[-1]).data.tags
    assert os.path.realpath(tags["mlflow.source.name"]) == os.path.realpath(script)
    if subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True).returncode != 0:
        assert "mlflow.source.git.commit" not in tags


def test_flush_writes_queued_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long interval keeps values queued until someone flushes.
    monkeypatch.setenv("RUNYARD_ASYNC_FLUSH_INTERVAL", "3600")
    with mlflow.start_run() as run:
        rid = run.info.run_id
        store = mlflow.tracking.fluent._client().store
        for step in range(10):
            mlflow.log_metric("m", float(step), step=step)
        mlflow.log_param("p", "v")
        assert store.get_run(rid).data.metrics == {}  # still queued
        mlflow.flush()
        data = store.get_run(rid).data
        assert data.metrics == {"m": 9.0}
        assert data.params == {"p": "v"}
        mlflow.log_metric("late", 1.0)
    assert store.get_run(rid).data.metrics["late"] == 1.0  # end_run flushes too


def test_flush_raises_refused_values_once() -> None:
    with mlflow.start_run():
        mlflow.log_param("p", 1)
        mlflow.flush()
        mlflow.log_param("p", 2)
        mlflow.log_metric("good", 1.0)
        with pytest.raises(MlflowException, match="p"):
            mlflow.flush()
        mlflow.flush()  # the error was reported; nothing left to raise
        assert mlflow.last_active_run().data.metrics == {"good": 1.0}  # type: ignore[union-attr]


# -- artifacts --------------------------------------------------------------------------------
def test_artifact_functions(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text("epoch 1\n")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "a.txt").write_text("a")
    with mlflow.start_run() as run:
        mlflow.log_artifact("train.log")  # relative to the CWD, like the cheat sheet
        mlflow.log_artifact(str(tmp_path / "train.log"), artifact_path="logs")
        mlflow.log_artifacts(str(outputs), artifact_path="out")
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"a": [1, 2]}, "cfg.json")
        mlflow.log_dict({"a": [1, 2]}, "cfg.yaml")
        mlflow.log_image(np.full((2, 2, 3), 200, dtype=np.uint8), "img.png")
        mlflow.log_image(Image.new("L", (3, 3), 9), "gray.png")
        fig = Figure()
        fig.add_subplot().plot([1, 2, 3])
        mlflow.log_figure(fig, "fig.png")
        mlflow.log_table({"x": [1, 2], "y": ["a", "b"]}, "table.json")
        uri = mlflow.get_artifact_uri()
        assert mlflow.get_artifact_uri("cfg.json") == f"{uri}/cfg.json"
    assert uri == fresh(run.info.run_id).info.artifact_uri
    root = Path(uri)
    names = sorted(f.path for f in Client().list_artifacts(run.info.run_id))
    assert names == [
        "cfg.json",
        "cfg.yaml",
        "fig.png",
        "gray.png",
        "img.png",
        "logs",
        "notes",
        "out",
        "table.json",
        "train.log",
    ]
    assert (root / "train.log").read_text() == "epoch 1\n"
    assert (root / "logs/train.log").is_file()
    assert (root / "out/a.txt").read_text() == "a"
    assert (root / "notes/hello.txt").read_text() == "hello"
    assert json.loads((root / "cfg.json").read_text()) == {"a": [1, 2]}
    assert yaml.safe_load((root / "cfg.yaml").read_text()) == {"a": [1, 2]}
    with Image.open(root / "img.png") as img:
        assert np.asarray(img)[0, 0].tolist() == [200, 200, 200]
    with Image.open(root / "gray.png") as img:
        assert np.asarray(img).tolist() == [[9] * 3] * 3
    assert (root / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((root / "table.json").read_text()) == {
        "columns": ["x", "y"],
        "data": [[1, "a"], [2, "b"]],
    }
    tags = fresh(run.info.run_id).data.tags
    assert json.loads(tags["mlflow.loggedArtifacts"]) == [{"path": "table.json", "type": "table"}]


def test_get_artifact_uri_starts_a_run() -> None:
    uri = mlflow.get_artifact_uri()
    run = mlflow.active_run()
    assert run is not None
    assert uri == run.info.artifact_uri
    assert uri.endswith(f"{run.info.run_id}/artifacts")


# -- datasets ---------------------------------------------------------------------------------
def test_log_input_pandas_and_numpy() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    train = runyard.data.from_pandas(df, source="data/train.csv", name="train", targets="y")
    arrays = runyard.data.from_numpy(np.arange(6.0).reshape(3, 2), name="eval-arrays")
    with mlflow.start_run() as run:
        mlflow.log_input(train, context="training")
        mlflow.log_input(arrays, context="eval", tags={"split": "holdout"})
    inputs = fresh(run.info.run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert set(by_name) == {"train", "eval-arrays"}
    t = by_name["train"]
    assert t.dataset.digest == train.digest
    assert t.dataset.source_type == "local"
    assert json.loads(t.dataset.source) == {"uri": "data/train.csv"}
    assert json.loads(t.dataset.schema or "{}")["mlflow_colspec"][0]["name"] == "x"
    assert json.loads(t.dataset.profile or "{}") == {"num_rows": 3, "num_elements": 6}
    assert {(g.key, g.value) for g in t.tags} == {("mlflow.data.context", "training")}
    e = by_name["eval-arrays"]
    assert {(g.key, g.value) for g in e.tags} == {
        ("mlflow.data.context", "eval"),
        ("split", "holdout"),
    }
    assert e.dataset.digest == arrays.digest
    found = mlflow.search_runs(filter_string="datasets.name = 'train'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_log_input_without_context() -> None:
    ds = runyard.data.from_pandas(pd.DataFrame({"a": [1]}))
    with mlflow.start_run() as run:
        mlflow.log_input(ds)
    (only,) = fresh(run.info.run_id).inputs.dataset_inputs
    assert only.tags == []
    assert only.dataset.source_type == "code"


# -- search_runs ------------------------------------------------------------------------------
def _make_runs() -> list[str]:
    mlflow.set_experiment("search")
    ids = []
    for i, auc in enumerate([0.85, 0.95, 0.91]):
        with mlflow.start_run(run_name=f"r{i}") as run:
            mlflow.log_param("depth", i)
            mlflow.log_metric("auc", auc)
            mlflow.set_tag("fold", str(i % 2))
        ids.append(run.info.run_id)
    return ids


def test_search_runs_dataframe() -> None:
    ids = _make_runs()
    df = mlflow.search_runs()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    for col in ("metrics.auc", "params.depth", "tags.fold", "tags.mlflow.runName"):
        assert col in df.columns
    assert sorted(df["run_id"]) == sorted(ids)
    assert set(df["status"]) == {"FINISHED"}
    assert df["metrics.auc"].dtype == np.float64
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)
    row = df.set_index("run_id").loc[ids[1]]
    assert row["metrics.auc"] == 0.95
    assert row["params.depth"] == "1"
    assert row["tags.fold"] == "1"
    assert row["tags.mlflow.runName"] == "r1"
    exp = mlflow.get_experiment_by_name("search")
    assert exp is not None
    assert set(df["experiment_id"]) == {exp.experiment_id}


def test_search_runs_filter_order_and_list() -> None:
    ids = _make_runs()
    df = mlflow.search_runs(filter_string="metrics.auc > 0.9", order_by=["metrics.auc DESC"])
    assert list(df["run_id"]) == [ids[1], ids[2]]
    runs = mlflow.search_runs(filter_string="params.depth = '0'", output_format="list")
    assert [r.info.run_id for r in runs] == [ids[0]]
    assert runs[0].data.metrics == {"auc": 0.85}
    assert len(mlflow.search_runs(max_results=2)) == 2
    with pytest.raises(MlflowException):
        mlflow.search_runs(output_format="json")


def test_search_runs_experiment_scope() -> None:
    ids = _make_runs()
    with mlflow.start_run(experiment_id="0") as default_run:
        pass
    assert list(mlflow.search_runs(experiment_ids=["0"])["run_id"]) == [default_run.info.run_id]
    by_name = mlflow.search_runs(experiment_names=["search"], output_format="list")
    assert sorted(r.info.run_id for r in by_name) == sorted(ids)
    everywhere = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert len(everywhere) == 4
    assert mlflow.search_runs(experiment_names=["nope"], output_format="list") == []


def test_search_runs_empty_has_columns() -> None:
    df = mlflow.search_runs(filter_string="metrics.auc > 100")
    assert len(df) == 0
    assert list(df.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]


def test_search_runs_missing_values_are_nan() -> None:
    with mlflow.start_run() as with_metric:
        mlflow.log_metric("acc", 0.5)
    with mlflow.start_run() as without:
        mlflow.log_param("only", "param")
    df = mlflow.search_runs().set_index("run_id")
    assert df.loc[with_metric.info.run_id, "metrics.acc"] == 0.5
    assert math.isnan(df.loc[without.info.run_id, "metrics.acc"])
    assert pd.isna(df.loc[with_metric.info.run_id, "params.only"])
