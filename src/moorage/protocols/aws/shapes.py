"""botocore's service models (``ecr`` by default, and every AWS JSON service moorage answers),
and JSON in and out of their shapes.

This is the only module that knows ECR's camelCase member names: it reads them from the model
botocore ships (never typed by hand) and turns them into Python's snake_case with
``botocore.xform_name`` (``repositoryName`` -> ``repository_name``, ``Key`` -> ``key``). Map keys
are data, not member names, and are left as they are in both directions.

Input (:func:`deserialize_input`), in the order AWS applies them:

1. JSON types, while reading (first mismatch raises ``SerializationException``): structure and
   map -> object, list -> array, string -> string, boolean -> true/false,
   integer/long -> integral number in 32/64-bit range (not a boolean, not ``1.0``),
   float/double -> number, timestamp -> epoch seconds (an aware UTC datetime comes out),
   blob -> base64 string (bytes come out). ``null`` is the same as an absent member, and members
   the model does not have are ignored, as AWS does.
2. Constraints, collected over the whole input: required members, ``min``/``max`` length of
   strings, blobs, lists and maps, ``min``/``max`` value of numbers, ``pattern`` (a full match,
   ASCII classes as in Java) and ``enum``. They become one error in the operation's form
   (see ``validation.py``).

Output (:func:`serialize_output`) walks the output shape, reading snake_case keys from mappings;
strings may be ``str`` subclasses (StrEnum, RepositoryName) or a ``Digest``, datetimes (aware)
become epoch seconds (float), bytes base64, and None or absent members are left out. A key the
shape does not have, or a value of the wrong type, is a bug in the operation: ``ValueError`` or
``TypeError``, so that tests fail loudly (and the dispatcher answers 500).
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from botocore import xform_name  # type: ignore[import-untyped]
from botocore.loaders import Loader  # type: ignore[import-untyped]
from botocore.model import ServiceModel  # type: ignore[import-untyped]

from moorage.domain.digests import Digest
from moorage.protocols.aws import validation
from moorage.protocols.aws.errors import SERIALIZATION_EXCEPTION, ApiError

SERVICE_NAME = "ecr"

_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


# --- The parts of botocore's model objects used here -----------------------------------------


class Shape(Protocol):
    def __hash__(self) -> int: ...  # by identity: the member tables are cached per shape
    @property
    def name(self) -> str: ...
    @property
    def type_name(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...


class StructureShape(Shape, Protocol):
    @property
    def members(self) -> Mapping[str, Shape]: ...
    @property
    def required_members(self) -> Sequence[str]: ...


class ListShape(Shape, Protocol):
    @property
    def member(self) -> Shape: ...


class MapShape(Shape, Protocol):
    @property
    def key(self) -> Shape: ...
    @property
    def value(self) -> Shape: ...


class OperationModel(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def input_shape(self) -> StructureShape | None: ...
    @property
    def output_shape(self) -> StructureShape | None: ...
    @property
    def error_shapes(self) -> Sequence[Shape]: ...


class Model(Protocol):
    @property
    def operation_names(self) -> Sequence[str]: ...
    @property
    def metadata(self) -> Mapping[str, Any]: ...
    def operation_model(self, name: str) -> OperationModel: ...


# --- The model --------------------------------------------------------------------------------


@functools.cache
def service_model(service: str = SERVICE_NAME) -> Model:
    """The model of ``service`` (``ecr``, ``secretsmanager``) bundled with botocore, loaded
    once."""
    # Only the bundled data: a model in ~/.aws/models must not change what the server accepts.
    loader = Loader(
        extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False
    )
    loaded: Model = ServiceModel(
        loader.load_service_model(service, "service-2"), service_name=service
    )
    return loaded


def target_prefix(service: str = SERVICE_NAME) -> str:
    """What ``X-Amz-Target`` starts with (``AmazonEC2ContainerRegistry_V20150921``)."""
    return str(service_model(service).metadata["targetPrefix"])


@functools.cache
def operation_names(service: str = SERVICE_NAME) -> frozenset[str]:
    return frozenset(service_model(service).operation_names)


def operation_model(name: str, service: str = SERVICE_NAME) -> OperationModel | None:
    """The model of the operation ``name`` (``CreateRepository``) of ``service``, or None if
    the service has none."""
    if name not in operation_names(service):
        return None
    return service_model(service).operation_model(name)


def modelled_errors(operation: OperationModel) -> frozenset[str]:
    return frozenset(shape.name for shape in operation.error_shapes)


@dataclass(frozen=True, slots=True)
class _Member:
    wire: str  # the model's name, as in JSON
    python: str  # snake_case
    shape: Shape
    required: bool


@dataclass(frozen=True, slots=True)
class _Members:
    ordered: tuple[_Member, ...]
    by_python: Mapping[str, _Member]


# Keyed by the shape object: botocore caches each operation's shape tree, and two models (the
# tests build small ones) may use the same shape names.
@functools.cache
def _members(shape: StructureShape) -> _Members:
    required = set(shape.required_members)
    ordered = tuple(
        _Member(wire, xform_name(wire), member, wire in required)
        for wire, member in shape.members.items()
    )
    by_python = {m.python: m for m in ordered}
    if len(by_python) != len(ordered):
        raise ValueError(f"members of {shape.name} collide in snake_case")
    return _Members(ordered, by_python)


# Model patterns that backtrack exponentially in a backtracking engine (Python's, Java's), each
# with an expression of the same language that does not. A client picks the input, so the
# model's own text would let one request hold the event loop for minutes: ECR's
# ScanningRepositoryFilterValue takes 20 s on 24 letters and a "!". The error message still
# quotes the model's pattern, as AWS does. tests/unit/protocols/aws/test_shapes_patterns.py
# checks that every pattern of the model stays fast on adversarial input and that each
# rewrite accepts exactly what the original does.
SAFE_PATTERNS: Mapping[str, str] = {
    # One alphanumeric run, then runs each after exactly one separator.
    r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$": r"^[a-z0-9*]+(?:[._\-/][a-z0-9*]+)*$",
}


@functools.cache
def _compiled(regex: str) -> re.Pattern[str]:
    # The model's patterns are Java regexes; Java's \w, \d and \s are ASCII by default.
    return re.compile(SAFE_PATTERNS.get(regex, regex), re.ASCII)


# --- Input ------------------------------------------------------------------------------------


def deserialize_input(operation: OperationModel, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` (parsed JSON) checked against the operation's input, with snake_case keys.

    Raises ApiError: ``SerializationException`` for a JSON type the shape does not allow, else
    ``InvalidParameterException`` or ``ValidationException`` for failed constraints (see the
    module docstring and ``validation.py``).
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    reader = _Reader()
    params = reader.structure(shape, body, "")
    if reader.violations:
        raise validation.validation_error(modelled_errors(operation), reader.violations)
    return params


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(path: str, expected: str, value: object) -> ApiError:
    where = f" at '{path}'" if path else ""
    return ApiError(SERIALIZATION_EXCEPTION, f"Expected {expected}{where}, got {_kind(value)}.")


class _Reader:
    """One pass over the input: raises on JSON type errors, collects constraint failures."""

    def __init__(self) -> None:
        self.violations: list[validation.Violation] = []

    def structure(self, shape: StructureShape, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong_type(path, "an object", value)
        out: dict[str, Any] = {}
        for member in _members(shape).ordered:
            child = _join(path, member.wire)
            raw = value.get(member.wire)
            if raw is None:
                if member.required:
                    self.violations.append(validation.not_null(child))
                continue
            out[member.python] = self.value(member.shape, raw, child)
        return out

    def value(self, shape: Shape, raw: object, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self.structure(cast(StructureShape, shape), raw, path)
        if kind == "list":
            return self.list(cast(ListShape, shape), raw, path)
        if kind == "map":
            return self.map(cast(MapShape, shape), raw, path)
        if kind == "string":
            return self.string(shape, raw, path)
        if kind in ("integer", "long"):
            return self.integer(shape, raw, path)
        if kind in ("float", "double"):
            return self.number(shape, raw, path)
        if kind == "boolean":
            if not isinstance(raw, bool):
                raise _wrong_type(path, "a boolean", raw)
            return raw
        if kind == "timestamp":
            return self.timestamp(raw, path)
        if kind == "blob":
            return self.blob(shape, raw, path)
        raise TypeError(f"shape {shape.name} has unsupported type {kind!r}")

    def list(self, shape: ListShape, raw: object, path: str) -> list[Any]:
        if not isinstance(raw, list):
            raise _wrong_type(path, "an array", raw)
        self.check_length(shape, raw, len(raw), path)
        items: list[Any] = []
        for index, item in enumerate(raw, start=1):
            child = f"{path}.{index}.member"
            if item is None:
                self.violations.append(validation.not_null(child))
                continue
            items.append(self.value(shape.member, item, child))
        return items

    def map(self, shape: MapShape, raw: object, path: str) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise _wrong_type(path, "an object", raw)
        self.check_length(shape, raw, len(raw), path)
        out: dict[str, Any] = {}
        for key, item in raw.items():
            child = _join(path, str(key))
            self.string(shape.key, key, child)
            if item is None:
                self.violations.append(validation.not_null(child))
                continue
            out[key] = self.value(shape.value, item, child)
        return out

    def string(self, shape: Shape, raw: object, path: str) -> str:
        if not isinstance(raw, str):
            raise _wrong_type(path, "a string", raw)
        self.check_length(shape, raw, len(raw), path)
        regex = shape.metadata.get("pattern")
        if regex is not None and _compiled(regex).fullmatch(raw) is None:
            self.violations.append(validation.pattern(path, raw, regex))
        allowed = shape.metadata.get("enum")
        if allowed and raw not in allowed:
            self.violations.append(validation.enum(path, raw, allowed))
        return raw

    def integer(self, shape: Shape, raw: object, path: str) -> int:
        low, high = _INT_RANGE[shape.type_name]
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _wrong_type(path, "an integer", raw)
        if not low <= raw <= high:
            raise ApiError(
                SERIALIZATION_EXCEPTION, f"Number at '{path}' is out of range ({shape.type_name})."
            )
        self.check_range(shape, raw, path)
        return raw

    def number(self, shape: Shape, raw: object, path: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise _wrong_type(path, "a number", raw)
        self.check_range(shape, raw, path)
        return float(raw)

    def timestamp(self, raw: object, path: str) -> datetime:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise _wrong_type(path, "a timestamp in epoch seconds", raw)
        try:
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise ApiError(
                SERIALIZATION_EXCEPTION, f"Timestamp at '{path}' is out of range."
            ) from None

    def blob(self, shape: Shape, raw: object, path: str) -> bytes:
        if not isinstance(raw, str):
            raise _wrong_type(path, "a base64 string", raw)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                SERIALIZATION_EXCEPTION, f"Value at '{path}' is not valid base64."
            ) from None
        self.check_length(shape, data, len(data), path)
        return data

    def check_length(self, shape: Shape, raw: object, length: int, path: str) -> None:
        minimum, maximum = shape.metadata.get("min"), shape.metadata.get("max")
        if minimum is not None and length < minimum:
            self.violations.append(validation.length_at_least(path, raw, minimum))
        if maximum is not None and length > maximum:
            self.violations.append(validation.length_at_most(path, raw, maximum))

    def check_range(self, shape: Shape, raw: float, path: str) -> None:
        minimum, maximum = shape.metadata.get("min"), shape.metadata.get("max")
        if minimum is not None and raw < minimum:
            self.violations.append(validation.value_at_least(path, raw, minimum))
        if maximum is not None and raw > maximum:
            self.violations.append(validation.value_at_most(path, raw, maximum))


# --- Output -----------------------------------------------------------------------------------


def serialize_output(operation: OperationModel, result: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` (snake_case) as the operation's output JSON object (the model's names).

    Raises ValueError for a key the output shape does not have, TypeError for a value of the
    wrong type (a naive datetime included): both are bugs in the operation.
    """
    shape = operation.output_shape
    if shape is None:
        if result:
            raise ValueError(f"{operation.name} has no output, but its result has {list(result)}")
        return {}
    return _write_structure(shape, result, operation.name)


def error_body(
    type_name: str, message: str, extras: Mapping[str, object], service: str = SERVICE_NAME
) -> dict[str, Any]:
    """The JSON body of an error: ``__type``, ``message``, and ``extras`` in the model's names.

    ``extras`` are allowed only for errors the service's model has a shape for (ValueError
    otherwise, or for a member the shape does not have).
    """
    body: dict[str, Any] = {"__type": type_name, "message": message}
    if not extras:
        return body
    shape = _error_shapes(service).get(type_name)
    if shape is None:
        raise ValueError(f"{type_name} is not a modelled error; it cannot carry {list(extras)}")
    body.update(_write_structure(shape, extras, type_name))
    return body


@functools.cache
def _error_shapes(service: str) -> Mapping[str, StructureShape]:
    # From the operations, whose shape objects botocore keeps (shape_for builds new ones each
    # time, which would grow the member-table cache).
    model = service_model(service)
    return {
        shape.name: cast(StructureShape, shape)
        for name in model.operation_names
        for shape in model.operation_model(name).error_shapes
    }


def _write_structure(shape: StructureShape, value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{path}: expected a mapping for {shape.name}, got {type(value).__name__}")
    members = _members(shape).by_python
    out: dict[str, Any] = {}
    for key, item in value.items():
        member = members.get(key)
        if member is None:
            raise ValueError(f"{path}: {shape.name} has no member {key!r}")
        if item is not None:
            out[member.wire] = _write(member.shape, item, f"{path}.{key}")
    return out


def _write(shape: Shape, value: object, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _write_structure(cast(StructureShape, shape), value, path)
    if kind == "list":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"{path}: expected a sequence, got {type(value).__name__}")
        member = cast(ListShape, shape).member
        return [_write(member, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: expected a mapping, got {type(value).__name__}")
        entry = cast(MapShape, shape).value
        return {str(k): _write(entry, v, f"{path}[{k!r}]") for k, v in value.items()}
    return _write_scalar(kind, value, path)


def _write_scalar(kind: str, value: object, path: str) -> Any:
    if kind == "string" and isinstance(value, str | Digest):
        return str(value)  # StrEnum members and value types become plain strings
    if kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if kind in ("float", "double") and isinstance(value, int | float):
        if isinstance(value, bool) or not math.isfinite(value):
            raise TypeError(f"{path}: expected a finite number, got {value!r}")
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "timestamp" and isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError(f"{path}: naive datetime; use an aware one")
        return value.timestamp()
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{path}: a {kind} member cannot hold {type(value).__name__}")
