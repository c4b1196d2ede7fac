"""``runyard.models``: MLmodel files, signatures, input examples (``mlflow.models``).

Example::

    from runyard.models import infer_signature

    signature = infer_signature(train_df, model.predict(train_df))
"""

from typing import Any

from runyard.models.enforce import validate_schema
from runyard.models.env import get_model_dependencies
from runyard.models.examples import convert_input_example_to_serving_input
from runyard.models.model import Model, ModelInfo, set_signature
from runyard.models.signature import ModelSignature, infer_signature

__all__ = [
    "Model",
    "ModelInfo",
    "ModelSignature",
    "convert_input_example_to_serving_input",
    "get_model_dependencies",
    "infer_signature",
    "set_signature",
    "validate_schema",
    "validate_serving_input",
]


def __getattr__(name: str) -> Any:
    # validate_serving_input loads a model through runyard.pyfunc, which itself imports this
    # package; it is resolved on first use so neither import has to come first.
    if name == "validate_serving_input":
        from runyard.models.serving import validate_serving_input

        return validate_serving_input
    raise AttributeError(f"module 'runyard.models' has no attribute '{name}'")
