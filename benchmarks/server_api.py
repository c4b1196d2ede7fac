"""The request layer of the raw-HTTP server workloads: MLflow REST calls over one keep-alive
connection, and the verification helpers. Standard library (and :mod:`benchmarks.loadgen`)
only: :mod:`benchmarks.server_workloads` and :mod:`benchmarks.server_bulk` build on it and
run as standalone scripts in any Python >= 3.10.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

try:
    from benchmarks import loadgen
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import loadgen  # type: ignore[no-redef]

Result = dict[str, Any]
API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


class VerificationError(AssertionError):
    """The server did not store or return what the workload sent."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`VerificationError` with ``message`` unless ``condition``."""
    if not condition:
        raise VerificationError(message)


def now_ms() -> int:
    """Milliseconds since the epoch, as MLflow timestamps are."""
    return int(time.time() * 1000)


class ApiClient:
    """MLflow REST calls against one server over one keep-alive connection.

    ``sizes`` is the workloads' :class:`benchmarks.server_workloads.ServerSizes`;
    ``server`` names the server (``runyard``, ``mlflow``, ``fasttrackml``; runyard must
    serve every endpoint, the others may lack some); ``server_pid`` (when known) lets
    workloads sample the server's memory while they run.
    """

    def __init__(
        self,
        http_kind: str,
        url: str,
        sizes: Any,
        artifacts: str,
        *,
        server: str = "",
        server_pid: int | None = None,
        artifact_file: tuple[str, str] | None = None,
    ) -> None:
        self.server = server
        self.http_kind = http_kind
        self.http = loadgen.connect(http_kind, url)
        self.url = url
        self.sizes = sizes
        self.artifacts_mode = artifacts
        self.server_pid = server_pid
        #: (path, SHA-256) of a prepared artifact file of ``sizes.artifact_bytes``, if any.
        self.artifact_file = artifact_file

    def timed_get(self, path: str, params: dict[str, str]) -> tuple[int, bytes, float]:
        """``GET path`` (a full path, any API): status, body and exchange seconds."""
        start = time.perf_counter()
        status, content = self.http.request("GET", path, params=params)
        return status, content, time.perf_counter() - start

    def timed_call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, payload: Any = None
    ) -> tuple[dict[str, Any], float]:
        """One API request: the decoded answer, and the seconds of the HTTP exchange.

        The exchange runs from sending the request until the whole body is read;
        decoding the JSON afterwards (for verification) is not part of it. Any
        status but 200 is an error carrying the body.
        """
        data = None if payload is None else json.dumps(payload).encode()
        content_type = None if data is None else "application/json"
        start = time.perf_counter()
        status, content = self.http.request(
            method, f"{API}/{path}", params=params, body=data, content_type=content_type
        )
        elapsed = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {content[:300]!r}")
        body: dict[str, Any] = json.loads(content) if content else {}
        return body, elapsed

    def call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, payload: Any = None
    ) -> dict[str, Any]:
        """:meth:`timed_call` without the timing."""
        return self.timed_call(method, path, params=params, payload=payload)[0]

    def create_experiment(self, name: str) -> str:
        """A new experiment (untimed set-up); its id."""
        return str(self.call("POST", "experiments/create", payload={"name": name})["experiment_id"])

    def create_run(self, experiment_id: str, name: str) -> dict[str, Any]:
        """``runs/create``; the run's ``info``."""
        body = {"experiment_id": experiment_id, "start_time": now_ms(), "run_name": name}
        info: dict[str, Any] = self.call("POST", "runs/create", payload=body)["run"]["info"]
        return info

    def log_batch(self, run_id: str, **lists: list[dict[str, Any]]) -> None:
        """``runs/log-batch`` with ``metrics``, ``params`` and/or ``tags``."""
        self.call("POST", "runs/log-batch", payload={"run_id": run_id, **lists})

    def finish_run(self, run_id: str) -> None:
        """``runs/update`` to FINISHED."""
        body = {"run_id": run_id, "status": "FINISHED", "end_time": now_ms()}
        self.call("POST", "runs/update", payload=body)

    def log_series(self, run_id: str, key: str, points: int, chunk: int) -> None:
        """Log ``key`` at steps ``0 … points-1`` (value ``1/(step+1)``) in ``log-batch``
        requests of ``chunk`` metrics (untimed set-up for the history workloads).

        Each point has its own timestamp, 1 ms after the previous step's, as a training
        loop logging every step (through a batching client) would give them.
        """
        start = now_ms() - points
        for offset in range(0, points, chunk):
            metrics = [
                {"key": key, "value": 1.0 / (i + 1), "timestamp": start + i, "step": i}
                for i in range(offset, min(offset + chunk, points))
            ]
            self.log_batch(run_id, metrics=metrics)


def proxied_artifact_path(artifact_uri: str) -> str:
    """The path under ``mlflow-artifacts/artifacts/`` of a run's ``mlflow-artifacts:`` URI."""
    parsed = urllib.parse.urlparse(artifact_uri)
    check(parsed.scheme == "mlflow-artifacts", f"run artifact URI {artifact_uri!r} is not proxied")
    return parsed.path.strip("/")
