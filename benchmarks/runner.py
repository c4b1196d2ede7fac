"""Run one workload script in a fresh subprocess and a fresh temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scale_workloads import SCALE_GROUPS
from benchmarks.startup_workload import STARTUP_GROUPS

BENCH_DIR = Path(__file__).resolve().parent
WORKLOADS_SCRIPT = BENCH_DIR / "workloads.py"
TRACKIO_SCRIPT = BENCH_DIR / "trackio_workload.py"
SCALE_SCRIPT = BENCH_DIR / "scale_workloads.py"
STARTUP_SCRIPT = BENCH_DIR / "startup_workload.py"
#: Groups of the other MLflow-API scripts, each run for runyard and MLflow: start-up (planned
#: first, while the machine is quiet) and the scale groups (planned last: the longest).
STARTUP_GROUP_SCRIPTS: dict[str, Path] = {group: STARTUP_SCRIPT for group in STARTUP_GROUPS}
SCALE_GROUP_SCRIPTS: dict[str, Path] = {group: SCALE_SCRIPT for group in SCALE_GROUPS}
LOG_DIR = BENCH_DIR / ".work" / "logs"  # git-ignored; each job's stderr, kept for reading

# Settings inherited from the caller's shell that would change what is measured.
_STRIPPED_PREFIXES = ("MLFLOW_", "TRACKIO_", "RUNYARD_")
_STRIPPED_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME")

JOB_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Job:
    """One workload script invocation.

    ``column`` is the results column it fills (``mlflow_async`` for MLflow with
    async logging); ``env`` holds extra environment variables for the child.
    """

    column: str
    group: str
    python: Path
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a job produced: the parsed JSON payload and/or an error message."""

    job: Job
    seconds: float
    payload: dict[str, Any] | None = None
    error: str | None = None
    stderr_tail: str = ""


def child_environment(scratch: Path, extra: dict[str, str]) -> dict[str, str]:
    """Environment for a workload process: library defaults, offline, in ``scratch``.

    Every tool runs with its default settings (caller overrides are dropped),
    without telemetry, and without any Hugging Face credentials or network use.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_STRIPPED_PREFIXES) and name not in _STRIPPED_NAMES
    }
    env.update(
        {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "HF_HOME": str(scratch / "hf-home"),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TRACKIO_DIR": str(scratch / "trackio"),
            "TRACKIO_STORAGE_MODE": "sqlite",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _summary(returncode: int, stderr: str, log_path: Path) -> str:
    """One line about a failed job: its exit status and last line of stderr."""
    lines = stderr.strip().splitlines()
    last = lines[-1].strip() if lines else "no output on stderr"
    return f"exit status {returncode}: {last} (log: {log_path})"


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                return None
            return payload if isinstance(payload, dict) else None
    return None


def run_job(job: Job) -> Outcome:
    """Run ``job`` in a new temporary directory (its CWD) and collect its JSON."""
    with tempfile.TemporaryDirectory(prefix=f"runyard-bench-{job.column}-") as tmp:
        scratch = Path(tmp)
        command = [str(job.python), *job.args]
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command,
                cwd=scratch,
                env=child_environment(scratch, job.env),
                capture_output=True,
                text=True,
                timeout=JOB_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(job, JOB_TIMEOUT_S, error=f"timed out after {JOB_TIMEOUT_S} s")
        seconds = time.perf_counter() - start
    log_path = LOG_DIR / f"{job.column}-{job.group}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(f"$ {' '.join(command)}\n{proc.stderr}")
    payload = _last_json_line(proc.stdout)
    outcome = Outcome(job, seconds, payload=payload)
    if proc.returncode != 0 or payload is None:
        outcome.error = _summary(proc.returncode, proc.stderr, log_path)
        outcome.stderr_tail = "\n".join(proc.stderr.strip().splitlines()[-40:])
    return outcome


def describe(outcome: Outcome) -> str:
    """One progress line for ``outcome``."""
    status = "FAILED" if outcome.error else "ok"
    return f"[{outcome.job.column}] {outcome.job.group}: {status} ({outcome.seconds:.1f} s)"


def log(message: str) -> None:
    """Progress output goes to stderr so stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)
