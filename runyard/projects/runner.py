"""``runyard.projects.run``: fetch a project, check its parameters, start its run, run it.

The order is MLflow's (``mlflow/projects/__init__.py``, ``backend/local.py``) with the checks
moved first, so that nothing starts on a mistake:

1. fetch the project (clone a git URI), load its MLproject, find the entry point, check every
   parameter (missing ones, ``float``/``int`` values, ``path`` existence, ``uri`` form), pick
   the environment manager (and for a ``docker_env``, check that a Docker engine answers);
2. build or find the environment (cached) and download remote ``path`` parameters;
3. create the run, with the source tags, ``mlflow.project.entryPoint``, ``mlflow.project.env``,
   ``mlflow.project.backend`` and every parameter logged as a param;
4. start the command with the run handed over, wait, and end the run FINISHED or FAILED by the
   command's exit status (KILLED when interrupted).

``synchronous=False`` does steps 1 and 3 here and the rest in a ``runyard run --run-id``
child process, and returns at once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runyard.entities import Param, Run
from runyard.errors import InvalidParameterValue
from runyard.projects import docker
from runyard.projects.execute import (
    CANCEL_GRACE_SECONDS,
    CommandEnvironment,
    LocalSubmittedRun,
    SubmittedRun,
    Terminated,
    choose_env_manager,
    handover_env,
    interrupts_raise,
    prepare_environment,
    redeliver_sigterm,
    start_command,
)
from runyard.projects.fetch import FetchedProject, fetch_project, source_tags
from runyard.projects.spec import (
    EntryPoint,
    ExecutionException,
    Project,
    ResolvedParameters,
    load_project,
    local_path_or_none,
)
from runyard.tracking import fluent
from runyard.tracking.client import Client
from runyard.tracking.uri import configured_registry_uri

__all__ = ["run"]

log = logging.getLogger("runyard.projects")

# Runs the ``runyard`` command line in a child interpreter (no console script needed).
_CLI = "import sys; from runyard.cli import main; sys.exit(main())"
_PARAMS_PER_BATCH = 100


@dataclass
class _Launch:
    """Everything known about one project run once its inputs are checked."""

    client: Client
    fetched: FetchedProject
    project: Project
    entry_point: EntryPoint
    params: ResolvedParameters
    user_params: dict[str, Any]
    env_manager: str
    docker_args: dict[str, Any]
    storage_dir: str | None
    build_image: bool


def _load_backend_config(backend_config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if backend_config is None:
        return {}
    if isinstance(backend_config, Mapping):
        return dict(backend_config)
    if os.path.splitext(backend_config)[1] == ".json":
        with open(backend_config) as handle:
            try:
                loaded = json.load(handle)
            except ValueError as exc:
                raise InvalidParameterValue(
                    f"Invalid backend config JSON in {backend_config}: {exc}"
                ) from None
    else:
        try:
            loaded = json.loads(backend_config)
        except ValueError as exc:
            raise InvalidParameterValue(
                f"Invalid backend config JSON. Parse error: {exc}"
            ) from None
    if not isinstance(loaded, dict):
        raise InvalidParameterValue("The backend config must be a JSON object.")
    return loaded


def _experiment_id(client: Client, name: str | None, experiment_id: str | None) -> str:
    if name and experiment_id:
        raise InvalidParameterValue("Specify only one of 'experiment_name' or 'experiment_id'.")
    if experiment_id:
        return str(experiment_id)
    if name:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        log.info("=== Experiment '%s' does not exist: creating it ===", name)
        return client.create_experiment(name)
    return fluent.active_experiment_id()


def _create_run(launch: _Launch, experiment_id: str, run_name: str | None) -> Run:
    tags = {
        **source_tags(launch.fetched),
        "mlflow.project.entryPoint": launch.entry_point.name,
    }
    parent = fluent.active_run()
    if parent is not None:
        tags["mlflow.parentRunId"] = parent.info.run_id
    client = launch.client
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    params = [Param(k, v) for k, v in launch.params.logged().items()]
    for start in range(0, len(params), _PARAMS_PER_BATCH):
        chunk = params[start : start + _PARAMS_PER_BATCH]
        client.log_batch(run.info.run_id, params=chunk, synchronous=True)
    log.info("=== Created run %s in experiment %s ===", run.info.run_id, experiment_id)
    return run


def _download_remote_paths(launch: _Launch) -> ResolvedParameters:
    """``path`` parameters given as remote URIs, downloaded under the storage directory."""
    from runyard.artifacts import download_artifacts

    params = launch.params
    downloaded: dict[str, str] = {}
    base: Path | None = None
    for index, (name, param) in enumerate(launch.entry_point.parameters.items()):
        value = params.declared[name]
        if param.type != "path" or local_path_or_none(value) is not None:
            continue
        if base is None:
            if launch.storage_dir is not None:
                os.makedirs(launch.storage_dir, exist_ok=True)
            base = Path(tempfile.mkdtemp(dir=launch.storage_dir))
            log.info("=== Created directory %s for downloading remote URIs ===", base)
        target = base / f"param_{index}"
        target.mkdir()
        downloaded[name] = download_artifacts(artifact_uri=value, dst_path=str(target))
    return params.replace(**downloaded) if downloaded else params


def _prepare(launch: _Launch) -> CommandEnvironment | str:
    """The command environment, or for a docker project the image tag."""
    if launch.env_manager == "docker":
        return docker.build_image(launch.project, launch.build_image)
    return prepare_environment(launch.project, launch.env_manager)


def _command_process(
    launch: _Launch, run: Run, prepared: CommandEnvironment | str, params: ResolvedParameters
) -> LocalSubmittedRun:
    client = launch.client
    command = launch.entry_point.command_for(params)
    run_id = run.info.run_id
    handover = handover_env(
        client.tracking_uri, run_id, run.info.experiment_id, configured_registry_uri()
    )
    log.info("=== Running command '%s' in run with ID '%s' ===", command, run_id)
    if isinstance(prepared, str):
        argv = docker.docker_run_argv(
            launch.project, prepared, command, handover, run.info.artifact_uri, launch.docker_args
        )
        process = start_command(argv, launch.fetched.work_dir, os.environ)
    else:
        environ = prepared.apply({**os.environ, **handover})
        process = start_command(command, launch.fetched.work_dir, environ)
    return LocalSubmittedRun(run_id, process, client)


def _failure(submitted: LocalSubmittedRun) -> ExecutionException:
    code = submitted.command_proc.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return ExecutionException(f"Run (ID '{submitted.run_id}') failed: the command {how}")


def _tag_execution(launch: _Launch, run_id: str, prepared: CommandEnvironment | str) -> None:
    tags = {"mlflow.project.env": launch.env_manager, "mlflow.project.backend": "local"}
    if isinstance(prepared, str):
        tags["mlflow.docker.image.uri"] = prepared
    for key, value in tags.items():
        launch.client.set_tag(run_id, key, value, synchronous=True)


def _run_here(
    launch: _Launch, run: Run | None, experiment_id: str, run_name: str | None
) -> LocalSubmittedRun:
    """Steps 2-4 in this process; the run is created after the environment is ready (or
    given). Interrupted, the command is stopped and the run marked KILLED."""
    submitted: LocalSubmittedRun | None = None
    try:
        with interrupts_raise():
            try:
                prepared = _prepare(launch)
                params = _download_remote_paths(launch)
                if run is None:
                    run = _create_run(launch, experiment_id, run_name)
                _tag_execution(launch, run.info.run_id, prepared)
                submitted = _command_process(launch, run, prepared, params)
                if not submitted.wait():
                    raise _failure(submitted)
                log.info("=== Run (ID '%s') succeeded ===", submitted.run_id)
            except BaseException as exc:
                interrupted = isinstance(exc, (KeyboardInterrupt, Terminated))
                if submitted is not None and interrupted:
                    submitted.cancel()
                    log.info(
                        "=== Run (ID '%s') interrupted: its command was stopped and the run "
                        "marked KILLED ===",
                        submitted.run_id,
                    )
                elif submitted is None and run is not None:
                    # The run exists but its command never started: end it all the same.
                    status = "KILLED" if interrupted else "FAILED"
                    launch.client.set_terminated(run.info.run_id, status)
                raise
    except Terminated:
        redeliver_sigterm()
    assert submitted is not None
    return submitted


def _cli_args(launch: _Launch, run_id: str) -> list[str]:
    args = ["run", str(launch.fetched.work_dir), "-e", launch.entry_point.name, "--run-id", run_id]
    if launch.env_manager != "docker":
        args += ["--env-manager", launch.env_manager]
    for key, value in launch.user_params.items():
        args += ["-P", f"{key}={value}"]
    for key, value in launch.docker_args.items():
        if value is not False:  # a false flag is left out, as docker_run_argv does
            args += ["-A", key if value is True else f"{key}={value}"]
    if launch.storage_dir is not None:
        args += ["--storage-dir", launch.storage_dir]
    if launch.build_image:
        args.append("--build-image")
    return args


def _run_elsewhere(launch: _Launch, run: Run) -> LocalSubmittedRun:
    """Step 2-4 in a ``runyard run --run-id`` child process; returns at once."""
    client = launch.client
    environ = {
        **os.environ,
        **handover_env(client.tracking_uri, None, None, configured_registry_uri()),
    }
    argv = [sys.executable, "-c", _CLI, *_cli_args(launch, run.info.run_id)]
    log.info("=== Launched run %s asynchronously ===", run.info.run_id)
    process = start_command(argv, Path.cwd(), environ)
    # The child stops its own command when cancelled: give it time to, and to mark the run.
    grace = CANCEL_GRACE_SECONDS + 10.0
    return LocalSubmittedRun(run.info.run_id, process, client, grace)


def run(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    docker_args: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    backend: str | None = "local",
    backend_config: Mapping[str, Any] | str | None = None,
    storage_dir: str | None = None,
    synchronous: bool = True,
    run_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    build_image: bool = False,
) -> SubmittedRun:
    """Run an MLflow project (a directory or a git repository) as a tracked run.

    Args:
        uri: a local directory or a git URI (``file://``, ``https://``, ``git@host:repo``),
            optionally with ``#subdirectory``.
        entry_point: the MLproject entry point, or a ``.py``/``.sh`` file of the project.
        version: for git projects, the commit, branch or tag to check out.
        parameters: the entry point's parameters; undeclared ones are passed as ``--k v``.
        docker_args: extra ``docker run`` flags for docker projects (``{"t": True}`` → ``-t``).
        experiment_name: the experiment of the run (created if missing).
        experiment_id: the experiment of the run (default: the active experiment).
        backend: only ``"local"``.
        backend_config: a dict or a ``.json`` path; checked, unused by the local backend.
        storage_dir: where remote ``path`` parameters are downloaded (default: a temp dir).
        synchronous: wait for the run (raising if it fails), or return at once.
        run_id: run in this existing run instead of creating one.
        run_name: the new run's name.
        env_manager: ``local``, ``virtualenv``, ``uv`` or ``conda`` (default: the project's own
            environment, or ``local`` when it declares none).
        build_image: for docker projects, build the image even when it exists.

    Returns:
        A :class:`SubmittedRun` (``run_id``, ``wait()``, ``get_status()``, ``cancel()``).

    Raises:
        ExecutionException: the project or a parameter is invalid, or (synchronous) the run
            failed.
    """
    if backend not in (None, "local"):
        raise ExecutionException(
            f"Got unsupported execution mode {backend}. runyard runs projects with the "
            "'local' backend only."
        )
    _load_backend_config(backend_config)
    fetched = fetch_project(uri, version)
    project = load_project(fetched.work_dir)
    entry = project.get_entry_point(entry_point)
    user_params = {str(k): v for k, v in (parameters or {}).items()}
    params = entry.resolve(user_params, project.directory)
    manager = choose_env_manager(project, env_manager)
    if manager == "docker":
        docker.check_docker(project)
    client = Client()
    existing = client.get_run(run_id) if run_id is not None else None
    exp_id = _experiment_id(client, experiment_name, experiment_id) if existing is None else ""
    launch = _Launch(
        client,
        fetched,
        project,
        entry,
        params,
        user_params,
        manager,
        dict(docker_args or {}),
        storage_dir,
        build_image,
    )
    if not synchronous:
        return _run_elsewhere(launch, existing or _create_run(launch, exp_id, run_name))
    return _run_here(launch, existing, exp_id, run_name)
