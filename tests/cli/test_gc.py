"""``runyard gc``: permanently delete soft-deleted runs, experiments and logged models, with
their artifacts (local, proxied ``mlflow-artifacts:``, S3 and on PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import update

from runyard.entities import LoggedModelOutput, Metric
from runyard.errors import ResourceDoesNotExist
from runyard.store.artifact import get_artifact_repository
from runyard.store.artifact.local import local_path_from_uri
from runyard.store.sql import schema as t
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.client import Client
from runyard.tracking.registry import get_store
from runyard.utils.time import now_ms
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401
from tests.s3_server import S3Server, s3_server  # noqa: F401

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]
DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def _no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("RUNYARD", "MLFLOW"):
        for name in ("BACKEND_STORE_URI", "ARTIFACTS_DESTINATION", "S3_ENDPOINT_URL"):
            monkeypatch.delenv(f"{prefix}_{name}", raising=False)


@pytest.fixture
def store(client: Client, tracking_uri_env: str) -> SqlTrackingStore:
    """The client's own store (for logged models and for back-dating deletions)."""
    found = get_store(tracking_uri_env)
    assert isinstance(found, SqlTrackingStore)
    return found


def _run_with_artifact(client: Client, exp_id: str, tmp_path: Path, name: str) -> tuple[str, Path]:
    """A run with a param, a metric and one artifact file; the file's path on disk."""
    run_id = client.create_run(exp_id, run_name=name).info.run_id
    client.log_param(run_id, "p", "1")
    client.log_metric(run_id, "loss", 0.5)
    source = tmp_path / f"{name}.txt"
    source.write_text(name)
    client.log_artifact(run_id, str(source), "out")
    root = Path(local_path_from_uri(client.get_run(run_id).info.artifact_uri))
    artifact = root / "out" / f"{name}.txt"
    assert artifact.read_text() == name
    return run_id, artifact


def _exists(client: Client, run_id: str) -> bool:
    try:
        client.get_run(run_id)
    except ResourceDoesNotExist:
        return False
    return True


def _backdate_run(store: SqlTrackingStore, run_id: str, days: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(t.runs)
            .where(t.runs.c.run_uuid == run_id)
            .values(deleted_time=now_ms() - int(days * DAY_MS))
        )


def _json(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


# -- runs ----------------------------------------------------------------------------------------
def test_gc_removes_deleted_runs_and_their_artifacts_only(
    cli: Invoke, client: Client, tmp_path: Path
) -> None:
    exp_id = client.create_experiment("exp")
    doomed, doomed_file = _run_with_artifact(client, exp_id, tmp_path, "doomed")
    kept, kept_file = _run_with_artifact(client, exp_id, tmp_path, "kept")
    client.delete_run(doomed)

    result = cli("gc")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Run with ID {doomed} has been permanently deleted.",
        "Removed 1 run, 0 logged models, 0 experiments.",
    ]
    assert not _exists(client, doomed)
    assert not doomed_file.exists()
    assert not doomed_file.parents[2].exists()  # <experiment>/<run_id>/ went too
    assert kept_file.read_text() == "kept"
    assert client.get_run(kept).data.params == {"p": "1"}
    # Nothing left: a second gc is a no-op.
    assert cli("gc").stdout == "Removed 0 runs, 0 logged models, 0 experiments.\n"


def test_older_than_respects_deleted_time(
    cli: Invoke, client: Client, store: SqlTrackingStore, tmp_path: Path
) -> None:
    exp_id = client.create_experiment("exp")
    old, old_file = _run_with_artifact(client, exp_id, tmp_path, "old")
    new, new_file = _run_with_artifact(client, exp_id, tmp_path, "new")
    for run_id in (old, new):
        client.delete_run(run_id)
    _backdate_run(store, old, days=3)
    _backdate_run(store, new, days=1)

    data = _json(cli("gc", "--older-than", "2d", "--output", "json"))

    assert data["runs"] == [old]
    assert data["counts"] == {"runs": 1, "logged_models": 0, "experiments": 0}
    assert not old_file.exists()
    assert new_file.exists()
    assert _exists(client, new)
    # 1d2h3m4s-style durations with decimals work too; 0.5d catches the run deleted 1 day ago.
    assert _json(cli("gc", "--older-than", "0.5d", "--output", "json"))["runs"] == [new]


@pytest.mark.parametrize("text", ["2 days", "d", "1x", "", "1.2.3h"])
def test_older_than_must_parse(cli: Invoke, user_error: ErrorCheck, text: str) -> None:
    user_error(cli("gc", "--older-than", text), "Could not parse any time information")


def test_named_run_must_be_old_enough(cli: Invoke, client: Client, user_error: ErrorCheck) -> None:
    run_id = client.create_run(client.create_experiment("exp")).info.run_id
    client.delete_run(run_id)
    user_error(
        cli("gc", "--run-ids", run_id, "--older-than", "1h"),
        f"Run {run_id} is not older than the required age",
    )
    assert _exists(client, run_id)


def test_run_ids_limit_what_is_removed(cli: Invoke, client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("exp")
    first, first_file = _run_with_artifact(client, exp_id, tmp_path, "first")
    second, second_file = _run_with_artifact(client, exp_id, tmp_path, "second")
    other_exp = client.create_experiment("other")
    for run_id in (first, second):
        client.delete_run(run_id)
    client.delete_experiment(other_exp)

    data = _json(cli("gc", "--run-ids", f" {first} ,", "--output", "json"))

    assert (data["runs"], data["experiments"]) == ([first], [])
    assert not first_file.exists()
    assert second_file.exists()
    assert _exists(client, second)
    assert client.get_experiment(other_exp).lifecycle_stage == "deleted"


def test_not_deleted_run_id_is_one_line_error_and_changes_nothing(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    exp_id = client.create_experiment("exp")
    active = client.create_run(exp_id).info.run_id
    deleted = client.create_run(exp_id).info.run_id
    client.delete_run(deleted)
    user_error(
        cli("gc", "--run-ids", f"{deleted},{active}"),
        f"Run {active} is not in `deleted` lifecycle stage",
    )
    assert _exists(client, deleted)  # validation happens before anything is removed
    user_error(cli("gc", "--run-ids", "f" * 32), f"Run with id={'f' * 32} not found")


# -- experiments ---------------------------------------------------------------------------------
def test_experiment_ids_remove_the_experiment_with_its_runs_and_free_the_name(
    cli: Invoke, client: Client, tmp_path: Path
) -> None:
    doomed = client.create_experiment("doomed")
    doomed_run, doomed_file = _run_with_artifact(client, doomed, tmp_path, "a")
    other = client.create_experiment("other")
    other_run, other_file = _run_with_artifact(client, other, tmp_path, "b")
    client.delete_experiment(doomed)
    client.delete_experiment(other)

    data = _json(cli("gc", "--experiment-ids", doomed, "--output", "json"))

    assert (data["experiments"], data["runs"]) == ([doomed], [doomed_run])
    with pytest.raises(ResourceDoesNotExist):
        client.get_experiment(doomed)
    assert not _exists(client, doomed_run)
    assert not doomed_file.exists()
    assert not doomed_file.parents[3].exists()  # the experiment's folder, left empty, went too
    assert other_file.exists()
    assert client.get_experiment(other).lifecycle_stage == "deleted"
    assert _exists(client, other_run)
    # The name is free again.
    reborn = client.create_experiment("doomed")
    assert client.get_experiment(reborn).name == "doomed"


def test_active_or_unknown_experiment_id_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    active = client.create_experiment("active")
    user_error(
        cli("gc", "--experiment-ids", active),
        f"Experiments ['{active}'] are not in the deleted lifecycle stage",
    )
    user_error(cli("gc", "--experiment-ids", "4242"), "No Experiment with id=4242 exists")
    user_error(cli("gc", "--experiment-ids", "abc"), "Invalid experiment ID: 'abc'")


def test_gc_without_ids_removes_deleted_experiments_older_than_cutoff(
    cli: Invoke, client: Client, store: SqlTrackingStore
) -> None:
    old, new = client.create_experiment("old"), client.create_experiment("new")
    for exp_id in (old, new):
        client.delete_experiment(exp_id)
    with store.engine.begin() as conn:
        conn.execute(
            update(t.experiments)
            .where(t.experiments.c.experiment_id == int(old))
            .values(last_update_time=now_ms() - 10 * DAY_MS)
        )
    data = _json(cli("gc", "--older-than", "7d", "--output", "json"))
    assert data["experiments"] == [old]
    assert client.get_experiment(new).lifecycle_stage == "deleted"
    assert client.get_experiment_by_name("old") is None


# -- logged models -------------------------------------------------------------------------------
def test_logged_models_are_removed_with_their_artifacts(
    cli: Invoke, client: Client, store: SqlTrackingStore, user_error: ErrorCheck, tmp_path: Path
) -> None:
    exp_id = client.create_experiment("exp")
    run_id = client.create_run(exp_id).info.run_id
    doomed, kept = (store.create_logged_model(exp_id, n, source_run_id=run_id) for n in "ab")
    files = {}
    for model in (doomed, kept):
        store.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
        store.log_batch(run_id, [Metric("acc", 1.0, 1, 0, model_id=model.model_id)])
        repo = get_artifact_repository(model.artifact_location)
        source = tmp_path / model.name / "MLmodel"
        source.parent.mkdir()
        source.write_text(model.name)
        repo.log_artifact(str(source))
        files[model.model_id] = Path(local_path_from_uri(model.artifact_location)) / "MLmodel"
    user_error(
        cli("gc", "--logged-model-ids", doomed.model_id),
        f"Logged model {doomed.model_id} is not in `deleted` lifecycle stage",
    )
    store.delete_logged_model(doomed.model_id)

    data = _json(cli("gc", "--logged-model-ids", doomed.model_id, "--output", "json"))

    assert data["logged_models"] == [doomed.model_id]
    assert not files[doomed.model_id].parents[1].exists()  # models/<model_id>/ went
    assert files[kept.model_id].read_text() == "b"
    with pytest.raises(ResourceDoesNotExist):
        store.get_logged_model(doomed.model_id, allow_deleted=True)
    assert store.get_logged_model(kept.model_id).name == "b"
    assert client.get_run(run_id).outputs.model_outputs == [LoggedModelOutput(kept.model_id, 0)]
    user_error(cli("gc", "--logged-model-ids", "m-nope"), "Logged model with ID 'm-nope'")


# -- robustness ----------------------------------------------------------------------------------
def test_already_missing_artifacts_are_fine(cli: Invoke, client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("exp")
    run_id, artifact = _run_with_artifact(client, exp_id, tmp_path, "gone")
    never_logged = client.create_run(exp_id).info.run_id  # no artifact directory at all
    artifact.parents[1].rename(tmp_path / "moved-away")
    client.delete_run(run_id)
    client.delete_run(never_logged)

    data = _json(cli("gc", "--output", "json"))

    assert sorted(data["runs"]) == sorted([run_id, never_logged])  # type: ignore[type-var]
    assert data["failed"] == []
    assert not _exists(client, run_id)


def test_interrupted_gc_is_finished_by_the_next_one(
    cli: Invoke, client: Client, store: SqlTrackingStore, tmp_path: Path
) -> None:
    exp_id = client.create_experiment("exp")
    run_id, artifact = _run_with_artifact(client, exp_id, tmp_path, "half")
    for step in range(5):
        client.log_metric(run_id, "loss", 0.1 * step, step=step)
    client.delete_run(run_id)
    # A gc killed after the artifacts and some metric points went, before the run's rows did.
    get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts()
    with store.engine.begin() as conn:
        conn.execute(t.metric_points.delete())
    assert not artifact.exists()
    assert _exists(client, run_id)

    data = _json(cli("gc", "--output", "json"))

    assert data["runs"] == [run_id]
    assert not _exists(client, run_id)


def test_unreachable_artifacts_keep_the_rows_and_fail(
    cli: Invoke, client: Client, tmp_path: Path
) -> None:
    unreachable = client.create_experiment("far", artifact_location="gs://bucket/far")
    far_run = client.create_run(unreachable).info.run_id
    exp_id = client.create_experiment("near")
    near_run, near_file = _run_with_artifact(client, exp_id, tmp_path, "near")
    client.delete_experiment(unreachable)
    client.delete_run(near_run)

    result = cli("gc")

    assert result.exit_code == 1
    assert f"Run with ID {near_run} has been permanently deleted." in result.stdout
    assert "Removed 1 run, 0 logged models, 0 experiments." in result.stdout
    assert f"Kept run {far_run}: Artifact URI scheme 'gs' is not supported" in result.stderr
    assert f"Kept experiment {unreachable}: some of its runs" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: 2 object(s) could not be removed")
    assert not near_file.exists()
    assert _exists(client, far_run)
    assert client.get_experiment(unreachable).lifecycle_stage == "deleted"


def test_dry_run_changes_nothing(cli: Invoke, client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("exp")
    run_id, artifact = _run_with_artifact(client, exp_id, tmp_path, "dry")
    doomed_exp = client.create_experiment("doomed")
    client.delete_run(run_id)
    client.delete_experiment(doomed_exp)

    data = _json(cli("gc", "--dry-run", "--output", "json"))
    table = cli("gc", "--dry-run")

    assert data == {
        "dry_run": True,
        "counts": {"runs": 1, "logged_models": 0, "experiments": 1},
        "runs": [run_id],
        "logged_models": [],
        "experiments": [doomed_exp],
        "failed": [],
    }
    assert table.stdout.splitlines() == [
        f"Would permanently delete run {run_id}.",
        f"Would permanently delete experiment {doomed_exp}.",
        "Would remove 1 run, 0 logged models, 1 experiment.",
    ]
    assert artifact.exists()
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.get_experiment(doomed_exp).lifecycle_stage == "deleted"


# -- where the data lives ------------------------------------------------------------------------
def test_proxied_artifacts_resolve_under_artifacts_destination(
    cli: Invoke, client: Client, tmp_path: Path
) -> None:
    exp_id = client.create_experiment("proxied", artifact_location="mlflow-artifacts:/proxied")
    run_id = client.create_run(exp_id).info.run_id
    destination = tmp_path / "dest"
    stored = destination / "proxied" / run_id / "artifacts" / "model.pkl"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"weights")
    client.delete_run(run_id)

    data = _json(cli("gc", "--artifacts-destination", str(destination), "--output", "json"))

    assert data["runs"] == [run_id]
    assert not stored.exists()
    assert destination.is_dir()


def test_backend_store_uri_option_and_server_uris_refused(
    cli: Invoke, client: Client, user_error: ErrorCheck, tmp_path: Path
) -> None:
    other_uri = f"sqlite:///{tmp_path / 'other.db'}"
    other = SqlTrackingStore(other_uri, str(tmp_path / "other-artifacts"))
    run_id = other.create_run("0", "u", 0, [], "r").info.run_id
    other.delete_run(run_id)
    mine = client.create_run("0").info.run_id
    client.delete_run(mine)

    data = _json(cli("gc", "--backend-store-uri", other_uri, "--output", "json"))

    assert data["runs"] == [run_id]
    with pytest.raises(ResourceDoesNotExist):
        other.get_run(run_id)
    other.close()
    assert _exists(client, mine)  # the default (tracking URI) store was not touched
    user_error(
        cli("gc", "--backend-store-uri", "http://127.0.0.1:5000"),
        "runyard gc works on the tracking database itself",
    )


def test_gc_on_s3_artifacts(
    cli: Invoke,
    client: Client,
    s3_server: S3Server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    exp_id = client.create_experiment("s3", artifact_location=f"s3://{s3_server.bucket}/gc")
    doomed, kept = (client.create_run(exp_id).info.run_id for _ in range(2))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00" * 1024)
    for run_id in (doomed, kept):
        client.log_artifact(run_id, str(source), "model")
    assert len(s3_server.keys(f"gc/{doomed}/")) == 1
    client.delete_run(doomed)

    data = _json(cli("gc", "--output", "json"))

    assert data["runs"] == [doomed]
    assert s3_server.keys(f"gc/{doomed}/") == []
    assert s3_server.keys(f"gc/{kept}/") == [f"gc/{kept}/artifacts/model/weights.bin"]
    # Running again over the same (now missing) objects is fine.
    client.delete_run(kept)
    assert _json(cli("gc", "--output", "json"))["runs"] == [kept]
    assert s3_server.keys("gc/") == []


@pytest.mark.slow
def test_gc_on_postgresql(
    cli: Invoke,
    pg_primary: PgServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    uri = pg_primary.create_database()
    pg_store = SqlTrackingStore(uri, str(tmp_path / "pg-artifacts"), auto_upgrade=True)
    exp_id = pg_store.create_experiment("pg")
    runs = [pg_store.create_run(exp_id, "u", 0, [], f"r{i}").info.run_id for i in range(3)]
    pg_store.log_batch(runs[0], [Metric("m", 1.0, 1, 0)])
    pg_store.delete_experiment(exp_id)
    repo = get_artifact_repository(pg_store.get_run(runs[0]).info.artifact_uri)
    source = tmp_path / "f.txt"
    source.write_text("x")
    repo.log_artifact(str(source))

    data = _json(cli("gc", "--backend-store-uri", uri, "--output", "json"))

    assert data["experiments"] == [exp_id]
    assert sorted(data["runs"]) == sorted(runs)  # type: ignore[type-var]
    assert not (tmp_path / "pg-artifacts" / exp_id / runs[0]).exists()
    assert pg_store.get_experiment_by_name("pg") is None
    assert pg_store.create_experiment("pg") != ""
    pg_store.close()
