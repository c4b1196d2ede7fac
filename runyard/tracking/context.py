"""System tags a new run gets from where it was started: user, source, git commit."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from pathlib import Path

from runyard.config import ENV

__all__ = ["current_user", "git_commit", "resolve_run_tags"]


def current_user() -> str:
    """The OS user name (MLflow's ``mlflow.user``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _source_name() -> str:
    main = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if main in ("", "-c") or main.endswith(("ipykernel_launcher.py", "pytest", "__main__.py")):
        return main or "<console>"
    return os.path.abspath(main)


def _find_git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def git_commit(path: str) -> str | None:
    """The commit checked out around ``path``, read from ``.git`` without running git."""
    try:
        git_dir = _find_git_dir(Path(path).resolve().parent if Path(path).is_file() else Path(path))
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        for base in (git_dir, common):
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=8)
def _process_tags(source: str, cwd: str) -> dict[str, str]:
    # The user, the entry script and its commit don't change while a process runs; scripts that
    # start thousands of runs should not walk the filesystem for each.
    tags = {
        "mlflow.user": current_user(),
        "mlflow.source.name": source,
        "mlflow.source.type": "NOTEBOOK" if "ipykernel" in sys.modules else "LOCAL",
    }
    commit = git_commit(source if os.path.exists(source) else cwd)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def resolve_run_tags(user_tags: dict[str, str]) -> dict[str, str]:
    """System tags (user, source, git commit, ``RUNYARD_RUN_CONTEXT``) under the user's tags."""
    tags = dict(_process_tags(_source_name(), os.getcwd()))
    extra = ENV.RUN_CONTEXT.get()
    if extra:
        tags.update({str(k): str(v) for k, v in json.loads(extra).items()})
    tags.update(user_tags)
    return tags
