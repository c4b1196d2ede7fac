"""The built-in ``local`` deployment target: each deployment is runyard's scoring server running
as a managed background process on this machine.

``create_deployment`` copies the model (so the deployment keeps serving the same files when a
registry alias moves later), starts ``python -m runyard.serving`` detached, and returns once
``/ping`` answers. ``update_deployment`` is blue-green: the new revision starts on a new port,
and only once it answers ``/ping`` is the state switched and the old process stopped, so a failed
update leaves the running deployment untouched; asking for the current port (``-C port=<port>``)
instead stops the old process first and, should the new one fail, restarts the old revision.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx

from runyard.deployments import _process, _state
from runyard.deployments.base import (
    SCORING_PAYLOAD_KEYS,
    BaseDeploymentClient,
    PredictionsResponse,
)
from runyard.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RunyardError,
    error_from_code,
)
from runyard.serving.server import ENV_MANAGERS, server_command

__all__ = ["LocalDeploymentClient", "ServerConfig", "run_local", "target_help"]

FLAVOR = "python_function"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError("expected true or false")


@dataclass(frozen=True)
class ServerConfig:
    """What ``-C key=value`` can set for a ``local`` deployment (see :func:`target_help`)."""

    host: str = "127.0.0.1"
    port: int | None = None
    workers: int = 1
    timeout: float = 60.0
    env_manager: str = "local"
    install_runyard: bool = True
    startup_timeout: float = 120.0
    grace_period: float = 10.0

    @classmethod
    def parse(cls, config: dict[str, Any] | None, base: ServerConfig | None = None) -> ServerConfig:
        """``config`` (values as text or typed) over ``base`` (default: the defaults)."""
        values = asdict(base or cls())
        types = {f.name: f.type for f in fields(cls)}
        for key, raw in (config or {}).items():
            name = "install_runyard" if key == "install_mlflow" else key
            if name not in types:
                raise InvalidParameterValue(
                    f"Unknown config key '{key}' for the local target; "
                    f"accepted: {', '.join(sorted(types))}."
                )
            values[name] = _convert(name, raw)
        parsed = cls(**values)
        parsed._check()
        return parsed

    def _check(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise InvalidParameterValue(f"Invalid config port={self.port}: use 1-65535.")
        if self.workers < 1:
            raise InvalidParameterValue(f"Invalid config workers={self.workers}: at least 1.")
        for key in ("timeout", "startup_timeout", "grace_period"):
            if getattr(self, key) <= 0:
                raise InvalidParameterValue(f"Invalid config {key}: must be positive.")
        if self.env_manager not in ENV_MANAGERS:
            raise InvalidParameterValue(
                f"Invalid config env_manager='{self.env_manager}': "
                f"use one of {', '.join(ENV_MANAGERS)}."
            )


def _convert(name: str, raw: object) -> Any:
    if name == "port" and raw in (None, ""):
        return None
    convert: Any = {
        "port": int,
        "workers": int,
        "timeout": float,
        "startup_timeout": float,
        "grace_period": float,
        "install_runyard": _as_bool,
    }.get(name, str)
    try:
        return convert(raw)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"Invalid config {name}={raw!r}.") from None


def _check_flavor(flavor: str | None) -> None:
    if flavor not in (None, FLAVOR):
        raise InvalidParameterValue(
            f"The local target serves the '{FLAVOR}' flavor only, not '{flavor}'."
        )


def _pin_model_uri(model_uri: str) -> tuple[str, dict[str, Any]]:
    """A URI that keeps naming the same files, plus what the registry says about them:
    ``models:/M@champion`` becomes ``models:/M/<version it points at now>``."""
    if not model_uri.startswith("models:"):
        return model_uri, {}
    from runyard.models.download import parse_models_uri, registered_version
    from runyard.tracking.client import Client

    ref = parse_models_uri(model_uri)
    if ref.name is None:
        return model_uri, {"model_id": ref.model_id}
    name, version = registered_version(Client(), ref, model_uri)
    pinned = {"registered_model_name": name, "model_version": version}
    return f"models:/{name}/{version}", pinned


def _python_for(model_path: Path, config: ServerConfig) -> str:
    if config.env_manager == "local":
        return sys.executable
    from runyard.serving.envs import prepare_environment

    return prepare_environment(str(model_path), config.env_manager, config.install_runyard)


def _check_pyfunc(model_path: Path) -> None:
    from runyard.models import Model

    model = Model.load(str(model_path))
    if FLAVOR not in model.flavors:
        raise InvalidParameterValue(
            f"The model has no '{FLAVOR}' flavor (it has {', '.join(sorted(model.flavors))}); "
            "the local target serves pyfunc models only."
        )


class LocalDeploymentClient(BaseDeploymentClient):
    """Deployments as scoring-server processes on this machine (target ``local``).

    ``local:<dir>`` keeps the deployments' state in ``<dir>`` instead of
    ``RUNYARD_DEPLOYMENTS_DIR``.
    """

    def __init__(self, target_uri: str = "local") -> None:
        super().__init__(target_uri)
        self.root = _state.state_root(target_uri)

    # -- create / update / delete -----------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        model_uri: str,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Copy the model, start its scoring server and return once it answers ``/ping``."""
        directory = _state.deployment_dir(self.root, name)
        _check_flavor(flavor)
        server = ServerConfig.parse(config)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir()  # claims the name, atomically across processes
        except FileExistsError:
            raise self._taken(name, directory) from None
        try:
            with _state.locked(directory):
                state = self._start_revision(name, directory, 1, model_uri, server)
                state["created_time"] = state["updated_time"]
                _state.write_state(directory, state)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return self._describe(state)

    def update_deployment(
        self,
        name: str,
        model_uri: str | None = None,
        flavor: str | None = None,
        config: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """Serve ``model_uri`` (default: the same model) with ``config`` merged over the current
        one; blue-green on a new port unless ``port`` names the current one."""
        directory = _state.deployment_dir(self.root, name)
        _check_flavor(flavor)
        if not directory.is_dir():
            raise _missing_error(name)
        with _state.locked(directory):
            old = self._load(name, directory)
            current = ServerConfig.parse(old["config"])
            server = ServerConfig.parse(config, base=replace(current, port=None))
            old_running = self._running(old)
            in_place = old_running and server.port == old["port"]
            if in_place:
                _process.stop(old["pid"], current.grace_period)
            revision = int(old["revision"]) + 1
            try:
                state = self._start_revision(
                    name, directory, revision, model_uri, server, previous=old
                )
            except BaseException:
                shutil.rmtree(directory / f"rev-{revision}", ignore_errors=True)
                if in_place:
                    self._restart(old, directory, current)
                raise
            state["created_time"] = old["created_time"]
            _state.write_state(directory, state)
            if old_running and not in_place:
                _process.stop(old["pid"], current.grace_period)
            shutil.rmtree(directory / f"rev-{old['revision']}", ignore_errors=True)
        return self._describe(state)

    def delete_deployment(
        self, name: str, config: dict[str, Any] | None = None, endpoint: str | None = None
    ) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``grace_period``) and remove every file of the
        deployment. Deleting an unknown name does nothing."""
        directory = _state.deployment_dir(self.root, name)
        if not directory.is_dir():
            return
        with _state.locked(directory):
            state = _state.read_state(directory)
            if state is not None:
                base = ServerConfig.parse(state.get("config"))
                grace = ServerConfig.parse(config, base=base).grace_period
                if self._running(state):
                    _process.stop(state["pid"], grace)
            shutil.rmtree(directory, ignore_errors=True)

    # -- read ---------------------------------------------------------------------------------
    def list_deployments(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every deployment with its ``status`` (``running`` or ``exited``), by name."""
        found = []
        for name in _state.list_names(self.root):
            state = _state.read_state(self.root / name)
            if state is not None:
                found.append(self._describe(state))
        return found

    def get_deployment(self, name: str, endpoint: str | None = None) -> dict[str, Any]:
        """The deployment's state: model URI and version, url, pid, ``status``, log path, ..."""
        return self._describe(self._load(name, _state.deployment_dir(self.root, name)))

    def predict(
        self,
        deployment_name: str | None = None,
        inputs: Any = None,
        endpoint: str | None = None,
    ) -> PredictionsResponse:
        """POST ``inputs`` to the deployment's ``/invocations``: a DataFrame is sent as
        ``dataframe_split``, a dict that is a scoring payload as it is, other values (dict, list,
        array) as ``inputs``; JSON text is sent verbatim."""
        if deployment_name is None:
            raise InvalidParameterValue("The local target needs a deployment name to predict.")
        state = self._load(deployment_name, _state.deployment_dir(self.root, deployment_name))
        if not self._running(state):
            raise InvalidState(
                f"Deployment '{deployment_name}' is not running (its server exited); "
                f"see {state['log_path']}."
            )
        try:
            response = httpx.post(
                f"{state['url']}/invocations",
                content=_payload(inputs),
                headers={"Content-Type": "application/json"},
                timeout=float(state["config"]["timeout"]) + 10.0,
            )
        except httpx.HTTPError as exc:
            raise RunyardError(
                f"Could not reach deployment '{deployment_name}' at {state['url']}: {exc}",
                error_code="TEMPORARILY_UNAVAILABLE",
            ) from None
        if response.status_code == 200:
            return PredictionsResponse.from_json(response.content)
        raise _server_error(deployment_name, response)

    # -- helpers ------------------------------------------------------------------------------
    def _taken(self, name: str, directory: Path) -> ResourceAlreadyExists:
        if (directory / _state.STATE_FILE).exists():
            return ResourceAlreadyExists(
                f"Deployment '{name}' already exists (target {self.target_uri})."
            )
        return ResourceAlreadyExists(
            f"Deployment '{name}' is being created, or its creation was interrupted; "
            f"'runyard deployments delete -t {self.target_uri} --name {name}' clears it."
        )

    def _load(self, name: str, directory: Path) -> dict[str, Any]:
        state = _state.read_state(directory)
        if state is None:
            raise _missing_error(name)
        return state

    @staticmethod
    def _running(state: dict[str, Any]) -> bool:
        return _process.is_our_server(int(state["pid"]), state["model_path"])

    def _describe(self, state: dict[str, Any]) -> dict[str, Any]:
        status = "running" if self._running(state) else "exited"
        return {"name": state["name"], "status": status, **state}

    def _start_revision(
        self,
        name: str,
        directory: Path,
        revision: int,
        model_uri: str | None,
        server: ServerConfig,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Put the model into ``rev-<revision>/model``, start its server, wait for ``/ping``."""
        from runyard.models.download import download_model

        rev_dir = directory / f"rev-{revision}"
        model_path = rev_dir / "model"
        rev_dir.mkdir()
        if model_uri is None:
            assert previous is not None
            shutil.copytree(previous["model_path"], model_path)
            model_uri = str(previous["model_uri"])
            source, pinned = previous["source_uri"], _registry_fields(previous)
        else:
            source, pinned = _pin_model_uri(model_uri)
            download_model(source, dst_path=str(model_path))
        _check_pyfunc(model_path)
        state: dict[str, Any] = {
            "name": name,
            "flavor": FLAVOR,
            "model_uri": model_uri,
            "source_uri": source,
            **pinned,
            "revision": revision,
            "model_path": str(model_path),
            "log_path": str(rev_dir / "server.log"),
        }
        state.update(self._launch(name, state, server))
        return state

    def _launch(self, name: str, state: dict[str, Any], server: ServerConfig) -> dict[str, Any]:
        python = _python_for(Path(state["model_path"]), server)
        port = server.port or _process.free_port(server.host)
        if server.port is not None:
            _process.check_port_free(server.host, port)
        command = server_command(
            python,
            state["model_path"],
            host=server.host,
            port=port,
            workers=server.workers,
            timeout=server.timeout,
        )
        log_path = Path(state["log_path"])
        pid = _process.spawn(command, log_path)
        url = _process.url_for(server.host, port)
        try:
            _process.wait_until_healthy(
                pid, url, log_path, server.startup_timeout, f"The server of deployment '{name}'"
            )
        except BaseException:
            _process.stop(pid, server.grace_period)
            raise
        return {
            "pid": pid,
            "host": server.host,
            "port": port,
            "url": url,
            "python": python,
            "config": {**asdict(server), "port": port},
            "updated_time": _state.now(),
        }

    def _restart(self, old: dict[str, Any], directory: Path, server: ServerConfig) -> None:
        """Bring the previous revision back after a failed in-place update (best effort)."""
        try:
            old.update(self._launch(old["name"], old, replace(server, port=old["port"])))
        except RunyardError:
            return  # the state keeps the old pid, which now reads as "exited"
        _state.write_state(directory, old)


def _registry_fields(state: dict[str, Any]) -> dict[str, Any]:
    keys = ("registered_model_name", "model_version", "model_id")
    return {key: state[key] for key in keys if key in state}


def _missing_error(name: str) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"No deployment named '{name}' (target local).")


def _payload(inputs: Any) -> bytes:
    import pandas as pd

    from runyard.models.payload import NumpyEncoder

    if inputs is None:
        raise InvalidParameterValue("Nothing to predict: inputs is None.")
    if isinstance(inputs, bytes):
        return inputs
    if isinstance(inputs, str):
        return inputs.encode("utf-8")
    if isinstance(inputs, pd.DataFrame):
        body: Any = {"dataframe_split": inputs.to_dict(orient="split")}
    elif isinstance(inputs, dict) and SCORING_PAYLOAD_KEYS & set(inputs):
        body = inputs
    else:
        body = {"inputs": inputs.tolist() if isinstance(inputs, pd.Series) else inputs}
    return json.dumps(body, cls=NumpyEncoder).encode("utf-8")


def _server_error(name: str, response: httpx.Response) -> RunyardError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return error_from_code(str(body.get("error_code", "INTERNAL_ERROR")), str(body["message"]))
    text = response.text.strip()[:500]
    return RunyardError(f"Deployment '{name}' answered HTTP {response.status_code}: {text}")


def run_local(
    name: str, model_uri: str, flavor: str | None = None, config: dict[str, Any] | None = None
) -> None:
    """Serve ``model_uri`` in the foreground (``runyard models serve``) until interrupted; the
    config keys are the target's (port defaults to 5000). Not a managed deployment."""
    from runyard.serving.server import serve

    _state.validate_name(name)
    _check_flavor(flavor)
    server = ServerConfig.parse(config)
    serve(
        model_uri,
        host=server.host,
        port=server.port or 5000,
        workers=server.workers,
        timeout=server.timeout,
        env_manager=server.env_manager,
        install_runyard=server.install_runyard,
    )


def target_help() -> str:
    """What ``runyard deployments help -t local`` prints."""
    return """\
Target "local": runyard's scoring server as a managed background process on this machine.

Target URI: "local" keeps deployments under RUNYARD_DEPLOYMENTS_DIR
(default ~/.local/state/runyard/deployments); "local:/some/dir" keeps them in /some/dir.

create copies the model into the deployment (so a registry alias moving later does not change
what it serves), starts `python -m runyard.serving` detached (log: rev-<n>/server.log) and returns
once /ping answers. update starts the new revision on a new port, switches when it answers
/ping, then stops the old process; with -C port=<current port> it stops the old one first.
delete stops the server (SIGTERM, then SIGKILL after grace_period) and removes its files.
predict posts to the deployment's /invocations. Only the python_function flavor is served.

Config (-C key=value):
  host             address to bind (default 127.0.0.1)
  port             port to bind (default: a free port; run-local: 5000)
  workers          uvicorn worker processes (default 1)
  timeout          seconds per request before a 504 (default 60)
  env_manager      local | virtualenv | uv | conda (default local: this Python)
  install_runyard  install runyard into a virtualenv/uv environment (default true)
  startup_timeout  seconds to wait for /ping after starting (default 120)
  grace_period     seconds between SIGTERM and SIGKILL when stopping (default 10)

Example:
  runyard deployments create -t local --name fraud -m models:/fraud@champion -C workers=2
  runyard deployments predict -t local --name fraud -I input.json
"""
