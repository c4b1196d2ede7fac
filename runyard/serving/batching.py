"""Opportunistic batching: concurrent lean-path requests share one call of the model.

A scikit-learn, XGBoost or LightGBM ``predict`` costs about the same for one row as for a few
dozen: the time goes into input validation and setup, not arithmetic. So when several requests
are waiting for the model at once, :class:`Batcher` stacks their rows into one DataFrame, calls
the model once (in a worker thread) and hands each request its own slice of the output.

Nothing ever waits for a batch to fill: a request arriving while the model is idle runs at once,
alone. Only requests that queue up while the model is busy are batched, so batching adds no
latency and only kicks in under concurrent load. Batches are capped at ``max_rows`` rows (a
request larger than that runs alone). Waiting requests hold no thread: they wait on the event
loop, and one model call runs at a time.

Only row-wise models are batched — the built-in flavors whose predict functions compute each
output row from its input row alone — and only requests on the lean path (numeric rows, no
params). If a batched call fails, or its output cannot be split back row by row, each request
of the batch is run again alone, so every request gets exactly the result or error it would
have had by itself. (For floating-point models the last bits of a row's result can depend on
the batch size, as they can when a client sends rows together.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
import numpy as np
import pandas as pd

from runyard.serving.fastpath import FastFrames, NumericRows

__all__ = ["ROW_WISE_LOADER_MODULES", "Batcher", "Outcome", "run_batch", "split_rows"]

#: Loader modules (as MLmodel files name them) whose pyfunc predict is row-wise.
ROW_WISE_LOADER_MODULES = frozenset({"mlflow.sklearn", "mlflow.xgboost", "mlflow.lightgbm"})

#: What one request gets from a model call: its predictions, or the exception for it.
Outcome = tuple[Any, BaseException | None]


def split_rows(output: Any, counts: Sequence[int]) -> list[Any] | None:
    """``output`` cut into consecutive pieces of ``counts`` rows, or None if it has not exactly
    one row per input row."""
    total = sum(counts)
    if isinstance(output, np.ndarray):
        if output.ndim == 0 or output.shape[0] != total:
            return None
        take: Callable[[int, int], Any] = lambda a, b: output[a:b]  # noqa: E731
    elif isinstance(output, (pd.DataFrame, pd.Series)):
        if len(output) != total:
            return None
        take = lambda a, b: output.iloc[a:b]  # noqa: E731
    elif isinstance(output, list):
        if len(output) != total:
            return None
        take = lambda a, b: output[a:b]  # noqa: E731
    else:
        return None
    pieces, start = [], 0
    for count in counts:
        pieces.append(take(start, start + count))
        start += count
    return pieces


def run_batch(
    frames: FastFrames, predict: Callable[[pd.DataFrame], Any], parts: Sequence[NumericRows]
) -> list[Outcome]:
    """Predict ``parts`` together, falling back to one call each when that fails or its output
    does not split back into the parts' rows."""
    if len(parts) > 1:
        try:
            output = predict(frames.frame(parts))
            pieces = split_rows(output, [p.count for p in parts])
        except Exception:  # noqa: BLE001 - each part is retried alone below
            pieces = None
        if pieces is not None:
            return [(piece, None) for piece in pieces]
    outcomes: list[Outcome] = []
    for part in parts:
        try:
            outcomes.append((predict(frames.frame([part])), None))
        except Exception as exc:  # noqa: BLE001 - handed to the request it belongs to
            outcomes.append((None, exc))
    return outcomes


class Batcher:
    """Runs a row-wise predict function over the rows of whichever requests wait together.

    :meth:`submit` is called on the event loop; the model runs in a worker thread, one call at
    a time. ``observe(requests, rows)`` is told the size of every call.
    """

    def __init__(
        self,
        frames: FastFrames,
        predict: Callable[[pd.DataFrame], Any],
        max_rows: int,
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        self._frames = frames
        self._predict = predict
        self._max_rows = max_rows
        self._observe = observe
        self._queue: list[tuple[NumericRows, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, rows: NumericRows) -> Any:
        """This request's predictions (the model's exception for it is raised here)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, future))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[NumericRows, asyncio.Future[Any]]]:
        # Requests whose client gave up (timed out) are dropped, not scored.
        self._queue = [item for item in self._queue if not item[1].done()]
        batch: list[tuple[NumericRows, asyncio.Future[Any]]] = []
        rows = 0
        for item in self._queue:
            if batch and rows + item[0].count > self._max_rows:
                break
            batch.append(item)
            rows += item[0].count
        del self._queue[: len(batch)]
        return batch

    def _run(self, parts: list[NumericRows]) -> list[Outcome]:
        if self._observe is not None:
            self._observe(len(parts), sum(p.count for p in parts))
        return run_batch(self._frames, self._predict, parts)

    async def _drain(self) -> None:
        batch: list[tuple[NumericRows, asyncio.Future[Any]]] = []
        try:
            while batch := self._take():
                outcomes = await anyio.to_thread.run_sync(self._run, [rows for rows, _ in batch])
                for (_, future), (value, error) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(value)
                    else:
                        future.set_exception(error)
        except BaseException as exc:  # the loop is shutting down: no request may hang
            for _, future in [*batch, *self._queue]:
                if not future.done():
                    future.set_exception(RuntimeError(f"Scoring was interrupted: {exc!r}"))
            self._queue.clear()
            raise
        finally:
            self._drainer = None
