"""The model-serving suite: ``runyard models serve`` vs ``mlflow models serve``, same model.

One scikit-learn model (a LogisticRegression fitted on the iris DataFrame, saved with its
signature by ``runyard.sklearn.save_model``; MLflow loads the same files) is served by:

- ``runyard``: ``runyard models serve --env-manager local`` (defaults: 1 worker, batching of
  concurrent requests on);
- ``runyard_nobatch``: the same with ``RUNYARD_SCORING_BATCH_MAX_ROWS=0``, each request scored
  alone, to show what batching adds;
- ``mlflow``: ``mlflow models serve --env-manager local`` 3.17.2 from the MLflow venv (its
  default: 1 uvicorn worker).

Each server is started afresh in a temporary directory: start-up time (spawn to the first 200 on
``/health``), settled idle RSS of its process tree, then for each payload (one row, 1,000 rows,
``dataframe_split``) one untimed request per connection checks the predictions, a short warm-up
runs, and 16 keep-alive connections post it in a loop for a fixed time: requests/s, p50 and p99
latency. RSS is sampled again at the end. Only 127.0.0.1 is ever contacted; every loop is bounded
in time and count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import servers, venvs
from benchmarks.loadgen import HammerStats, _read_response
from benchmarks.report import cpu_model, format_number
from benchmarks.runner import LOG_DIR, log

SERVING_START_MARKER = "<!-- serving-results:start -->"
SERVING_END_MARKER = "<!-- serving-results:end -->"
RESULTS_JSON = LOG_DIR.parent / "serving-results.json"
COLUMNS = ("runyard", "runyard_nobatch", "mlflow")
TITLES = {
    "runyard": "runyard",
    "runyard_nobatch": "runyard, batching off",
    "mlflow": "MLflow",
}
CONNECTIONS = 16
TARGET_SINGLE_ROW = 5.0  # × MLflow's single-row throughput (issue 5)
MB = 1e6


@dataclass(frozen=True)
class Sizes:
    """Durations of one run."""

    warmup_s: float
    duration_s: float
    big_rows: int = 1000


FULL = Sizes(warmup_s=2.0, duration_s=10.0)
QUICK = Sizes(warmup_s=0.5, duration_s=2.0)


@dataclass
class ServerResult:
    """Everything measured on one server."""

    version: str = "?"
    startup_s: float | None = None
    idle_rss: int | None = None
    after_rss: int | None = None
    loads: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None


# -- the model and the payloads ---------------------------------------------------------------
def build_model(directory: Path) -> tuple[Path, list[str], list[list[float]], list[int]]:
    """Save the iris classifier under ``directory``; its columns, all rows and predictions."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import runyard.sklearn
    from runyard.models import infer_signature

    features, labels = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=1000).fit(features, labels)
    path = directory / "model"
    signature = infer_signature(features, classifier.predict(features))
    runyard.sklearn.save_model(classifier, str(path), signature=signature)
    rows = features.to_numpy().tolist()
    return path, list(features.columns), rows, [int(p) for p in classifier.predict(features)]


def payload(
    columns: list[str], rows: list[list[float]], predictions: list[int], count: int
) -> tuple[bytes, list[int]]:
    """A ``dataframe_split`` body of ``count`` rows (cycling through ``rows``) and the
    predictions it must get."""
    data = [rows[i % len(rows)] for i in range(count)]
    expected = [predictions[i % len(rows)] for i in range(count)]
    body = json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()
    return body, expected


# -- servers ----------------------------------------------------------------------------------
def _with_env(env: dict[str, str], command: list[str]) -> list[str]:
    """``command`` run through ``env`` (servers.start gives children a fixed environment)."""
    return ["env", *(f"{k}={v}" for k, v in env.items()), *command]


def runyard_spec(name: str, extra_env: dict[str, str]) -> servers.ServerSpec:
    """``runyard models serve`` for the model at ``<scratch>/model``."""
    script = Path(sys.executable).parent / "runyard"
    if not script.exists():
        raise servers.ServerUnavailable(f"no runyard console script at {script}")

    def command(scratch: Path, port: int) -> list[str]:
        serve = [str(script), "models", "serve", "-m", str(scratch / "model")]
        serve += ["-h", servers.HOST, "-p", str(port), "--env-manager", "local"]
        return _with_env(extra_env, serve) if extra_env else serve

    version = venvs.installed_version(sys.executable, "runyard") or "?"
    return servers.ServerSpec(name, command, version=version, source=servers.runyard_source())


def mlflow_spec(install: bool) -> servers.ServerSpec:
    """``mlflow models serve`` 3.17.2 from its venv (its uvicorn comes first on PATH)."""
    python = venvs.ensure_venv(venvs.MLFLOW, install=install)
    bindir = python.parent
    mlflow = bindir / "mlflow"
    if not mlflow.exists():
        raise servers.ServerUnavailable(f"{mlflow} is missing")

    def command(scratch: Path, port: int) -> list[str]:
        serve = [str(mlflow), "models", "serve", "-m", str(scratch / "model")]
        serve += ["-h", servers.HOST, "-p", str(port), "--env-manager", "local"]
        path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
        return _with_env({"PATH": path}, serve)

    version = venvs.installed_version(python, "mlflow") or "?"
    return servers.ServerSpec("mlflow", command, version=version)


# -- load -------------------------------------------------------------------------------------
async def _post_loop(
    url: str, body: bytes, connections: int, duration_s: float, expected: list[int]
) -> HammerStats:
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or servers.HOST, parsed.port or 80
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    request = head.encode() + body
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    for reader, writer in streams:  # one untimed request per connection, checked
        writer.write(request)
        status, answer = await _read_response(reader)
        if status != 200 or json.loads(answer) != {"predictions": expected}:
            raise RuntimeError(f"wrong answer {status}: {answer[:200]!r}")
    stats = HammerStats()
    cpu_start, start = time.process_time(), time.perf_counter()
    deadline = start + duration_s

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while stats.more(deadline):
            sent = time.perf_counter()
            writer.write(request)
            status, _ = await _read_response(reader)
            stats.record(sent, status == 200)

    await asyncio.gather(*(worker(reader, writer) for reader, writer in streams))
    stats.wall_s, stats.client_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    for _, writer in streams:
        writer.close()
    return stats


def post_load(url: str, body: bytes, expected: list[int], sizes: Sizes) -> dict[str, float]:
    """Check the answer, warm up, then post ``body`` over 16 connections for the timed
    duration."""
    asyncio.run(_post_loop(url, body, CONNECTIONS, sizes.warmup_s, expected))
    stats = asyncio.run(_post_loop(url, body, CONNECTIONS, sizes.duration_s, expected))
    latencies = sorted(stats.latencies)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests_per_s": stats.ok / stats.wall_s,
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "requests": float(stats.ok),
        "errors": float(stats.bad),
        "client_cpu_s": stats.client_cpu_s,
    }


def measure(
    spec: servers.ServerSpec,
    model: Path,
    bodies: dict[str, tuple[bytes, list[int]]],
    sizes: Sizes,
) -> ServerResult:
    """Start ``spec`` on a copy of ``model``, measure it, stop it."""
    import shutil

    result = ServerResult(version=spec.version)
    with tempfile.TemporaryDirectory(prefix=f"runyard-bench-serving-{spec.name}-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(model, scratch / "model")
        try:
            server = servers.start(spec, scratch, "serving")
        except RuntimeError as exc:
            result.error = str(exc)
            return result
        try:
            result.startup_s = server.startup_s
            result.idle_rss, _, waited = servers.settled_rss(server.process.pid)
            log(
                f"[serving {spec.name}] up in {server.startup_s:.2f} s, idle "
                f"{result.idle_rss / MB:.0f} MB (settled after {waited:.1f} s)"
            )
            for name, (body, expected) in bodies.items():
                load = post_load(server.url, body, expected, sizes)
                result.loads[name] = load
                log(
                    f"[serving {spec.name}] {name}: {load['requests_per_s']:.0f} req/s, "
                    f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms"
                )
            result.after_rss, _ = servers.tree_rss_bytes(server.process.pid)
        except (RuntimeError, OSError, asyncio.IncompleteReadError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            log(f"[serving {spec.name}] failed: {result.error}")
        finally:
            servers.stop(server)
    return result


# -- the suite and its report -----------------------------------------------------------------
def specs(only: set[str], install: bool, problems: list[str]) -> dict[str, servers.ServerSpec]:
    """The servers to measure; unavailable ones are noted in ``problems``."""
    found: dict[str, servers.ServerSpec] = {}
    try:
        if "runyard" in only:
            found["runyard"] = runyard_spec("runyard", {})
            found["runyard_nobatch"] = runyard_spec(
                "runyard_nobatch", {"RUNYARD_SCORING_BATCH_MAX_ROWS": "0"}
            )
    except servers.ServerUnavailable as exc:
        problems.append(f"runyard unavailable: {exc}")
    try:
        if "mlflow" in only:
            found["mlflow"] = mlflow_spec(install)
    except (servers.ServerUnavailable, venvs.EnvironmentUnavailable) as exc:
        problems.append(f"mlflow unavailable: {exc}")
    return found


def run_serving_suite(
    only: set[str], *, quick: bool, install: bool
) -> tuple[dict[str, ServerResult], list[str], Sizes]:
    """Measure every available server in turn (runyard first); results and problems."""
    sizes = QUICK if quick else FULL
    problems: list[str] = []
    chosen = specs(only, install, problems)
    results: dict[str, ServerResult] = {}
    with tempfile.TemporaryDirectory(prefix="runyard-bench-serving-model-") as tmp:
        model, columns, rows, predictions = build_model(Path(tmp))
        bodies = {
            "single": payload(columns, rows, predictions, 1),
            "big": payload(columns, rows, predictions, sizes.big_rows),
        }
        for name in COLUMNS:
            if name in chosen:
                log(f"[serving {name}] starting…")
                results[name] = measure(chosen[name], model, bodies, sizes)
                if results[name].error:
                    problems.append(f"{name}: {results[name].error}")
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(
        json.dumps({"sizes": asdict(sizes), "results": {k: asdict(v) for k, v in results.items()}})
    )
    log(f"all numbers: {RESULTS_JSON}")
    return results, problems, sizes


@dataclass(frozen=True)
class _Row:
    label: str
    get: Any  # Callable[[ServerResult], float | None]
    unit: str
    higher_is_better: bool
    target: float | None = None


def _rows(sizes: Sizes) -> list[_Row]:
    def load(name: str, key: str) -> Any:
        return lambda r: r.loads.get(name, {}).get(key)

    big = f"{sizes.big_rows:,} rows"
    return [
        _Row(
            "1 row: throughput", load("single", "requests_per_s"), "req/s", True, TARGET_SINGLE_ROW
        ),
        _Row("1 row: p50 latency", load("single", "p50_ms"), "ms", False),
        _Row("1 row: p99 latency", load("single", "p99_ms"), "ms", False),
        _Row(f"{big}: throughput", load("big", "requests_per_s"), "req/s", True),
        _Row(f"{big}: p50 latency", load("big", "p50_ms"), "ms", False),
        _Row(f"{big}: p99 latency", load("big", "p99_ms"), "ms", False),
        _Row("start-up: spawn → first 200 on /health", lambda r: r.startup_s, "s", False),
        _Row("RSS idle, all processes", lambda r: r.idle_rss and r.idle_rss / MB, "MB", False),
        _Row(
            "RSS after the load, all processes",
            lambda r: r.after_rss and r.after_rss / MB,
            "MB",
            False,
        ),
    ]


def _ratio(ours: float | None, theirs: float | None, row: _Row) -> str:
    if not ours or not theirs:
        return "—"
    factor = ours / theirs if row.higher_is_better else theirs / ours
    better, worse = ("less", "more") if row.unit == "MB" else ("faster", "slower")
    if factor >= 1:
        return f"{format_number(factor)}× {better}"
    return f"{format_number(1 / factor)}× {worse}"


def render(
    results: dict[str, ServerResult],
    problems: list[str],
    sizes: Sizes,
    *,
    quick: bool,
    command: str,
) -> str:
    """The Markdown section for RESULTS.md."""
    columns = [c for c in COLUMNS if c in results]
    mlflow = results.get("mlflow")
    title = "quick sizes (smoke run, not for comparison)" if quick else "full sizes"
    versions = ", ".join(f"{TITLES[c]} {results[c].version}" for c in columns)
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"## Model serving — {title}",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}; "
        f"load average at the end: {loadavg}",
        f"- Servers: {versions}; each `models serve --env-manager local` with its default "
        "single worker, started afresh in a temporary directory",
        "- Model: scikit-learn LogisticRegression on the iris DataFrame (4 double columns, "
        "signature), saved once by runyard and served from the same files by both",
        f"- Load: {CONNECTIONS} keep-alive HTTP/1.1 connections posting `dataframe_split` bodies "
        f"in a loop for {sizes.duration_s:g} s after a {sizes.warmup_s:g} s warm-up (stdlib "
        "asyncio client in the orchestrator); RSS sums the server's whole process tree",
        "- runyard batches concurrent requests to row-wise models into shared model calls "
        "(`RUNYARD_SCORING_BATCH_MAX_ROWS`); the 'batching off' column sets it to 0",
        "",
        "| Workload | "
        + " | ".join(f"{TITLES[c]} {results[c].version}" for c in columns)
        + " | runyard/MLflow | runyard, batching off/MLflow | target | met |",
        "|---|" + "---|" * (len(columns) + 4),
    ]
    for row in _rows(sizes):
        cells = []
        for column in columns:
            value = row.get(results[column])
            cells.append("failed" if value is None else f"{format_number(value)} {row.unit}")
        ours = row.get(results["runyard"]) if "runyard" in results else None
        plain = row.get(results["runyard_nobatch"]) if "runyard_nobatch" in results else None
        theirs = row.get(mlflow) if mlflow else None
        target, met = "", ""
        if row.target is not None:
            target = f"≥ {row.target:g}× MLflow"
            if ours and theirs and not quick:
                met = "✅ met" if ours / theirs >= row.target else "❌ not met"
        lines.append(
            f"| {row.label} | "
            + " | ".join(cells)
            + f" | {_ratio(ours, theirs, row)} | {_ratio(plain, theirs, row)} | {target} | {met} |"
        )
    if problems:
        lines += ["", "Problems: " + "; ".join(problems)]
    return "\n".join(lines) + "\n"
