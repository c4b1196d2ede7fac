"""Soak workload: mixed REST and UI traffic from several concurrent clients for a fixed time.

Run as a script, by any Python >= 3.10, against a tracking server on the loopback interface::

    python benchmarks/soak_workload.py --url http://127.0.0.1:5000 --seconds 60 --clients 4

Each client is a thread with one keep-alive connection (:mod:`benchmarks.loadgen`), its own
experiment ``soak-<n>``, and a local record of everything it wrote, so every answer is
checked against what the store must hold: runs created with params, metrics and tags;
``log-batch`` of metric points, params and tags into recent runs; ``runs/get``;
``runs/search`` with filters, ``order_by`` and paging (up to 3 pages, compared with the
expected order); ``metrics/get-history`` and ``get-history-bulk-interval``; small artifact
uploads, downloads (SHA-256 compared) and listings through the artifact proxy;
``experiments/search``; UI pages; ``set-tag``/``delete-tag``; and requests that must fail
(a 404 for an unknown run, a 400 for a malformed filter). Clients loop flat out, picking
operations by weight (:data:`MIX`), until the time is up; the store keeps growing.

Prints one JSON object on the last line of stdout: requests, expected errors and latency
percentiles per request kind, requests per 10 s, the number of 5xx answers and of failed
checks (with the first messages). Exits with status 1 on any 5xx answer or failed check.
Every loop is bounded in time and count, and only the given loopback URL is contacted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    from benchmarks import loadgen
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import loadgen  # type: ignore[no-redef]

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
BUCKET_S = 10.0  # requests are also counted per 10 s of the run
MAX_FAILURES = 200  # a client stops after this many failed checks
MAX_OPS = 50_000_000  # hard cap on operations per client, besides the duration
KEPT_MESSAGES = 20
RECENT_RUNS = 20  # log-batch, uploads and tag changes go to the client's newest runs
PAGE_SIZE = 20
MAX_PAGES = 3
BULK_RUNS = 5
BULK_MAX_RESULTS = 20
SEARCH_MAX_EXPERIMENTS = 50

#: Request kinds, in report order.
KINDS = (
    "experiments/create",
    "runs/create",
    "runs/update",
    "runs/log-batch",
    "runs/get",
    "runs/search",
    "metrics/get-history",
    "metrics/get-history-bulk-interval",
    "artifacts: upload",
    "artifacts: download",
    "artifacts: list",
    "experiments/search",
    "UI page",
    "runs/set-tag",
    "runs/delete-tag",
    "error: 404 unknown run",
    "error: 400 bad filter",
)

#: Operation weights: each loop iteration picks one (an operation sends 1 to 4 requests).
MIX: dict[str, int] = {
    "create_run": 5,
    "log_batch": 20,
    "get_run": 14,
    "search": 8,
    "history": 8,
    "bulk_interval": 5,
    "upload": 4,
    "download": 5,
    "list_artifacts": 3,
    "search_experiments": 3,
    "ui": 3,
    "tags": 5,
    "error_404": 2,
    "error_filter": 1,
}

#: UI pages per server flavour: server-rendered (runyard) or a single-page app (MLflow,
#: whose pages are client-side routes behind ``/``).
UI_MODES = ("server", "spa")


class CheckFailed(AssertionError):
    """An answer differs from what the client wrote (or has an unexpected status)."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


def now_ms() -> int:
    """Milliseconds since the epoch, as MLflow timestamps are."""
    return int(time.time() * 1000)


@dataclass
class KindTally:
    """Requests of one kind."""

    requests: int = 0
    expected_errors: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Tally:
    """What one client saw; merged over the clients at the end."""

    kinds: dict[str, KindTally] = field(default_factory=lambda: {k: KindTally() for k in KINDS})
    buckets: list[int] = field(default_factory=list)
    server_errors: int = 0
    failures: int = 0
    messages: list[str] = field(default_factory=list)
    runs: int = 0
    points: int = 0
    artifacts: int = 0

    def count(self, kind: str, seconds: float, elapsed_s: float, expected_error: bool) -> None:
        """One answered request of ``kind`` that took ``seconds``, ``elapsed_s`` into the run."""
        tally = self.kinds[kind]
        tally.requests += 1
        tally.latencies.append(seconds)
        if expected_error:
            tally.expected_errors += 1
        bucket = int(elapsed_s // BUCKET_S)
        while len(self.buckets) <= bucket:
            self.buckets.append(0)
        self.buckets[bucket] += 1

    def fail(self, message: str) -> None:
        """Record a failed check."""
        self.failures += 1
        if len(self.messages) < KEPT_MESSAGES:
            self.messages.append(message)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts to this tally."""
        for kind, theirs in other.kinds.items():
            ours = self.kinds[kind]
            ours.requests += theirs.requests
            ours.expected_errors += theirs.expected_errors
            ours.latencies.extend(theirs.latencies)
        for i, n in enumerate(other.buckets):
            while len(self.buckets) <= i:
                self.buckets.append(0)
            self.buckets[i] += n
        self.server_errors += other.server_errors
        self.failures += other.failures
        self.messages.extend(other.messages[: KEPT_MESSAGES - len(self.messages)])
        self.runs += other.runs
        self.points += other.points
        self.artifacts += other.artifacts


@dataclass
class RunRecord:
    """What a client wrote into one run."""

    run_id: str
    name: str
    artifact_path: str  # under mlflow-artifacts/artifacts/
    p1: str
    group: str
    m1: float
    m2: float
    params: int = 0
    points: int = 0  # steps 0..points-1 of ``loss`` and ``acc``
    finished: bool = False
    artifacts: dict[str, str] = field(default_factory=dict)  # file name -> SHA-256


class SoakClient:
    """One client: a connection, an experiment, and a record of what it wrote there."""

    def __init__(self, index: int, url: str, http_kind: str, ui: str, started: float) -> None:
        self.index = index
        self.http = loadgen.connect(http_kind, url)
        self.ui = ui
        self.started = started
        self.rng = random.Random(1_000 + index)
        self.tally = Tally()
        self.runs: list[RunRecord] = []
        self.experiment_id = ""
        self.open_runs: list[RunRecord] = []
        self.uploads = 0
        self.ops: dict[str, Callable[[], None]] = {
            "create_run": self.create_run,
            "log_batch": self.log_batch,
            "get_run": self.get_run,
            "search": self.search,
            "history": self.history,
            "bulk_interval": self.bulk_interval,
            "upload": self.upload,
            "download": self.download,
            "list_artifacts": self.list_artifacts,
            "search_experiments": self.search_experiments,
            "ui": self.ui_page,
            "tags": self.tags,
            "error_404": self.error_404,
            "error_filter": self.error_filter,
        }

    # -- requests ---------------------------------------------------------------------------

    def send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        payload: Any = None,
        body: bytes | None = None,
        expect: tuple[int, ...] = (200,),
        expected_error: bool = False,
    ) -> bytes:
        """One request; counts it, and fails unless its status is in ``expect``."""
        target = path
        if params:
            target = f"{path}?{urllib.parse.urlencode(params, doseq=True)}"
        start = time.perf_counter()
        status, content = self.http.request(method, target, body=body, json_body=payload)
        end = time.perf_counter()
        self.tally.count(kind, end - start, end - self.started, expected_error)
        if status >= 500:
            self.tally.server_errors += 1
        check(status in expect, f"{kind}: {method} {path}: HTTP {status}: {content[:200]!r}")
        return content

    def api(self, kind: str, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        """A REST API call answered 200 with a JSON object."""
        content = self.send(kind, method, f"{API}/{endpoint}", **kwargs)
        answer: dict[str, Any] = json.loads(content) if content else {}
        return answer

    # -- set-up -----------------------------------------------------------------------------

    def set_up(self) -> None:
        """The client's experiment, and its first run (so every operation has one)."""
        name = f"soak-{self.index}-{now_ms()}"
        self.experiment_id = str(
            self.api("experiments/create", "POST", "experiments/create", payload={"name": name})[
                "experiment_id"
            ]
        )
        self.create_run()

    def pick_run(self, recent: bool = False, with_points: bool = False) -> RunRecord | None:
        """A run of this client: any, or one of the newest; with logged points if asked."""
        pool = self.runs[-RECENT_RUNS:] if recent else self.runs
        if with_points:
            pool = [run for run in pool if run.points] or [
                run for run in self.runs[-RECENT_RUNS * 5 :] if run.points
            ]
        return self.rng.choice(pool) if pool else None

    # -- operations -------------------------------------------------------------------------

    def create_run(self) -> None:
        """``runs/create`` + ``log-batch`` (3 params, 2 metrics, 2 tags); the oldest of more
        than 5 open runs is set FINISHED (``runs/update``)."""
        number = len(self.runs)
        name = f"c{self.index}-run-{number}"
        body = {"experiment_id": self.experiment_id, "start_time": now_ms(), "run_name": name}
        info = self.api("runs/create", "POST", "runs/create", payload=body)["run"]["info"]
        run_id = str(info["run_id"])
        uri = urllib.parse.urlparse(str(info["artifact_uri"]))
        check(uri.scheme == "mlflow-artifacts", f"run artifact URI {uri.geturl()} is not proxied")
        record = RunRecord(
            run_id,
            name,
            uri.path.strip("/"),
            p1=self.rng.choice("xyz"),
            group=f"g{number % 5}",
            m1=self.rng.random(),
            m2=self.rng.random(),
        )
        ts = now_ms()
        batch = {
            "run_id": run_id,
            "params": [
                {"key": "p0", "value": str(number)},
                {"key": "p1", "value": record.p1},
                {"key": "p2", "value": "adam"},
            ],
            "metrics": [
                {"key": "m1", "value": record.m1, "timestamp": ts, "step": 0},
                {"key": "m2", "value": record.m2, "timestamp": ts, "step": 0},
            ],
            "tags": [{"key": "group", "value": record.group}, {"key": "soak", "value": "1"}],
        }
        self.api("runs/log-batch", "POST", "runs/log-batch", payload=batch)
        record.params = 3
        self.runs.append(record)
        self.open_runs.append(record)
        self.tally.runs += 1
        if len(self.open_runs) > 5:
            oldest = self.open_runs.pop(0)
            update = {"run_id": oldest.run_id, "status": "FINISHED", "end_time": now_ms()}
            self.api("runs/update", "POST", "runs/update", payload=update)
            oldest.finished = True

    def log_batch(self) -> None:
        """10 steps of ``loss`` and ``acc``, one new param and a tag, into a recent run."""
        run = self.pick_run(recent=True)
        assert run is not None
        ts = now_ms()
        steps = range(run.points, run.points + 10)
        metrics = [
            {"key": key, "value": self.rng.random(), "timestamp": ts, "step": step}
            for step in steps
            for key in ("loss", "acc")
        ]
        batch = {
            "run_id": run.run_id,
            "metrics": metrics,
            "params": [{"key": f"bp{run.params}", "value": str(run.points)}],
            "tags": [{"key": "last_step", "value": str(steps[-1])}],
        }
        self.api("runs/log-batch", "POST", "runs/log-batch", payload=batch)
        run.points += 10
        run.params += 1
        self.tally.points += len(metrics)

    def get_run(self, run: RunRecord | None = None) -> dict[str, Any]:
        """``runs/get`` of one of the client's runs: id, params, status and last step checked."""
        run = run or self.pick_run()
        assert run is not None
        got = self.api("runs/get", "GET", "runs/get", params={"run_id": run.run_id})["run"]
        info, data = got["info"], got.get("data", {})
        check(info["run_id"] == run.run_id, f"runs/get {run.run_id} answered {info['run_id']}")
        params = data.get("params", [])
        check(len(params) == run.params, f"run {run.name}: {len(params)} params, not {run.params}")
        status = "FINISHED" if run.finished else "RUNNING"
        check(info["status"] == status, f"run {run.name} is {info['status']}, not {status}")
        if run.points:
            loss = [m for m in data.get("metrics", []) if m["key"] == "loss"]
            check(
                len(loss) == 1 and int(loss[0]["step"]) == run.points - 1,
                f"run {run.name}: latest loss {loss} is not at step {run.points - 1}",
            )
        return dict(got)

    def search(self) -> None:
        """``runs/search`` in the client's experiment with one of three filter/order pairs,
        up to 3 pages of 20; the ids must be the expected ones in the expected order."""
        variant = self.rng.randrange(3)
        if variant == 0:
            p1 = self.rng.choice("xyz")
            query = {
                "filter": f"params.p1 = '{p1}' and metrics.m1 > 0.5",
                "order_by": ["metrics.m1 DESC"],
            }
            matching = [r for r in self.runs if r.p1 == p1 and r.m1 > 0.5]
            expected = sorted(matching, key=lambda r: -r.m1)
        elif variant == 1:
            group = f"g{self.rng.randrange(5)}"
            query = {"filter": f"tags.group = '{group}'", "order_by": ["metrics.m2 ASC"]}
            expected = sorted((r for r in self.runs if r.group == group), key=lambda r: r.m2)
        else:
            query = {"filter": "attributes.status = 'RUNNING'", "order_by": ["metrics.m2 DESC"]}
            running = (r for r in self.runs if not r.finished)
            expected = sorted(running, key=lambda r: -r.m2)
        found: list[str] = []
        token = None
        for _ in range(MAX_PAGES):
            payload: dict[str, Any] = {
                "experiment_ids": [self.experiment_id],
                "max_results": PAGE_SIZE,
                **query,
                **({"page_token": token} if token else {}),
            }
            answer = self.api("runs/search", "POST", "runs/search", payload=payload)
            found += [r["info"]["run_id"] for r in answer.get("runs", [])]
            token = answer.get("next_page_token")
            if not token:
                break
        wanted = [r.run_id for r in expected[: len(found) if token else None]]
        check(
            found == wanted,
            f"runs/search {query['filter']!r}: {len(found)} runs that differ from the "
            f"{len(wanted)} expected (first {found[:2]} vs {wanted[:2]})",
        )

    def history(self) -> None:
        """``metrics/get-history`` of ``loss`` in a run with points: every step, once."""
        run = self.pick_run(with_points=True)
        if run is None:
            return self.log_batch()
        params = {"run_id": run.run_id, "metric_key": "loss"}
        points = self.api("metrics/get-history", "GET", "metrics/get-history", params=params)
        steps = sorted(int(p["step"]) for p in points.get("metrics", []))
        check(
            steps == list(range(run.points)),
            f"get-history of {run.name}: {len(steps)} points, expected {run.points}",
        )
        return None

    def bulk_interval(self) -> None:
        """``get-history-bulk-interval`` of ``loss`` over up to 5 runs, 20 points each: only
        logged steps, the first and last among them, at most 20 per run."""
        pool = [r for r in self.runs[-RECENT_RUNS * 5 :] if r.points]
        if not pool:
            return self.log_batch()
        runs = self.rng.sample(pool, min(BULK_RUNS, len(pool)))
        params = {
            "run_ids": [r.run_id for r in runs],
            "metric_key": "loss",
            "max_results": str(BULK_MAX_RESULTS),
        }
        kind = "metrics/get-history-bulk-interval"
        answer = self.api(kind, "GET", "metrics/get-history-bulk-interval", params=params)
        by_run: dict[str, list[int]] = {}
        for point in answer.get("metrics", []):
            by_run.setdefault(str(point["run_id"]), []).append(int(point["step"]))
        for run in runs:
            steps = sorted(by_run.pop(run.run_id, []))
            check(
                bool(steps)
                and steps[0] == 0
                and steps[-1] == run.points - 1
                and len(steps) <= BULK_MAX_RESULTS
                and len(set(steps)) == len(steps),
                f"bulk-interval of {run.name} ({run.points} points): steps {steps[:5]}…",
            )
        check(not by_run, f"bulk-interval answered runs not asked for: {sorted(by_run)}")
        return None

    def upload(self) -> None:
        """``PUT`` of 1-32 KB of random bytes into a recent run's ``soak/`` folder."""
        run = self.pick_run(recent=True)
        assert run is not None
        self.uploads += 1
        name = f"a{self.uploads}.bin"
        data = os.urandom(self.rng.randint(1_024, 32_768))
        path = f"{ARTIFACTS_API}/{run.artifact_path}/soak/{name}"
        self.send("artifacts: upload", "PUT", path, body=data)
        run.artifacts[name] = hashlib.sha256(data).hexdigest()
        self.tally.artifacts += 1

    def download(self) -> None:
        """``GET`` of an uploaded artifact: the same bytes come back."""
        runs = [r for r in self.runs[-RECENT_RUNS * 5 :] if r.artifacts]
        if not runs:
            return self.upload()
        run = self.rng.choice(runs)
        name = self.rng.choice(sorted(run.artifacts))
        start = time.perf_counter()
        status, size, sha = self.http.download(f"{ARTIFACTS_API}/{run.artifact_path}/soak/{name}")
        end = time.perf_counter()
        self.tally.count("artifacts: download", end - start, end - self.started, False)
        if status >= 500:
            self.tally.server_errors += 1
        check(status == 200, f"artifact download {name}: HTTP {status}")
        check(sha == run.artifacts[name], f"artifact {name}: {size} bytes that differ")
        return None

    def list_artifacts(self) -> None:
        """Listing of a run's ``soak/`` folder: exactly the files uploaded there."""
        runs = [r for r in self.runs[-RECENT_RUNS * 5 :] if r.artifacts]
        if not runs:
            return self.upload()
        run = self.rng.choice(runs)
        content = self.send(
            "artifacts: list", "GET", ARTIFACTS_API, params={"path": f"{run.artifact_path}/soak"}
        )
        files = json.loads(content).get("files", [])
        names = {posix_name(f["path"]) for f in files}
        check(names == set(run.artifacts), f"listing of {run.name}: {sorted(names)[:3]}…")
        return None

    def search_experiments(self) -> None:
        """``experiments/search`` by name: the client's own experiment is among them."""
        payload = {"max_results": SEARCH_MAX_EXPERIMENTS, "filter": "name LIKE 'soak-%'"}
        answer = self.api("experiments/search", "POST", "experiments/search", payload=payload)
        ids = {e["experiment_id"] for e in answer.get("experiments", [])}
        check(self.experiment_id in ids, f"experiments/search misses {self.experiment_id}")

    def ui_page(self) -> None:
        """A UI page: for a server-rendered UI, ``/`` (a redirect), the experiments list, the
        experiment's runs (its newest run listed) or a run's page; for a single-page app,
        ``/``."""
        if self.ui == "spa":
            content = self.send("UI page", "GET", "/")
            check(b"<html" in content.lower(), "/ is not an HTML page")
            return
        page = self.rng.randrange(4)
        if page == 0:
            self.send("UI page", "GET", "/", expect=(200, 302, 303, 307))
        elif page == 1:
            content = self.send("UI page", "GET", "/experiments")
            check(f"soak-{self.index}-".encode() in content, "/experiments misses the experiment")
        elif page == 2:
            newest = self.runs[-1]
            content = self.send("UI page", "GET", f"/experiments/{self.experiment_id}")
            check(newest.run_id.encode() in content, f"runs page misses {newest.name}")
        else:
            run = self.pick_run()
            assert run is not None
            content = self.send("UI page", "GET", f"/runs/{run.run_id}")
            check(run.name.encode() in content, f"run page of {run.name} misses its name")

    def tags(self) -> None:
        """``set-tag`` then ``delete-tag`` of ``soak.tmp`` on a recent run; every 4th time
        ``runs/get`` shows it gone."""
        run = self.pick_run(recent=True)
        assert run is not None
        tag = {"run_id": run.run_id, "key": "soak.tmp", "value": str(self.rng.random())}
        self.api("runs/set-tag", "POST", "runs/set-tag", payload=tag)
        self.api("runs/delete-tag", "POST", "runs/delete-tag", payload=tag)
        if self.rng.randrange(4) == 0:
            got = self.get_run(run)
            keys = {t["key"] for t in got.get("data", {}).get("tags", [])}
            check("soak.tmp" not in keys, f"run {run.name} still has the deleted tag")

    def error_404(self) -> None:
        """``runs/get`` of an unknown run id: 404 RESOURCE_DOES_NOT_EXIST."""
        params = {"run_id": f"{self.rng.getrandbits(128):032x}"}
        kind = "error: 404 unknown run"
        content = self.send(
            kind, "GET", f"{API}/runs/get", params=params, expect=(404,), expected_error=True
        )
        code = json.loads(content).get("error_code")
        check(code == "RESOURCE_DOES_NOT_EXIST", f"unknown run: error_code {code}")

    def error_filter(self) -> None:
        """``runs/search`` with a malformed filter: 400 INVALID_PARAMETER_VALUE."""
        payload = {"experiment_ids": [self.experiment_id], "filter": "metrics.m1 >>> 0.5"}
        kind = "error: 400 bad filter"
        content = self.send(
            kind, "POST", f"{API}/runs/search", payload=payload, expect=(400,), expected_error=True
        )
        code = json.loads(content).get("error_code")
        check(code == "INVALID_PARAMETER_VALUE", f"bad filter: error_code {code}")

    # -- loop -------------------------------------------------------------------------------

    def loop(self, deadline: float) -> None:
        """Operations picked by :data:`MIX` weights until ``deadline`` (or too many failures)."""
        names, weights = list(MIX), list(MIX.values())
        try:
            self.guarded(self.set_up)
            if not self.runs:
                return
            for _ in range(MAX_OPS):
                if time.perf_counter() >= deadline or self.tally.failures >= MAX_FAILURES:
                    break
                op = self.rng.choices(names, weights)[0]
                self.guarded(self.ops[op])
        finally:
            self.http.close()

    def guarded(self, op: Callable[[], Any]) -> None:
        """Run ``op``; a failed check or a broken connection is recorded, not raised."""
        try:
            op()
        except Exception as exc:  # noqa: BLE001 - every error counts, none ends the client
            # Besides failed checks: broken connections (OSError), undecodable JSON
            # (ValueError), fields missing from an answer (KeyError, TypeError).
            self.tally.fail(f"client {self.index}: {type(exc).__name__}: {exc}")
            if not isinstance(exc, CheckFailed):
                traceback.print_exc()


def posix_name(path: str) -> str:
    """The last component of an artifact listing's ``path``."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) of ``values``, None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summarize(tally: Tally, seconds: float, clients: int) -> dict[str, Any]:
    """The JSON payload of a finished run."""
    kinds = {
        kind: {
            "requests": t.requests,
            "expected_errors": t.expected_errors,
            "p50_ms": None if not t.latencies else statistics.median(t.latencies) * 1000,
            "p99_ms": None if not t.latencies else (percentile(t.latencies, 0.99) or 0) * 1000,
        }
        for kind, t in tally.kinds.items()
    }
    total = sum(t.requests for t in tally.kinds.values())
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": total,
        "requests_per_s": total / seconds if seconds > 0 else 0.0,
        "bucket_s": BUCKET_S,
        "buckets": tally.buckets,
        "kinds": kinds,
        "server_errors": tally.server_errors,
        "failures": tally.failures,
        "failure_messages": tally.messages,
        "runs_created": tally.runs,
        "points_logged": tally.points,
        "artifacts_uploaded": tally.artifacts,
    }


def run_soak(url: str, seconds: float, clients: int, http_kind: str, ui: str) -> dict[str, Any]:
    """``clients`` threads of mixed traffic for ``seconds``; the merged summary."""
    started = time.perf_counter()
    deadline = started + seconds
    workers = [SoakClient(i, url, http_kind, ui, started) for i in range(clients)]
    threads = [
        threading.Thread(target=w.loop, args=(deadline,), name=f"soak-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 600)
        if thread.is_alive():
            workers[0].tally.fail(f"{thread.name} still running 10 minutes after the deadline")
    elapsed = time.perf_counter() - started
    total = Tally()
    for worker in workers:
        total.merge(worker.tally)
    return summarize(total, elapsed, clients)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the JSON summary on the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--seconds", type=float, required=True, help="how long the clients run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--ui", choices=UI_MODES, default="server", help="which UI pages to load")
    parser.add_argument("--http-client", choices=("stdlib", "httpx"), default="stdlib")
    args = parser.parse_args(argv)
    host = urllib.parse.urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"refusing a non-loopback server URL: {args.url}")
    summary = run_soak(args.url, args.seconds, args.clients, args.http_client, args.ui)
    summary.update({"url": args.url, "python": platform.python_version(), "ui": args.ui})
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
    return 0 if summary["server_errors"] == 0 and summary["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
