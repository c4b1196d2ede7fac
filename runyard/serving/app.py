"""The scoring server's ASGI app: MLflow's routes for one loaded pyfunc model (spec §9).

========================  ==========================================================
``GET /ping``, ``/health``  200, body ``"\\n"`` (``application/json``)
``GET /version``          the MLflow protocol version runyard speaks
``POST /invocations``     scoring (:mod:`runyard.serving.invocations`)
``GET /metrics``          Prometheus metrics (:mod:`runyard.serving.metrics`)
========================  ==========================================================

Parsing and scoring run in worker threads (the event loop keeps answering pings and other
requests), under a per-request time limit: past it the client gets MLflow's 504 ``Request
processing time exceeded limit`` and the thread's late result is dropped. Numeric rows for
scikit-learn, XGBoost and LightGBM models wait on the event loop for a model call they share
with the other requests waiting then (:mod:`runyard.serving.batching`).
"""

from __future__ import annotations

import gc
import os
import time

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runyard.config import ENV
from runyard.errors import InvalidParameterValue
from runyard.pyfunc.loader import PyFuncModel, load_model
from runyard.serving.invocations import CONTENT_TYPE_JSON, Scorer, ScoringResponse
from runyard.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ScoringMetrics
from runyard.version import MLFLOW_COMPATIBLE_VERSION

__all__ = [
    "TIMEOUT_MESSAGE",
    "app_from_environment",
    "create_scoring_app",
    "freeze_loaded_objects",
    "load_scoring_model",
]

TIMEOUT_MESSAGE = b"Request processing time exceeded limit"
#: Threads scoring at once per worker. Scoring holds the GIL nearly all the time, so more
#: threads only add switching; a few keep one slow request from stalling the rest.
SCORING_THREADS = 4


def load_scoring_model(model_path: str) -> tuple[PyFuncModel, float]:
    """Load the pyfunc model at ``model_path`` (a local directory or any model URI) and time it."""
    started = time.perf_counter()
    model = load_model(model_path)
    return model, time.perf_counter() - started


def create_scoring_app(
    model: PyFuncModel,
    *,
    timeout: float,
    model_load_seconds: float,
    batch_max_rows: int | None = None,
) -> Starlette:
    """The scoring app for ``model``; ``timeout`` bounds each ``/invocations`` request (seconds)
    and ``model_load_seconds`` is reported on ``/metrics``. ``batch_max_rows`` caps opportunistic
    batching (default ``RUNYARD_SCORING_BATCH_MAX_ROWS``; 0 turns it off)."""
    if timeout <= 0:
        raise InvalidParameterValue(f"The request timeout must be positive, got {timeout:g}.")
    if batch_max_rows is None:
        batch_max_rows = ENV.SCORING_BATCH_MAX_ROWS.get()
    metrics = ScoringMetrics()
    metrics.model_load.set(model_load_seconds)
    scorer = Scorer(model, batch_max_rows=batch_max_rows, observe_batch=metrics.batch)
    limiter = anyio.CapacityLimiter(SCORING_THREADS)
    health = Response(b"\n", media_type=CONTENT_TYPE_JSON)
    version_body = MLFLOW_COMPATIBLE_VERSION.encode()

    async def ping(request: Request) -> Response:
        return health

    async def version(request: Request) -> Response:
        return Response(version_body, media_type=CONTENT_TYPE_JSON)

    async def invocations(request: Request) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type")
        try:
            with anyio.fail_after(timeout):
                started = await anyio.to_thread.run_sync(
                    scorer.begin, body, content_type, abandon_on_cancel=True, limiter=limiter
                )
                if isinstance(started, ScoringResponse):
                    result = started
                else:  # numeric rows for a row-wise model: they share a model call
                    result = await scorer.share(started)
        except TimeoutError:
            metrics.error("/invocations", "TIMEOUT")
            return Response(TIMEOUT_MESSAGE, status_code=504, media_type=CONTENT_TYPE_JSON)
        if result.error_code is not None:
            metrics.error("/invocations", result.error_code)
        return Response(result.body, status_code=result.status, media_type=result.media_type)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(MetricsMiddleware, metrics=metrics)])
    app.state.scorer = scorer
    app.state.metrics = metrics
    return app


def app_from_environment() -> Starlette:
    """The app of one ``--workers N`` worker process (a uvicorn factory): loads the model from
    ``RUNYARD_SCORING_MODEL_PATH``; the timeout comes from
    ``RUNYARD_SCORING_SERVER_REQUEST_TIMEOUT``."""
    model_path = ENV.SCORING_MODEL_PATH.get()
    if not model_path:
        raise InvalidParameterValue(
            f"{ENV.SCORING_MODEL_PATH.runyard_name} is not set: it names the model directory "
            "each scoring-server worker loads."
        )
    model, seconds = load_scoring_model(os.path.abspath(model_path))
    app = create_scoring_app(
        model, timeout=ENV.SCORING_SERVER_REQUEST_TIMEOUT.get(), model_load_seconds=seconds
    )
    freeze_loaded_objects()
    return app


def freeze_loaded_objects() -> None:
    """Move everything allocated so far (libraries, the model) out of the garbage collector's
    reach: it lives as long as the server, and full collections walking it would stall requests
    now and then (tens of milliseconds at the tail). For server processes only."""
    gc.collect()
    gc.freeze()
