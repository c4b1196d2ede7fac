"""``GET /metrics``: Prometheus metrics of the scoring server, with ``prometheus_client``.

Series (all prefixed ``runyard_scoring_``):

- ``requests_total{route, method, status}``: every HTTP request answered.
- ``request_duration_seconds{route}``: a latency histogram, from the request's arrival to the
  end of its response.
- ``errors_total{route, error_code}``: failed ``/invocations`` requests by MLflow error code
  (``BAD_REQUEST``, ``INVALID_PARAMETER_VALUE``, ...), ``UNSUPPORTED_MEDIA_TYPE`` for 415s and
  ``TIMEOUT`` for 504s.
- ``batch_requests``: requests answered by each call of the model (above 1 when concurrent
  requests were batched, see :mod:`runyard.serving.batching`).
- ``model_load_seconds``: how long loading the model took (the largest over the workers).

``route`` is one of the server's paths, or ``other`` for anything else, so unknown URLs cannot
grow the label set. With several workers (``--workers N``) the server runs prometheus_client in
multiprocess mode: ``runyard models serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a temporary
directory that every worker writes to, and whichever worker answers ``/metrics`` reports the sum
over all of them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "MULTIPROC_DIR_VAR", "MetricsMiddleware", "ScoringMetrics"]

#: The Prometheus text exposition format, version 0.0.4: what every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: prometheus_client's own switch to multiprocess mode (read when it creates a metric).
MULTIPROC_DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"

ROUTES = frozenset({"/ping", "/health", "/version", "/invocations", "/metrics"})
#: Latency buckets in seconds: sub-millisecond scoring up to the default 60 s timeout.
BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    float("inf"),
)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client keeps its values in shared files (several workers)."""
    # prometheus_client also reads the older lower-case spelling.
    legacy = MULTIPROC_DIR_VAR.lower()
    return bool(os.environ.get(MULTIPROC_DIR_VAR) or os.environ.get(legacy))


class ScoringMetrics:
    """The scoring server's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_enabled()
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode values live in files; /metrics collects them from there.
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "runyard_scoring_requests",
            "HTTP requests answered by the scoring server.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "runyard_scoring_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            ["route"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "runyard_scoring_errors",
            "Failed /invocations requests by error code.",
            ["route", "error_code"],
            registry=registry,
        )
        self.batch_requests = Histogram(
            "runyard_scoring_batch_requests",
            "Requests served by one call of the model (opportunistic batching).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, float("inf")),
            registry=registry,
        )
        self.model_load = Gauge(
            "runyard_scoring_model_load_seconds",
            "Seconds it took to load the model.",
            registry=registry,
            multiprocess_mode="max",
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def batch(self, requests: int, rows: int) -> None:
        """Record one model call made for ``requests`` requests (``rows`` rows in all)."""
        self.batch_requests.observe(requests)

    def error(self, route: str, error_code: str) -> None:
        """Count one failed request."""
        self.errors.labels(route, error_code).inc()

    def render(self) -> bytes:
        """The exposition text of every series (summed over workers in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class MetricsMiddleware:
    """Pure ASGI middleware timing and counting every HTTP request (no per-request objects
    beyond one closure, unlike Starlette's BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: ScoringMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, recording its status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            path = scope["path"]
            route = path if path in ROUTES else "other"
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - started)
