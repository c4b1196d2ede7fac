"""Property-based tests of the wire decoder and the metric codec (hypothesis).

* Every field of every endpoint the server serves (``runyard.server.app.ENDPOINTS`` and the auth
  endpoints): an arbitrary JSON object or query string either decodes to values of the field's
  type or is refused with InvalidParameterValue, never another exception.
* Valid values, written in every form MLflow's clients send (snake_case or lowerCamelCase,
  numbers as numbers or strings, doubles as ``"NaN"``/``"Infinity"``, booleans in any case,
  enums by name or number, repeated query keys) decode to exactly those values.
* Metrics — NaN, ±Infinity, subnormals, int64 timestamps and steps at both ends, unicode keys —
  round-trip through the codec and through a real server's log-batch / get-history as MLflow's
  SQL store does (NaN as ``"NaN"``; ±Infinity stored and read back as ±max double).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from runyard.entities import Metric, RunStatus, ViewType
from runyard.errors import InvalidParameterValue
from runyard.protocol.codec import (
    dataset_input_from_json,
    metric_from_json,
    metric_to_json,
    parse_double,
    wire_double,
)
from runyard.protocol.requests import Field, camel, parse_params
from runyard.server.app import ENDPOINTS, create_app
from runyard.server.auth.endpoints import ENDPOINTS as AUTH_ENDPOINTS
from runyard.server.settings import ServerSettings

PROPERTY = settings(max_examples=100, deadline=None, database=None)
# One example draws the fields of one endpoint (~70 distinct sets): each is drawn ~10 times.
ACROSS_ENDPOINTS = settings(max_examples=700, deadline=None, database=None)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DOUBLE = 1.7976931348623157e308
# The decoder sees an endpoint only as its fields; endpoints with the same fields are one case.
_FIELD_SETS = sorted({e.fields for e in [*ENDPOINTS, *AUTH_ENDPOINTS]}, key=repr)
FIELD_SETS = st.sampled_from(_FIELD_SETS)
_ENUM_NAMES = {"ViewType": set(ViewType._names), "RunStatus": set(RunStatus._names)}

# --- Arbitrary input ----------------------------------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond int64 too: orjson hands big numbers over as floats, Python callers not
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["NaN", "-Infinity", "true", "False", "1e999", "²", " 12 ", "0x10", "ALL"]),
)
JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _keys(fields: tuple[Field, ...]) -> st.SearchStrategy[str]:
    spellings = [s for f in fields for s in f.spellings()]
    return st.one_of(st.sampled_from(spellings), st.text(max_size=8)) if spellings else st.text()


def _check_decoded(fields: tuple[Field, ...], out: dict[str, Any]) -> None:
    """Every field is present, with a value of its declared type (or None when absent)."""
    assert set(out) == {f.name for f in fields}
    for field in fields:
        value = out[field.name]
        if field.repeated:
            assert isinstance(value, list)
            items = value
        elif value is None:
            assert not field.required
            continue
        else:
            items = [value]
        for item in items:
            _check_item(field, item)


def _check_item(field: Field, item: Any) -> None:
    if field.kind == "string":
        assert isinstance(item, str)
    elif field.kind == "int":
        assert type(item) is int
        assert INT64_MIN <= item <= INT64_MAX
    elif field.kind == "double":
        assert type(item) is float
    elif field.kind == "bool":
        assert type(item) is bool
    elif field.kind == "message":
        assert isinstance(item, dict)
    else:
        assert item in _ENUM_NAMES[field.kind]


def _decode(fields: tuple[Field, ...], data: dict[str, Any], query: bool) -> str:
    try:
        out = parse_params(fields, data, query=query)
    except InvalidParameterValue as error:
        refused = error
    else:
        _check_decoded(fields, out)
        return "decoded"
    assert refused.error_code == "INVALID_PARAMETER_VALUE"
    assert refused.get_http_status_code() == 400
    return "refused"


def test_arbitrary_json_decodes_or_is_refused() -> None:
    outcomes: set[str] = set()

    @ACROSS_ENDPOINTS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        fields = data.draw(FIELD_SETS)
        body = data.draw(st.dictionaries(_keys(fields), JSON_VALUES, max_size=6))
        outcomes.add(_decode(fields, body, query=False))

    check()
    assert outcomes == {"decoded", "refused"}


_QUERY_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "true", "True", "NaN", "Infinity", "-5", "9223372036854775808", "²"]),
    st.integers().map(str),
)


def test_arbitrary_query_string_decodes_or_is_refused() -> None:
    outcomes: set[str] = set()

    @ACROSS_ENDPOINTS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        fields = data.draw(FIELD_SETS)
        query = data.draw(
            st.dictionaries(_keys(fields), st.lists(_QUERY_TEXT, max_size=3), max_size=6)
        )
        outcomes.add(_decode(fields, query, query=True))

    check()
    assert outcomes == {"decoded", "refused"}


# --- Valid values in every accepted form --------------------------------------------------------

_INT64 = st.integers(INT64_MIN, INT64_MAX)


@st.composite
def _valid(draw: Any, kind: str, query: bool) -> tuple[Any, Any]:
    """(a value as some client writes it, the value it must decode to)."""
    if kind == "string":
        text = draw(st.text(min_size=1, max_size=12))
        return text, text
    if kind == "int":
        number = draw(_INT64)
        forms: list[Any] = [str(number), f" {number} "]
        if not query:
            forms.append(number)
            if abs(number) < 2**53:
                forms.append(float(number))
        return draw(st.sampled_from(forms)), number
    if kind == "double":
        value = draw(st.floats())
        written = wire_double(value)
        forms = [written, repr(value)] if query else [written, str(written)]
        if isinstance(written, str):
            forms += [written.lower(), written.upper()]
        return draw(st.sampled_from(forms)), value
    if kind == "bool":
        flag = draw(st.booleans())
        forms = [str(flag), str(flag).lower(), str(flag).upper()]
        return draw(st.sampled_from(forms if query else [flag, *forms])), flag
    if kind == "message":
        doc = draw(st.dictionaries(st.text(max_size=5), _JSON_SCALARS, max_size=3))
        return doc, doc
    names = {"ViewType": ViewType._names, "RunStatus": RunStatus._names}[kind]
    label = draw(st.sampled_from(sorted(names)))
    number = names[label]
    forms = [label, label.lower(), str(number)] + ([] if query else [number])
    return draw(st.sampled_from(forms)), label


def _same(decoded: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(decoded, float) and math.isnan(decoded)
    return bool(decoded == expected)


@pytest.mark.parametrize("query", [False, True], ids=["json", "query"])
def test_valid_values_decode_to_themselves(query: bool) -> None:
    @ACROSS_ENDPOINTS
    @given(st.data())
    def check(data: st.DataObject) -> None:
        fields = data.draw(FIELD_SETS)
        if query:  # a query string carries no objects: message fields are left out there
            fields = tuple(f for f in fields if f.kind != "message")
        written: dict[str, Any] = {}
        expected: dict[str, Any] = {}
        for field in fields:
            if not field.required and data.draw(st.booleans(), label=f"omit {field.name}"):
                expected[field.name] = [] if field.repeated else None
                continue
            key = data.draw(st.sampled_from(sorted({field.name, camel(field.name)})))
            count = data.draw(st.integers(1, 3)) if field.repeated else 1
            pairs = [data.draw(_valid(field.kind, query), label=field.name) for _ in range(count)]
            values = [w for w, _ in pairs]
            written[key] = values if field.repeated or query else values[0]
            expected[field.name] = [e for _, e in pairs] if field.repeated else pairs[0][1]
        out = parse_params(fields, written, query=query)
        for field in fields:
            got, want = out[field.name], expected[field.name]
            if field.repeated:
                assert len(got) == len(want)
                assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
            else:
                assert _same(got, want), (field.name, written, got, want)

    check()


def test_both_spellings_of_one_field_are_refused() -> None:
    fields = (Field("run_id", required=True),)

    @PROPERTY
    @given(st.text(min_size=1), st.text(min_size=1))
    def check(first: str, second: str) -> None:
        with pytest.raises(InvalidParameterValue, match="send one spelling"):
            parse_params(fields, {"run_id": first, "runId": second})

    check()


# Regressions the properties found: each once raised something other than InvalidParameterValue
# (an OverflowError or ValueError, and the server answered 500).
@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int", 2**63),  # beyond int64: the database could not store it
        ("int", -(2**63) - 1),
        ("int", 1.8446744073709552e19),  # what orjson makes of 18446744073709551616
        ("int", "9" * 5000),  # more digits than int() converts
        ("int", "²"),  # str.isdigit() says yes, int() says no
        ("double", 10**400),  # too large for a float
        ("ViewType", "²"),
        ("RunStatus", "١"),
    ],
)
def test_values_that_once_escaped_as_other_errors(kind: str, value: Any) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid value"):
        parse_params((Field("x", kind),), {"x": value})


_DATASET_KEYS = st.sampled_from(["name", "digest", "source_type", "source", "schema", "profile"])


@PROPERTY
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(["dataset", "tags"]), JSON_VALUES),
        st.fixed_dictionaries(
            {
                "dataset": st.dictionaries(_DATASET_KEYS, JSON_VALUES),
                "tags": st.lists(st.dictionaries(st.sampled_from(["key", "value"]), JSON_VALUES)),
            }
        ),
    )
)
def test_dataset_inputs_decode_or_are_refused(doc: dict[str, Any]) -> None:
    """A request's DatasetInput (log-inputs, runs/import) is read by the codec: any shape
    decodes to strings or is refused, naming where it sits."""
    try:
        item = dataset_input_from_json(doc, "datasets[3]")
    except InvalidParameterValue as error:
        assert "datasets[3]" in error.message  # noqa: PT017 - the message names the item
        return
    texts = [item.dataset.name, item.dataset.digest, item.dataset.source_type, item.dataset.source]
    assert all(isinstance(t, str) for t in texts)
    assert all(isinstance(t.key, str) and isinstance(t.value, str) for t in item.tags)


def test_int64_bounds_are_accepted() -> None:
    fields = (Field("a", "int"), Field("b", "int"))
    assert parse_params(fields, {"a": INT64_MIN, "b": str(INT64_MAX)}) == {
        "a": INT64_MIN,
        "b": INT64_MAX,
    }


# --- Metrics through the codec and a real server -----------------------------------------------

# MLflow's metric names: word characters (unicode ones too), / . - space and colon, written as
# a normalised relative path.
_METRIC_KEYS = st.text(
    alphabet=st.one_of(st.sampled_from("az_/.- :é中ß"), st.characters(categories=["L", "Nd"])),
    min_size=1,
    max_size=20,
).filter(lambda key: posixpath.normpath(key) == key and not key.startswith(("..", "/", ".")))
_METRIC_VALUES = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 5e-324, -0.0, MAX_DOUBLE, -MAX_DOUBLE]),
)
_TIMESTAMPS = st.one_of(st.integers(0, INT64_MAX), st.sampled_from([0, INT64_MAX]))
_STEPS = st.one_of(_INT64, st.sampled_from([INT64_MIN, INT64_MAX, 0]))


@PROPERTY
@given(_METRIC_KEYS, _METRIC_VALUES, _TIMESTAMPS, _STEPS)
def test_metric_round_trips_through_the_codec(
    key: str, value: float, timestamp: int, step: int
) -> None:
    metric = Metric(key, value, timestamp, step)
    wire = orjson.dumps(metric_to_json(metric))  # orjson would write NaN/inf as null: it must not
    doc = orjson.loads(wire)
    if math.isnan(value):
        assert doc["value"] == "NaN"
    elif math.isinf(value):
        assert doc["value"] == ("Infinity" if value > 0 else "-Infinity")
    back = metric_from_json(doc)
    assert (back.key, back.timestamp, back.step) == (key, timestamp, step)
    assert _same(back.value, value)
    assert _same(parse_double(wire_double(value)), value)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A real app on a real SQLite store, one for the module."""
    root: Path = tmp_path_factory.mktemp("decoder-server")
    settings_ = ServerSettings(
        backend_store_uri=f"sqlite:///{root / 'server.db'}",
        artifacts_destination=str(root / "artifacts"),
    )
    with TestClient(create_app(settings_)) as client:
        yield client


API = "/api/2.0/mlflow"


def _stored(value: float) -> float | str:
    """What MLflow's SQL store gives back: NaN as "NaN", ±inf as ±max double, and -0.0 as 0.0
    (SQL compares them equal, so they are one point)."""
    if math.isnan(value):
        return "NaN"
    return max(-MAX_DOUBLE, min(MAX_DOUBLE, value)) + 0.0


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    key=_METRIC_KEYS,
    points=st.lists(
        st.tuples(_METRIC_VALUES, _TIMESTAMPS, _STEPS),
        min_size=1,
        max_size=5,
        unique_by=lambda p: (repr(_stored(p[0])), p[1], p[2]),  # a repeated point is one point
    ),
)
@example(key="ké中", points=[(math.inf, INT64_MAX, INT64_MIN), (math.nan, 0, INT64_MAX)])
def test_metrics_round_trip_through_the_server(
    api: TestClient, key: str, points: list[tuple[float, int, int]]
) -> None:
    run = api.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    metrics = [
        {"key": key, "value": wire_double(v), "timestamp": t, "step": s} for v, t, s in points
    ]
    reply = api.post(f"{API}/runs/log-batch", json={"run_id": run["run_id"], "metrics": metrics})
    assert reply.status_code == 200, reply.text
    history = api.get(
        f"{API}/metrics/get-history", params={"run_id": run["run_id"], "metric_key": key}
    ).json()["metrics"]
    got = sorted((p["timestamp"], p["step"], repr(p["value"])) for p in history)
    want = sorted((t, s, repr(_stored(v))) for v, t, s in points)
    assert got == want
