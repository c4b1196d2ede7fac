"""The auth suite: what turning authentication on costs runyard's and MLflow's servers.

``python -m benchmarks --suite auth`` starts, on SQLite in fresh temporary directories:

- ``runyard server`` with auth off, and with ``--app-name basic-auth``
  (``RUNYARD_AUTH_ADMIN_PASSWORD``; everything else at runyard's defaults);
- ``mlflow server --workers 1`` 3.17.2 (as the server suite runs it) with auth off, with
  ``--app-name basic-auth`` (an ini at ``MLFLOW_AUTH_CONFIG_PATH``: ``default_permission =
  READ``, the auth database in the scratch directory, the ``admin`` user) and with the same
  plus its credential cache (``auth_cache_ttl_seconds = 60``).

On an auth server the admin creates a non-admin user, who creates the experiment and the
runs (and so owns them: MANAGE); runyard's user also creates a personal access token.
Each server's requests are then sent with every credential it takes: none (auth off),
the admin's HTTP Basic (admins bypass the permission checks), the owner's HTTP Basic
(the realistic case: authentication and a permission check) and, on runyard, the owner's
bearer token. The workloads are the server suite's: ``GET runs/get`` of one run (5 params,
5 metrics, 3 tags) over 16 keep-alive connections for a fixed time, and sequential
``POST runs/log-batch`` of 1,000 metrics into a fresh run (fewer batches for MLflow, which
is ~15× slower; the rate is what is compared). Repetitions are interleaved over the
servers of one product, which run side by side, so that drift hits on and off alike; the
table shows medians. Each server is checked to answer 401 without credentials, every
answer must be a 200 (``runs/get`` bodies must carry the run id) and the logged points
must read back. Only 127.0.0.1 is contacted; every loop is bounded in time and count.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import loadgen, servers, venvs
from benchmarks.report import cpu_model, format_number, format_ratio
from benchmarks.runner import LOG_DIR, log
from benchmarks.server_report import MB

AUTH_START_MARKER = "<!-- auth-results:start -->"
AUTH_END_MARKER = "<!-- auth-results:end -->"
RESULTS_JSON = LOG_DIR.parent / "auth-results.json"
API = "/api/2.0/mlflow"
PRODUCTS = ("runyard", "mlflow")
TITLES = {"runyard": "runyard", "mlflow": "MLflow"}
#: Server modes: auth off, on, and (MLflow only) on with its credential cache.
MODES = {"runyard": ("off", "on"), "mlflow": ("off", "on", "cache")}
#: Credentials per mode: none without auth; admin Basic, owner Basic and (runyard) token.
CREDENTIALS = {"off": ("none",), "on": ("admin", "user", "token"), "cache": ("admin", "user")}
#: MLflow has no personal access tokens.
TOKENS = ("runyard",)
CREDENTIAL_TITLES = {
    "admin": "admin, HTTP Basic",
    "user": "owner (non-admin), HTTP Basic",
    "token": "owner, bearer token",
}
#: MLflow wants ≥ 12 characters; runyard ≥ 8.
ADMIN_USER, ADMIN_PASSWORD = "admin", "bench-admin-password-1"
OWNER_USER, OWNER_PASSWORD = "bench-owner", "bench-owner-password-1"
MLFLOW_CACHE_TTL_S = 60
TARGET_OVERHEAD = 0.10  # issue 10: ≤ 10 % slower with auth
RUN_ID_PLACEHOLDER = "@@RUN_ID@@"


@dataclass(frozen=True)
class AuthSizes:
    """Repetitions and sizes of one run."""

    reps: int = 3
    connections: int = 16
    runs_get_s: float = 3.0
    batch_keys: int = 10
    batch_steps: int = 100
    runyard_batches: int = 150
    mlflow_batches: int = 10

    @property
    def batch_size(self) -> int:
        """Metrics per ``log-batch`` request."""
        return self.batch_keys * self.batch_steps

    def batches(self, product: str) -> int:
        """``log-batch`` requests per repetition on ``product``'s servers."""
        return self.runyard_batches if product == "runyard" else self.mlflow_batches


FULL = AuthSizes()
QUICK = AuthSizes(reps=1, runs_get_s=1.0, runyard_batches=20, mlflow_batches=3)


def cell_key(product: str, mode: str, credential: str) -> str:
    """e.g. ``runyard/on/user``: one server and one credential."""
    return f"{product}/{mode}/{credential}"


# -- servers --------------------------------------------------------------------------------


def _with_auth(
    base: servers.ServerSpec, env: Callable[[Path], dict[str, str]], variant: str
) -> servers.ServerSpec:
    """``base`` with ``--app-name basic-auth`` and ``env`` (computed per scratch directory).

    The variables go through ``env(1)`` in front of the command: :func:`servers.start`
    gives every server the same scrubbed environment.
    """
    env_binary = shutil.which("env") or "/usr/bin/env"

    def command(scratch: Path, port: int) -> list[str]:
        assignments = [f"{name}={value}" for name, value in env(scratch).items()]
        return [env_binary, *assignments, *base.command(scratch, port), "--app-name", "basic-auth"]

    return replace(base, command=command, variant=base.variant + variant)


def _runyard_env(scratch: Path) -> dict[str, str]:
    return {
        "RUNYARD_AUTH_ADMIN_USERNAME": ADMIN_USER,
        "RUNYARD_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


def _mlflow_env(cache_ttl_s: int) -> Callable[[Path], dict[str, str]]:
    def env(scratch: Path) -> dict[str, str]:
        ini = scratch / "basic_auth.ini"
        lines = [
            "[mlflow]",
            "default_permission = READ",
            f"database_uri = sqlite:///{scratch / 'basic_auth.db'}",
            f"admin_username = {ADMIN_USER}",
            f"admin_password = {ADMIN_PASSWORD}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            *([f"auth_cache_ttl_seconds = {cache_ttl_s}"] if cache_ttl_s else []),
        ]
        ini.write_text("\n".join(lines) + "\n")
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        }

    return env


def server_variants(product: str, *, install: bool) -> dict[str, servers.ServerSpec]:
    """Mode → server spec for ``product``; raises when its server is unavailable."""
    if product == "runyard":
        base = servers.runyard_spec()
        return {"off": base, "on": _with_auth(base, _runyard_env, ", basic-auth")}
    venvs.mlflow_auth_python(install=install)  # Flask-WTF for the basic-auth app
    base = servers.mlflow_spec("1", install=install)
    return {
        "off": base,
        "on": _with_auth(base, _mlflow_env(0), ", basic-auth"),
        "cache": _with_auth(
            base, _mlflow_env(MLFLOW_CACHE_TTL_S), f", basic-auth, {MLFLOW_CACHE_TTL_S} s cache"
        ),
    }


# -- requests -------------------------------------------------------------------------------


def basic(username: str, password: str) -> dict[str, str]:
    """An HTTP Basic ``Authorization`` header."""
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


class Api:
    """JSON calls to one server with fixed headers; any status but 200 is an error."""

    def __init__(self, kind: str, url: str, headers: dict[str, str]) -> None:
        self.http = loadgen.connect(kind, url, headers)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        payload: Any = None,
        prefix: str = API,
    ) -> dict[str, Any]:
        """One request; the decoded answer."""
        status, content = self.http.request(
            method, f"{prefix}/{path}", params=params, json_body=payload
        )
        if status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {content[:300]!r}")
        body: dict[str, Any] = json.loads(content) if content else {}
        return body

    def create_run(self, experiment_id: str, name: str) -> str:
        """``runs/create``; the run id."""
        body = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}
        run = self.call("POST", "runs/create", payload={**body, "run_name": name})["run"]
        return str(run["info"]["run_id"])

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


def check(condition: bool, message: str) -> None:
    """Raise ``AssertionError(message)`` unless ``condition`` (it fails the cell)."""
    if not condition:
        raise AssertionError(message)


@dataclass(frozen=True)
class Target:
    """One server and credential, ready for the workloads."""

    product: str
    mode: str
    credential: str
    url: str
    headers: dict[str, str]
    experiment_id: str
    run_id: str  # the runs/get run

    @property
    def key(self) -> str:
        """See :func:`cell_key`."""
        return cell_key(self.product, self.mode, self.credential)


def prepare(product: str, mode: str, url: str, kind: str) -> list[Target]:
    """Users, token, experiment and run on a fresh server; one target per credential.

    On an auth server it first checks that a request without credentials gets a 401.
    """
    owner_headers: dict[str, str] = {}
    credentials: dict[str, dict[str, str]] = {"none": {}}
    if mode != "off":
        anonymous = Api(kind, url, {})
        try:
            status, _ = anonymous.http.request(
                "GET", f"{API}/experiments/get", params={"experiment_id": "0"}
            )
        finally:
            anonymous.close()
        check(status == 401, f"no credentials: HTTP {status}, expected 401 (is auth on?)")
        admin = Api(kind, url, basic(ADMIN_USER, ADMIN_PASSWORD))
        try:
            user = {"username": OWNER_USER, "password": OWNER_PASSWORD}
            admin.call("POST", "users/create", payload=user)
        finally:
            admin.close()
        owner_headers = basic(OWNER_USER, OWNER_PASSWORD)
        credentials = {"admin": basic(ADMIN_USER, ADMIN_PASSWORD), "user": owner_headers}
    owner = Api(kind, url, owner_headers)
    try:
        experiment_id = str(
            owner.call("POST", "experiments/create", payload={"name": "bench-auth"})[
                "experiment_id"
            ]
        )
        run_id = owner.create_run(experiment_id, "runs-get")
        timestamp = int(time.time() * 1000)
        owner.call(
            "POST",
            "runs/log-batch",
            payload={
                "run_id": run_id,
                "params": [{"key": f"p{i}", "value": f"value-{i}"} for i in range(5)],
                "metrics": [
                    {"key": f"m{i}", "value": i / 7, "timestamp": timestamp, "step": 0}
                    for i in range(5)
                ],
                "tags": [{"key": f"t{i}", "value": f"tag-{i}"} for i in range(3)],
            },
        )
        if product == "runyard" and mode != "off":
            answer = owner.call(
                "POST", "tokens/create", payload={"name": "bench"}, prefix="/api/2.0/runyard"
            )
            credentials["token"] = {"Authorization": f"Bearer {answer['token']}"}
    finally:
        owner.close()
    targets = []
    for credential in CREDENTIALS[mode]:
        if credential == "token" and product not in TOKENS:
            continue
        headers = credentials[credential]
        target = Target(product, mode, credential, url, headers, experiment_id, run_id)
        api = Api(kind, url, headers)
        try:  # every credential reads the run back, with all it holds
            run = api.call("GET", "runs/get", params={"run_id": run_id})["run"]
        finally:
            api.close()
        data = run["data"]
        check(
            run["info"]["run_id"] == run_id
            and len(data.get("params", [])) == 5
            and len(data.get("metrics", [])) == 5,
            f"{target.key}: runs/get returned another run or lost data: {run}",
        )
        targets.append(target)
    return targets


# -- workloads ------------------------------------------------------------------------------


def runs_get(target: Target, sizes: AuthSizes, kind: str) -> dict[str, Any]:
    """``GET runs/get`` over ``sizes.connections`` keep-alive connections for a fixed time."""
    path = f"{API}/runs/get?{urllib.parse.urlencode({'run_id': target.run_id})}"
    stats = loadgen.hammer(
        kind,
        target.url,
        path,
        target.run_id.encode(),
        sizes.connections,
        sizes.runs_get_s,
        target.headers,
    )
    total = stats.ok + stats.bad
    check(stats.bad == 0, f"{stats.bad} of {total} runs/get answers were not 200 with the run")
    check(total >= sizes.connections, f"only {total} runs/get requests in {stats.wall_s:.1f} s")
    return {
        "requests": stats.ok,
        "seconds": stats.wall_s,
        "requests_per_s": stats.ok / stats.wall_s,
        "p50_ms": statistics.median(stats.latencies) * 1000,
        "p99_ms": statistics.quantiles(stats.latencies, n=100)[98] * 1000,
        "client_cpu_fraction": stats.client_cpu_s / stats.wall_s,
    }


def batch_templates(sizes: AuthSizes, count: int) -> list[bytes]:
    """``count`` encoded ``log-batch`` bodies, steps continuing, run id left to fill in."""
    rng = random.Random(10)
    timestamp = int(time.time() * 1000)
    return [
        json.dumps(
            {
                "run_id": RUN_ID_PLACEHOLDER,
                "metrics": [
                    {
                        "key": f"k{k}",
                        "value": rng.random(),
                        "timestamp": timestamp,
                        "step": b * sizes.batch_steps + j,
                    }
                    for k in range(sizes.batch_keys)
                    for j in range(sizes.batch_steps)
                ],
            }
        ).encode()
        for b in range(count)
    ]


def log_batch(
    target: Target, templates: list[bytes], sizes: AuthSizes, kind: str
) -> dict[str, Any]:
    """Sequential ``POST runs/log-batch`` of the templates into a new run; rates.

    Creating the run and reading the first key's history back afterwards are not timed.
    """
    api = Api(kind, target.url, target.headers)
    try:
        run_id = api.create_run(target.experiment_id, "log-batch")
        bodies = [body.replace(RUN_ID_PLACEHOLDER.encode(), run_id.encode()) for body in templates]
        start = time.perf_counter()
        for body in bodies:
            status, content = api.http.request(
                "POST", f"{API}/runs/log-batch", body=body, content_type="application/json"
            )
            check(status == 200, f"log-batch: HTTP {status}: {content[:300]!r}")
        elapsed = time.perf_counter() - start
        history = api.call(
            "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "k0"}
        )
    finally:
        api.close()
    stored, expected = len(history.get("metrics", [])), len(bodies) * sizes.batch_steps
    check(stored == expected, f"key k0 has {stored} points, expected {expected}")
    return {
        "batches": len(bodies),
        "total_s": elapsed,
        "requests_per_s": len(bodies) / elapsed,
        "points_per_s": len(bodies) * sizes.batch_size / elapsed,
    }


# -- the suite ------------------------------------------------------------------------------


@dataclass
class AuthCollected:
    """Everything one run of the suite measured or saw go wrong."""

    sizes: AuthSizes
    http_client: str = "stdlib"
    samples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    #: Why a ``cell:workload``, a cell or a whole server (``product/mode``) has no numbers.
    failures: dict[str, str] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)  # product/mode → figures
    versions: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    not_run: set[str] = field(default_factory=set)

    def add(self, key: str, workload: str, result: dict[str, Any]) -> None:
        """Record one repetition of ``workload`` on a cell."""
        self.samples.setdefault(key, {}).setdefault(workload, []).append(result)

    def fail(self, key: str, message: str) -> None:
        """Mark a cell (or a whole server, ``product/mode``) failed."""
        self.failures.setdefault(key, message)
        self.problems.append(f"{key}: {message.splitlines()[0] if message else 'failed'}")

    def median(self, key: str, workload: str) -> float | None:
        """The median ``requests_per_s`` of a cell's workload, if measured."""
        results = self.samples.get(key, {}).get(workload)
        if not results:
            return None
        return statistics.median(float(r["requests_per_s"]) for r in results)

    def failure(self, product: str, mode: str, credential: str, workload: str) -> str | None:
        """Why a cell's workload has no number, if it failed."""
        key = cell_key(product, mode, credential)
        for reason in (f"{key}:{workload}", key, f"{product}/{mode}"):
            if reason in self.failures:
                return self.failures[reason]
        return None


def _attempt(data: AuthCollected, key: str, what: str, run: Callable[[], dict[str, Any]]) -> None:
    if f"{key}:{what}" in data.failures:
        return  # failed in an earlier repetition
    try:
        data.add(key, what, run())
    except Exception as exc:  # a failed cell is reported; the others go on
        data.fail(f"{key}:{what}", f"{type(exc).__name__}: {exc}")
        log(f"[auth] {key} {what}: FAILED: {exc}")


def measure_product(
    product: str, specs: dict[str, servers.ServerSpec], data: AuthCollected
) -> None:
    """Start every mode's server side by side, set them up, run interleaved repetitions."""
    sizes = data.sizes
    with contextlib.ExitStack() as stack:
        started: dict[str, servers.RunningServer] = {}
        for mode, spec in specs.items():
            try:
                started[mode] = stack.enter_context(servers.running(spec, f"auth-{mode}"))
            except RuntimeError as exc:
                data.fail(f"{product}/{mode}", f"server failed: {exc}")
                log(f"[auth] {product} {mode}: server failed: {exc}")
        if not started:
            return
        # MLflow's job runner keeps starting processes for seconds after /health.
        servers.settled_rss(list(started.values())[-1].process.pid)
        targets: list[Target] = []
        for mode, server in started.items():
            rss, processes = servers.tree_rss_bytes(server.process.pid)
            figures = {"startup_s": server.startup_s, "idle_rss_mb": rss / MB}
            data.servers[f"{product}/{mode}"] = {**figures, "idle_processes": processes}
            try:
                targets += prepare(product, mode, server.url, data.http_client)
            except Exception as exc:  # the server's cells fail, the others go on
                data.fail(f"{product}/{mode}", f"set-up: {type(exc).__name__}: {exc}")
                log(f"[auth] {product} {mode}: set-up failed: {exc}")
        log(f"[auth] {product}: {', '.join(started)} up; {len(targets)} credentials; running…")
        templates = batch_templates(sizes, sizes.batches(product))
        kind = data.http_client
        for rep in range(sizes.reps):
            for t in targets:
                _attempt(data, t.key, "runs_get", functools.partial(runs_get, t, sizes, kind))
            for t in targets:
                run = functools.partial(log_batch, t, templates, sizes, kind)
                _attempt(data, t.key, "log_batch", run)
            log(f"[auth] {product}: repetition {rep + 1}/{sizes.reps} done")
        for mode, server in started.items():
            rss, _ = servers.tree_rss_bytes(server.process.pid)
            data.servers[f"{product}/{mode}"]["after_rss_mb"] = rss / MB
            if server.process.poll() is not None:
                data.fail(f"{product}/{mode}", "the server exited during the workloads")


def run_auth_suite(
    only: set[str], *, quick: bool, install: bool, http_client: str = "stdlib"
) -> AuthCollected:
    """Both products (those in ``only``), every mode and credential; the collected results."""
    data = AuthCollected(QUICK if quick else FULL, http_client)
    for product in PRODUCTS:
        if product not in only:
            data.not_run.add(product)
            continue
        try:
            specs = server_variants(product, install=install)
        except (venvs.EnvironmentUnavailable, servers.ServerUnavailable) as exc:
            for mode in MODES[product]:
                data.fail(f"{product}/{mode}", f"unavailable: {exc}")
            continue
        base = specs["off"]
        data.versions[product] = base.version
        if base.source:
            data.sources[product] = base.source
        measure_product(product, specs, data)
    save_json(data)
    return data


def save_json(data: AuthCollected) -> None:
    """Every repetition's numbers, server figures and problems, to :data:`RESULTS_JSON`."""
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    dump = {
        "sizes": asdict(data.sizes),
        "http_client": data.http_client,
        "versions": data.versions,
        "samples": data.samples,
        "servers": data.servers,
        "failures": data.failures,
        "problems": data.problems,
    }
    RESULTS_JSON.write_text(json.dumps(dump, indent=1))
    log(f"all numbers: {RESULTS_JSON}")


# -- the report -----------------------------------------------------------------------------


def overhead(on: float | None, off: float | None) -> float | None:
    """How much longer a request takes with auth: ``off/on − 1`` of the rates."""
    if on is None or off is None or on <= 0 or off <= 0:
        return None
    return off / on - 1


def format_overhead(value: float | None) -> str:
    """``+4.2 %`` (slower with auth) or ``−1.0 %`` (faster: noise)."""
    if value is None:
        return "—"
    sign = "+" if value >= 0 else "−"
    return f"{sign}{abs(value) * 100:.1f} %"


def _cell(data: AuthCollected, product: str, mode: str, credential: str, workload: str) -> str:
    if product in data.not_run:
        return "not run"
    value = data.median(cell_key(product, mode, credential), workload)
    if value is not None:
        return f"{format_number(value)} req/s"
    return "**failed**" if data.failure(product, mode, credential, workload) else "—"


def _rate(
    data: AuthCollected, product: str, mode: str, credential: str, workload: str
) -> float | None:
    return data.median(cell_key(product, mode, credential), workload)


WORKLOADS = {
    "runs_get": "`GET runs/get`, {connections} connections, {runs_get_s:g} s",
    "log_batch": "`POST runs/log-batch`, {batch_size:,} metrics (runyard {runyard_batches}, "
    "MLflow {mlflow_batches} per repetition)",
}


def render_table(data: AuthCollected, *, quick: bool) -> str:
    """The side-by-side table."""
    header = [
        "Workload",
        "Credentials",
        "runyard, auth off",
        "runyard, auth on",
        "runyard auth overhead",
        "target ≤ +10 %",
        "MLflow, auth off",
        "MLflow, auth on",
        "MLflow auth overhead",
        f"MLflow, auth on + {MLFLOW_CACHE_TTL_S} s cache",
        "MLflow overhead with cache",
        "runyard/MLflow, auth on",
        "runyard/MLflow cached",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    fields = {**asdict(data.sizes), "batch_size": data.sizes.batch_size}
    for workload, template in WORKLOADS.items():
        label = template.format(**fields)
        for credential in ("admin", "user", "token"):
            ours_off = _rate(data, "runyard", "off", "none", workload)
            ours = _rate(data, "runyard", "on", credential, workload)
            ours_over = overhead(ours, ours_off)
            if ours_over is None:
                met = "—"
            elif quick:
                met = "— (full size only)"
            else:
                met = "✅ met" if ours_over <= TARGET_OVERHEAD else "❌ not met"
            mlflow_credential = credential if credential != "token" else None
            cells = [
                label,
                CREDENTIAL_TITLES[credential],
                _cell(data, "runyard", "off", "none", workload),
                _cell(data, "runyard", "on", credential, workload),
                format_overhead(ours_over),
                met,
            ]
            if mlflow_credential is None:
                cells += ["", "n/a (no tokens)", "", "n/a", "", "", ""]
            else:
                off = _rate(data, "mlflow", "off", "none", workload)
                on = _rate(data, "mlflow", "on", credential, workload)
                cached = _rate(data, "mlflow", "cache", credential, workload)
                cells += [
                    _cell(data, "mlflow", "off", "none", workload),
                    _cell(data, "mlflow", "on", credential, workload),
                    format_overhead(overhead(on, off)),
                    _cell(data, "mlflow", "cache", credential, workload),
                    format_overhead(overhead(cached, off)),
                    format_ratio(ours, on, True),
                    format_ratio(ours, cached, True),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append(_memory_row(data, len(header)))
    return "\n".join(lines)


def _memory_row(data: AuthCollected, width: int) -> str:
    def rss(product: str, mode: str) -> str:
        figures = data.servers.get(f"{product}/{mode}")
        return "—" if figures is None else f"{format_number(figures['idle_rss_mb'])} MB"

    cells = ["server RSS idle, all processes", "", rss("runyard", "off"), rss("runyard", "on")]
    cells += ["", "", rss("mlflow", "off"), rss("mlflow", "on"), "", rss("mlflow", "cache")]
    cells += [""] * (width - len(cells))
    return "| " + " | ".join(cells) + " |"


def render(data: AuthCollected, *, quick: bool, command: str) -> str:
    """The auth section: heading, set-up, table and failures."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run: reduced sizes" if quick else "full sizes"
    loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    ran = [p for p in PRODUCTS if p in data.versions]
    names = ", ".join(f"{TITLES[p]} {data.versions[p]}" for p in ran) or "none ran"
    sizes = data.sizes
    parts = [
        f"## Authentication overhead — {mode}",
        "",
        f"- Date: {now}; command: `{command}`",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()};"
        f" load average at the end: {loadavg}",
        f"- Servers: {names}, on SQLite in fresh temporary directories; runyard at its defaults"
        " (`--app-name basic-auth` for auth on), MLflow `--workers 1` (`--app-name basic-auth`,"
        f" `default_permission = READ`; the cached column adds `auth_cache_ttl_seconds ="
        f" {MLFLOW_CACHE_TTL_S}`)",
        *(f"- {TITLES[p]} code: {src}" for p, src in data.sources.items()),
        "- The owner is a non-admin user who created the experiment and runs (MANAGE): the"
        " request is authenticated and its permission checked; admins skip the check.",
        f"- Medians of {sizes.reps} repetitions, interleaved over a product's servers (running"
        f" side by side); raw HTTP/1.1 keep-alive ({data.http_client} client). Overhead ="
        " time per request with auth / without − 1; the issue's target is ≤ +10 % for runyard.",
        "",
        render_table(data, quick=quick),
    ]
    if data.problems:
        parts += ["", "### Failures", ""]
        parts += [f"- {problem}" for problem in data.problems]
    return "\n".join(parts) + "\n"
