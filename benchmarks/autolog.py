"""The autolog suite: what autologging adds to a training call, runyard vs MLflow.

For each workload of :mod:`benchmarks.autolog_workload` — a 1,000-iteration ``lightgbm.train``
and ``xgboost.train`` (a training and a validation set, one thread) and a 20-epoch Lightning
``Trainer.fit`` of a small MLP — each library runs in a fresh process and a fresh temporary
directory (SQLite store): runyard in the current interpreter, MLflow 3.17.2 in its venv (with the
same xgboost, lightgbm, torch and lightning versions, installed there when missing). Each process
trains once without autologging (warm-up), once with it (the first autologged fit of the process,
which pays for lazy imports), then alternately without and with ``<flavor>.autolog()`` (default
options: metrics, params, importances, the model) for a number of repetitions, and reports the
medians. The overhead is the median of the paired differences (each autologged fit minus the
plain fit just before it), in seconds and as a share of the median training time. Every
autologged run is checked to hold all per-iteration metric points. Target (issue 7): runyard's
overhead ≤ MLflow's and ≤ 10% of the training time.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks import venvs
from benchmarks.autolog_workload import CASES, FULL, QUICK, Sizes
from benchmarks.report import cpu_model, format_number
from benchmarks.runner import BENCH_DIR, Job, describe, log, run_job

AUTOLOG_START_MARKER = "<!-- autolog-results:start -->"
AUTOLOG_END_MARKER = "<!-- autolog-results:end -->"
WORKLOAD_SCRIPT = BENCH_DIR / "autolog_workload.py"
LIBS = ("runyard", "mlflow")
TITLES = {"runyard": "runyard", "mlflow": "MLflow"}
TARGET_SHARE = 0.10
#: Libraries the MLflow venv needs for these workloads, at the current interpreter's versions.
TRAINING_LIBRARIES = ("xgboost", "lightgbm", "torch", "lightning")

Results = dict[str, dict[str, dict[str, Any]]]  # case → library → workload payload


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _workload_titles(sizes: Sizes) -> dict[str, str]:
    return {
        "lightgbm": f"LightGBM `train`, {sizes.iterations:,} iterations, "
        f"{sizes.rows:,} × {sizes.features} rows",
        "xgboost": f"XGBoost `train`, {sizes.iterations:,} iterations, "
        f"{sizes.rows:,} × {sizes.features} rows",
        "pytorch": f"Lightning `Trainer.fit`, {sizes.epochs} epochs, "
        f"{sizes.torch_rows:,} rows in batches of {sizes.batch_size}",
    }


def mlflow_python(install: bool) -> Path:
    """The MLflow venv's interpreter, with the training libraries at our versions."""
    python = venvs.ensure_venv(venvs.MLFLOW, install=install)
    wanted = {dist: _version(dist) for dist in TRAINING_LIBRARIES}
    missing = [
        f"{dist}=={version}"
        for dist, version in wanted.items()
        if version is not None and venvs.installed_version(python, dist) != version
    ]
    if missing and not install:
        raise venvs.EnvironmentUnavailable(
            f"the MLflow venv lacks {', '.join(missing)}; run without --no-install"
        )
    if missing:
        log(
            f"[autolog] installing {' '.join(missing)} into the MLflow venv (this can take minutes)"
        )
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *missing],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip()[-2000:]
            raise venvs.EnvironmentUnavailable(f"installing {missing} failed:\n{tail}")
    return python


def run_autolog_suite(
    only: set[str], *, quick: bool, install: bool
) -> tuple[Results, list[str], Sizes]:
    """Run every workload for each selected library; results, problems and sizes."""
    sizes = QUICK if quick else FULL
    problems: list[str] = []
    pythons: dict[str, Path] = {}
    if "runyard" in only:
        try:
            pythons["runyard"] = venvs.current_python_with("runyard")
        except venvs.EnvironmentUnavailable as exc:
            problems.append(f"runyard unavailable: {exc}")
    if "mlflow" in only:
        try:
            pythons["mlflow"] = mlflow_python(install)
        except venvs.EnvironmentUnavailable as exc:
            problems.append(f"mlflow unavailable: {exc}")
    results: Results = {}
    extra = ("--quick",) if quick else ()
    for case in CASES:
        for lib in LIBS:
            if lib not in pythons:
                continue
            args = (str(WORKLOAD_SCRIPT), "--lib", lib, "--case", case, *extra)
            job = Job(lib, f"autolog-{case}", pythons[lib], args)
            log(f"[{lib}] autolog {case}: running…")
            outcome = run_job(job)
            log(describe(outcome))
            payload = outcome.payload or {}
            error = outcome.error or payload.get("error")
            if error:
                problems.append(f"{lib} {case}: {error}")
            if outcome.payload is not None:
                results.setdefault(case, {})[lib] = outcome.payload
    return results, problems, sizes


def overhead(payload: dict[str, Any] | None) -> tuple[float, float] | None:
    """(overhead in seconds, overhead as a share of the training time) of one payload."""
    if not payload or "overhead_median_s" not in payload or payload.get("error"):
        return None
    extra = payload["overhead_median_s"]
    return extra, extra / payload["baseline_median_s"]


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{format_number(value)} s"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def render(
    results: Results, problems: list[str], sizes: Sizes, *, quick: bool, command: str
) -> str:
    """The Markdown section for RESULTS.md."""
    title = "quick sizes (smoke run, not for comparison)" if quick else "full sizes"
    versions = {
        lib: payload.get("version", "?")
        for per_lib in results.values()
        for lib, payload in per_lib.items()
    }
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    libs = ", ".join(f"{TITLES[lib]} {versions[lib]}" for lib in LIBS if lib in versions)
    training = ", ".join(f"{dist} {_version(dist) or 'absent'}" for dist in TRAINING_LIBRARIES)
    lines = [
        f"## Autolog overhead — {title}",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}; "
        f"load average at the end: {loadavg}",
        f"- Libraries: {libs}; training: {training}; Python {platform.python_version()}",
        "- Each library in its own process and temporary directory (SQLite store). Per process: "
        "a warm-up fit without autologging, the first autologged fit (lazy imports included), "
        f"then {sizes.reps} × (fit without, fit with `<flavor>.autolog()`, default options, "
        "each autologged fit in a run of its own); medians. Overhead = median of the paired "
        "differences (each fit with autolog − the fit without just before it); share = overhead "
        "/ median without",
        "- Every autologged run is checked to hold all per-iteration (per-epoch) metric points",
        "",
        "| Workload | Library | Training without autolog | With autolog | Overhead | "
        "Share of training | First autologged fit in a process |",
        "|---|---|---|---|---|---|---|",
    ]
    titles = _workload_titles(sizes)
    for case in CASES:
        for lib in LIBS:
            payload = results.get(case, {}).get(lib)
            if payload is None:
                continue
            found = overhead(payload)
            lines.append(
                f"| {titles[case]} | {TITLES[lib]} | "
                f"{_seconds(payload.get('baseline_median_s'))} | "
                f"{_seconds(payload.get('autolog_median_s'))} | "
                f"{_seconds(found[0] if found else None)} | "
                f"{_share(found[1] if found else None)} | "
                f"{_seconds(payload.get('first_autolog_s'))} |"
            )
    lines += [
        "",
        "| Workload | runyard overhead | MLflow overhead | runyard/MLflow overhead | target: "
        f"≤ MLflow and ≤ {TARGET_SHARE:.0%} | met |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        ours = overhead(results.get(case, {}).get("runyard"))
        theirs = overhead(results.get(case, {}).get("mlflow"))
        ratio, met = "—", ""
        if ours and theirs and theirs[0] > 0:
            ratio = f"{max(ours[0], 0.0) / theirs[0]:.3f}"
        if ours and not quick:
            ok = ours[1] <= TARGET_SHARE and (theirs is None or ours[0] <= theirs[0])
            met = "✅ met" if ok else "❌ not met"
        lines.append(
            f"| {titles[case]} | {_share(ours[1] if ours else None)} "
            f"({_seconds(ours[0] if ours else None)}) | "
            f"{_share(theirs[1] if theirs else None)} ({_seconds(theirs[0] if theirs else None)})"
            f" | {ratio} | ≤ MLflow, ≤ {TARGET_SHARE:.0%} | {met} |"
        )
    if problems:
        lines += ["", "Problems: " + "; ".join(problems)]
    return "\n".join(lines) + "\n"
