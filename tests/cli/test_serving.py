"""``runyard models predict`` (JSON and CSV, files and pipes, MLflow's output, one-line errors)
and the checks ``runyard models serve`` makes before it starts a server."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runyard.cli import main
from tests.cli.conftest import ErrorCheck, Invoke
from tests.serving.scoring_models import (
    Echo,
    EnvFactor,
    iris_frame,
    save_iris_model,
    save_python_model,
    x_frame,
)


@pytest.fixture
def iris_model(tmp_path: Path) -> tuple[str, Any]:
    path = tmp_path / "iris-model"
    classifier = save_iris_model(path)
    return str(path), classifier


def _rows_and_expected(classifier: Any) -> tuple[Any, list[int]]:
    features, _ = iris_frame()
    rows = features.iloc[[5, 75, 140]].reset_index(drop=True)
    return rows, [int(v) for v in classifier.predict(rows)]


def test_predict_json_file_to_file(
    cli: Invoke, iris_model: tuple[str, Any], tmp_path: Path
) -> None:
    rows, expected = _rows_and_expected(iris_model[1])
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"dataframe_split": rows.to_dict(orient="split", index=False)}))
    target = tmp_path / "out.json"
    result = cli("models", "predict", "-m", iris_model[0], "-i", str(source), "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    # MLflow writes json.dump's text: with spaces, no trailing newline.
    assert target.read_text() == json.dumps({"predictions": expected})


def test_predict_csv_from_stdin_to_stdout(
    tracking_uri_env: str, iris_model: tuple[str, Any]
) -> None:
    rows, expected = _rows_and_expected(iris_model[1])
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["models", "predict", "-m", iris_model[0], "-t", "csv"],
        input=rows.to_csv(index=False),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"predictions": expected}


def test_predict_records_and_unified_llm_bodies(
    cli: Invoke, iris_model: tuple[str, Any], tmp_path: Path
) -> None:
    rows, expected = _rows_and_expected(iris_model[1])
    source = tmp_path / "records.json"
    source.write_text(json.dumps({"dataframe_records": rows.to_dict("records")}))
    result = cli("models", "predict", "-m", iris_model[0], "-i", str(source))
    assert json.loads(result.stdout) == {"predictions": expected}
    echo = tmp_path / "echo"
    save_python_model(echo, Echo())
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    result = cli("models", "predict", "-m", str(echo), "-i", str(chat))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "received": {"messages": [{"role": "user", "content": "hi"}]},
        "params": {},
    }


def test_predict_a_logged_model_by_runs_uri(cli: Invoke, tmp_path: Path) -> None:
    import runyard
    import runyard.sklearn
    from tests.serving.scoring_models import fit_iris_classifier

    classifier = fit_iris_classifier()
    with runyard.start_run() as run:
        runyard.sklearn.log_model(classifier, name="model")
    runyard.flush()
    rows, expected = _rows_and_expected(classifier)
    source = tmp_path / "in.json"
    # No signature: the split body becomes a DataFrame of the given columns, as in MLflow.
    source.write_text(json.dumps({"dataframe_split": rows.to_dict(orient="split", index=False)}))
    result = cli("models", "predict", "-m", f"runs:/{run.info.run_id}/model", "-i", str(source))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"predictions": expected}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_predict_errors_are_one_line(
    tracking_uri_env: str, iris_model: tuple[str, Any], tmp_path: Path, user_error: ErrorCheck
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = _invoke("models", "predict", "-m", iris_model[0], "-i", str(broken))
    user_error(result, "Invalid input. Ensure that input is a valid JSON formatted string.")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1]]}}))
    result = _invoke("models", "predict", "-m", iris_model[0], "-i", str(wrong))
    user_error(result, "Model is missing inputs")
    result = _invoke("models", "predict", "-m", iris_model[0], "-i", str(tmp_path / "none.json"))
    user_error(result, "No such file or directory")
    result = _invoke("models", "predict", "-m", str(tmp_path / "no-model"), "-i", str(wrong))
    user_error(result, "does not exist")
    result = _invoke("models", "predict", "-m", iris_model[0], "-i", str(wrong), "-r", "x==1")
    user_error(result, "`pip_requirements_override` is not supported for local env manager.")


def test_predict_rejects_unknown_options(
    tracking_uri_env: str, iris_model: tuple[str, Any], usage_error: ErrorCheck
) -> None:
    usage_error(_invoke("models", "predict", "-m", iris_model[0], "-t", "xml"), "'xml'")
    usage_error(
        _invoke("models", "predict", "-m", iris_model[0], "--env", "NOEQUALS"),
        "not a valid key value pair",
    )


def test_predict_sets_extra_environment_variables(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCORING_TEST_FACTOR", raising=False)
    model = tmp_path / "env-model"
    save_python_model(model, EnvFactor(), x_frame(1.0))
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"dataframe_split": {"columns": ["x"], "data": [[2.0]]}}))
    result = cli(
        "models", "predict", "-m", str(model), "-i", str(source), "--env", "SCORING_TEST_FACTOR=5"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"predictions": [10.0]}
    assert "SCORING_TEST_FACTOR" not in os.environ


# -- serve: what is checked before a server starts --------------------------------------------
def test_serve_refuses_bad_options_and_models(
    tracking_uri_env: str, iris_model: tuple[str, Any], tmp_path: Path, user_error: ErrorCheck
) -> None:
    serve = ("models", "serve", "-p", "0", "-m")  # port 0: no port check, the model fails first
    user_error(_invoke(*serve, iris_model[0], "-w", "0"), "Invalid number of workers")
    user_error(_invoke(*serve, iris_model[0], "-t", "0"), "Invalid timeout")
    user_error(_invoke("models", "serve", "-m", iris_model[0], "-p", "70000"), "Invalid port")
    user_error(_invoke(*serve, "models:/missing/1"), "missing")
    user_error(_invoke(*serve, str(tmp_path / "nowhere")), "does not exist")


def test_serve_refuses_a_taken_port(
    tracking_uri_env: str, iris_model: tuple[str, Any], user_error: ErrorCheck
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _invoke("models", "serve", "-m", iris_model[0], "-p", str(port))
    user_error(result, f"Cannot serve on 127.0.0.1:{port}")


def test_serve_reads_mlflow_variables(
    tracking_uri_env: str,
    iris_model: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    user_error: ErrorCheck,
) -> None:
    serve = ("models", "serve", "-p", "0", "-m", iris_model[0])
    monkeypatch.setenv("MLFLOW_MODELS_WORKERS", "0")
    user_error(_invoke(*serve), "Invalid number of workers 0")
    monkeypatch.setenv("MLFLOW_MODELS_WORKERS", "1")
    monkeypatch.setenv("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT", "-1")
    user_error(_invoke(*serve), "Invalid timeout -1")
    monkeypatch.setenv("MLFLOW_PORT", "not-a-port")
    user_error(_invoke("models", "serve", "-m", iris_model[0]), "RUNYARD_PORT/MLFLOW_PORT")


def test_no_conda_means_local_and_contradictions_are_usage_errors(
    tracking_uri_env: str, iris_model: tuple[str, Any], usage_error: ErrorCheck
) -> None:
    result = _invoke(
        "models", "serve", "-m", iris_model[0], "--no-conda", "--env-manager", "virtualenv"
    )
    usage_error(result, "--no-conda contradicts --env-manager virtualenv")
