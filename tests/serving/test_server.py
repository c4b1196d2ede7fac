"""``runyard models serve`` as real processes: a scikit-learn model logged into a SQLite store,
served by every kind of model URI, with one and two workers; bad payloads never take a worker
down; metrics add up over workers; SIGTERM stops the server cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import runyard
import runyard.sklearn
from runyard.models import infer_signature
from runyard.tracking.client import Client
from runyard.version import MLFLOW_COMPATIBLE_VERSION
from tests.serving.scoring_models import fit_iris_classifier, iris_frame

pytestmark = pytest.mark.slow

RUNYARD = str(Path(sys.executable).parent / "runyard")
START_TIMEOUT_S = 120


@dataclass
class Logged:
    """The iris classifier logged and registered as 'iris' version 1."""

    run_id: str
    classifier: Any


@pytest.fixture
def logged(tracking_env: str, monkeypatch: pytest.MonkeyPatch) -> Logged:
    monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "false")
    classifier = fit_iris_classifier()
    features, _ = iris_frame()
    signature = infer_signature(features, classifier.predict(features))
    with runyard.start_run() as run:
        runyard.sklearn.log_model(
            classifier, name="model", signature=signature, registered_model_name="iris"
        )
    client = Client(tracking_env)
    client.transition_model_version_stage("iris", "1", "Production")
    client.set_registered_model_alias("iris", "champion", "1")
    return Logged(run.info.run_id, classifier)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_for_ping(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, f"exited early:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"no /ping in time:\n{log.read_text()}"
        time.sleep(0.1)


@contextmanager
def serving(model_uri: str, cwd: Path, env: dict[str, str], *extra: str) -> Iterator[Server]:
    """``runyard models serve -m model_uri`` on a free port; stopped with SIGTERM on exit, and
    the stop must be graceful."""
    port = _free_port()
    log = cwd / f"serve-{port}.log"
    command = [RUNYARD, "models", "serve", "-m", model_uri, "-p", str(port), *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_for_ping(server.url, process, log)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    # uvicorn stops gracefully, then re-raises the signal it caught (status -SIGTERM).
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Finished server process" in log.read_text()


def _env(clean_env: dict[str, str], tracking_uri: str) -> dict[str, str]:
    return {**clean_env, "MLFLOW_TRACKING_URI": tracking_uri}


def _check_scoring(url: str, logged: Logged) -> None:
    features, _ = iris_frame()
    rows = features.iloc[[0, 55, 110]]
    expected = [int(v) for v in logged.classifier.predict(rows)]
    with httpx.Client(base_url=url, timeout=30) as client:
        bad = client.post(
            "/invocations", content=b"{broken", headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "BAD_REQUEST"
        good = client.post(
            "/invocations",
            json={"dataframe_split": rows.to_dict(orient="split", index=False)},
        )
        assert good.status_code == 200, good.text
        assert good.json() == {"predictions": expected}
        csv = client.post(
            "/invocations", content=rows.to_csv(index=False), headers={"Content-Type": "text/csv"}
        )
        assert csv.json() == {"predictions": expected}
        assert client.get("/version").text == MLFLOW_COMPATIBLE_VERSION


@pytest.mark.parametrize("uri_kind", ["runs", "version", "stage"])
def test_serves_a_registered_model_by_any_uri(
    logged: Logged, tracking_env: str, clean_env: dict[str, str], tmp_path: Path, uri_kind: str
) -> None:
    uri = {
        "runs": f"runs:/{logged.run_id}/model",
        "version": "models:/iris/1",
        "stage": "models:/iris/Production",
    }[uri_kind]
    with serving(uri, tmp_path, _env(clean_env, tracking_env)) as server:
        _check_scoring(server.url, logged)


def _counter(metrics: str, line_start: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in:\n{metrics}")


def test_two_workers_serve_an_alias_and_sum_their_metrics(
    logged: Logged, tracking_env: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    features, _ = iris_frame()
    payload = {"dataframe_records": features.iloc[[3]].to_dict("records")}
    expected = {"predictions": [int(logged.classifier.predict(features.iloc[[3]])[0])]}
    env = _env(clean_env, tracking_env)
    with serving("models:/iris@champion", tmp_path, env, "--workers", "2") as server:
        _check_scoring(server.url, logged)
        for _ in range(20):
            # A new connection each time, so both workers get requests.
            with httpx.Client(base_url=server.url, timeout=30) as client:
                response = client.post("/invocations", json=payload)
                assert response.json() == expected
        pids = subprocess.run(
            ["pgrep", "-g", str(server.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(pids) >= 3  # the supervisor and two workers
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    ok = 'runyard_scoring_requests_total{method="POST",route="/invocations",status="200"}'
    assert _counter(metrics, ok) == 22  # 2 from _check_scoring + 20, whichever worker answered
    bad = 'runyard_scoring_requests_total{method="POST",route="/invocations",status="400"}'
    assert _counter(metrics, bad) == 1
    assert _counter(metrics, "runyard_scoring_model_load_seconds") > 0


FORWARDER = """
import sys
from runyard.serving.server import run_forwarding_signals, server_command

command = server_command(
    sys.executable, sys.argv[1], host="127.0.0.1", port=int(sys.argv[2]), workers=1, timeout=30
)
status = run_forwarding_signals(command)
print("child exit status", status, flush=True)
"""


def test_the_in_environment_entry_point_and_signal_forwarding(
    logged: Logged, tracking_env: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """What ``--env-manager virtualenv`` runs: ``<python> -m runyard.serving`` as a child in its
    own session, which SIGTERM sent to the parent alone still stops gracefully."""
    from runyard.models.download import download_model

    model_dir = download_model("models:/iris@champion")
    port = _free_port()
    script = tmp_path / "forward.py"
    script.write_text(FORWARDER)
    log = tmp_path / "forward.log"
    with log.open("wb") as out:
        parent = subprocess.Popen(
            [sys.executable, str(script), model_dir, str(port)],
            cwd=tmp_path,
            env=_env(clean_env, tracking_env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_ping(url, parent, log)
        _check_scoring(url, logged)
        parent.send_signal(signal.SIGTERM)  # to the parent only: the child has its own session
        assert parent.wait(30) == 0, log.read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    text = log.read_text()
    assert "Finished server process" in text
    assert f"child exit status {-signal.SIGTERM}" in text or "child exit status 0" in text
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/ping", timeout=2)


def test_entry_point_reports_a_bad_model_path_in_one_line(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runyard.serving", "--model-path", str(tmp_path / "none")],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: No model at")
