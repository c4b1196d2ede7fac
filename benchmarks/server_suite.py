"""The tracking-server suite: runyard, MLflow and FastTrackML servers side by side.

For every workload group and every server, in turn (interleaved by group so
that compared numbers are measured close together in time): start the server
afresh in a new temporary directory, time its start-up, sample its settled idle
memory, run the group's workload process against it, sample its memory again,
and stop it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import pg, servers, venvs
from benchmarks.runner import BENCH_DIR, LOG_DIR, Job, describe, log, run_job
from benchmarks.server_bulk import make_artifact_file
from benchmarks.server_report import (
    SERVERS,
    WORKERS,
    ServerCollected,
    ServerSample,
    format_mb,
)
from benchmarks.server_workloads import GROUPS as RAW_GROUPS
from benchmarks.server_workloads import SERVER_FULL, SERVER_QUICK, ServerSizes

RAW_SCRIPT = BENCH_DIR / "server_workloads.py"
#: Every number of the last server run, per server and workload (git-ignored).
RESULTS_JSON = LOG_DIR.parent / "server-results.json"
CLIENT_SCRIPT = BENCH_DIR / "client_workload.py"
CLIENT_GROUPS: dict[str, tuple[str, ...]] = {
    "client_log_metric": ("client_log_metric",),
    "client_log_metric_async": ("client_log_metric_async",),
    "client_log_metric_own": ("client_log_metric_own",),
    "client_runs": ("client_runs",),
    "client_runs_own": ("client_runs_own",),
}
#: Client groups run by runyard's own client (``import runyard as mlflow``, runyard's venv).
OWN_CLIENT_GROUPS = ("client_log_metric_own", "client_runs_own")
#: Client groups run with MLflow's asynchronous logging on.
ASYNC_CLIENT_GROUPS = ("client_log_metric_async",)
#: Group order: each group runs on every server before the next group starts.
GROUP_ORDER = (
    "client_log_metric",
    "client_log_metric_own",
    "client_log_metric_async",
    "log_batch",
    "runs",
    "client_runs",
    "client_runs_own",
    "history",
    "long_history",
    "concurrency",
    "concurrency_workers",
    "artifacts_small",
    "artifacts",
)
ALL_GROUPS = {**CLIENT_GROUPS, **RAW_GROUPS}
#: The official client retries 5xx answers with exponential backoff for minutes by
#: default; a failing server should fail its cell at once (no effect on successes).
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}
#: Within a group the fast servers go first, before MLflow leaves the disk busy.
SERVER_ORDER = ("runyard", "fasttrackml", "mlflow")
#: Groups only runyard runs, on a server started with one worker per CPU (``--workers N``):
#: FastTrackML (Go) uses every core by default, runyard one process unless told otherwise.
WORKERS_GROUPS = ("concurrency_workers",)
#: Groups that run on some servers only: runyard's own client talks to runyard; the runyard
#: client rows compare with the official client in MLflow's asynchronous mode on the others.
GROUP_SERVERS: dict[str, tuple[str, ...]] = {
    **{group: ("runyard",) for group in (*WORKERS_GROUPS, *OWN_CLIENT_GROUPS)},
    **{group: ("mlflow", "fasttrackml") for group in ASYNC_CLIENT_GROUPS},
}


@dataclass(frozen=True)
class SuiteOptions:
    """What to run and how."""

    servers: tuple[str, ...]
    quick: bool
    install: bool
    mlflow_workers: str | None  # None: MLflow's own default
    http_client: str = "stdlib"
    #: ``sqlite`` (a file per server start) or ``postgres`` (a database per server start on
    #: one PostgreSQL server this suite starts, see benchmarks/pg.py).
    backend: str = "sqlite"

    @property
    def sizes(self) -> ServerSizes:
        """The workload sizes for this run."""
        return SERVER_QUICK if self.quick else SERVER_FULL


@dataclass
class ArtifactSource:
    """The file every server's artifact workload uploads: generated on disk once per suite run
    (lazily, by the first artifacts job), removed at the end."""

    size: int
    folder: Path | None = None
    sha256: str = ""
    generate_s: float = 0.0

    def path_and_hash(self) -> tuple[Path, str]:
        """The file and its SHA-256, generating it on first use."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="runyard-bench-artifact-"))
            started = time.perf_counter()
            self.sha256 = make_artifact_file(self.folder / "artifact.bin", self.size)
            self.generate_s = time.perf_counter() - started
            log(f"artifact source: {self.size / 1e6:,.0f} MB written in {self.generate_s:.1f} s")
        return self.folder / "artifact.bin", self.sha256

    def remove(self) -> None:
        """Delete the file (if it was made)."""
        if self.folder is not None:
            for child in self.folder.iterdir():
                child.unlink()
            self.folder.rmdir()
            self.folder = None


def server_specs(
    options: SuiteOptions, data: ServerCollected, store_uri: servers.StoreUri = servers.sqlite_store
) -> dict[str, servers.ServerSpec]:
    """The servers that can run; the others are marked unavailable in ``data``."""
    found: dict[str, servers.ServerSpec] = {}
    for name in options.servers:
        try:
            if name == "runyard":
                spec = servers.runyard_spec(store_uri)
            elif name == "mlflow":
                spec = servers.mlflow_spec(
                    options.mlflow_workers,
                    install=options.install,
                    store_uri=store_uri,
                    postgres=options.backend != "sqlite",
                )
            else:
                fml_store = None if options.backend == "sqlite" else store_uri
                spec = servers.fasttrackml_spec(install=options.install, store_uri=fml_store)
        except (venvs.EnvironmentUnavailable, servers.ServerUnavailable) as exc:
            log(f"[server {name}] unavailable: {exc}")
            data.unavailable(name, str(exc))
            continue
        found[name] = spec
        data.versions[name] = spec.version
        data.variants[name] = spec.variant
        if spec.source:
            data.sources[name] = spec.source
    return found


def workload_job(
    spec: servers.ServerSpec,
    group: str,
    server: servers.RunningServer,
    options: SuiteOptions,
    mlflow_python: Path,
    artifact: ArtifactSource | None = None,
) -> Job:
    """The workload process for ``group`` against ``server``."""
    column = f"srv-{spec.name}"
    url = server.url
    if group in CLIENT_GROUPS:
        sizes = options.sizes
        args = (
            str(CLIENT_SCRIPT),
            "--group",
            group,
            "--calls",
            str(sizes.client_log_metric_calls),
            "--runs",
            str(sizes.client_runs),
        )
        env = {"MLFLOW_TRACKING_URI": url, **CLIENT_ENV}
        if group in ASYNC_CLIENT_GROUPS:
            env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"
        if group in OWN_CLIENT_GROUPS:
            return Job(column, group, Path(sys.executable), (*args, "--library", "runyard"), env)
        return Job(column, group, mlflow_python, args, env)
    extra: tuple[str, ...] = ()
    if group == "artifacts" and artifact is not None:
        path, digest = artifact.path_and_hash()
        extra = ("--artifact-file", str(path), digest)
    args = (
        str(RAW_SCRIPT),
        "--url",
        url,
        "--group",
        group,
        "--artifacts",
        spec.artifacts,
        "--http-client",
        options.http_client,
        "--server",
        spec.name,
        "--server-pid",
        str(server.process.pid),
        *extra,
        *(("--quick",) if options.quick else ()),
    )
    return Job(column, group, Path(sys.executable), args)


def run_one(
    spec: servers.ServerSpec,
    group: str,
    options: SuiteOptions,
    mlflow_python: Path,
    data: ServerCollected,
    artifact: ArtifactSource | None = None,
) -> None:
    """Start ``spec`` afresh, run ``group`` against it, record everything, stop it."""
    tag = f"[server {spec.name}] {group}"
    try:
        with servers.running(spec, group) as server:
            idle_rss, idle_procs, waited = servers.settled_rss(server.process.pid)
            log(
                f"{tag}: up in {server.startup_s:.2f} s, idle {format_mb(idle_rss)} in "
                f"{idle_procs} processes (settled after {waited:.1f} s); running…"
            )
            job = workload_job(spec, group, server, options, mlflow_python, artifact)
            outcome = run_job(job)
            after_rss, after_procs = servers.tree_rss_bytes(server.process.pid)
            alive = server.process.poll() is None
    except RuntimeError as exc:  # the server did not come up
        log(f"{tag}: server failed: {exc}")
        data.problems.append(f"{spec.name} / {group}: server failed: {exc}")
        for name in ALL_GROUPS[group]:
            data.failures.setdefault(spec.name, {}).setdefault(name, "failed")
        return
    data.add(spec.name, group, outcome)
    if not alive:
        data.problems.append(f"{spec.name} / {group}: the server exited during the workload")
    sample = ServerSample(group, server.startup_s, idle_rss, idle_procs, after_rss, after_procs)
    if group not in WORKERS_GROUPS:  # the start-up and RSS rows are of the default server
        data.add_sample(spec.name, sample)
    log(f"{describe(outcome)}; after: {format_mb(after_rss)} in {after_procs} processes")
    if outcome.error:
        log(f"{outcome.stderr_tail}\n{outcome.error}")


@contextlib.contextmanager
def _store(options: SuiteOptions, data: ServerCollected) -> Iterator[pg.Databases | None]:
    """The PostgreSQL databases for ``--backend postgres`` (None: SQLite files)."""
    if options.backend != "postgres":
        yield None
        return
    with pg.running() as cluster:
        data.postgres = f"PostgreSQL {cluster.version} ({', '.join(pg.SETTINGS[:2])})"
        yield pg.Databases(cluster)


def run_server_suite(options: SuiteOptions) -> ServerCollected:
    """Every group on every available server; the collected results."""
    data = ServerCollected(ALL_GROUPS, not_run={s for s in SERVERS if s not in options.servers})
    try:
        with _store(options, data) as databases:
            _run_all(options, data, databases)
    except (pg.PostgresUnavailable, RuntimeError) as exc:
        data.problems.append(f"--backend {options.backend}: {exc}")
    save_json(data, options)
    return data


def _run_all(options: SuiteOptions, data: ServerCollected, databases: pg.Databases | None) -> None:
    specs = server_specs(options, data, databases or servers.sqlite_store)
    mlflow_python = None
    if specs:
        try:
            mlflow_python = venvs.ensure_venv(venvs.MLFLOW, install=options.install)
        except venvs.EnvironmentUnavailable as exc:
            data.problems.append(f"official-client rows: no MLflow venv ({exc})")
    if options.http_client == "httpx" and not venvs_has_httpx():
        data.problems.append("--http-client httpx: httpx is not importable here")
        return
    artifact = ArtifactSource(options.sizes.artifact_bytes)
    try:
        for group in GROUP_ORDER:
            for name in SERVER_ORDER:
                if name not in specs:
                    continue
                if name not in GROUP_SERVERS.get(group, SERVERS):
                    continue
                if group in CLIENT_GROUPS and mlflow_python is None:
                    data.failures.setdefault(name, {})[group] = "failed"
                    continue
                spec = specs[name]
                if group in WORKERS_GROUPS:
                    spec = servers.with_workers(spec, WORKERS)
                python = mlflow_python or Path(sys.executable)
                run_one(spec, group, options, python, data, artifact)
                if databases is not None:
                    databases.drop_all()
    finally:
        artifact.remove()


def save_json(data: ServerCollected, options: SuiteOptions) -> None:
    """Write every measured number (medians' samples included) to :data:`RESULTS_JSON`."""
    path = RESULTS_JSON
    if options.backend != "sqlite":
        path = path.with_name(f"server-results-{options.backend}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    dump = {
        "options": asdict(options),
        "sizes": asdict(options.sizes),
        "versions": data.versions,
        "values": data.values,
        "samples": {name: [asdict(s) for s in samples] for name, samples in data.samples.items()},
        "problems": data.problems,
    }
    path.write_text(json.dumps(dump, indent=1))
    log(f"all numbers: {path}")


def venvs_has_httpx() -> bool:
    """Whether the current interpreter can import httpx."""
    try:
        import httpx  # noqa: F401
    except ImportError:
        return False
    return True
