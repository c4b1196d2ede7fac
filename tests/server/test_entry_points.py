"""``runyard.server:app`` runs under gunicorn (WSGI workers) and uvicorn (ASGI), as MLflow's does,
and ``runyard server`` starts, answers and stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        try:
            if httpx.get(f"{url}/health", timeout=1).text == "OK":
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def _exercise(url: str) -> None:
    created = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "w"})
    assert created.json() == {"experiment_id": "1"}
    put = httpx.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/1/a.txt", content=b"hello")
    assert put.status_code == 200
    assert httpx.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/1/a.txt").content == b"hello"


@pytest.mark.parametrize(
    "command",
    [
        ["gunicorn", "--workers", "2", "-b", "127.0.0.1:{port}", "runyard.server:app"],
        ["uvicorn", "runyard.server:app", "--port", "{port}", "--workers", "2"],
    ],
    ids=["gunicorn", "uvicorn"],
)
def test_app_under_wsgi_and_asgi_servers(
    command: list[str], tmp_path: Path, clean_env: dict[str, str]
) -> None:
    port = _free_port()
    argv = [str(BIN / command[0]), *(c.format(port=port) for c in command[1:])]
    env = {**clean_env, "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/db.sqlite"}
    env["MLFLOW_ARTIFACTS_DESTINATION"] = str(tmp_path / "art")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        _exercise(f"http://127.0.0.1:{port}")
        assert (tmp_path / "art/1/a.txt").read_bytes() == b"hello"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_runyard_server_cli_starts_prints_url_and_stops(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "runyard"), "server", "-p", str(port)],
        cwd=tmp_path,
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        _exercise(f"http://127.0.0.1:{port}")
        assert (tmp_path / "runyard.db").exists()
        assert (tmp_path / "runyard-artifacts/1/a.txt").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}" in out.decode()
    assert b"Traceback" not in err


def test_bad_store_uri_is_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "runyard"), "server", "--backend-store-uri", "nosuch://x"],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ")
    assert "Traceback" not in done.stderr


def test_concurrent_writers_on_two_workers_never_see_locks(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Two worker processes, 24 concurrent writers, one SQLite file: every write lands."""
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "runyard"), "server", "-p", str(port), "-w", "2"],
        cwd=tmp_path,
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        shared = httpx.post(f"{url}/runs/create", json={"experiment_id": "0"}).json()
        shared_id = shared["run"]["info"]["run_id"]

        def writer(n: int) -> list[int]:
            statuses = []
            with httpx.Client(timeout=60) as client:
                own = client.post(f"{url}/runs/create", json={"experiment_id": "0"}).json()
                for batch in range(10):
                    for run_id in (own["run"]["info"]["run_id"], shared_id):
                        metrics = [
                            {"key": f"w{n}", "value": i, "timestamp": 1, "step": batch * 100 + i}
                            for i in range(100)
                        ]
                        body = {"run_id": run_id, "metrics": metrics}
                        statuses.append(client.post(f"{url}/runs/log-batch", json=body).status_code)
            return statuses

        with ThreadPoolExecutor(24) as pool:
            results = [s for statuses in pool.map(writer, range(24)) for s in statuses]
        assert results == [200] * 24 * 20
        for n in (0, 23):
            history = httpx.get(
                f"{url}/metrics/get-history", params={"run_id": shared_id, "metric_key": f"w{n}"}
            ).json()
            assert len(history["metrics"]) == 1000
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert b"database is locked" not in err
