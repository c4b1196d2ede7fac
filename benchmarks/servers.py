"""Tracking servers under test: locating, starting, health, memory and stopping.

Each server runs on ``127.0.0.1`` on a free port, against SQLite (or the database a
``store_uri`` function hands out, see ``--backend postgres``) and a local
artifact directory inside a fresh temporary directory, in its own process group
(so that it and every worker process it spawns can be measured and stopped
together). Nothing here talks to anything but the loopback interface.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import venvs
from benchmarks.rss import tree_rss_bytes as tree_rss_bytes  # other suites read RSS through here
from benchmarks.runner import LOG_DIR, child_environment

HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
HEALTH_POLL_S = 0.005
IDLE_MIN_S = 1.0  # the idle RSS is sampled no sooner than this after the first 200
IDLE_MAX_S = 45.0  # … and no later than this, settled or not
IDLE_POLL_S = 0.25
IDLE_WINDOW = 9  # settled: 9 samples in a row (2 s) within 1 %, same process count
IDLE_TOLERANCE = 0.01
STOP_TIMEOUT_S = 15.0

#: How a server exposes artifacts: MLflow's proxied ``mlflow-artifacts`` API
#: (upload and download), or only ``GET /api/2.0/mlflow/artifacts/get`` over a
#: local artifact root (download of files written there by the client itself).
PROXIED = "proxied"
LOCAL_GET = "local-get"


@dataclass(frozen=True)
class ServerSpec:
    """One server: its command line (given a scratch directory and port) and traits.

    ``variant`` qualifies its column title, e.g. `` (--workers 1)``; ``source``
    says which code it runs, when that is worth reporting.
    """

    name: str
    command: Callable[[Path, int], list[str]]
    artifacts: str = PROXIED
    version: str = "?"
    variant: str = ""
    source: str = ""


@dataclass
class RunningServer:
    """A started server: its process (group leader), URL and start-up figures."""

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    url: str
    scratch: Path
    startup_s: float
    log_path: Path


#: The backend store URI of a server started in a scratch directory.
StoreUri = Callable[[Path], str]


def sqlite_store(scratch: Path) -> str:
    """The default store: a new SQLite file in the server's scratch directory."""
    return f"sqlite:///{scratch / 'db'}"


class ServerUnavailable(RuntimeError):
    """A server binary could not be located or prepared."""


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def mlflow_spec(
    workers: str | None,
    *,
    install: bool,
    store_uri: StoreUri = sqlite_store,
    postgres: bool = False,
) -> ServerSpec:
    """``mlflow server`` 3.17.2 from the MLflow venv; ``workers=None`` keeps its default.
    ``postgres``: ``store_uri`` names PostgreSQL databases (the venv also gets psycopg)."""
    if postgres:
        requirement, distributions = venvs.MLFLOW_POSTGRES_DRIVER
        python = venvs.ensure_packages(venvs.MLFLOW, requirement, distributions, install=install)
    else:
        python = venvs.ensure_venv(venvs.MLFLOW, install=install)
    mlflow = python.parent / "mlflow"
    if not mlflow.exists():
        raise ServerUnavailable(f"{mlflow} is missing")
    worker_args = [] if workers is None else ["--workers", workers]

    def command(scratch: Path, port: int) -> list[str]:
        return [
            str(mlflow),
            "server",
            "--backend-store-uri",
            store_uri(scratch),
            "--artifacts-destination",
            str(scratch / "art"),
            "--host",
            HOST,
            "--port",
            str(port),
            *worker_args,
        ]

    variant = "" if workers is None else f" (--workers {workers})"
    version = venvs.installed_version(python, "mlflow") or "?"
    return ServerSpec("mlflow", command, PROXIED, version, variant)


def fasttrackml_spec(*, install: bool, store_uri: StoreUri | None = None) -> ServerSpec:
    """FastTrackML's ``fml server`` (a Go binary shipped in the PyPI wheel).

    ``store_uri`` None: a SQLite file in the scratch directory, written the way ``fml``
    parses it; otherwise that function's URI (``postgresql://user@host:port/db``, which
    ``fml`` accepts as it is, as it does ``postgres://``).
    """
    python = venvs.ensure_venv(venvs.FASTTRACKML, install=install)
    fml = python.parent / "fml"
    if not fml.exists():
        raise ServerUnavailable(f"{fml} is missing from the fasttrackml wheel")

    def database_uri(scratch: Path) -> str:
        if store_uri is None:
            return f"sqlite://{scratch / 'db'}"  # sqlite:///abs/path: the path keeps its slash
        return store_uri(scratch)

    def command(scratch: Path, port: int) -> list[str]:
        return [
            str(fml),
            "server",
            "--database-uri",
            database_uri(scratch),
            "--default-artifact-root",
            str(scratch / "art"),
            "--listen-address",
            f"{HOST}:{port}",
        ]

    version = venvs.installed_version(python, "fasttrackml") or "?"
    return ServerSpec("fasttrackml", command, LOCAL_GET, version)


def with_workers(spec: ServerSpec, workers: int) -> ServerSpec:
    """``spec`` started with ``--workers workers`` (runyard and MLflow take the option)."""
    command = spec.command

    def more(scratch: Path, port: int) -> list[str]:
        return [*command(scratch, port), "--workers", str(workers)]

    return dataclasses.replace(spec, command=more, variant=f" (--workers {workers})")


def runyard_spec(store_uri: StoreUri = sqlite_store) -> ServerSpec:
    """``runyard server``: the console script next to the current interpreter.

    Unavailable until ``runyard server --help`` succeeds; no stand-in is used.
    """
    script = Path(sys.executable).parent / ("runyard.exe" if os.name == "nt" else "runyard")
    if not script.exists():
        raise ServerUnavailable(f"no runyard console script at {script}; pip install -e .")
    proc = subprocess.run(
        [str(script), "server", "--help"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServerUnavailable(f"`runyard server --help` fails ({last})")

    def command(scratch: Path, port: int) -> list[str]:
        return [
            str(script),
            "server",
            "--backend-store-uri",
            store_uri(scratch),
            "--artifacts-destination",
            str(scratch / "art"),
            "--host",
            HOST,
            "--port",
            str(port),
        ]

    version = venvs.installed_version(sys.executable, "runyard") or "?"
    return ServerSpec("runyard", command, PROXIED, version, source=runyard_source())


def runyard_source() -> str:
    """Where the server's ``runyard`` package comes from, with its git commit if any.

    e.g. ``/repo/runyard (git 53e2809, with uncommitted changes)``: the server runs
    whatever the current interpreter imports, work in progress included.
    """
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run(
            [sys.executable, "-c", "import runyard; print(runyard.__file__)"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        return "unknown"
    package = Path(proc.stdout.strip()).parent

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return str(package)
    dirty = git("status", "--porcelain", "--", ".")
    return f"{package} (git {commit}{', with uncommitted changes' if dirty else ''})"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start(spec: ServerSpec, scratch: Path, log_name: str) -> RunningServer:
    """Spawn ``spec`` in ``scratch`` and wait for the first 200 on ``/health``.

    The start-up time runs from just before the spawn to that first 200 (polled
    every 5 ms). The server's output goes to ``benchmarks/.work/logs/``.
    """
    port = free_port()
    url = f"http://{HOST}:{port}"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"srv-{spec.name}-{log_name}.server.log"
    command = spec.command(scratch, port)
    with log_path.open("wb") as log_file:
        log_file.write(f"$ {' '.join(command)}\n".encode())
        log_file.flush()
        began = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=scratch,
            env=child_environment(scratch, {}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, workers included
        )
    server = RunningServer(spec, process, url, scratch, 0.0, log_path)
    deadline = began + START_TIMEOUT_S
    while not _healthy(url):
        if process.poll() is not None:
            raise RuntimeError(f"{spec.name} exited with {process.returncode} (log: {log_path})")
        if time.perf_counter() > deadline:
            stop(server)
            raise RuntimeError(f"{spec.name}: no 200 on /health in {START_TIMEOUT_S:.0f} s")
        time.sleep(HEALTH_POLL_S)
    server.startup_s = time.perf_counter() - began
    return server


def stop(server: RunningServer) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL if it lingers."""
    pgid = server.process.pid  # start_new_session: the leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        server.process.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break  # no process of the group is left
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def running(spec: ServerSpec, log_name: str) -> Iterator[RunningServer]:
    """A started server in a fresh temporary directory, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix=f"runyard-bench-server-{spec.name}-") as tmp:
        server = start(spec, Path(tmp), log_name)
        try:
            yield server
        finally:
            stop(server)


def settled_rss(pid: int) -> tuple[int, int, float]:
    """Idle memory of a just-started server once it has stopped changing.

    Samples :func:`tree_rss_bytes` every 0.25 s, from 1 s after the call, until
    nine consecutive samples (2 s) are within 1 % of each other with the same
    number of processes, or 45 s have passed: MLflow's job runner keeps starting
    its worker processes for ~15 s after the first 200 on ``/health``, growing
    from ~1 GB to ~2.4 GB. Returns bytes, processes and seconds waited.
    """
    began = time.perf_counter()
    time.sleep(IDLE_MIN_S)
    window: list[tuple[int, int]] = []
    while True:
        window = [*window[1 - IDLE_WINDOW :], tree_rss_bytes(pid)]
        waited = time.perf_counter() - began
        sizes = [size for size, _ in window]
        settled = (
            len(window) == IDLE_WINDOW
            and len({count for _, count in window}) == 1
            and max(sizes) - min(sizes) <= IDLE_TOLERANCE * max(sizes)
        )
        if settled or waited >= IDLE_MAX_S:
            return window[-1][0], window[-1][1], waited
        time.sleep(IDLE_POLL_S)
