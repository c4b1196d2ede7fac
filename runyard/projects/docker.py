"""Projects with a ``docker_env``: an image with the project in it, and the ``docker run`` line.

The image is ``<project name>:<first 7 digits of the git commit>`` (``:latest`` outside git),
built ``FROM`` the MLproject's image with the project copied to ``/mlflow/projects/code`` (its
working directory), and reused when it exists unless ``build_image`` asks for a new one. The
container gets the run's variables, the MLproject's ``environment`` and ``volumes``, the
``docker_args``, and, for a SQLite tracking store or local artifacts, their directories mounted
at the same paths so the same URIs work inside. The image must have runyard installed for the
command to log. Everything goes through the ``docker`` CLI; without a running engine the run is
refused with one line before anything starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from runyard.projects.spec import ExecutionException, Project
from runyard.tracking.context import git_commit

__all__ = ["WORKDIR", "build_image", "check_docker", "docker_run_argv", "image_tag"]

#: Where the project lives inside the container (MLflow's path).
WORKDIR = "/mlflow/projects/code/"


def check_docker(project: Project) -> None:
    """Refuse, with one line, a docker project that cannot run here (no name, no engine)."""
    from runyard.serving.docker import docker_engine_error

    if not project.name:
        raise ExecutionException(
            "Project name in MLProject must be specified when using docker for image tagging."
        )
    reason = docker_engine_error()
    if reason is not None:
        raise ExecutionException(
            f"Cannot run project '{project.name}' in its docker_env: no Docker engine is running "
            f"(docker info failed: {reason}). Start Docker and run it again."
        )


def image_tag(project: Project) -> str:
    """``<name>:<commit[:7]>``, or ``<name>:latest`` when the project is not in git."""
    commit = git_commit(str(project.directory))
    return f"{project.name}:{commit[:7] if commit else 'latest'}"


def _docker() -> str:
    return shutil.which("docker") or "docker"


def _image_exists(tag: str) -> bool:
    proc = subprocess.run(
        [_docker(), "image", "inspect", tag],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return proc.returncode == 0


def build_image(project: Project, rebuild: bool = False) -> str:
    """The tag of the project's image, built unless it exists (or ``rebuild``)."""
    tag = image_tag(project)
    if not rebuild and _image_exists(tag):
        return tag
    assert project.docker_env is not None
    with tempfile.TemporaryDirectory(prefix="runyard-docker-project-") as context:
        code = Path(context) / "project"
        shutil.copytree(project.directory, code, ignore=shutil.ignore_patterns(".git"))
        dockerfile = Path(context) / "Dockerfile"
        dockerfile.write_text(
            f"FROM {project.docker_env['image']}\nCOPY project/ {WORKDIR}\nWORKDIR {WORKDIR}\n"
        )
        # docker's own progress goes straight to the terminal.
        proc = subprocess.run(
            [_docker(), "build", "-t", tag, context], stdin=subprocess.DEVNULL, check=False
        )
    if proc.returncode != 0:
        raise ExecutionException(
            f"docker build of image '{tag}' failed (exit status {proc.returncode}); its output "
            "is above."
        )
    return tag


def _local_dir(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///") :].partition("?")[0]
        return os.path.dirname(path) if os.path.isabs(path) else None
    if parsed.scheme in ("", "file") and parsed.netloc in ("", "localhost"):
        path = unquote(parsed.path)
        return path if os.path.isabs(path) else None
    return None


def _user_env(entries: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, list):
            out[str(entry[0])] = str(entry[1])
            continue
        value = os.environ.get(str(entry))
        if value is None:
            names = ", ".join(str(e) for e in entries if not isinstance(e, list))
            raise ExecutionException(
                f"This project expects the {names} environment variables to be set on the "
                f"machine running the project, but {entry} was not set. Please ensure all "
                "expected environment variables are set"
            )
        out[str(entry)] = value
    return out


def _arg_flags(docker_args: Mapping[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in docker_args.items():
        flag = f"-{name}" if len(name) == 1 else f"--{name}"
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags += [flag, str(value)]
    return flags


def docker_run_argv(
    project: Project,
    image: str,
    command: str,
    run_env: Mapping[str, str],
    artifact_uri: str,
    docker_args: Mapping[str, Any] | None = None,
) -> list[str]:
    """The ``docker run`` argv that runs ``command`` in ``image`` against the run."""
    assert project.docker_env is not None
    argv = [_docker(), "run", "--rm", *_arg_flags(docker_args or {})]
    mounts = {
        d
        for d in (_local_dir(run_env.get("MLFLOW_TRACKING_URI", "")), _local_dir(artifact_uri))
        if d
    }
    for directory in sorted(mounts):
        argv += ["-v", f"{directory}:{directory}"]
    for volume in project.docker_env.get("volumes") or []:
        argv += ["-v", str(volume)]
    env = {**run_env, **_user_env(list(project.docker_env.get("environment") or []))}
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    return [*argv, image, "bash", "-c", command]
