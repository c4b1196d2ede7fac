"""50 writer processes on one SQLite store: no "database is locked" ever reaches a writer.

Each writer process creates a run, sends ``BATCHES`` log-batches (``METRICS`` metrics at one
step, a param and a tag each) and ends the run. Variants: every writer talks to one tracking
server (raw HTTP, no client retries, so a lock error cannot hide behind a retry); every writer
opens the SQLite file itself (``import runyard`` embedded mode); half and half on the same file
while the server serves.

The writers are forked from one helper process (this file run as a script) that imported
runyard once, and are released together, so the store sees 50 writers at the same instant
without paying 50 interpreter start-ups on a small CI machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: Writer processes per test (RUNYARD_TEST_WRITERS overrides, e.g. for a heavier local run).
WRITERS = int(os.environ.get("RUNYARD_TEST_WRITERS", "50"))
BATCHES = 6
METRICS = 25
_LOCKED = ("database is locked", "database table is locked", "database is busy")


# -- the writer processes (this file run as a script) ------------------------------------------


def _batch(index: int, step: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "metrics": [
            {"key": f"m{k}", "value": float(index * 1000 + step), "timestamp": now, "step": step}
            for k in range(METRICS)
        ],
        "params": [{"key": f"p{step}", "value": f"w{index}"}],
        "tags": [{"key": f"t{step}", "value": str(step)}],
    }


def _http_writer(url: str, exp_id: str, index: int) -> dict[str, Any]:
    import httpx

    errors: list[str] = []
    done = 0
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=120) as http:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
            response = http.post(path, json=body)
            if response.status_code != 200:
                errors.append(f"{path}: {response.status_code} {response.text[:300]}")
                return None
            doc: dict[str, Any] = response.json()
            return doc

        created = post("/runs/create", {"experiment_id": exp_id, "run_name": f"w{index}"})
        if created is None:
            return {"index": index, "run_id": None, "batches": 0, "errors": errors}
        run_id = created["run"]["info"]["run_id"]
        for step in range(BATCHES):
            if post("/runs/log-batch", {"run_id": run_id, **_batch(index, step)}) is not None:
                done += 1
        post("/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1})
    return {"index": index, "run_id": run_id, "batches": done, "errors": errors}


def _embedded_writer(uri: str, exp_id: str, index: int) -> dict[str, Any]:
    from runyard.entities import Metric, Param, RunTag
    from runyard.tracking.client import Client

    errors: list[str] = []
    done = 0
    client = Client(uri)
    run_id = client.create_run(exp_id, run_name=f"w{index}").info.run_id
    for step in range(BATCHES):
        doc = _batch(index, step)
        try:
            client.log_batch(
                run_id,
                [Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in doc["metrics"]],
                [Param(p["key"], p["value"]) for p in doc["params"]],
                [RunTag(g["key"], g["value"]) for g in doc["tags"]],
                synchronous=True,
            )
            done += 1
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test
            errors.append(f"log_batch: {exc!r}")
    client.set_terminated(run_id, "FINISHED")
    return {"index": index, "run_id": run_id, "batches": done, "errors": errors}


def _fan_out(count: int, work: Callable[[int], dict[str, Any]], out: Path) -> None:
    """Fork ``count`` writers, release them at once, wait for all; each writes ``<i>.json``."""
    gate_r, gate_w = os.pipe()
    pids = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # the writer
            os.close(gate_w)
            os.read(gate_r, 1)  # EOF when the parent closes its end: everyone starts together
            try:
                result = work(index)
            except BaseException as exc:  # noqa: BLE001 - reported, the test decides
                result = {"index": index, "run_id": None, "batches": 0, "errors": [repr(exc)]}
            (out / f"{index}.json").write_text(json.dumps(result))
            os._exit(0)
        pids.append(pid)
    os.close(gate_r)
    os.close(gate_w)
    for pid in pids:
        os.waitpid(pid, 0)


def _main(argv: list[str]) -> None:
    """``SERVER_URL SQLITE_URI EXPERIMENT_ID OUT_DIR SPEC``; SPEC says how many writers of each
    kind, e.g. ``http:25,embedded:25`` or ``embedded:50``."""
    _, http_url, sqlite_uri, exp_id, out, spec = argv
    plan = []
    for part in spec.split(","):
        mode, _, count = part.partition(":")
        plan += [mode] * int(count)
    # Imported once, before forking: the writers share the loaded modules.
    import httpx  # noqa: F401

    import runyard.tracking.client  # noqa: F401

    def work(index: int) -> dict[str, Any]:
        if plan[index] == "http":
            return _http_writer(http_url, exp_id, index)
        return _embedded_writer(sqlite_uri, exp_id, index)

    _fan_out(len(plan), work, Path(out))


# -- the tests ---------------------------------------------------------------------------------


def _run_writers(
    tmp_path: Path, spec: str, url: str, uri: str, exp_id: str
) -> list[dict[str, Any]]:
    out = tmp_path / "results"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, __file__, url, uri, exp_id, str(out), spec],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    expected = sum(int(part.partition(":")[2]) for part in spec.split(","))
    assert len(results) == expected, f"{len(results)} of {expected} writers reported"
    return results


def _check_stored(uri: str, results: list[dict[str, Any]]) -> tuple[int, int]:
    """Every writer's run holds every batch: BATCHES points per key, every param and tag.

    Returns (batches attempted, batches stored)."""
    from runyard.store.sql.store import SqlTrackingStore

    errors = [e for r in results for e in r["errors"]]
    assert not errors, f"{len(errors)} errors reached writers, e.g. {errors[:3]}"
    store = SqlTrackingStore(uri, "unused", auto_upgrade=False)
    stored = 0
    try:
        for result in results:
            run = store.get_run(result["run_id"])
            assert run.info.status == "FINISHED"
            assert len(run.data.params) == BATCHES
            assert len(run.data.tags) >= BATCHES
            assert len(run.data.metrics) == METRICS
            for key in ("m0", f"m{METRICS - 1}"):
                history = store.get_metric_history(result["run_id"], key)
                assert sorted(m.step for m in history) == list(range(BATCHES))
            stored += len({m.step for m in store.get_metric_history(result["run_id"], "m0")})
    finally:
        store.close()
    return len(results) * BATCHES, stored


def _new_store(uri: str) -> str:
    """Create the database (migrated) and an experiment; its id."""
    from runyard.store.sql.store import SqlTrackingStore

    store = SqlTrackingStore(uri, "unused")
    try:
        return store.create_experiment("writers")
    finally:
        store.close()


def _server_log_clean(root: Path) -> None:
    log = (root / "server.log").read_text(errors="replace").lower()
    assert not any(m in log for m in _LOCKED), log[-3000:]
    assert "traceback" not in log, log[-3000:]


def test_writers_through_one_server(tmp_path: Path) -> None:
    from tests.live_server import start_server, stop_server

    server = start_server(tmp_path, kind="runyard")
    uri = f"sqlite:///{tmp_path / 'db'}"
    try:
        import httpx

        exp = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "w"})
        exp_id = exp.json()["experiment_id"]
        results = _run_writers(tmp_path, f"http:{WRITERS}", server.url, uri, exp_id)
    finally:
        stop_server(server)
    attempted, stored = _check_stored(uri, results)
    assert stored == attempted == WRITERS * BATCHES
    _server_log_clean(tmp_path)


def test_writers_embedded_on_one_sqlite_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    exp_id = _new_store(uri)
    results = _run_writers(tmp_path, f"embedded:{WRITERS}", "", uri, exp_id)
    attempted, stored = _check_stored(uri, results)
    assert stored == attempted == WRITERS * BATCHES


def test_embedded_writers_beside_a_serving_server(tmp_path: Path) -> None:
    """Scripts log into the file a running ``runyard ui`` serves (the everyday set-up)."""
    from tests.live_server import start_server, stop_server

    server = start_server(tmp_path, kind="runyard")
    uri = f"sqlite:///{tmp_path / 'db'}"
    half = WRITERS // 2
    try:
        import httpx

        exp = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "w"})
        exp_id = exp.json()["experiment_id"]
        spec = f"http:{half},embedded:{WRITERS - half}"
        results = _run_writers(tmp_path, spec, server.url, uri, exp_id)
    finally:
        stop_server(server)
    attempted, stored = _check_stored(uri, results)
    assert stored == attempted == WRITERS * BATCHES
    _server_log_clean(tmp_path)


if __name__ == "__main__":
    _main(sys.argv)
