"""``serve(model_uri, ...)``: run the scoring server for a model until stopped (blocking).

With ``env_manager="local"`` the model is loaded and served by this interpreter, through uvicorn
(httptools and uvloop when installed). With ``workers > 1`` the model is loaded here once, to fail
with a one-line error rather than leave uvicorn restarting crashing workers, then each worker
process loads it again from the local directory named by ``RUNYARD_SCORING_MODEL_PATH``; their
metrics are shared through prometheus_client's multiprocess mode.

Any other env manager builds (or reuses) an environment for the model with
:func:`runyard.serving.envs.prepare_environment` and runs ``<its python> -m runyard.serving``
there as a child process, passing on SIGINT, SIGTERM and SIGHUP.

SIGTERM or Ctrl-C stops the server gracefully: no new connections, requests in flight finish
(for up to :data:`GRACEFUL_SHUTDOWN_S` seconds).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from runyard.config import ENV
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.models.download import download_model

__all__ = [
    "ENV_MANAGERS",
    "GRACEFUL_SHUTDOWN_S",
    "check_serve_options",
    "run_forwarding_signals",
    "serve",
    "serve_model_dir",
    "server_command",
    "temporary_environ",
]

_logger = logging.getLogger(__name__)

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")
#: How long a stopping server waits for requests in flight.
GRACEFUL_SHUTDOWN_S = 30
_FORWARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def check_serve_options(host: str, port: int, workers: int, timeout: float) -> None:
    """Raise INVALID_PARAMETER_VALUE for options no server can run with."""
    if not 0 <= port <= 65535:
        raise InvalidParameterValue(f"Invalid port {port}: use 0-65535.")
    if workers < 1:
        raise InvalidParameterValue(f"Invalid number of workers {workers}: use 1 or more.")
    if not timeout > 0:
        raise InvalidParameterValue(
            f"Invalid timeout {timeout:g}: use a positive number of seconds."
        )
    if not host:
        raise InvalidParameterValue("Invalid host '': give an address to bind, e.g. 127.0.0.1.")


def _check_port_free(host: str, port: int) -> None:
    """One clear line when the address is taken, before minutes of model loading."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidParameterValue(f"Cannot serve on {host}:{port}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidParameterValue(
                f"Cannot serve on {host}:{port}: {exc.strerror or exc}. Choose another port "
                "with -p/--port."
            ) from None


@contextlib.contextmanager
def temporary_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a ``with`` block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _uvicorn_options(host: str, port: int) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": False,  # a log line per request would cost more than scoring one row
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def serve_model_dir(
    model_dir: str, *, host: str, port: int, workers: int = 1, timeout: float = 60.0
) -> None:
    """Serve the model in local directory ``model_dir`` from this interpreter (blocking)."""
    import uvicorn

    from runyard.serving.app import create_scoring_app, freeze_loaded_objects, load_scoring_model
    from runyard.serving.metrics import MULTIPROC_DIR_VAR

    check_serve_options(host, port, workers, timeout)
    _check_port_free(host, port)
    model_dir = os.path.abspath(model_dir)
    model, seconds = load_scoring_model(model_dir)
    _logger.info("Loaded the model from %s in %.2f s", model_dir, seconds)
    options = _uvicorn_options(host, port)
    if workers == 1:
        app = create_scoring_app(model, timeout=timeout, model_load_seconds=seconds)
        freeze_loaded_objects()
        uvicorn.run(app, **options)
        return
    del model  # each worker loads its own copy
    gc.collect()
    with tempfile.TemporaryDirectory(prefix="runyard-scoring-metrics-") as metrics_dir:
        worker_env = {
            ENV.SCORING_MODEL_PATH.runyard_name: model_dir,
            ENV.SCORING_SERVER_REQUEST_TIMEOUT.runyard_name: repr(float(timeout)),
            MULTIPROC_DIR_VAR: metrics_dir,
        }
        with temporary_environ(worker_env):
            uvicorn.run(
                "runyard.serving.app:app_from_environment",
                factory=True,
                workers=workers,
                **options,
            )


def server_command(
    python: str, model_dir: str, *, host: str, port: int, workers: int, timeout: float
) -> list[str]:
    """The command that serves ``model_dir`` with interpreter ``python`` (another env's)."""
    return [
        python,
        "-m",
        "runyard.serving",
        "--model-path",
        model_dir,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--timeout",
        repr(float(timeout)),
    ]


def run_forwarding_signals(command: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run ``command`` in its own process group, passing on SIGINT/SIGTERM/SIGHUP, and return
    its exit status (negative: the signal that ended it)."""
    process = subprocess.Popen(
        list(command), env=None if env is None else dict(env), start_new_session=True
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)

    previous: dict[int, Any] = {}
    try:
        for sig in _FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, forward)
    except ValueError:
        pass  # not the main thread: the caller owns signal handling
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(GRACEFUL_SHUTDOWN_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(
    model_uri: str,
    *,
    host: str,
    port: int,
    workers: int,
    timeout: float,
    env_manager: str = "local",
    install_runyard: bool = True,
) -> None:
    """Serve the pyfunc model at ``model_uri`` (runs:/, models:/name/1, models:/name/Stage,
    models:/name@alias, models:/m-id, a path or artifact URI) on ``host:port`` until stopped.

    ``env_manager`` is ``local`` (this interpreter), ``virtualenv``, ``uv`` or ``conda`` (an
    environment built from the model's requirements, cached). Blocks; returns after a graceful
    stop (SIGTERM, Ctrl-C); raises RunyardError for bad options, models or environments.
    """
    if env_manager not in ENV_MANAGERS:
        raise InvalidParameterValue(
            f"Unknown env manager '{env_manager}': use one of {', '.join(ENV_MANAGERS)}."
        )
    check_serve_options(host, port, workers, timeout)
    _check_port_free(host, port)
    model_dir = download_model(model_uri)
    if env_manager == "local":
        serve_model_dir(model_dir, host=host, port=port, workers=workers, timeout=timeout)
        return
    from runyard.serving.envs import prepare_environment

    python = prepare_environment(model_dir, env_manager, install_runyard)
    command = server_command(
        python, model_dir, host=host, port=port, workers=workers, timeout=timeout
    )
    _logger.info("Serving from the %s environment: %s", env_manager, " ".join(command))
    status = run_forwarding_signals(command)
    if status > 0:
        raise RunyardError(
            f"The scoring server in the {env_manager} environment exited with status {status}; "
            "its output above says why."
        )
