"""Property-based tests of the search grammar (hypothesis).

* Generated filters for every search API (runs, experiments, logged models, registered models,
  model versions) — keys that need backticks or double quotes, strings with escaped quotes,
  numbers in every notation, LIKE/ILIKE/IN/IS NULL, keywords in any case, AND chains — parse
  back to exactly the comparisons they were written from.
* A generated filter over generated runs selects, in SQL, exactly the runs that a small
  in-Python evaluation of the parsed comparisons selects (MLflow's semantics: NaN, missing
  keys, case-sensitive LIKE, case-insensitive ILIKE, wildcards versus GLOB specials).
* Arbitrary text either parses or raises InvalidParameterValue (InvalidFilter), never another
  exception, in every parser and order-by parser and in the SQL store.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runyard.entities import LoggedModelStatus, Metric, Param, RunTag, ViewType
from runyard.errors import InvalidParameterValue
from runyard.store.search.grammar import (
    Comparison,
    OrderBy,
    _parse_filter,
    _parse_order_by,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from runyard.store.search.logged_model_filter import parse_logged_model_filter
from runyard.store.sql.registry_search import (
    _MODEL_FILTER,
    _MODEL_ORDER,
    _VERSION_FILTER,
    _VERSION_ORDER,
    select_model_versions,
    select_registered_models,
)
from runyard.store.sql.store import SqlTrackingStore
from tests.store.conftest import BACKENDS, fresh_store

# No example database in the working tree; failing examples are printed in full instead.
PROPERTY = settings(max_examples=150, deadline=None, database=None)
STORE = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Rendering pieces of a filter -----------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][\w$]*")
_PLAIN_DOTTED = re.compile(r"[\w$]+(?:\.[\w$]+)*")
_SPACE = st.sampled_from([" ", "  ", "\t", "\n ", " \r\n"])
_KEY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("abcXYZ_09.$-` '\"\\%é中"),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    min_size=1,
    max_size=12,
)


def _quote(text: str, quote: str, draw: Any) -> str:
    """``text`` inside ``quote``; the quote doubled or backslashed, backslashes doubled."""
    escaped_quote = draw(st.sampled_from([quote * 2, "\\" + quote]))
    body = text.replace("\\", "\\\\").replace(quote, escaped_quote)
    return f"{quote}{body}{quote}"


@st.composite
def _keyword(draw: Any, word: str) -> str:
    """A keyword in any mix of upper and lower case."""
    return "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in word)


@st.composite
def _key_part(draw: Any, key: str, after_prefix: bool) -> str:
    """A key as written: bare when the grammar allows it, else backticked or double-quoted."""
    plain = _PLAIN_DOTTED if after_prefix else _PLAIN_KEY
    forms = ["`", '"']
    if plain.fullmatch(key) and key.upper() not in {"AND", "OR", "NOT", "IN", "IS", "NULL"}:
        forms.append("")
    form = draw(st.sampled_from(forms))
    return key if not form else _quote(key, form, draw)


@st.composite
def _identifier(draw: Any, prefixes: list[str], key: str) -> str:
    """``prefix.key`` (the prefix possibly quoted) or the bare key when a prefix may be left
    out (attributes: an empty string in ``prefixes``)."""
    prefix = draw(st.sampled_from(prefixes))
    if not prefix:
        return draw(_key_part(key, after_prefix=False))
    if draw(st.booleans()):
        prefix = f"`{prefix}`"
    return f"{prefix}.{draw(_key_part(key, after_prefix=True))}"


@st.composite
def _string_literal(draw: Any, value: str) -> str:
    # A double-quoted value is read as a one-part name; it then counts as a string.
    return _quote(value, draw(st.sampled_from(["'", '"'])), draw)


_NUMBERS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
)


@st.composite
def _number_literal(draw: Any, integer: bool = False) -> str:
    """A number in one of the notations the grammar reads: ``12``, ``+3.5``, ``-.5``, ``1e-3``,
    ``2.5E+10``, ``7.``."""
    if integer:
        number = draw(st.integers(min_value=-(10**15), max_value=10**15))
        return draw(st.sampled_from([str(number), f"+{number}" if number >= 0 else str(number)]))
    number = draw(_NUMBERS)
    forms = [repr(number), f"{number:e}", f"{number:E}", f"{float(number)!r}"]
    if isinstance(number, int):
        forms.append(f"{number}.")
    text = draw(st.sampled_from(forms))
    if not text.startswith("-") and draw(st.booleans()):
        text = "+" + text
    if draw(st.booleans()):
        text = re.sub(r"^([-+]?)0\.(?=\d)", r"\1.", text)  # 0.5 → .5
    return text


def _as_number(literal: str, as_float: bool) -> int | float:
    if as_float or any(c in literal for c in ".eE"):
        return float(literal)
    return int(literal)


# --- What each search API accepts -------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    """One filterable thing: the prefixes that name its entity, the keys (spelling → canonical
    key; None: any generated key) and its comparators, each with the kind of value it takes."""

    entity: str
    prefixes: tuple[str, ...]
    keys: tuple[tuple[str, str], ...] | None
    ops: tuple[tuple[str, str], ...]


_STRING = (("=", "str"), ("!=", "str"), ("LIKE", "str"), ("ILIKE", "str"))
_LIST = (("IN", "list"), ("NOT IN", "list"))
_NULLS = (("IS NULL", "none"), ("IS NOT NULL", "none"))
_NUMERIC = tuple((op, "num") for op in ("=", "!=", ">", ">=", "<", "<="))
_INTEGER = tuple((op, "int") for op in ("=", "!=", ">", ">=", "<", "<="))
_RUN_ATTR = ("", "attributes", "attribute", "attr", "run")
_METRICS = _Key("metric", ("metric", "metrics"), None, tuple((o, "float") for o, _ in _NUMERIC))
_TAGS = _Key("tag", ("tag", "tags"), None, _STRING + _NULLS)


def _attr(prefixes: tuple[str, ...], keys: dict[str, str], ops: tuple[Any, ...]) -> _Key:
    return _Key("attribute", prefixes, tuple(keys.items()), ops)


RUN_KEYS = [
    _METRICS,
    _Key("param", ("param", "params", "parameter", "parameters"), None, _STRING + _NULLS),
    _TAGS,
    _attr(_RUN_ATTR, {"run_id": "run_id"}, _STRING + _LIST),
    _attr(
        _RUN_ATTR,
        {
            "run_name": "run_name",
            "run name": "run_name",
            "Run name": "run_name",
            "status": "status",
            "user_id": "user_id",
            "artifact_uri": "artifact_uri",
        },
        _STRING,
    ),
    _attr(
        _RUN_ATTR,
        {
            "start_time": "start_time",
            "created": "start_time",
            "Created": "start_time",
            "end_time": "end_time",
        },
        _NUMERIC,
    ),
    _Key(
        "dataset",
        ("dataset", "datasets"),
        (("name", "name"), ("digest", "digest"), ("context", "context")),
        _STRING + _LIST,
    ),
]
EXPERIMENT_ATTRIBUTES = ("name", "experiment_id", "creation_time", "last_update_time")
VERSION_ORDER_ATTRIBUTES = (
    "name",
    "version_number",
    "creation_timestamp",
    "last_updated_timestamp",
)
EXPERIMENT_KEYS = [
    _TAGS,
    _attr(("", "attribute", "attributes"), {"name": "name"}, _STRING),
    _attr(
        ("", "attributes"),
        {"experiment_id": "experiment_id"},
        (("=", "id"), ("!=", "id"), ("IN", "ids"), ("NOT IN", "ids")),
    ),
    _attr(
        ("", "attributes"),
        {"creation_time": "creation_time", "last_update_time": "last_update_time"},
        _INTEGER,
    ),
]
LOGGED_MODEL_KEYS = [
    _METRICS,
    _Key("param", ("param", "params"), None, _STRING + _NULLS),
    _TAGS,
    _attr(
        ("", "attributes"),
        {"name": "name", "model_id": "model_id", "source_run_id": "source_run_id"},
        _STRING + _LIST,
    ),
    _attr(("", "attributes"), {"model_type": "model_type"}, _STRING),
    _attr(
        ("", "attributes"),
        {"status": "status"},
        (("=", "status"), ("!=", "status"), ("IN", "statuses")),
    ),
    _attr(
        ("", "attributes"),
        {
            "creation_timestamp": "creation_timestamp",
            "creation_time": "creation_timestamp",
            "last_updated_timestamp": "last_updated_timestamp",
            "last_updated_timestamp_ms": "last_updated_timestamp",
        },
        _NUMERIC,
    ),
]
MODEL_KEYS = [_TAGS, _attr(("", "attributes"), {"name": "name"}, _STRING + _LIST)]
VERSION_KEYS = [
    _TAGS,
    _attr(("", "attribute"), {"name": "name", "run_id": "run_id"}, _STRING + _LIST),
    _attr(("", "attributes"), {"source_path": "source_path"}, _STRING),
    _attr(("",), {"version_number": "version_number"}, _INTEGER),
]
_STATUSES = [s.name for s in LoggedModelStatus if s.name != "UNSPECIFIED"]


@st.composite
def _value(draw: Any, kind: str) -> tuple[str, Any]:
    """(the value as written, the value the parser must produce)."""
    text = st.text(max_size=10)
    if kind == "str":
        value = draw(text)
        return draw(_string_literal(value)), value
    if kind == "list":
        items = draw(st.lists(text, min_size=1, max_size=4))
        written = [draw(_string_literal(v)) for v in items]
        comma = draw(st.sampled_from([",", " , ", ",\n"]))
        trailing = "," if draw(st.booleans()) else ""
        return f"({comma.join(written)}{trailing})", tuple(items)
    if kind == "none":
        return "", None
    if kind in ("float", "num"):
        literal = draw(_number_literal())
        return literal, _as_number(literal, as_float=kind == "float")
    if kind == "int":
        literal = draw(_number_literal(integer=True))
        return literal, int(literal)
    if kind in ("id", "ids"):
        ids = draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=3))
        if kind == "id":
            return draw(_string_literal(str(ids[0]))), ids[0]
        return "(" + ", ".join(f"'{i}'" for i in ids) + ")", tuple(ids)
    # Logged model statuses: any spelling of a status, compared as its number.
    names = draw(st.lists(st.sampled_from(_STATUSES), min_size=1, max_size=3))
    numbers = tuple(LoggedModelStatus.parse(n).to_int() for n in names)
    spelled = [
        draw(st.sampled_from([n, f"LOGGED_MODEL_{n}", n.lower(), str(number)]))
        for n, number in zip(names, numbers, strict=True)
    ]
    if kind == "status":
        return f"'{spelled[0]}'", numbers[0]
    return "(" + ",".join(f"'{s}'" for s in spelled) + ")", numbers


@st.composite
def _clause(draw: Any, keys: list[_Key]) -> tuple[str, Comparison]:
    spec = draw(st.sampled_from(keys))
    if spec.keys is None:
        spelling = key = draw(_KEY_TEXT)
    else:
        spelling, key = draw(st.sampled_from(spec.keys))
    ident = draw(_identifier(list(spec.prefixes), spelling))
    op, kind = draw(st.sampled_from(spec.ops))
    written_op = " ".join(draw(_keyword(word)) for word in op.split())
    literal, value = draw(_value(kind))
    space = draw(_SPACE)
    needs_space = op[0].isalpha() or literal[:1] in ("-", "+", "=", "<", ">", "!")
    text = f"{ident}{space if needs_space or draw(st.booleans()) else ''}{written_op}"
    if literal:
        text += f"{draw(_SPACE)}{literal}"
    return text, Comparison(spec.entity, key, op, value)  # type: ignore[arg-type]


@st.composite
def _filter(draw: Any, keys: list[_Key]) -> tuple[str, list[Comparison]]:
    clauses = draw(st.lists(_clause(keys), min_size=1, max_size=4))
    joined = clauses[0][0]
    for text, _ in clauses[1:]:
        joined += f"{draw(_SPACE)}{draw(_keyword('AND'))}{draw(_SPACE)}{text}"
    lead, trail = draw(st.sampled_from(["", " ", "\n"])), draw(st.sampled_from(["", " ", "\t"]))
    return lead + joined + trail, [c for _, c in clauses]


def _registry(rules: Any) -> Callable[[str], list[Comparison]]:
    return lambda text: _parse_filter(text, rules)


_API = [
    ("runs", RUN_KEYS, parse_run_filter),
    ("experiments", EXPERIMENT_KEYS, parse_experiment_filter),
    ("logged models", LOGGED_MODEL_KEYS, parse_logged_model_filter),
    ("registered models", MODEL_KEYS, _registry(_MODEL_FILTER)),
    ("model versions", VERSION_KEYS, _registry(_VERSION_FILTER)),
]


@pytest.mark.parametrize(("keys", "parse"), [a[1:] for a in _API], ids=[a[0] for a in _API])
def test_generated_filters_parse_to_what_was_written(
    keys: list[_Key], parse: Callable[[str], list[Comparison]]
) -> None:
    @PROPERTY
    @given(_filter(keys))
    def check(generated: tuple[str, list[Comparison]]) -> None:
        text, expected = generated
        assert parse(text) == expected, text

    check()


# --- Order by -----------------------------------------------------------------------------------

RUN_ORDER_KEYS = [k for k in RUN_KEYS if k.entity != "dataset"]
EXPERIMENT_ORDER_KEYS = [
    _attr(("", "attribute", "attributes"), {k: k for k in EXPERIMENT_ATTRIBUTES}, ())
]
MODEL_ORDER_KEYS = [
    _attr(
        ("", "attributes"),
        {
            "name": "name",
            "timestamp": "last_updated_timestamp",
            "last_updated_timestamp": "last_updated_timestamp",
        },
        (),
    )
]
VERSION_ORDER_KEYS = [_attr(("", "attributes"), {k: k for k in VERSION_ORDER_ATTRIBUTES}, ())]


@st.composite
def _order_entry(draw: Any, keys: list[_Key]) -> tuple[str, OrderBy]:
    """``identifier [ASC|DESC]`` with the direction in any case."""
    spec = draw(st.sampled_from(keys))
    if spec.keys is None:
        spelling = key = draw(_KEY_TEXT)
    else:
        spelling, key = draw(st.sampled_from(spec.keys))
    text = draw(_identifier(list(spec.prefixes), spelling))
    direction = draw(st.sampled_from(["", "ASC", "DESC"]))
    if direction:
        text += draw(_SPACE) + draw(_keyword(direction))
    expected = OrderBy(spec.entity, key, direction != "DESC")  # type: ignore[arg-type]
    return draw(st.sampled_from(["", " "])) + text, expected


_ORDER_API = [
    ("runs", RUN_ORDER_KEYS, parse_run_order_by),
    ("experiments", EXPERIMENT_ORDER_KEYS, parse_experiment_order_by),
    ("registered models", MODEL_ORDER_KEYS, lambda e: _parse_order_by(e, _MODEL_ORDER, True)),
    ("model versions", VERSION_ORDER_KEYS, lambda e: _parse_order_by(e, _VERSION_ORDER, True)),
]


@pytest.mark.parametrize(
    ("keys", "parse"), [a[1:] for a in _ORDER_API], ids=[a[0] for a in _ORDER_API]
)
def test_generated_order_by_parses_to_what_was_written(
    keys: list[_Key], parse: Callable[[list[str]], list[OrderBy]]
) -> None:
    @PROPERTY
    @given(_order_entry(keys))
    def check(generated: tuple[str, OrderBy]) -> None:
        text, expected = generated
        assert parse([text]) == [expected], text

    check()


# --- SQL search versus an in-Python evaluation ------------------------------------------------

_MAX_DOUBLE = 1.7976931348623157e308
_METRIC_KEYS = ["m1", "m.2", "loss rate"]
_METRIC_VALUES = [-1.5, 0.0, 0.5, 2.0, 1e10, math.nan, math.inf, -math.inf]
_METRIC_LITERALS = ["-1.5", "0", "0.5", "2", "1e10", "1E-3", "+3", "-.5", "2.0e0"]
_KV_KEYS = ["p", "lr", "`odd key`"]
# Plain text and the characters LIKE (% _) and GLOB (* ? [) treat specially.
_TEXTS = ["a", "A", "ab", "aB", "a_b", "a%b", "", "x'y", "b\\c", "*?[", "[a]", "Ab c"]
_PATTERNS = ["a%", "%b", "a_", "_", "%", "A%", "%'%", "*", "[a]", "%?%", "a\\%", "%B", "_b%"]
_NAMES = ["alpha", "Alpha", "beta", "al_pha", "alpha%"]
_USERS = ["alice", "bob"]
_STARTS = [0, 100, 200]


@dataclass
class _SeedRun:
    run_name: str
    user_id: str
    start_time: int
    status: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    run_id: str = ""


_SEED_RUN = st.builds(
    _SeedRun,
    run_name=st.sampled_from(_NAMES),
    user_id=st.sampled_from(_USERS),
    start_time=st.sampled_from(_STARTS),
    status=st.sampled_from(["RUNNING", "FINISHED", "FAILED"]),
    metrics=st.dictionaries(st.sampled_from(_METRIC_KEYS), st.sampled_from(_METRIC_VALUES)),
    params=st.dictionaries(st.sampled_from(["p", "lr", "odd key"]), st.sampled_from(_TEXTS)),
    tags=st.dictionaries(st.sampled_from(["p", "lr", "odd key"]), st.sampled_from(_TEXTS)),
)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@st.composite
def _run_clause(draw: Any, run_ids: list[str]) -> str:
    """A clause over the seeded pools, so that filters match some runs and miss others."""
    kind = draw(
        st.sampled_from(
            ["metric", "param", "tag", "name", "user", "status", "start", "run_id", "null"]
        )
    )
    if kind == "metric":
        key = draw(st.sampled_from(_METRIC_KEYS))
        op = draw(st.sampled_from(["=", "!=", ">", ">=", "<", "<="]))
        return f"metrics.`{key}` {op} {draw(st.sampled_from(_METRIC_LITERALS))}"
    if kind in ("param", "tag"):
        key = draw(st.sampled_from(_KV_KEYS))
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "like", "iLike"]))
        pool = _PATTERNS + _TEXTS if op.upper().endswith("LIKE") else _TEXTS
        return f"{kind}s.{key} {op} {_sql_text(draw(st.sampled_from(pool)))}"
    if kind == "null":
        entity = draw(st.sampled_from(["params", "tags"]))
        op = draw(st.sampled_from(["IS NULL", "IS NOT NULL", "is not null"]))
        return f"{entity}.{draw(st.sampled_from(_KV_KEYS))} {op}"
    if kind in ("name", "user", "status"):
        column = {"name": "attributes.run_name", "user": "user_id", "status": "status"}[kind]
        pool = {
            "name": _NAMES + _PATTERNS,
            "user": _USERS + ["ALICE", "a%"],
            "status": ["RUNNING", "FINISHED", "FAILED", "running", "%ED"],
        }[kind]
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
        return f"{column} {op} {_sql_text(draw(st.sampled_from(pool)))}"
    if kind == "start":
        op = draw(st.sampled_from(["=", "!=", ">", ">=", "<", "<="]))
        literal = draw(st.sampled_from(["0", "100", "1e2", "150.5", "200", "-1"]))
        return f"attributes.start_time {op} {literal}"
    chosen = draw(st.lists(st.sampled_from([*run_ids, "nope"]), min_size=1, max_size=3))
    op = draw(st.sampled_from(["IN", "NOT IN"]))
    return f"attributes.run_id {op} ({', '.join(_sql_text(r) for r in chosen)})"


def _like(value: str, pattern: str, case_insensitive: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if case_insensitive else 0)
    return re.fullmatch(regex, value, flags) is not None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op in ("LIKE", "ILIKE"):
        return _like(actual, expected, op == "ILIKE")
    if op == "IN":
        return actual in expected
    if op == "NOT IN":
        return actual not in expected
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return compare[op](actual, expected)


def _matches(run: _SeedRun, clause: Comparison) -> bool:
    """MLflow's meaning of one clause for one run."""
    if clause.entity == "attribute":
        actual = {
            "run_name": run.run_name,
            "user_id": run.user_id,
            "status": run.status,
            "start_time": run.start_time,
            "run_id": run.run_id,
        }[clause.key]
        return _compare(actual, clause.op, clause.value)
    values: dict[str, Any] = {"metric": run.metrics, "param": run.params, "tag": run.tags}[
        clause.entity
    ]
    if clause.op in ("IS NULL", "IS NOT NULL"):
        return (clause.key in values) == (clause.op == "IS NOT NULL")
    if clause.key not in values:
        return False  # a run without the key never matches, not even with !=
    actual = values[clause.key]
    if clause.entity == "metric":
        if math.isnan(actual):
            return clause.op == "!="  # NaN equals nothing, not even itself
        actual = max(-_MAX_DOUBLE, min(_MAX_DOUBLE, actual))  # ±inf are stored clamped
    return _compare(actual, clause.op, clause.value)


@pytest.fixture(scope="module", params=BACKENDS)
def search_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlTrackingStore]:
    """One store for every example (each example seeds an experiment of its own)."""
    store = fresh_store(request.param, tmp_path_factory.mktemp("search-properties"))
    yield store
    store.close()


def _seed(store: SqlTrackingStore, runs: list[_SeedRun]) -> str:
    exp_id = store.create_experiment(f"props-{uuid.uuid4().hex}")
    for seed in runs:
        run = store.create_run(exp_id, seed.user_id, seed.start_time, [], seed.run_name)
        seed.run_id = run.info.run_id
        metrics = [Metric(k, v, 1, 0) for k, v in seed.metrics.items()]
        params = [Param(k, v) for k, v in seed.params.items()]
        tags = [RunTag(k, v) for k, v in seed.tags.items()]
        store.log_batch(seed.run_id, metrics, params, tags)
        if seed.status != "RUNNING":
            store.update_run_info(seed.run_id, seed.status, 1000, None)
    return exp_id


def test_sql_search_agrees_with_python_evaluation(search_store: SqlTrackingStore) -> None:
    outcomes: set[str] = set()

    @STORE
    @given(runs=st.lists(_SEED_RUN, min_size=1, max_size=6), data=st.data())
    def check(runs: list[_SeedRun], data: st.DataObject) -> None:
        exp_id = _seed(search_store, runs)
        ids = [r.run_id for r in runs]
        clauses = data.draw(st.lists(_run_clause(ids), min_size=1, max_size=3), label="clauses")
        text = data.draw(st.sampled_from([" AND ", " and ", "\nAnd "])).join(clauses)
        parsed = parse_run_filter(text)
        expected = {r.run_id for r in runs if all(_matches(r, c) for c in parsed)}
        found = search_store.search_runs([exp_id], text, ViewType.ACTIVE_ONLY, 1000)
        assert {r.info.run_id for r in found} == expected, (text, parsed)
        outcomes.add("none" if not expected else "all" if len(expected) == len(runs) else "some")

    check()
    # The pools are small on purpose: filters must select some runs and miss others.
    assert {"none", "some"} <= outcomes


# --- Arbitrary text -----------------------------------------------------------------------------

_FILTER_ALPHABET = st.sampled_from(
    list("abcmetricsparamstagsattribute_.`'\"\\ ()=!<>,;%-+eE0123456789\t\n")
    + ["AND", " and ", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL", "OR", "1e999", "\x00", "é"]
    # Characters that str.isdigit() accepts and int() refuses.
    + ["²", "١"]
)
_FILTER_TEXT = st.one_of(st.text(max_size=60), st.lists(_FILTER_ALPHABET, max_size=30).map("".join))


@st.composite
def _mangled(draw: Any, valid: st.SearchStrategy[tuple[str, Any]]) -> str:
    """Valid text with a few characters inserted, removed or replaced: text that is close
    enough to parse now and then, so the checks after parsing see odd but accepted input."""
    text, _ = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(_FILTER_ALPHABET)
        if action == "insert":
            text = text[:where] + char + text[where:]
        elif action == "delete":
            text = text[:where] + text[where + 1 :]
        else:
            text = text[:where] + char + text[where + 1 :]
    return text


_PARSERS: list[tuple[str, Callable[[str], Any], st.SearchStrategy[tuple[str, Any]]]] = [
    ("runs", parse_run_filter, _filter(RUN_KEYS)),
    ("experiments", parse_experiment_filter, _filter(EXPERIMENT_KEYS)),
    ("logged models", parse_logged_model_filter, _filter(LOGGED_MODEL_KEYS)),
    ("registered models", lambda t: select_registered_models(t, None, 0, 10), _filter(MODEL_KEYS)),
    ("model versions", lambda t: select_model_versions(t, None, 0, 10), _filter(VERSION_KEYS)),
    ("run order_by", lambda t: parse_run_order_by([t]), _order_entry(RUN_ORDER_KEYS)),
    (
        "experiment order_by",
        lambda t: parse_experiment_order_by([t]),
        _order_entry(EXPERIMENT_ORDER_KEYS),
    ),
    (
        "model order_by",
        lambda t: select_registered_models(None, [t], 0, 10),
        _order_entry(MODEL_ORDER_KEYS),
    ),
    (
        "version order_by",
        lambda t: select_model_versions(None, [t], 0, 10),
        _order_entry(VERSION_ORDER_KEYS),
    ),
]


def _outcome(call: Callable[[], Any]) -> str:
    """``parsed`` or ``refused``; any exception but InvalidParameterValue fails the test."""
    try:
        call()
    except InvalidParameterValue as error:  # InvalidFilter is one
        refused = error
    else:
        return "parsed"
    assert refused.error_code == "INVALID_PARAMETER_VALUE"
    assert refused.message
    return "refused"


@pytest.mark.parametrize(
    ("parse", "valid"), [p[1:] for p in _PARSERS], ids=[p[0] for p in _PARSERS]
)
def test_arbitrary_text_parses_or_is_refused(
    parse: Callable[[str], Any], valid: st.SearchStrategy[tuple[str, Any]]
) -> None:
    outcomes: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.one_of(_FILTER_TEXT, _mangled(valid)))
    def check(text: str) -> None:
        outcomes.add(_outcome(lambda: parse(text)))

    check()
    assert outcomes == {"parsed", "refused"}


def test_store_search_never_fails_otherwise(search_store: SqlTrackingStore) -> None:
    exp_id = search_store.create_experiment(f"arbitrary-{uuid.uuid4().hex}")
    run_id = search_store.create_run(exp_id, "u", 0, [], "r").info.run_id
    search_store.log_batch(run_id, [Metric("m", 1.0, 0, 0)], [Param("p", "v")], [])
    outcomes: set[str] = set()

    @STORE
    @given(
        st.one_of(_FILTER_TEXT, _mangled(_filter(RUN_KEYS))),
        st.lists(st.one_of(_FILTER_TEXT, _mangled(_order_entry(RUN_ORDER_KEYS))), max_size=2),
    )
    def check(text: str, order_by: list[str]) -> None:
        outcomes.add(
            _outcome(lambda: search_store.search_runs([exp_id], text, ViewType.ALL, 10, order_by))
        )
        outcomes.add(
            _outcome(lambda: search_store.search_experiments(ViewType.ALL, 10, text, order_by))
        )

    check()
    assert outcomes == {"parsed", "refused"}
