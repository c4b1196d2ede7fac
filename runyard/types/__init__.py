"""``runyard.types``: the data types and schemas of model signatures (``mlflow.types``).

Example::

    from runyard.types import ColSpec, DataType, Schema

    schema = Schema([ColSpec(DataType.double, "x"), ColSpec("string", "label")])
"""

from runyard.types.composite import AnyType, Array, Map, Object, Property
from runyard.types.datatype import DataType
from runyard.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

__all__ = [
    "AnyType",
    "Array",
    "ColSpec",
    "DataType",
    "Map",
    "Object",
    "ParamSchema",
    "ParamSpec",
    "Property",
    "Schema",
    "TensorSpec",
]
