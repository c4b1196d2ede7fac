"""MLflow's search grammar: a tokenizer, a recursive-descent parser and a small AST.

A filter is ``clause (AND clause)*`` where a clause is
``identifier comparator value`` or ``identifier IS [NOT] NULL``, and an identifier is
``[entity.]key``. Keys (and the entity prefix) may be wrapped in backticks or double quotes;
an unquoted key may itself contain dots (``tags.mlflow.runName``), because only the first dot
separates the entity. An order-by entry is ``identifier [ASC|DESC]``.

The parser checks everything it can without a database: entity aliases, attribute keys,
which comparators each entity allows and the type of each value. What reaches the SQL layer
is therefore already valid, and every error is an :class:`~runyard.errors.InvalidFilter` whose
message names the offending token and its position in the input.

This module deliberately knows nothing of SQL or SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from runyard.errors import InvalidFilter

__all__ = [
    "Comparison",
    "Entity",
    "OrderBy",
    "Token",
    "Value",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_run_filter",
    "parse_run_order_by",
    "tokenize",
]

Entity = Literal["metric", "param", "tag", "attribute", "dataset"]
TokenKind = Literal["name", "string", "number", "op", "keyword", "punct", "eof"]
Value = str | int | float | tuple[str, ...] | tuple[int, ...] | None

# --- AST ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One ``AND``-ed clause of a filter, with the entity and key already normalised.

    Attributes:
        entity: ``metric``, ``param``, ``tag``, ``attribute`` or ``dataset`` (aliases resolved).
        key: The metric/param/tag key, or the canonical attribute name (``created`` becomes
            ``start_time``, ``Run name`` becomes ``run_name``).
        op: Upper-case comparator: ``= != > >= < <= LIKE ILIKE IN NOT IN IS NULL IS NOT NULL``.
        value: A string, a number (float for metrics), a tuple for ``IN`` lists, ``None`` for
            ``IS [NOT] NULL``. Experiment ids are already integers.
        position: Offset of the clause in the filter string (not part of equality).
    """

    entity: Entity
    key: str
    op: str
    value: Value
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class OrderBy:
    """One order-by entry: sort by ``entity.key``, ascending unless ``DESC`` was given."""

    entity: Entity
    key: str
    ascending: bool = True


# --- Tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A lexical token.

    Attributes:
        kind: ``name`` (a possibly dotted identifier), ``string``, ``number``, ``op``
            (comparison operator), ``keyword`` (AND, OR, NOT, IN, IS, NULL, LIKE, ILIKE),
            ``punct`` (``( ) , ;``) or ``eof``.
        text: The token exactly as written in the input.
        pos: Zero-based offset of the token in the input.
        parts: For names, the dot-separated parts with their quotes removed.
        quoted: For names, whether each part was quoted (backticks or double quotes).
        value: The unescaped string, the int/float, or the upper-case keyword/operator.
    """

    kind: TokenKind
    text: str
    pos: int
    parts: tuple[str, ...] = ()
    quoted: tuple[bool, ...] = ()
    value: str | int | float | None = None

    def describe(self) -> str:
        """The token for an error message: its text and where it starts."""
        if self.kind == "eof":
            return f"end of input at position {self.pos}"
        # Quoted tokens already show their quotes; do not wrap them in a second pair.
        shown = self.text if self.text[0] in "'\"`" else f"'{self.text}'"
        return f"{shown} at position {self.pos}"


_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE"})
_OPERATORS = ("!=", "<>", "==", ">=", "<=", "=", "<", ">")
_WHITESPACE = re.compile(r"\s+")
# A number must not run straight into a word (``1abc``); that is almost always a typo.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_MALFORMED_NUMBER = re.compile(r"[\w.+-]+")
_FIRST_WORD = re.compile(r"[A-Za-z_][\w$]*")
# After a dot a key part may start with a digit (``metrics.1m`` works in MLflow).
_NEXT_WORD = re.compile(r"[\w$]+")


def tokenize(text: str) -> list[Token]:
    """Split a filter or order-by string into tokens, ending with an ``eof`` token.

    Raises:
        InvalidFilter: On an unterminated quote or a character the grammar does not use.
    """
    tokens: list[Token] = []
    pos = 0
    while True:
        space = _WHITESPACE.match(text, pos)
        if space:
            pos = space.end()
        if pos >= len(text):
            tokens.append(Token("eof", "", pos))
            return tokens
        token = _next_token(text, pos)
        tokens.append(token)
        pos += len(token.text)


def _next_token(text: str, pos: int) -> Token:
    char = text[pos]
    if char == "'":
        value, end = _read_quoted(text, pos)
        return Token("string", text[pos:end], pos, value=value)
    if char in '`"' or _FIRST_WORD.match(text, pos):
        return _read_name(text, pos)
    number = _NUMBER.match(text, pos)
    if number:
        literal = number.group()
        is_int = not any(c in literal for c in ".eE")
        return Token("number", literal, pos, value=int(literal) if is_int else float(literal))
    for op in _OPERATORS:
        if text.startswith(op, pos):
            return Token("op", op, pos, value=op)
    if char in "(),;":
        return Token("punct", char, pos, value=char)
    if char in "0123456789.+-":
        bad = _MALFORMED_NUMBER.match(text, pos)
        literal = bad.group() if bad else char
        raise InvalidFilter(
            f"Invalid filter string: malformed number '{literal}' at position {pos}"
        )
    raise InvalidFilter(f"Invalid filter string: unexpected character '{char}' at position {pos}")


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted run starting at ``pos``; return (unescaped content, end offset).

    A doubled quote or a backslash before the quote stands for the quote itself, and ``\\\\``
    for one backslash; any other backslash is kept, so Windows paths need no escaping.
    """
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
        elif char == quote and text.startswith(quote * 2, i):
            out.append(quote)
            i += 2
        elif char == quote:
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise InvalidFilter(
        f"Invalid filter string: unterminated quoted text starting at position {pos}: {text[pos:]}"
    )


def _read_name(text: str, pos: int) -> Token:
    """Read ``part(.part)*`` where a part is a word, a `backticked` or a "double-quoted" run."""
    parts: list[str] = []
    quoted: list[bool] = []
    i = pos
    while True:
        if i < len(text) and text[i] in '`"':
            value, i = _read_quoted(text, i)
            parts.append(value)
            quoted.append(True)
        else:
            word = (_NEXT_WORD if parts else _FIRST_WORD).match(text, i)
            if word is None:
                raise InvalidFilter(
                    f"Invalid filter string: expected a key after '{text[pos:i]}' at position {i}"
                )
            parts.append(word.group())
            quoted.append(False)
            i = word.end()
        if not text.startswith(".", i):
            break
        i += 1
    source = text[pos:i]
    if len(parts) == 1 and not quoted[0] and parts[0].upper() in _KEYWORDS:
        return Token("keyword", source, pos, value=parts[0].upper())
    return Token("name", source, pos, parts=tuple(parts), quoted=tuple(quoted))


# --- Raw clauses (syntax only) --------------------------------------------------------------


@dataclass(frozen=True)
class _RawClause:
    """A clause as written, before the entity/key/value rules are applied."""

    ident: Token
    op: str
    op_token: Token
    value: Token | tuple[Token, ...] | None


class _Parser:
    """Recursive descent over the token list of one filter string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def is_keyword(self, token: Token, *words: str) -> bool:
        return token.kind == "keyword" and token.value in words

    def parse_filter(self) -> list[_RawClause]:
        """``filter := ε | clause (AND clause)* EOF``."""
        if self.peek().kind == "eof":
            return []
        clauses = [self.parse_clause()]
        while self.is_keyword(self.peek(), "AND"):
            self.advance()
            if self.peek().kind == "eof":
                raise InvalidFilter(
                    f"Invalid filter string: expected a clause after 'AND', found "
                    f"{self.peek().describe()}"
                )
            clauses.append(self.parse_clause())
        token = self.peek()
        if token.kind != "eof":
            raise _invalid_clause(token)
        return clauses

    def parse_clause(self) -> _RawClause:
        """``clause := name comparator [value | list]``."""
        ident = self.advance()
        if ident.kind != "name":
            raise _invalid_clause(ident)
        op_token = self.advance()
        op = self.parse_comparator(op_token)
        if op in ("IS NULL", "IS NOT NULL"):
            return _RawClause(ident, op, op_token, None)
        if op in ("IN", "NOT IN"):
            return _RawClause(ident, op, op_token, self.parse_list())
        value = self.advance()
        if value.kind == "punct" and value.text == "(":
            raise InvalidFilter(
                f"Invalid clause(s) in filter string: {value.describe()} (a parenthesized list "
                f"is only allowed after IN or NOT IN, not after '{op_token.text}')"
            )
        if value.kind in ("eof", "keyword", "punct", "op"):
            raise InvalidFilter(
                f"Invalid comparison clause: expected a value after '{op_token.text}', "
                f"found {value.describe()}"
            )
        return _RawClause(ident, op, op_token, value)

    def parse_comparator(self, token: Token) -> str:
        """``comparator := op | LIKE | ILIKE | IN | NOT IN | IS [NOT] NULL``."""
        if token.kind == "op" or self.is_keyword(token, "LIKE", "ILIKE", "IN"):
            return str(token.value)
        if self.is_keyword(token, "NOT"):
            follower = self.advance()
            if self.is_keyword(follower, "IN"):
                return "NOT IN"
            raise InvalidFilter(
                f"Invalid clause(s) in filter string: 'NOT' at position {token.pos} "
                f"(only NOT IN is supported), found {follower.describe()}"
            )
        if self.is_keyword(token, "IS"):
            follower = self.advance()
            negated = self.is_keyword(follower, "NOT")
            if negated:
                follower = self.advance()
            if self.is_keyword(follower, "NULL"):
                return "IS NOT NULL" if negated else "IS NULL"
            raise InvalidFilter(
                f"Invalid comparison clause: expected NULL after 'IS', found {follower.describe()}"
            )
        raise InvalidFilter(
            f"Invalid comparison clause: expected a comparator, found {token.describe()}"
        )

    def parse_list(self) -> tuple[Token, ...]:
        """``list := '(' value (',' value)* [','] ')'``; MLflow allows a trailing comma."""
        opener = self.advance()
        if opener.text != "(" or opener.kind != "punct":
            raise InvalidFilter(
                "While parsing a list in the query, expected '(' followed by a non-empty list "
                f"of string values, found {opener.describe()}"
            )
        items: list[Token] = []
        while True:
            token = self.advance()
            if token.kind == "punct" and token.text == ")" and items:
                return tuple(items)
            if token.kind not in ("string", "number", "name"):
                raise InvalidFilter(
                    "While parsing a list in the query, expected a non-empty list of string "
                    f"values, found {token.describe()}"
                )
            items.append(token)
            separator = self.advance()
            if separator.kind == "punct" and separator.text == ")":
                return tuple(items)
            if not (separator.kind == "punct" and separator.text == ","):
                raise InvalidFilter(
                    "While parsing a list in the query, expected ',' or ')', found "
                    f"{separator.describe()}"
                )


def _invalid_clause(token: Token) -> InvalidFilter:
    hint = ""
    if token.text == ";":
        hint = " (a filter is one statement: provide an AND-ed expression list)"
    elif token.kind == "keyword" and token.value == "OR":
        hint = " (only AND is supported)"
    elif token.text in ("(", ")"):
        hint = " (parentheses are only allowed around an IN list)"
    elif token.kind == "name":
        hint = " (clauses must be joined with AND)"
    return InvalidFilter(f"Invalid clause(s) in filter string: {token.describe()}{hint}")


# --- Identifier and value rules -------------------------------------------------------------

_ENTITY_ALIASES: dict[str, Entity] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
_EXPERIMENT_ENTITY_ALIASES: dict[str, Entity] = {
    "attribute": "attribute",
    "attributes": "attribute",
    "tag": "tag",
    "tags": "tag",
}
_NUMERIC_OPS = frozenset({">", ">=", "<", "<=", "=", "!="})
_KEY_VALUE_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LIST_OPS = frozenset({"IN", "NOT IN"})
_ID_OPS = frozenset({"=", "!=", "IN", "NOT IN"})


@dataclass(frozen=True)
class _Rules:
    """What one search API accepts: entities, attribute keys and their comparators.

    ``attributes`` maps every accepted spelling of an attribute to its canonical name;
    ``attribute_ops`` gives the comparators of each canonical attribute.
    """

    name: str
    entities: Mapping[str, Entity]
    attributes: Mapping[str, str]
    attribute_ops: Mapping[str, frozenset[str]]
    numeric_attributes: frozenset[str]
    orderable_entities: frozenset[Entity]
    integer_ids: frozenset[str] = frozenset()
    integer_numbers: bool = False


_RUN_RULES = _Rules(
    name="runs",
    entities=_ENTITY_ALIASES,
    attributes={
        "run_id": "run_id",
        "run_name": "run_name",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
        "status": "status",
        "user_id": "user_id",
        "artifact_uri": "artifact_uri",
        "start_time": "start_time",
        "created": "start_time",
        "Created": "start_time",
        "end_time": "end_time",
    },
    attribute_ops={
        "run_id": _STRING_OPS | _LIST_OPS,
        "run_name": _STRING_OPS,
        "status": _STRING_OPS,
        "user_id": _STRING_OPS,
        "artifact_uri": _STRING_OPS,
        "start_time": _NUMERIC_OPS,
        "end_time": _NUMERIC_OPS,
    },
    numeric_attributes=frozenset({"start_time", "end_time"}),
    orderable_entities=frozenset({"metric", "param", "tag", "attribute"}),
)

_EXPERIMENT_RULES = _Rules(
    name="experiments",
    entities=_EXPERIMENT_ENTITY_ALIASES,
    attributes={k: k for k in ("name", "experiment_id", "creation_time", "last_update_time")},
    attribute_ops={
        "name": _STRING_OPS,
        "experiment_id": _ID_OPS,
        "creation_time": _NUMERIC_OPS,
        "last_update_time": _NUMERIC_OPS,
    },
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
    orderable_entities=frozenset({"attribute"}),
    integer_ids=frozenset({"experiment_id"}),
    integer_numbers=True,
)

_DATASET_KEYS = ("name", "digest", "context")


def _resolve_identifier(token: Token, rules: _Rules) -> tuple[Entity, str]:
    """Split ``[entity.]key`` and normalise both; unknown entities or attributes raise."""
    if len(token.parts) == 1:
        entity: Entity = "attribute"
        key = token.parts[0]
    else:
        prefix = token.parts[0]
        key = ".".join(token.parts[1:])
        if prefix not in rules.entities:
            valid = sorted(set(rules.entities))
            raise InvalidFilter(
                f"Invalid entity type '{prefix}' in {token.describe()}. Valid values are {valid}"
            )
        entity = rules.entities[prefix]
    if entity == "attribute":
        if key not in rules.attributes:
            valid = sorted(set(rules.attributes.values()))
            raise InvalidFilter(
                f"Invalid attribute key '{key}' in {token.describe()}. Valid keys are {valid}"
            )
        key = rules.attributes[key]
    elif entity == "dataset" and key not in _DATASET_KEYS:
        raise InvalidFilter(
            f"Invalid dataset key '{key}' in {token.describe()}. "
            f"Valid keys are {list(_DATASET_KEYS)}"
        )
    return entity, key


def _allowed_ops(entity: Entity, key: str, rules: _Rules) -> frozenset[str]:
    if entity == "metric":
        return _NUMERIC_OPS
    if entity in ("param", "tag"):
        return _KEY_VALUE_OPS
    if entity == "dataset":
        return _STRING_OPS | _LIST_OPS
    return rules.attribute_ops[key]


def _check_op(clause: _RawClause, entity: Entity, key: str, rules: _Rules) -> None:
    allowed = _allowed_ops(entity, key, rules)
    if clause.op in allowed:
        return
    if clause.op in ("IS NULL", "IS NOT NULL"):
        raise InvalidFilter(
            "IS NULL / IS NOT NULL is only supported for tags and params, not for "
            f"'{entity}' '{key}' (at position {clause.op_token.pos})"
        )
    if clause.op in _LIST_OPS and entity == "attribute":
        listable = sorted(k for k, ops in rules.attribute_ops.items() if ops & _LIST_OPS)
        raise InvalidFilter(
            f"Only {listable} attributes support comparison with a list of quoted string "
            f"values; found '{clause.op}' for '{key}' at position {clause.op_token.pos}"
        )
    raise InvalidFilter(
        f"Invalid comparator '{clause.op}' for {entity} '{key}' at position "
        f"{clause.op_token.pos}. Valid comparators are {sorted(allowed)}"
    )


def _string_value(token: Token, entity: Entity, key: str) -> str:
    """A quoted string: 'single' or "double" quotes (a lone double-quoted name counts)."""
    if token.kind == "string":
        return str(token.value)
    if token.kind == "name" and token.quoted == (True,) and token.text.startswith('"'):
        return token.parts[0]
    raise InvalidFilter(
        f"Expected a quoted string value for {entity} '{key}' (e.g. 'my-value'). "
        f"Got value {token.describe()}"
    )


def _number_value(token: Token, entity: Entity, key: str, integer: bool) -> int | float:
    if token.kind != "number" or not isinstance(token.value, int | float):
        raise InvalidFilter(
            f"Expected numeric value type for {entity} '{key}'. Found {token.describe()}"
        )
    if integer and not isinstance(token.value, int):
        raise InvalidFilter(
            f"Invalid value for numeric attribute '{key}': expected an integer, found "
            f"{token.describe()}"
        )
    return float(token.value) if entity == "metric" else token.value


def _integer_id(token: Token, key: str) -> int:
    """Experiment ids travel as quoted strings of digits; the column is an integer."""
    text = _string_value(token, "attribute", key)
    try:
        return int(text)
    except ValueError:
        raise InvalidFilter(
            f"Invalid experiment ID '{text}' at position {token.pos}. "
            "Experiment ID must be a valid integer."
        ) from None


def _value(clause: _RawClause, entity: Entity, key: str, rules: _Rules) -> Value:
    """Check and convert the value side of a clause whose comparator is already valid."""
    raw = clause.value
    if raw is None:
        return None
    if isinstance(raw, tuple):
        if key in rules.integer_ids:
            return tuple(_integer_id(item, key) for item in raw)
        return tuple(_string_value(item, entity, key) for item in raw)
    if entity == "metric" or (entity == "attribute" and key in rules.numeric_attributes):
        return _number_value(raw, entity, key, rules.integer_numbers and entity == "attribute")
    if key in rules.integer_ids and entity == "attribute":
        return _integer_id(raw, key)
    return _string_value(raw, entity, key)


def _parse_filter(filter_string: str | None, rules: _Rules) -> list[Comparison]:
    if filter_string is None:
        return []
    comparisons = []
    for clause in _Parser(filter_string).parse_filter():
        entity, key = _resolve_identifier(clause.ident, rules)
        _check_op(clause, entity, key, rules)
        value = _value(clause, entity, key, rules)
        comparisons.append(Comparison(entity, key, clause.op, value, clause.ident.pos))
    return comparisons


def parse_run_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a ``search_runs`` filter into AND-ed comparisons.

    Args:
        filter_string: MLflow filter syntax, e.g. ``"metrics.acc > 0.9 and params.lr = '0.1'"``.
            ``None`` or blank means no filter.

    Returns:
        One :class:`Comparison` per clause, in the order written.

    Raises:
        InvalidFilter: If the string is malformed or uses an entity, key, comparator or value
            that ``search_runs`` does not accept; the message names the token and position.
    """
    return _parse_filter(filter_string, _RUN_RULES)


def parse_experiment_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a ``search_experiments`` filter (attributes and ``tags.<key>`` only).

    Args:
        filter_string: e.g. ``"name LIKE 'exp%' and tags.team = 'ml'"``; ``None`` or blank
            means no filter.

    Returns:
        One :class:`Comparison` per clause; ``experiment_id`` values are converted to ``int``.

    Raises:
        InvalidFilter: If the string is malformed or not allowed for experiments.
    """
    return _parse_filter(filter_string, _EXPERIMENT_RULES)


# --- Order by -------------------------------------------------------------------------------


def _parse_order_by_entry(entry: str, rules: _Rules) -> OrderBy:
    """``entry := name [ASC | DESC]``, case-insensitive direction."""
    try:
        tokens = tokenize(entry)
    except InvalidFilter as error:
        raise InvalidFilter(
            f"Invalid order_by clause '{entry}'. Could not be parsed: {error.message}"
        ) from None
    ident = tokens[0]
    if ident.kind != "name":
        raise InvalidFilter(
            f"Invalid order_by clause '{entry}'. Could not be parsed: expected a column, "
            f"found {ident.describe()}"
        )
    ascending = True
    direction = tokens[1]
    if direction.kind != "eof":
        word = direction.parts[0].lower() if direction.quoted == (False,) else ""
        if word not in ("asc", "desc"):
            raise InvalidFilter(
                f"Invalid ordering key in order_by clause '{entry}': {direction.describe()} "
                "(expected ASC or DESC)"
            )
        ascending = word == "asc"
        if tokens[2].kind != "eof":
            raise InvalidFilter(
                f"Invalid order_by clause '{entry}'. Could not be parsed: unexpected "
                f"{tokens[2].describe()}"
            )
    entity, key = _resolve_identifier(ident, rules)
    if entity not in rules.orderable_entities:
        raise InvalidFilter(
            f"Invalid order_by entity '{entity}' in {ident.describe()} of '{entry}'. "
            f"{rules.name.capitalize()} can be ordered by {sorted(rules.orderable_entities)}"
        )
    return OrderBy(entity, key, ascending)


def _parse_order_by(order_by: Iterable[str] | None, rules: _Rules, unique: bool) -> list[OrderBy]:
    entries = list(order_by or [])
    parsed: list[OrderBy] = []
    seen: dict[tuple[Entity, str], int] = {}
    for index, entry in enumerate(entries):
        item = _parse_order_by_entry(entry, rules)
        field_id = (item.entity, item.key)
        if unique and field_id in seen:
            raise InvalidFilter(
                f"`order_by` contains duplicate fields: '{entry}' (order_by[{index}]) repeats "
                f"'{entries[seen[field_id]]}' (order_by[{seen[field_id]}]) in {entries}"
            )
        seen.setdefault(field_id, index)
        parsed.append(item)
    return parsed


def parse_run_order_by(order_by: Iterable[str] | None) -> list[OrderBy]:
    """Parse ``search_runs`` order-by entries such as ``"metrics.acc DESC"``.

    Args:
        order_by: Entries of the form ``identifier [ASC|DESC]``; datasets cannot be ordered by.

    Returns:
        One :class:`OrderBy` per entry, in the order given (no implicit tie-breaks).

    Raises:
        InvalidFilter: On a malformed entry, a direction other than ASC/DESC, an unknown
            key, or the same field twice (``created`` and ``start_time`` are the same field).
    """
    return _parse_order_by(order_by, _RUN_RULES, unique=True)


def parse_experiment_order_by(order_by: Iterable[str] | None) -> list[OrderBy]:
    """Parse ``search_experiments`` order-by entries (attributes only).

    Args:
        order_by: Entries such as ``"name ASC"`` or ``"last_update_time DESC"``.

    Returns:
        One :class:`OrderBy` per entry. As in MLflow, repeated fields are allowed.

    Raises:
        InvalidFilter: On a malformed entry, a tag, or an unknown attribute.
    """
    return _parse_order_by(order_by, _EXPERIMENT_RULES, unique=False)
