"""MLflow's validation rules for keys, values and batches, with its error messages.

Everything here is synchronous and cheap: the fluent API calls it on every ``log_*`` so mistakes
raise at the call site, before anything is queued.
"""

from __future__ import annotations

import decimal
import math
import numbers
import posixpath
import re
from collections.abc import Sequence, Sized

from runyard.entities import Metric, Param, RunTag
from runyard.errors import InvalidParameterValue

__all__ = [
    "KNOWN_KEYS",
    "MAX_ENTITY_KEY_LENGTH",
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MAX_EXPERIMENT_TAG_VALUE_LENGTH",
    "MAX_PARAM_VAL_LENGTH",
    "MAX_TAG_VAL_LENGTH",
    "sanitize_metric_value",
    "validate_batch_limits",
    "validate_experiment_name",
    "validate_key",
    "validate_metric",
    "validate_param_value",
    "validate_run_id",
    "validate_tag_value",
    "validated_batch",
]

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DOUBLE = 1.7976931348623157e308

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_BAD_CHARS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)
# Keys seen valid once are valid forever; a hot loop logging "loss" pays for the regex once.
KNOWN_KEYS: set[str] = set()


def validate_key(key: object, kind: str = "metric") -> str:
    """Raise unless ``key`` is a legal metric/param/tag name; return it."""
    # The type first: ``key in KNOWN_KEYS`` raises TypeError for an unhashable key (a dict
    # sent as a key in JSON).
    if type(key) is str and key in KNOWN_KEYS:
        return key
    if not isinstance(key, str):
        raise InvalidParameterValue(
            f"Invalid {kind} name: {key!r}. Names must be strings, got {type(key).__name__}."
        )
    if key == "" or not _KEY_RE.match(key):
        raise InvalidParameterValue(f"Invalid {kind} name: '{key}'. {_BAD_CHARS}")
    if posixpath.normpath(key) != key or key == "." or key.startswith(("..", "/")):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names must be normalized paths:"
            " no leading '/', no '..', no '//' and no './'."
        )
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind.capitalize()} name '{key[:40]}...' is {len(key)} characters long;"
            f" the limit is {MAX_ENTITY_KEY_LENGTH}."
        )
    if len(KNOWN_KEYS) < 100_000:
        KNOWN_KEYS.add(key)
    return key


def _check_length(kind: str, key: str, value: str, limit: int, truncate: bool) -> str:
    if len(value) <= limit:
        return value
    if truncate:
        return value[:limit]
    raise InvalidParameterValue(
        f"{kind} '{key}' has a value of {len(value)} characters; the limit is {limit}."
        " Set RUNYARD_TRUNCATE_LONG_VALUES=true to truncate instead."
    )


def validate_param_value(key: str, value: object, truncate: bool = True) -> str:
    """Params are stored as strings of at most 6,000 characters."""
    text = value if isinstance(value, str) else str(value)
    return _check_length("Param", key, text, MAX_PARAM_VAL_LENGTH, truncate)


def validate_tag_value(key: str, value: object, truncate: bool = True) -> str:
    """Run tags are strings of at most 8,000 characters."""
    text = value if isinstance(value, str) else str(value)
    return _check_length("Tag", key, text, MAX_TAG_VAL_LENGTH, truncate)


def validate_metric(key: str, value: object, timestamp: object, step: object) -> None:
    """Raise unless the metric point has a legal key, a numeric value and integer step/time."""
    # The common case (a known key, a float or int, int step and time) costs four type checks.
    if (
        type(key) is str
        and key in KNOWN_KEYS
        and (type(value) is float or type(value) is int)
        and type(timestamp) is int
        and timestamp >= 0
        and type(step) is int
    ):
        return
    validate_key(key, "metric")
    if isinstance(value, bool):
        raise InvalidParameterValue(
            f"Got invalid value {value!r} for metric '{key}': booleans are not metrics."
        )
    if not isinstance(value, (numbers.Real, decimal.Decimal)):
        # numpy scalars and Decimal convert to a double; strings, None, complex do not.
        raise InvalidParameterValue(
            f"Got invalid value {value!r} for metric '{key}' (timestamp={timestamp}). "
            "Please specify value as a valid double (64-bit floating point)"
        )
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral) or timestamp < 0:
        raise InvalidParameterValue(
            f"Got invalid timestamp {timestamp!r} for metric '{key}' (value={value}). "
            "Timestamp must be a nonnegative long (64-bit integer) of milliseconds."
        )
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidParameterValue(
            f"Got invalid step {step!r} for metric '{key}' (value={value}). "
            "Step must be a valid long (64-bit integer)."
        )


def sanitize_metric_value(value: float) -> tuple[bool, float]:
    """``(is_nan, stored_value)``: NaN is stored as 0 with a flag, ±Inf as ±max double."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, MAX_DOUBLE if value > 0 else -MAX_DOUBLE
    return False, value


def validate_run_id(run_id: object) -> str:
    """Run ids are 1–256 word characters or dashes, starting alphanumeric."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise InvalidParameterValue(f"Invalid run ID: '{run_id}'")
    return run_id


def validate_experiment_name(name: object) -> str:
    """Experiment names are non-blank strings of at most 500 characters."""
    if not isinstance(name, str):
        raise InvalidParameterValue(
            f"Invalid experiment name: {name!r}. Expects a string, got {type(name).__name__}."
        )
    if name.strip() == "":
        raise InvalidParameterValue(f"Invalid experiment name: '{name}'. It must not be empty.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Experiment name is {len(name)} characters long;"
            f" the limit is {MAX_EXPERIMENT_NAME_LENGTH}."
        )
    return name


def validated_batch(
    metrics: Sequence[Metric],
    params: Sequence[Param],
    tags: Sequence[RunTag],
    truncate: bool = True,
) -> tuple[list[Metric], list[Param], list[RunTag]]:
    """Check every value of a log_batch and MLflow's limits; return what the store should get.

    Metric values become plain floats and steps/timestamps plain ints (numpy scalars are
    common); params and tags become strings, truncated to their limits when ``truncate``.
    """
    checked_metrics = []
    for m in metrics:
        validate_metric(m.key, m.value, m.timestamp, m.step)
        exact = type(m.value) is float and type(m.step) is int and type(m.timestamp) is int
        if not exact:
            m = Metric(
                m.key,
                float(m.value),
                int(m.timestamp),
                int(m.step),
                m.run_id,
                m.model_id,
                m.dataset_name,
                m.dataset_digest,
            )
        checked_metrics.append(m)
    checked_params = [
        Param(validate_key(p.key, "param"), validate_param_value(p.key, p.value, truncate))
        for p in params
    ]
    checked_tags = [
        RunTag(validate_key(g.key, "tag"), validate_tag_value(g.key, g.value, truncate))
        for g in tags
    ]
    validate_batch_limits(checked_metrics, checked_params, checked_tags)
    return checked_metrics, checked_params, checked_tags


def validate_batch_limits(metrics: Sized, params: Sequence[Param], tags: Sequence[RunTag]) -> None:
    """MLflow's log-batch limits: 1000 metrics, 100 params, 100 tags, 1000 in all."""
    for items, limit, kind in (
        (metrics, MAX_METRICS_PER_BATCH, "metrics"),
        (params, MAX_PARAMS_PER_BATCH, "params"),
        (tags, MAX_TAGS_PER_BATCH, "tags"),
    ):
        if len(items) > limit:
            raise InvalidParameterValue(
                f"A batch logging request can contain at most {limit} {kind}. "
                f"Got {len(items)} {kind}. Please split up {kind} across multiple requests "
                "and try again."
            )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise InvalidParameterValue(
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, "
            f"params, and tags in total. Received {total}."
        )
    seen: dict[str, str] = {}
    for p in params:
        if p.key in seen and seen[p.key] != p.value:
            raise InvalidParameterValue(
                f"Duplicate parameter keys have been submitted: '{p.key}'. Please ensure the "
                "request contains only one param value per param key."
            )
        seen[p.key] = p.value
