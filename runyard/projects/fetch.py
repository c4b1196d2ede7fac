"""Where a project comes from: a local directory, or a git repository fetched with the git CLI.

A project URI is a local path, or a git URL (``file:///repo``, ``https://host/repo``,
``git@host:repo``: anything with a scheme-like prefix before its first slash, as in MLflow),
optionally followed by ``#subdirectory``. ``version`` checks out a commit, a branch or a tag of a
git project; local directories run in place. Git projects are cloned into a new temporary
directory (shallow where the version allows it) with their submodules.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runyard.projects.spec import ExecutionException
from runyard.tracking.context import git_commit

__all__ = ["FetchedProject", "fetch_project", "is_local_uri", "parse_subdirectory", "source_tags"]

# A scheme-like prefix before the first slash (``https:``, ``file:``, ``git@github.com:``).
_GIT_URI = re.compile(r"^[^/]*:")
_GIT_TIMEOUT = 600


@dataclass(frozen=True)
class FetchedProject:
    """A project ready to run: its directory and what the run records about its source."""

    uri: str
    work_dir: Path
    source_name: str
    git_commit: str | None = None
    repo_url: str | None = None
    branch: str | None = None
    clone_dir: Path | None = None


def parse_subdirectory(uri: str) -> tuple[str, str]:
    """``(uri, subdirectory)`` split at ``#``; quotes around the URI are dropped."""
    text = uri.strip("'\"")
    base, _, subdirectory = text.partition("#")
    parts = subdirectory.replace("\\", "/").split("/") if subdirectory else []
    if subdirectory.startswith("/") or any(part in (".", "..") for part in parts):
        raise ExecutionException(
            f"Invalid project subdirectory '{subdirectory}': it must be a relative path without "
            "'.' or '..' segments."
        )
    return base, subdirectory


def is_local_uri(uri: str) -> bool:
    """True when ``uri`` is a path on this machine rather than a git URL."""
    if re.match(r"^[A-Za-z]:[\\/]", uri):  # a Windows drive
        return True
    return _GIT_URI.match(uri) is None


def _git_executable() -> str:
    git = shutil.which("git")
    if git is None:
        raise ExecutionException(
            "Running a project from a git repository needs git, and no git was found on PATH."
        )
    return git


def _git(args: list[str], cwd: Path, failure: str) -> str:
    """Run ``git ARGS`` in ``cwd``; a failure becomes one line, ``failure: <git's error>``."""
    cmd = [_git_executable(), *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait on a password prompt
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=_GIT_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExecutionException(f"{failure}: git took over {_GIT_TIMEOUT}s") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.lower().startswith(("fatal", "error"))]
        detail = " ".join(errors or lines[-1:]) or f"exit status {proc.returncode}"
        raise ExecutionException(f"{failure}: {detail}")
    return proc.stdout


def _remote_refs(uri: str, dst: Path) -> set[str]:
    out = _git(["ls-remote", "origin"], dst, f"Could not read the refs of git repo {uri}")
    return {line.split("\t", 1)[1] for line in out.splitlines() if "\t" in line}


def _checkout_version(uri: str, version: str, dst: Path) -> bool:
    """Fetch and check out ``version``; True when it names a branch."""
    refs = _remote_refs(uri, dst)
    unable = (
        f"Unable to checkout version '{version}' of git repo {uri} - please ensure that the "
        "version exists in the repo"
    )
    if f"refs/heads/{version}" in refs:
        _git(["fetch", "-q", "--depth", "1", "origin", f"refs/heads/{version}"], dst, unable)
        _git(["checkout", "-q", "-B", version, "FETCH_HEAD"], dst, unable)
        return True
    if f"refs/tags/{version}" in refs:
        _git(["fetch", "-q", "--depth", "1", "origin", f"refs/tags/{version}"], dst, unable)
        _git(["checkout", "-q", "--detach", "FETCH_HEAD"], dst, unable)
        return False
    try:  # a full commit id can be fetched alone
        _git(["fetch", "-q", "--depth", "1", "origin", version], dst, unable)
        _git(["checkout", "-q", "--detach", "FETCH_HEAD"], dst, unable)
    except ExecutionException:  # an abbreviated one needs the history
        refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        _git(["fetch", "-q", "origin", *refspecs], dst, f"Could not fetch git repo {uri}")
        try:
            commit = _git(["rev-parse", "--verify", "-q", f"{version}^{{commit}}"], dst, unable)
        except ExecutionException:
            raise ExecutionException(f"{unable}: no commit, branch or tag is named so") from None
        _git(["checkout", "-q", "--detach", commit.strip()], dst, unable)
    return False


def _clone(uri: str, version: str | None) -> tuple[Path, str | None]:
    dst = Path(tempfile.mkdtemp(prefix="runyard-project-"))
    try:
        branch = None
        if version is None:
            _git(
                ["clone", "-q", "--depth", "1", uri, str(dst)],
                dst,
                f"Could not clone git repo {uri}",
            )
        else:
            _git(["init", "-q"], dst, "Could not create a git repository")
            _git(["remote", "add", "origin", uri], dst, "Could not add the git remote")
            if _checkout_version(uri, version, dst):
                branch = version
        _git(
            ["submodule", "update", "-q", "--init", "--recursive"],
            dst,
            f"Could not update the submodules of {uri}",
        )
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    return dst, branch


def _git_root(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _first_remote_url(path: Path) -> str | None:
    if shutil.which("git") is None or _git_root(path) is None:
        return None
    try:
        names = _git(["remote"], path, "Could not list git remotes").split()
        if not names:
            return None
        url = _git(["remote", "get-url", names[0]], path, "Could not read a git remote")
        return url.strip() or None
    except ExecutionException:
        return None


def _local_source_name(path: Path) -> str:
    # MLflow's form: file://<repository root>#<subdirectory> inside a git work tree.
    root = _git_root(path)
    if root is None:
        return str(path)
    relative = path.relative_to(root).as_posix()
    return f"file://{root}" + (f"#{relative}" if relative != "." else "")


def fetch_project(uri: str, version: str | None = None) -> FetchedProject:
    """Make the project at ``uri`` available locally; git projects are cloned (``version``:
    a commit, branch or tag) into a new temporary directory, local ones are used in place."""
    base, subdirectory = parse_subdirectory(uri)
    if is_local_uri(base):
        if version is not None:
            raise ExecutionException("Setting a version is only supported for Git project URIs")
        root = Path(base).expanduser().resolve()
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise ExecutionException(f"Project directory '{root}' {what}")
        clone_dir, branch = None, None
    else:
        root, branch = _clone(base, version)
        clone_dir = root
    work_dir = (root / subdirectory).resolve() if subdirectory else root
    if not work_dir.is_dir():
        if clone_dir is not None:
            shutil.rmtree(clone_dir, ignore_errors=True)
        raise ExecutionException(f"Could not find subdirectory {subdirectory} of {base}")
    if clone_dir is None:
        source_name, repo_url = _local_source_name(work_dir), _first_remote_url(work_dir)
    else:
        source_name, repo_url = uri.strip("'\""), base
    return FetchedProject(
        uri=uri,
        work_dir=work_dir,
        source_name=source_name,
        git_commit=git_commit(str(work_dir)),
        repo_url=repo_url,
        branch=branch,
        clone_dir=clone_dir,
    )


def source_tags(project: FetchedProject) -> dict[str, str]:
    """The ``mlflow.source.*`` tags (and MLflow's legacy git tags) of a run of ``project``."""
    tags = {"mlflow.source.name": project.source_name, "mlflow.source.type": "PROJECT"}
    if project.git_commit:
        tags["mlflow.source.git.commit"] = project.git_commit
    if project.repo_url:
        tags["mlflow.source.git.repoURL"] = project.repo_url
        tags["mlflow.gitRepoURL"] = project.repo_url
    if project.branch:
        tags["mlflow.source.git.branch"] = project.branch
        tags["mlflow.gitBranchName"] = project.branch
    return tags
