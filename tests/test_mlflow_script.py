"""An unchanged MLflow training script (cheat sheet §1 and §3) runs on runyard end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runyard.entities import ViewType
from runyard.tracking import MlflowClient

pytestmark = pytest.mark.slow

SCRIPT = """
import json
import os

import runyard as mlflow
from runyard.tracking import MlflowClient

# -- cheat sheet §3, basic API: the first experiment created gets id "1"
mlflow.set_experiment("exp1")
with open("train.log", "w") as f:
    f.write("epoch 0 loss 1.0\\n")

with mlflow.start_run(run_name="run1") as run:
    mlflow.log_param("lr", 0.01)
    for epoch in range(20):
        mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    mlflow.log_metric("auc", 0.92)
    mlflow.log_artifact("train.log")
    # nested runs, one per cross-validation fold
    for fold in range(3):
        with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
            mlflow.log_param("fold", fold)
            mlflow.log_metric("auc", 0.85 + 0.03 * fold)
    run_id = run.info.run_id

# -- cheat sheet §1, quick local run
mlflow.set_experiment("quick-exp")
with mlflow.start_run():
    mlflow.log_param("p", 5)
    mlflow.log_metric("m", 0.92)
    with open("out.txt","w") as f: f.write("hello")
    mlflow.log_artifact("out.txt")

# -- cheat sheet §3, client API (our store instead of http://my-tracking:5000)
client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
runs = client.search_runs(experiment_ids=["1"], filter_string="metrics.auc > 0.9")
for r in runs:
    client.set_tag(r.info.run_id, "team", "fraud")

print(json.dumps({"run_id": run_id, "matched": sorted(r.info.run_id for r in runs)}))
"""


def test_mlflow_training_script(
    tmp_path: Path, tracking_env: str, clean_env: dict[str, str]
) -> None:
    uri = tracking_env
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**clean_env, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(
        [sys.executable, "train.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    client = MlflowClient(tracking_uri=uri)
    exp1 = client.get_experiment_by_name("exp1")
    quick = client.get_experiment_by_name("quick-exp")
    assert exp1 is not None
    assert quick is not None
    assert (exp1.experiment_id, quick.experiment_id) == ("1", "2")
    assert {e.name for e in client.search_experiments(view_type=ViewType.ALL)} == {
        "Default",
        "exp1",
        "quick-exp",
    }

    # the parent run
    parent = client.get_run(out["run_id"])
    assert parent.info.run_name == "run1"
    assert parent.info.status == "FINISHED"
    assert parent.info.experiment_id == "1"
    assert parent.data.params == {"lr": "0.01"}
    assert parent.data.metrics == {"loss": 1.0 / 20, "auc": 0.92}
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1.0 / (e + 1)) for e in range(20)]
    assert [f.path for f in client.list_artifacts(parent.info.run_id)] == ["train.log"]
    log = client.download_artifacts(parent.info.run_id, "train.log", str(tmp_path / "dl"))
    assert Path(log).read_text() == "epoch 0 loss 1.0\n"
    tags = parent.data.tags
    assert tags["mlflow.runName"] == "run1"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert os.path.realpath(tags["mlflow.source.name"]) == os.path.realpath(script)
    assert tags["mlflow.user"]

    # the nested fold runs
    folds = client.search_runs(
        ["1"],
        f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["params.fold ASC"],
    )
    assert [r.info.run_name for r in folds] == ["fold-0", "fold-1", "fold-2"]
    assert [r.data.params["fold"] for r in folds] == ["0", "1", "2"]
    assert [r.data.metrics["auc"] for r in folds] == pytest.approx([0.85, 0.88, 0.91])
    assert {r.info.status for r in folds} == {"FINISHED"}

    # the client search matched the runs with auc > 0.9 and tagged exactly those
    expected = sorted([parent.info.run_id, folds[2].info.run_id])
    assert out["matched"] == expected
    for run in [parent, *folds]:
        team = client.get_run(run.info.run_id).data.tags.get("team")
        assert team == ("fraud" if run.info.run_id in expected else None)
    tagged = client.search_runs(["1"], "tags.team = 'fraud'")
    assert sorted(r.info.run_id for r in tagged) == expected

    # the quickstart run
    (quick_run,) = client.search_runs([quick.experiment_id])
    assert quick_run.data.params == {"p": "5"}
    assert quick_run.data.metrics == {"m": 0.92}
    assert quick_run.info.status == "FINISHED"
    assert [f.path for f in client.list_artifacts(quick_run.info.run_id)] == ["out.txt"]
    artifact_root = Path(quick_run.info.artifact_uri)
    assert artifact_root.is_relative_to(tmp_path / "runyard-artifacts")
    assert (artifact_root / "out.txt").read_text() == "hello"
