"""Model signatures: the schemas of a model's inputs, outputs and inference parameters.

In an MLmodel file a signature is ``{inputs: <JSON string>, outputs: <JSON string|null>,
params: <JSON string|null>}`` (MLflow's layout). ``infer_signature`` builds one from example data.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, get_type_hints

from runyard.errors import RunyardError
from runyard.models.infer import infer_param_schema, infer_schema
from runyard.types.composite import AnyType
from runyard.types.schema import ColSpec, ParamSchema, Schema

__all__ = ["ModelSignature", "infer_signature"]

_logger = logging.getLogger(__name__)


class ModelSignature:
    """The input schema, output schema and parameter schema of a model (any may be None)."""

    def __init__(
        self,
        inputs: Schema | None = None,
        outputs: Schema | None = None,
        params: ParamSchema | None = None,
    ) -> None:
        if inputs is not None and not isinstance(inputs, Schema):
            raise TypeError(
                f"inputs must be either None or runyard.types.Schema, got '{type(inputs).__name__}'"
            )
        if outputs is not None and not isinstance(outputs, Schema):
            raise TypeError(
                "outputs must be either None or runyard.types.Schema, "
                f"got '{type(outputs).__name__}'"
            )
        if params is not None and not isinstance(params, ParamSchema):
            raise TypeError(
                "If params are provided, they must by of type runyard.types.ParamSchema, "
                f"got '{type(params).__name__}'"
            )
        if inputs is None and outputs is None and params is None:
            raise ValueError("At least one of inputs, outputs or params must be provided")
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
        # MLflow 3 records whether the signature came from type hints; runyard never infers
        # from type hints, but keeps what a loaded MLmodel says.
        self._is_signature_from_type_hint = False
        self._is_type_hint_from_example = False

    def to_dict(self) -> dict[str, Any]:
        """``{"inputs", "outputs", "params"}`` with JSON-string values (None when absent)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }

    @classmethod
    def from_dict(cls, signature_dict: dict[str, Any]) -> ModelSignature:
        """Read the dict form (values are JSON strings)."""
        inputs = Schema.from_json(x) if (x := signature_dict.get("inputs")) else None
        outputs = Schema.from_json(x) if (x := signature_dict.get("outputs")) else None
        params = ParamSchema.from_json(x) if (x := signature_dict.get("params")) else None
        return cls(inputs, outputs, params)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelSignature)
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.params == other.params
        )

    def __repr__(self) -> str:
        return (
            f"inputs: \n  {self.inputs!r}\noutputs: \n  {self.outputs!r}\n"
            f"params: \n  {self.params!r}\n"
        )


def _schema_or_any(data: Any, key: str) -> Schema:
    try:
        return infer_schema(data)
    except (RunyardError, TypeError, ValueError) as exc:
        _logger.warning(
            "Failed to infer schema for %s (%s). Setting schema to "
            "`Schema([ColSpec(type=AnyType())]` as default.",
            key,
            exc,
        )
    return Schema([ColSpec(AnyType())])


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    """Infer a signature from example input, example output and example parameters.

    Accepts pandas DataFrame/Series, numpy arrays, dicts of arrays, dicts and lists of JSON
    values, lists of dicts and scalars. Data whose schema cannot be inferred gets
    ``Schema([ColSpec(AnyType())])``; parameters become a ParamSchema with the values as defaults.
    """
    inputs = _schema_or_any(model_input, "inputs") if model_input is not None else None
    outputs = _schema_or_any(model_output, "outputs") if model_output is not None else None
    param_schema = infer_param_schema(params) if params else None
    return ModelSignature(inputs, outputs, param_schema)


class _TypeHints:
    """The type hints of a predict function's input and return value.

    The name and attributes match MLflow's ``mlflow.models.signature._TypeHints`` so pickled
    PythonModels carry the same state in both projects.
    """

    def __init__(self, input_: Any = None, output: Any = None) -> None:
        self.input = input_
        self.output = output

    def __repr__(self) -> str:
        return f"<input: {self.input}, output: {self.output}>"


def _extract_type_hints(func: Callable[..., Any], input_arg_index: int) -> _TypeHints:
    """The hints of ``func``'s ``input_arg_index``-th argument (``self`` excluded) and return."""
    if not getattr(func, "__annotations__", None):
        return _TypeHints()
    names = [n for n in inspect.signature(func).parameters if n != "self"]
    if len(names) <= input_arg_index:
        return _TypeHints()
    try:
        hints = get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolvable forward references mean "no hints"
        return _TypeHints()
    return _TypeHints(hints.get(names[input_arg_index]), hints.get("return"))


def _is_context_in_predict_signature(parameters: Any) -> bool:
    """Whether ``predict``'s parameters take a context first (MLflow's rule)."""
    names = [p for p in parameters if p not in ("self", "params")]
    return "context" in parameters or len(names) == 2
