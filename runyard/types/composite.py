"""Composite signature types: ``Array``, ``Object`` with ``Property``, ``Map``, ``AnyType``.

Their JSON forms are MLflow's: ``{"type": "array", "items": {...}}``,
``{"type": "object", "properties": {"<name>": {"type": ..., "required": bool}}}``,
``{"type": "map", "values": {...}}`` and ``{"type": "any"}``. ``_merge`` combines the types
inferred from two samples (a property seen in one sample only becomes optional).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from copy import deepcopy
from typing import Any, Union

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.types.datatype import DataType

__all__ = [
    "ANY_TYPE",
    "ARRAY_TYPE",
    "MAP_TYPE",
    "OBJECT_TYPE",
    "AnyType",
    "Array",
    "BaseType",
    "Map",
    "Object",
    "Property",
    "SpecType",
    "parse_spec_type",
    "type_to_dict",
]

ARRAY_TYPE = "array"
OBJECT_TYPE = "object"
MAP_TYPE = "map"
ANY_TYPE = "any"
_COMPOSITE_NAMES = (ARRAY_TYPE, OBJECT_TYPE, MAP_TYPE, ANY_TYPE)

#: Anything a column, property, array item or map value may be declared as.
SpecType = Union[DataType, "Array", "Object", "Map", "AnyType"]

_EXPECTED = (
    "Expected runyard.types.DataType, Array, Object, Map, AnyType or str for the '{arg}' "
    "argument, but got {got}"
)


def _as_spec_type(value: Any, arg: str) -> SpecType:
    """Accept a DataType name or a type object; raise MLflow's message for anything else."""
    if isinstance(value, str):
        try:
            return DataType[value]
        except KeyError:
            raise RunyardError(
                f"Unsupported type '{value}', expected instance of DataType, Array, Object, Map "
                f"or one of {[t.name for t in DataType]}"
            ) from None
    if not isinstance(value, (DataType, Array, Object, Map, AnyType)):
        raise RunyardError(_EXPECTED.format(arg=arg, got=value))
    return value


def type_to_dict(value: SpecType) -> dict[str, Any]:
    """The JSON dict of a type: ``{"type": "<name>"}`` for scalars, the composite's own else."""
    if isinstance(value, DataType):
        return {"type": value.name}
    return value.to_dict()


def parse_spec_type(doc: dict[str, Any]) -> SpecType:
    """Read the type part of a JSON spec (``{"type": "long"}``, ``{"type": "array", ...}``)."""
    if not isinstance(doc, dict) or "type" not in doc:
        raise RunyardError(f"Expected a JSON type spec with a `type` key, got {doc!r}")
    name = doc["type"]
    rest = {k: v for k, v in doc.items() if k not in ("name", "required")}
    if name == ARRAY_TYPE:
        return Array.from_json_dict(**rest)
    if name == OBJECT_TYPE:
        return Object.from_json_dict(**rest)
    if name == MAP_TYPE:
        return Map.from_json_dict(**rest)
    if name == ANY_TYPE:
        return AnyType()
    return _as_spec_type(name, "type")


class BaseType(ABC):
    """Common interface of the composite types."""

    @abstractmethod
    def __eq__(self, other: object) -> bool: ...

    @abstractmethod
    def __repr__(self) -> str: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON dict form."""

    @abstractmethod
    def _merge(self, other: Any) -> Any:
        """Combine with the type inferred from another sample, or raise if incompatible."""


class AnyType(BaseType):
    """Any JSON-serializable value, including None; nothing is validated."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnyType)

    def __repr__(self) -> str:
        return "Any"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "any"}``."""
        return {"type": ANY_TYPE}

    def _merge(self, other: Any) -> Any:
        if isinstance(other, AnyType):
            return AnyType()
        if isinstance(other, DataType):
            return other
        if not isinstance(other, BaseType):
            raise RunyardError(
                f"Can't merge AnyType with {type(other).__name__}, it must be a BaseType or "
                "DataType"
            )
        # What was seen as None in one sample makes the other sample's type optional.
        return other._merge(self)


class Property(BaseType):
    """One named field of an :class:`Object`."""

    def __init__(self, name: str, dtype: SpecType | str, required: bool = True) -> None:
        if not isinstance(name, str):
            raise InvalidParameterValue(
                f"Expected name to be a string, got type {type(name).__name__}"
            )
        self._name = name
        self._dtype = _as_spec_type(dtype, "dtype")
        self._required = required

    @property
    def name(self) -> str:
        """The property name."""
        return self._name

    @property
    def dtype(self) -> SpecType:
        """The property's type."""
        return self._dtype

    @property
    def required(self) -> bool:
        """Whether the property must be present."""
        return self._required

    @required.setter
    def required(self, value: bool) -> None:
        self._required = value

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Property)
            and self.name == other.name
            and self.dtype == other.dtype
            and self.required == other.required
        )

    def __lt__(self, other: Property) -> bool:
        return self.name < other.name

    def __repr__(self) -> str:
        return f"{self.name}: {self.dtype!r} ({'required' if self.required else 'optional'})"

    def to_dict(self) -> dict[str, Any]:
        """``{name: {"type": ..., "required": bool}}``."""
        body = type_to_dict(self.dtype)
        body["required"] = self.required
        return {self.name: body}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> Property:
        """Read ``{"<name>": {"type": ..., "required"?: bool}}``."""
        if len(kwargs) != 1:
            raise RunyardError(
                f"Expected Property JSON to contain a single key as name, got {len(kwargs)} keys."
            )
        name, body = next(iter(kwargs.items()))
        if not isinstance(body, dict) or "type" not in body:
            raise RunyardError(f"Missing keys in Property `{name}`. Expected to find key `type`")
        return cls(name, parse_spec_type(body), body.get("required", True))

    def _merge(self, other: Any) -> Property:
        if isinstance(other, AnyType):
            return Property(self.name, self.dtype, required=False)
        if not isinstance(other, Property):
            raise RunyardError(
                f"Can't merge property with non-property type: {type(other).__name__}"
            )
        if self.name != other.name:
            raise RunyardError("Can't merge properties with different names")
        required = self.required and other.required
        if isinstance(self.dtype, DataType):
            if self.dtype == other.dtype or isinstance(other.dtype, AnyType):
                return Property(self.name, self.dtype, required=required)
            raise RunyardError(f"Properties are incompatible for {self.dtype} and {other.dtype}")
        return Property(self.name, self.dtype._merge(other.dtype), required=required)


class Object(BaseType):
    """A JSON object with declared properties (kept sorted by name)."""

    def __init__(self, properties: list[Property]) -> None:
        self._check(properties)
        self._properties = sorted(properties)

    @staticmethod
    def _check(properties: Any) -> None:
        if not isinstance(properties, list):
            raise InvalidParameterValue(
                f"Expected properties to be a list, got type {type(properties).__name__}"
            )
        if not properties:
            raise InvalidParameterValue("Creating Object with empty properties is not allowed.")
        if any(not isinstance(p, Property) for p in properties):
            raise InvalidParameterValue("Expected values to be instance of Property")
        names = [p.name for p in properties]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidParameterValue(
                f"Found duplicated property names: `{', '.join(duplicates)}`"
            )

    @property
    def properties(self) -> list[Property]:
        """The properties, sorted by name."""
        return self._properties

    @properties.setter
    def properties(self, value: list[Property]) -> None:
        self._check(value)
        self._properties = sorted(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Object) and self.properties == other.properties

    def __repr__(self) -> str:
        return "{" + ", ".join(map(repr, self.properties)) + "}"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "object", "properties": {...}}``."""
        properties: dict[str, Any] = {}
        for prop in self.properties:
            properties.update(prop.to_dict())
        return {"type": OBJECT_TYPE, "properties": properties}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> Object:
        """Read ``{"type": "object", "properties": {...}}``."""
        if not {"properties", "type"} <= kwargs.keys():
            raise RunyardError(
                "Missing keys in Object JSON. Expected to find keys `properties` and `type`"
            )
        if kwargs["type"] != OBJECT_TYPE:
            raise RunyardError("Type mismatch, Object expects `object` as the type")
        props = kwargs["properties"]
        if not isinstance(props, dict) or any(not isinstance(p, dict) for p in props.values()):
            raise RunyardError("Expected properties to be a dictionary of Property JSON")
        return cls([Property.from_json_dict(**{name: body}) for name, body in props.items()])

    def _merge(self, other: Any) -> Object:
        if isinstance(other, AnyType):
            return Object([Property(p.name, p.dtype, required=False) for p in self.properties])
        if not isinstance(other, Object):
            raise RunyardError(f"Can't merge object with non-object type: {type(other).__name__}")
        if self == other:
            return deepcopy(self)
        mine = {p.name: p for p in self.properties}
        theirs = {p.name: p for p in other.properties}
        merged = [mine[k]._merge(theirs[k]) for k in mine.keys() & theirs.keys()]
        # A property seen in only one of the samples is optional.
        merged += [Property(k, mine[k].dtype, required=False) for k in mine.keys() - theirs.keys()]
        merged += [
            Property(k, theirs[k].dtype, required=False) for k in theirs.keys() - mine.keys()
        ]
        return Object(merged)


class Array(BaseType):
    """A JSON list whose items all have one type."""

    def __init__(self, dtype: SpecType | str) -> None:
        self._dtype = _as_spec_type(dtype, "dtype")

    @property
    def dtype(self) -> SpecType:
        """The item type."""
        return self._dtype

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Array) and self.dtype == other.dtype

    def __repr__(self) -> str:
        return f"Array({self.dtype!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "array", "items": {...}}``."""
        return {"type": ARRAY_TYPE, "items": type_to_dict(self.dtype)}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> Array:
        """Read ``{"type": "array", "items": {...}}``."""
        if not {"items", "type"} <= kwargs.keys():
            raise RunyardError(
                "Missing keys in Array JSON. Expected to find keys `items` and `type`"
            )
        if kwargs["type"] != ARRAY_TYPE:
            raise RunyardError("Type mismatch, Array expects `array` as the type")
        items = kwargs["items"]
        if not isinstance(items, dict):
            raise RunyardError("Expected items to be a dictionary of Object JSON")
        if "type" not in items:
            raise RunyardError("Missing keys in Array's items JSON. Expected to find key `type`")
        return cls(parse_spec_type(items))

    def _merge(self, other: Any) -> Array:
        if isinstance(other, AnyType) or self == other:
            return deepcopy(self)
        if not isinstance(other, Array):
            raise RunyardError(f"Can't merge array with non-array type: {type(other).__name__}")
        if isinstance(self.dtype, DataType):
            if isinstance(other.dtype, AnyType):
                return Array(self.dtype)
            raise RunyardError(
                f"Array types are incompatible for {self} with dtype={self.dtype} and "
                f"{other} with dtype={other.dtype}"
            )
        return Array(self.dtype._merge(other.dtype))


class Map(BaseType):
    """A JSON object with string keys and values of one type."""

    def __init__(self, value_type: SpecType | str) -> None:
        self._value_type = _as_spec_type(value_type, "value_type")

    @property
    def value_type(self) -> SpecType:
        """The type of every value."""
        return self._value_type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and self.value_type == other.value_type

    def __repr__(self) -> str:
        return f"Map(str -> {self.value_type})"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "map", "values": {...}}``."""
        return {"type": MAP_TYPE, "values": type_to_dict(self.value_type)}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> Map:
        """Read ``{"type": "map", "values": {...}}``."""
        if not {"values", "type"} <= kwargs.keys():
            raise RunyardError(
                "Missing keys in Map JSON. Expected to find keys `values` and `type`"
            )
        if kwargs["type"] != MAP_TYPE:
            raise RunyardError("Type mismatch, Map expects `map` as the type")
        values = kwargs["values"]
        if not isinstance(values, dict):
            raise RunyardError("Expected values to be a dictionary of Object JSON")
        if "type" not in values:
            raise RunyardError("Missing keys in Map's items JSON. Expected to find key `type`")
        return cls(parse_spec_type(values))

    def _merge(self, other: Any) -> Map:
        if isinstance(other, AnyType) or self == other:
            return deepcopy(self)
        if not isinstance(other, Map):
            raise RunyardError(f"Can't merge map with non-map type: {type(other).__name__}")
        if isinstance(self.value_type, DataType):
            if isinstance(other.value_type, AnyType):
                return Map(self.value_type)
            raise RunyardError(
                f"Map types are incompatible for {self} with value_type={self.value_type} and "
                f"{other} with value_type={other.value_type}"
            )
        return Map(self.value_type._merge(other.value_type))
