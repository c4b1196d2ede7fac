"""The search grammar: tokenizer, parser, validation rules, order-by and page tokens."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from runyard.errors import InvalidFilter, InvalidParameterValue
from runyard.store.search import (
    Comparison,
    OrderBy,
    decode_page_token,
    encode_page_token,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from runyard.store.search.grammar import tokenize


def one(filter_string: str) -> Comparison:
    (comparison,) = parse_run_filter(filter_string)
    return comparison


# --- Entities, keys and quoting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metric", "metric"),
        ("metrics", "metric"),
        ("param", "param"),
        ("params", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tag", "tag"),
        ("tags", "tag"),
        ("`params`", "param"),
        ("`tags`", "tag"),
    ],
)
def test_key_value_entity_aliases(prefix: str, entity: str) -> None:
    value = "1" if entity == "metric" else "'1'"
    assert one(f"{prefix}.k = {value}") == Comparison(
        entity,  # type: ignore[arg-type]
        "k",
        "=",
        1.0 if entity == "metric" else "1",
    )


@pytest.mark.parametrize("prefix", ["", "attribute.", "attributes.", "attr.", "run.", "`attr`."])
def test_attribute_aliases_and_no_prefix(prefix: str) -> None:
    assert one(f"{prefix}status = 'FINISHED'") == Comparison("attribute", "status", "=", "FINISHED")


@pytest.mark.parametrize("prefix", ["dataset", "datasets", "`datasets`"])
@pytest.mark.parametrize("key", ["name", "digest", "context"])
def test_dataset_aliases_and_keys(prefix: str, key: str) -> None:
    assert one(f"{prefix}.{key} = 'x'") == Comparison("dataset", key, "=", "x")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tags.`mlflow.runName` = 'a'", "mlflow.runName"),
        ("tags.\"mlflow.runName\" = 'a'", "mlflow.runName"),
        ("tags.mlflow.runName = 'a'", "mlflow.runName"),
        ("`tags`.`mlflow.runName` = 'a'", "mlflow.runName"),
        ("tags.`my key-1` = 'a'", "my key-1"),
        ("tags.\"my key\" = 'a'", "my key"),
        ("tags.`a``b` = 'a'", "a`b"),
        ("tags.k_1 = 'a'", "k_1"),
        ("tags.1k = 'a'", "1k"),
    ],
)
def test_quoted_and_dotted_keys(text: str, key: str) -> None:
    assert one(text) == Comparison("tag", key, "=", "a")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("created > 1", "start_time"),
        ("Created > 1", "start_time"),
        ("attributes.created > 1", "start_time"),
        ("start_time > 1", "start_time"),
        ("end_time > 1", "end_time"),
    ],
)
def test_numeric_attribute_aliases(text: str, key: str) -> None:
    assert one(text) == Comparison("attribute", key, ">", 1)


@pytest.mark.parametrize(
    "identifier",
    ["run_name", "`run name`", "`Run name`", "`Run Name`", '"Run name"', "attributes.`Run Name`"],
)
def test_run_name_aliases(identifier: str) -> None:
    assert one(f"{identifier} = 'x'") == Comparison("attribute", "run_name", "=", "x")


@pytest.mark.parametrize("key", ["run_id", "run_name", "status", "user_id", "artifact_uri"])
def test_string_attributes(key: str) -> None:
    assert one(f"attributes.{key} != 'v'") == Comparison("attribute", key, "!=", "v")


# --- Comparators ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "=", "!="])
@pytest.mark.parametrize("identifier", ["metrics.m", "start_time", "end_time"])
def test_numeric_comparators(op: str, identifier: str) -> None:
    comparison = one(f"{identifier} {op} 5")
    assert comparison.op == op
    assert comparison.value == 5


@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE", "like", "iLike"])
@pytest.mark.parametrize("entity", ["params", "tags", "attributes", "datasets"])
def test_string_comparators(op: str, entity: str) -> None:
    key = "name" if entity == "datasets" else "status" if entity == "attributes" else "k"
    comparison = one(f"{entity}.{key} {op} 'a%'")
    assert comparison.op == op.upper()
    assert comparison.value == "a%"


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("params.p IS NULL", "IS NULL"),
        ("params.p is null", "IS NULL"),
        ("params.p IS NOT NULL", "IS NOT NULL"),
        ("tags.t Is Not Null", "IS NOT NULL"),
        ("tags.`a b` IS NULL", "IS NULL"),
    ],
)
def test_is_null(text: str, op: str) -> None:
    comparison = one(text)
    assert comparison.op == op
    assert comparison.value is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run_id IN ('a')", Comparison("attribute", "run_id", "IN", ("a",))),
        ("run_id in ('a', 'b')", Comparison("attribute", "run_id", "IN", ("a", "b"))),
        (
            "attributes.run_id NOT IN ('a','b',)",
            Comparison("attribute", "run_id", "NOT IN", ("a", "b")),
        ),
        ("run_id not in (\"a\", 'b')", Comparison("attribute", "run_id", "NOT IN", ("a", "b"))),
        ("datasets.name IN ('d1', 'd2')", Comparison("dataset", "name", "IN", ("d1", "d2"))),
        ("datasets.digest NOT IN ('x')", Comparison("dataset", "digest", "NOT IN", ("x",))),
        ("datasets.context IN ('train')", Comparison("dataset", "context", "IN", ("train",))),
    ],
)
def test_in_lists(text: str, expected: Comparison) -> None:
    assert one(text) == expected


@pytest.mark.parametrize("conjunction", ["AND", "and", "And", "aNd"])
def test_and_is_case_insensitive(conjunction: str) -> None:
    parsed = parse_run_filter(
        f"metrics.a > 1 {conjunction} params.b = 'x' {conjunction} tags.c IS NULL"
    )
    assert parsed == [
        Comparison("metric", "a", ">", 1.0),
        Comparison("param", "b", "=", "x"),
        Comparison("tag", "c", "IS NULL", None),
    ]
    assert [c.position for c in parsed] == [0, 15 + len(conjunction), 31 + 2 * len(conjunction)]


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_empty_filter(text: str | None) -> None:
    assert parse_run_filter(text) == []
    assert parse_experiment_filter(text) == []


def test_no_whitespace_needed() -> None:
    assert parse_run_filter("metrics.a>=-1 and params.b='x'") == [
        Comparison("metric", "a", ">=", -1.0),
        Comparison("param", "b", "=", "x"),
    ]


# --- Literals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1.0),
        ("-1", -1.0),
        ("+2", 2.0),
        ("0.5", 0.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("-.5", -0.5),
        ("3.", 3.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-2.5e+2", -250.0),
        ("12345678901234567890", 12345678901234567890.0),
    ],
)
def test_metric_numbers_are_floats(literal: str, value: float) -> None:
    comparison = one(f"metrics.m > {literal}")
    assert comparison.value == value
    assert isinstance(comparison.value, float)


@pytest.mark.parametrize(
    ("literal", "value"),
    [("5", 5), ("-5", -5), ("1700000000000", 1700000000000), ("1.5", 1.5), ("1e3", 1000.0)],
)
def test_numeric_attribute_literals_keep_int_or_float(literal: str, value: float) -> None:
    comparison = one(f"start_time >= {literal}")
    assert comparison.value == value
    assert type(comparison.value) is type(value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ('"double"', "double"),
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'C:\\path\\to'", "C:\\path\\to"),
        ("'back\\\\slash'", "back\\slash"),
        ("'and OR not ( ) ;'", "and OR not ( ) ;"),
        ("''", ""),
        ("'ünïcödé'", "ünïcödé"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert one(f"params.p = {literal}").value == value


def test_tokenizer_positions_and_kinds() -> None:
    tokens = tokenize("metrics.`a b` >= -1.5 AND x IN ('q')")
    assert [(t.kind, t.text, t.pos) for t in tokens] == [
        ("name", "metrics.`a b`", 0),
        ("op", ">=", 14),
        ("number", "-1.5", 17),
        ("keyword", "AND", 22),
        ("name", "x", 26),
        ("keyword", "IN", 28),
        ("punct", "(", 31),
        ("string", "'q'", 32),
        ("punct", ")", 35),
        ("eof", "", 36),
    ]
    assert tokens[0].parts == ("metrics", "a b")
    assert tokens[0].quoted == (False, True)


# --- Errors ---------------------------------------------------------------------------------


def assert_invalid(filter_string: str, *fragments: str) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as info:
        parse_run_filter(filter_string)
    error = info.value
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert error.get_http_status_code() == 400
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("metrics.a > 1 OR metrics.b > 2", ("Invalid clause(s)", "'OR' at position 14")),
        ("metrics.a > 1 or metrics.b > 2", ("Invalid clause(s)", "'or' at position 14")),
        ("(metrics.a > 1)", ("Invalid clause(s)", "'(' at position 0")),
        ("metrics.a > 1 AND (params.b = 'x')", ("'(' at position 18",)),
        ("metrics.a > 1)", ("')' at position 13",)),
        ("NOT params.a = 'x'", ("Invalid clause(s)", "'NOT' at position 0")),
        ("params.a NOT LIKE 'x'", ("'NOT' at position 9", "'LIKE' at position 13")),
        ("params.a = 'x'; params.b = 'y'", ("';' at position 14", "AND-ed")),
        ("params.a = 'x';", ("';' at position 14",)),
        ("metrics.a > 1 metrics.b > 2", ("'metrics.b' at position 14", "AND")),
        ("metrics.a > 1 AND", ("after 'AND'", "end of input at position 17")),
        ("AND metrics.a > 1", ("'AND' at position 0",)),
        ("metrics.a > 1 AND AND metrics.b > 1", ("'AND' at position 18",)),
    ],
)
def test_unsupported_structure(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("params.p = x", ("Expected a quoted string value", "'x' at position 11")),
        ("tags.t != value", ("quoted string", "'value' at position 10")),
        ("status = FINISHED", ("quoted string", "'FINISHED' at position 9")),
        ("params.p = `x`", ("quoted string", "`x` at position 11")),
        ("params.p = 1", ("quoted string", "'1' at position 11")),
        ("datasets.name = 5", ("quoted string", "'5' at position 16")),
        ("run_id IN (1, 2)", ("quoted string", "'1' at position 11")),
    ],
)
def test_unquoted_strings_for_string_keys(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("metrics.m = 'x'", ("Expected numeric value", "'x' at position 12")),
        ("metrics.m > abc", ("Expected numeric value", "'abc' at position 12")),
        ("start_time > '5'", ("Expected numeric value", "'5' at position 13")),
        ("metrics.m > 1.5.3", ("malformed number '1.5.3' at position 12",)),
        ("metrics.m > 1abc", ("malformed number '1abc' at position 12",)),
    ],
)
def test_non_numeric_values(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "metrics.m IS NULL",
            ("only supported for tags and params", "'metric' 'm'", "position 10"),
        ),
        ("metrics.m IS NOT NULL", ("only supported for tags and params",)),
        ("status IS NULL", ("only supported for tags and params", "'attribute' 'status'")),
        ("end_time IS NOT NULL", ("only supported for tags and params",)),
        ("datasets.name IS NULL", ("only supported for tags and params",)),
        ("params.p IS 'x'", ("expected NULL after 'IS'", "'x' at position 12")),
    ],
)
def test_is_null_only_for_params_and_tags(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("metrics.m LIKE 'x'", ("Invalid comparator 'LIKE'", "metric 'm'", "position 10")),
        ("metrics.m IN ('x')", ("Invalid comparator 'IN'",)),
        ("params.p > 'x'", ("Invalid comparator '>'", "param 'p'", "position 9")),
        ("tags.t <= 'x'", ("Invalid comparator '<='",)),
        ("params.p IN ('x')", ("Invalid comparator 'IN'",)),
        ("params.p <> 'x'", ("Invalid comparator '<>'",)),
        ("params.p == 'x'", ("Invalid comparator '=='",)),
        ("start_time LIKE '1%'", ("Invalid comparator 'LIKE'", "attribute 'start_time'")),
        ("status > 'A'", ("Invalid comparator '>'",)),
        ("datasets.name > 'a'", ("Invalid comparator '>'",)),
        ("status IN ('A')", ("Only ['run_id'] attributes support", "'IN' for 'status'")),
        ("run_name NOT IN ('A')", ("Only ['run_id']", "position 9")),
    ],
)
def test_bad_comparator_for_entity(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("metricz.m > 1", ("Invalid entity type 'metricz'", "'metricz.m' at position 0")),
        ("mlflow.runName = 'x'", ("Invalid entity type 'mlflow'",)),
        ("foo = 'x'", ("Invalid attribute key 'foo'", "'foo' at position 0")),
        ("attributes.lifecycle_stage = 'x'", ("Invalid attribute key 'lifecycle_stage'",)),
        ("`tags.x` = 'a'", ("Invalid attribute key 'tags.x'",)),
        ("datasets.schema = 'x'", ("Invalid dataset key 'schema'",)),
        ("run_id IN ()", ("non-empty list", "')' at position 11")),
        ("run_id IN 'a'", ("expected '('", "'a' at position 10")),
        ("run_id IN ('a' 'b')", ("expected ',' or ')'", "'b' at position 15")),
        ("run_id IN ('a',", ("non-empty list", "end of input")),
        ("params.p = ('a')", ("'(' at position 11", "only allowed after IN")),
        ("params.p = 'abc", ("unterminated quoted text starting at position 11",)),
        ("tags.`abc = 'x'", ("unterminated quoted text starting at position 5",)),
        ("params.p = 'a' # x", ("unexpected character '#' at position 15",)),
        ("params. = 'a'", ("expected a key after 'params.'", "position 7")),
        ("params.p 'a'", ("expected a comparator", "'a' at position 9")),
        ("params.p =", ("expected a value after '='", "end of input at position 10")),
        ("params.p = AND", ("expected a value", "'AND' at position 11")),
        ("'x' = 'y'", ("Invalid clause(s)", "'x' at position 0")),
        ("= 'y'", ("Invalid clause(s)", "'=' at position 0")),
    ],
)
def test_malformed_filters(text: str, fragments: tuple[str, ...]) -> None:
    assert_invalid(text, *fragments)


def test_invalid_filter_is_an_invalid_parameter_value() -> None:
    with pytest.raises(InvalidParameterValue):
        parse_run_filter("metrics.a > 1 OR metrics.b > 1")


# --- Experiment filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'a'", Comparison("attribute", "name", "=", "a")),
        ("attribute.name LIKE 'a%'", Comparison("attribute", "name", "LIKE", "a%")),
        ("attributes.name ILIKE 'A%'", Comparison("attribute", "name", "ILIKE", "A%")),
        ("name != 'a'", Comparison("attribute", "name", "!=", "a")),
        ("experiment_id = '3'", Comparison("attribute", "experiment_id", "=", 3)),
        ("experiment_id != '0'", Comparison("attribute", "experiment_id", "!=", 0)),
        ("experiment_id IN ('1', '2')", Comparison("attribute", "experiment_id", "IN", (1, 2))),
        ("experiment_id NOT IN ('1')", Comparison("attribute", "experiment_id", "NOT IN", (1,))),
        ("creation_time > 100", Comparison("attribute", "creation_time", ">", 100)),
        ("last_update_time <= -1", Comparison("attribute", "last_update_time", "<=", -1)),
        ("tags.team = 'ml'", Comparison("tag", "team", "=", "ml")),
        ("tag.`a.b` LIKE '%x'", Comparison("tag", "a.b", "LIKE", "%x")),
        ("tags.team IS NULL", Comparison("tag", "team", "IS NULL", None)),
        ("tags.team IS NOT NULL", Comparison("tag", "team", "IS NOT NULL", None)),
    ],
)
def test_experiment_filters(text: str, expected: Comparison) -> None:
    assert parse_experiment_filter(text) == [expected]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("params.p = 'x'", ("Invalid entity type 'params'",)),
        ("metrics.m > 1", ("Invalid entity type 'metrics'",)),
        ("run_id = 'x'", ("Invalid attribute key 'run_id'",)),
        ("experiment_id = 'abc'", ("Invalid experiment ID 'abc'", "position 16")),
        ("experiment_id IN ('1', 'x')", ("Invalid experiment ID 'x'", "position 23")),
        ("experiment_id = 1", ("quoted string", "'1' at position 16")),
        ("experiment_id > '1'", ("Invalid comparator '>'",)),
        ("experiment_id LIKE '1%'", ("Invalid comparator 'LIKE'",)),
        ("name IN ('a')", ("Only ['experiment_id'] attributes",)),
        ("creation_time > 1.5", ("expected an integer", "'1.5' at position 16")),
        ("creation_time > '1'", ("Expected numeric value",)),
        ("name IS NULL", ("only supported for tags and params",)),
        ("tags.t > 'x'", ("Invalid comparator '>'",)),
        ("name = 'a' OR name = 'b'", ("'OR' at position 11",)),
    ],
)
def test_experiment_filter_errors(text: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_experiment_filter(text)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


# --- Order by -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("metrics.acc", OrderBy("metric", "acc", True)),
        ("metrics.acc DESC", OrderBy("metric", "acc", False)),
        ("metric.acc desc", OrderBy("metric", "acc", False)),
        ("metrics.`val acc` Asc", OrderBy("metric", "val acc", True)),
        ('metrics."val acc" DESC', OrderBy("metric", "val acc", False)),
        ("params.lr ASC", OrderBy("param", "lr", True)),
        ("parameters.lr", OrderBy("param", "lr", True)),
        ("tags.`mlflow.runName` DESC", OrderBy("tag", "mlflow.runName", False)),
        ("tags.mlflow.runName", OrderBy("tag", "mlflow.runName", True)),
        ("start_time", OrderBy("attribute", "start_time", True)),
        ("created DESC", OrderBy("attribute", "start_time", False)),
        ("attributes.end_time", OrderBy("attribute", "end_time", True)),
        ("attr.run_id", OrderBy("attribute", "run_id", True)),
        ("run_name DESC", OrderBy("attribute", "run_name", False)),
        ("status", OrderBy("attribute", "status", True)),
        ("user_id", OrderBy("attribute", "user_id", True)),
        ("artifact_uri", OrderBy("attribute", "artifact_uri", True)),
        ("  metrics.acc   DESC  ", OrderBy("metric", "acc", False)),
    ],
)
def test_run_order_by(entry: str, expected: OrderBy) -> None:
    assert parse_run_order_by([entry]) == [expected]


def test_run_order_by_keeps_order_and_accepts_none() -> None:
    assert parse_run_order_by(None) == []
    assert parse_run_order_by([]) == []
    assert parse_run_order_by(["params.a", "metrics.b DESC", "start_time"]) == [
        OrderBy("param", "a"),
        OrderBy("metric", "b", False),
        OrderBy("attribute", "start_time"),
    ]


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [
        (["metrics.acc DESCENDING"], ("Invalid ordering key", "'DESCENDING' at position 12")),
        (["metrics.acc up"], ("Invalid ordering key", "'up' at position 12")),
        (["metrics.acc 'DESC'"], ("Invalid ordering key", "'DESC' at position 12")),
        (["metrics.acc `DESC`"], ("Invalid ordering key", "`DESC` at position 12")),
        (["metrics.acc DESC LIMIT"], ("Could not be parsed", "'LIMIT' at position 17")),
        (["metrics.acc DESC, params.b"], ("Could not be parsed", "',' at position 16")),
        ([""], ("Invalid order_by clause ''", "end of input at position 0")),
        (["DESC metrics.a"], ("Invalid ordering key", "'metrics.a' at position 5")),
        (["'metrics.a'"], ("Could not be parsed", "found 'metrics.a' at position 0")),
        (["metrics.`a"], ("Could not be parsed", "unterminated")),
        (["datasets.name"], ("Invalid order_by entity 'dataset'",)),
        (["foo"], ("Invalid attribute key 'foo'",)),
        (["attributes.lifecycle_stage"], ("Invalid attribute key 'lifecycle_stage'",)),
        (["metricz.a"], ("Invalid entity type 'metricz'",)),
        (["metrics.a", "metrics.a DESC"], ("duplicate fields", "order_by[1]", "order_by[0]")),
        (["created", "start_time DESC"], ("duplicate fields", "'start_time DESC'")),
        (["params.x", "tags.y", "`params`.x"], ("duplicate fields", "order_by[2]")),
    ],
)
def test_run_order_by_errors(entries: list[str], fragments: tuple[str, ...]) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_run_order_by(entries)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


def test_same_key_under_different_entities_is_not_a_duplicate() -> None:
    assert len(parse_run_order_by(["metrics.x", "params.x", "tags.x"])) == 3


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("name", OrderBy("attribute", "name", True)),
        ("name DESC", OrderBy("attribute", "name", False)),
        ("attribute.experiment_id asc", OrderBy("attribute", "experiment_id", True)),
        ("creation_time DESC", OrderBy("attribute", "creation_time", False)),
        ("last_update_time", OrderBy("attribute", "last_update_time", True)),
    ],
)
def test_experiment_order_by(entry: str, expected: OrderBy) -> None:
    assert parse_experiment_order_by([entry]) == [expected]


def test_experiment_order_by_allows_repeats_like_mlflow() -> None:
    assert len(parse_experiment_order_by(["name", "name DESC"])) == 2


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("tags.team", "Invalid order_by entity 'tag'"),
        ("run_id", "Invalid attribute key 'run_id'"),
        ("name sideways", "Invalid ordering key"),
        ("metrics.m", "Invalid entity type 'metrics'"),
    ],
)
def test_experiment_order_by_errors(entry: str, fragment: str) -> None:
    with pytest.raises(InvalidFilter, match=fragment.replace("(", r"\(")):
        parse_experiment_order_by([entry])


# --- Page tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "token"),
    [(1, "eyJvZmZzZXQiOiAxfQ=="), (100, "eyJvZmZzZXQiOiAxMDB9"), (0, "eyJvZmZzZXQiOiAwfQ==")],
)
def test_page_token_matches_mlflow_bytes(offset: int, token: str) -> None:
    assert encode_page_token(offset) == token
    assert decode_page_token(token) == offset


@pytest.mark.parametrize("offset", [1, 7, 1000, 50000, 10**12])
def test_page_token_round_trip(offset: int) -> None:
    assert decode_page_token(encode_page_token(offset)) == offset
    assert decode_page_token(encode_page_token(offset).encode()) == offset


@pytest.mark.parametrize("token", [None, "", b""])
def test_missing_page_token_means_start(token: str | bytes | None) -> None:
    assert decode_page_token(token) == 0


def test_page_token_with_string_offset_is_accepted_like_mlflow() -> None:
    assert decode_page_token(base64.b64encode(b'{"offset": "12"}').decode()) == 12


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("!!!", "Invalid page token, could not base64-decode"),
        ("not a token", "Invalid page token, could not base64-decode"),
        ("abc", "Invalid page token, could not base64-decode"),
        ("eyJvZmZzZXQiOiAxfQ", "Invalid page token, could not base64-decode"),
        ("YWJj", "Invalid page token, decoded value=b'abc'"),
        (base64.b64encode(b"\xff\xfe").decode(), "Invalid page token, decoded value=b'\\xff\\xfe'"),
        (base64.b64encode(b"[1]").decode(), "Invalid page token, parsed value=[1]"),
        (base64.b64encode(b'{"x": 1}').decode(), "Invalid page token, parsed value={'x': 1}"),
        (
            base64.b64encode(b'{"offset": -1}').decode(),
            "Invalid page token, parsed value={'offset': -1}",
        ),
        (
            base64.b64encode(b'{"offset": 1.5}').decode(),
            "Invalid page token, parsed value={'offset': 1.5}",
        ),
        (
            base64.b64encode(b'{"offset": true}').decode(),
            "Invalid page token, parsed value={'offset': True}",
        ),
        (
            base64.b64encode(b'{"offset": "x"}').decode(),
            "Invalid page token, parsed value={'offset': 'x'}",
        ),
    ],
)
def test_garbage_page_tokens(token: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        decode_page_token(token)
    assert info.value.message == message
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("offset", [-1, 1.5, True, "3"])
def test_encode_rejects_non_offsets(offset: object) -> None:
    with pytest.raises(InvalidParameterValue):
        encode_page_token(offset)  # type: ignore[arg-type]


# --- Layering -------------------------------------------------------------------------------


def test_search_layer_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, runyard.store.search, runyard.store.search.grammar, "
        "runyard.store.search.paging; print('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
