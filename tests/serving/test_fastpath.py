"""The lean path (numeric rows straight to a model-ready frame) and opportunistic batching: the
lean path gives exactly the general path's frame or steps aside; batches hand each request its
own rows, and a failing batch is retried request by request."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runyard.models.enforce import enforce_schema
from runyard.models.payload import dataframe_from_parsed_json
from runyard.serving.batching import Batcher, run_batch, split_rows
from runyard.serving.fastpath import FastFrames, NumericRows
from runyard.types.datatype import DataType
from runyard.types.schema import ColSpec, Schema, TensorSpec

MIXED = Schema(
    [
        ColSpec(DataType.long, "n"),
        ColSpec(DataType.float, "f"),
        ColSpec(DataType.boolean, "flag"),
        ColSpec(DataType.double, "d"),
        ColSpec(DataType.integer, "i"),
    ]
)
DOUBLES = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.double, "b")])
LONGS = Schema([ColSpec(DataType.long, "a"), ColSpec(DataType.long, "b")])


def _general(split: dict[str, Any], schema: Schema) -> pd.DataFrame:
    """What MLflow's path hands the model: parse + cast, then enforce."""
    frame = dataframe_from_parsed_json(dict(split), "split", schema)
    enforced: pd.DataFrame = enforce_schema(frame, schema)
    return enforced


def _lean(split: dict[str, Any], schema: Schema) -> pd.DataFrame:
    frames = FastFrames.for_schema(schema)
    assert frames is not None
    rows = frames.from_split(split)
    assert rows is not None, split
    return frames.frame([rows])


@pytest.mark.parametrize(
    ("schema", "split"),
    [
        (DOUBLES, {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4]]}),
        (DOUBLES, {"columns": ["b", "a"], "data": [[1, 2.5], [True, 4]]}),
        (LONGS, {"columns": ["a", "b"], "data": [[1, 2], [3, 2**62]]}),
        (LONGS, {"columns": ["a", "b"], "data": [[1, 2.0], [3, 2**62]]}),
        (MIXED, {"columns": ["n", "f", "flag", "d", "i"], "data": [[1, 0.1, True, 2, 7]]}),
        (MIXED, {"columns": ["i", "d", "flag", "f", "n"], "data": [[1, 2, False, 3, 4]] * 3}),
    ],
)
def test_lean_frame_equals_the_general_paths(schema: Schema, split: dict[str, Any]) -> None:
    lean, general = _lean(split, schema), _general(split, schema)
    assert list(lean.columns) == list(general.columns) == schema.input_names()
    assert list(lean.dtypes) == list(general.dtypes)
    pd.testing.assert_frame_equal(lean, general)


@pytest.mark.parametrize(
    "split",
    [
        {"columns": ["a", "b"], "data": [[1, "2"]]},
        {"columns": ["a", "b"], "data": [[1, None]]},
        {"columns": ["a", "b"], "data": [[1, [2]]]},
        {"columns": ["a", "b"], "data": [[1, 2, 3]]},
        {"columns": ["a", "b"], "data": [[1]]},
        {"columns": ["a", "b"], "data": []},
        {"columns": ["a", "b"], "data": [[1, 2]], "index": [0]},
        {"columns": ["a"], "data": [[1]]},
        {"columns": ["a", "c"], "data": [[1, 2]]},
        {"columns": ["a", "a"], "data": [[1, 2]]},
        {"columns": ["a", "b"], "data": [[1, 2**64]]},
        {"data": [[1, 2]]},
        [[1, 2]],
    ],
)
def test_anything_unusual_takes_the_general_path(split: Any) -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    assert frames.from_split(split) is None


def test_records_need_exactly_the_signature_columns() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    rows = frames.from_records([{"b": 2, "a": 1}, {"a": 3.5, "b": 4}])
    assert rows is not None
    frame = frames.frame([rows])
    assert frame.to_dict("list") == {"a": [1.0, 3.5], "b": [2.0, 4.0]}
    assert frames.from_records([{"a": 1}]) is None
    assert frames.from_records([{"a": 1, "b": 2, "c": 3}]) is None
    assert frames.from_records([{"a": 1, "c": 2}]) is None
    assert frames.from_records({"a": [1]}) is None


@pytest.mark.parametrize(
    "schema",
    [
        None,
        Schema([ColSpec(DataType.string, "s")]),
        Schema([ColSpec(DataType.double)]),
        Schema([TensorSpec(np.dtype("float64"), (-1, 2))]),
        Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.datetime, "t")]),
    ],
)
def test_only_named_numeric_signatures_have_a_lean_path(schema: Schema | None) -> None:
    assert FastFrames.for_schema(schema) is None


def test_frames_of_several_requests_stack_in_order() -> None:
    for schema in (DOUBLES, MIXED):
        frames = FastFrames.for_schema(schema)
        assert frames is not None
        width = len(schema.inputs)
        parts = [
            frames.from_split({"columns": frames.names, "data": [[k] * width] * k})
            for k in (1, 2, 3)
        ]
        assert all(p is not None for p in parts)
        frame = frames.frame([p for p in parts if p is not None])
        assert len(frame) == 6
        assert frame[frames.names[-1]].tolist() == [1, 2, 2, 3, 3, 3]
        assert list(frame.dtypes) == [np.dtype(d) for d in frames.dtypes]


# -- splitting outputs ------------------------------------------------------------------------
def test_split_rows_cuts_arrays_frames_series_and_lists() -> None:
    counts = [1, 2, 1]
    array = split_rows(np.arange(8).reshape(4, 2), counts)
    assert array is not None
    assert [a.tolist() for a in array] == [
        [[0, 1]],
        [[2, 3], [4, 5]],
        [[6, 7]],
    ]
    frame = split_rows(pd.DataFrame({"p": [1, 2, 3, 4]}), counts)
    assert frame is not None
    assert [f["p"].tolist() for f in frame] == [[1], [2, 3], [4]]
    series = split_rows(pd.Series([1, 2, 3, 4]), counts)
    assert series is not None
    assert [s.tolist() for s in series] == [[1], [2, 3], [4]]
    assert split_rows([1, 2, 3, 4], counts) == [[1], [2, 3], [4]]
    assert split_rows(np.arange(3), counts) is None  # not one output row per input row
    assert split_rows(np.float64(1.0), counts) is None
    assert split_rows({"p": [1, 2, 3, 4]}, counts) is None


# -- the batcher ------------------------------------------------------------------------------
class _GatedModel:
    """Records the row count of every call; the first call waits (in its worker thread) until
    released."""

    def __init__(self, fail_on: float | None = None, output: str = "rows") -> None:
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on
        self.output = output

    def __call__(self, frame: pd.DataFrame) -> Any:
        self.calls.append(len(frame))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on is not None and (frame["a"] == self.fail_on).any():
            raise ValueError(f"refusing {self.fail_on}")
        if self.output == "scalar":
            return float(frame["a"].sum())
        return frame["a"].to_numpy() * 10


def _one_row(frames: FastFrames, value: float) -> NumericRows:
    rows = frames.from_split({"columns": ["a", "b"], "data": [[value, 0]]})
    assert rows is not None
    return rows


def _run_concurrently(batcher: Batcher, frames: FastFrames, model: _GatedModel) -> dict[float, Any]:
    """First request alone (held inside the model), three more queued behind it, then release."""

    async def call(value: float) -> Any:
        try:
            return await batcher.submit(_one_row(frames, value))
        except ValueError as exc:
            return exc

    async def scenario() -> dict[float, Any]:
        first = asyncio.create_task(call(1.0))
        deadline = time.monotonic() + 10
        while not model.entered.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        others = [asyncio.create_task(call(v)) for v in (2.0, 3.0, 4.0)]
        await asyncio.sleep(0.01)  # all three are queued now
        model.release.set()
        values = await asyncio.gather(first, *others)
        return dict(zip((1.0, 2.0, 3.0, 4.0), values, strict=True))

    return asyncio.run(scenario())


def test_requests_waiting_together_share_one_model_call() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    model = _GatedModel()
    observed: list[tuple[int, int]] = []
    batcher = Batcher(frames, model, max_rows=64, observe=lambda n, r: observed.append((n, r)))
    results = _run_concurrently(batcher, frames, model)
    assert model.calls == [1, 3]
    assert observed == [(1, 1), (3, 3)]
    assert {k: v.tolist() for k, v in results.items()} == {
        1.0: [10.0],
        2.0: [20.0],
        3.0: [30.0],
        4.0: [40.0],
    }


def test_a_failing_batch_is_retried_request_by_request() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    model = _GatedModel(fail_on=3.0)
    results = _run_concurrently(Batcher(frames, model, max_rows=64), frames, model)
    assert model.calls == [1, 3, 1, 1, 1]
    assert isinstance(results[3.0], ValueError)
    assert results[2.0].tolist() == [20.0]
    assert results[4.0].tolist() == [40.0]


def test_output_without_a_row_per_input_row_is_recomputed_alone() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    model = _GatedModel(output="scalar")
    results = _run_concurrently(Batcher(frames, model, max_rows=64), frames, model)
    assert model.calls == [1, 3, 1, 1, 1]
    assert results == {1.0: 1.0, 2.0: 2.0, 3.0: 3.0, 4.0: 4.0}


def test_batches_respect_max_rows() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    model = _GatedModel()
    _run_concurrently(Batcher(frames, model, max_rows=2), frames, model)
    assert model.calls == [1, 2, 1]


def test_run_batch_without_batching_partners() -> None:
    frames = FastFrames.for_schema(DOUBLES)
    assert frames is not None
    outcomes = run_batch(frames, lambda frame: frame["a"].to_numpy(), [_one_row(frames, 7.0)])
    assert len(outcomes) == 1
    assert outcomes[0][0].tolist() == [7.0]
    assert outcomes[0][1] is None
