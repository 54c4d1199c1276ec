"""Where moto spends a dev-server request's time for nothing, cut.

- Items written out as they are. moto serialises every response by walking the operation's output shape member
  by member. For DynamoDB that means each attribute of each item goes through the ten members of `AttributeValue`
  (S, N, B, SS, ...), each looked up under its possible aliases: 40% of a GetItem's CPU time, more for a page of a
  Query. The items moto holds are already in DynamoDB's JSON form, so an `AttributeValue` is written out as it is,
  with the one encoding the shape walk would have applied (binary values in base64, strings and numbers as strings).
- Lookups that never change, made once. For every request moto lists its handler class's methods with
  `inspect.getmembers` (to see whether the action is one), and each of the ten passes over an update or condition
  expression's syntax tree builds its table of node types anew at every node: a task's create, which updates two
  counter items, visited about 470 nodes and built 470 such tables.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from moto.core import responses, utils
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

_STRINGS = {"S", "N"}
_STRING_SETS = {"SS", "NS"}
_MEMBERS = {"S", "N", "B", "SS", "NS", "BS", "M", "L", "BOOL", "NULL"}


def patch_speed() -> None:
    """Patches moto once per process."""
    patch_serializer()
    responses.method_names_from_class = cache(utils.method_names_from_class)  # a class's methods do not change
    if not hasattr(DepthFirstTraverser, "_unchanging_map"):
        DepthFirstTraverser._unchanging_map = True  # type: ignore[attr-defined]
        DepthFirstTraverser.nodes_to_be_processed = _node_types  # type: ignore[method-assign]
        DepthFirstTraverser.process = _process  # type: ignore[method-assign]


def _processing_map(traverser: Any) -> dict[type, Any]:
    """The traverser's table of node types (each `_processing_map()` returns the same one, made anew)."""
    made: dict[type, Any] | None = traverser.__dict__.get("_made_map")
    if made is None:
        made = traverser.__dict__["_made_map"] = traverser._processing_map()
    return made


def _node_types(self: Any) -> tuple[type, ...]:
    types: tuple[type, ...] | None = self.__dict__.get("_made_types")
    if types is None:
        types = self.__dict__["_made_types"] = tuple(_processing_map(self))
    return types


def _process(self: Any, node: Any) -> Any:
    for kind, processor in _processing_map(self).items():
        if isinstance(node, kind):
            return processor(node)
    return None


def patch_serializer() -> None:
    """Patches moto's JSON serializer once per process."""
    original = BaseJSONSerializer._serialize_type_structure
    if getattr(original, "_attribute_values", False):
        return

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue" and (wire := _wire(value, self)) is not None:
            if key:
                self._default_serialize(serialized, wire, shape, key)
            else:
                serialized.update(wire)
            return
        original(self, serialized, value, shape, key)

    serialize_structure._attribute_values = True  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


class _NotPlain(Exception):
    """A value the fast path does not know: the shape walk serialises it."""


def _wire(value: dict[str, Any], serializer: Any) -> dict[str, Any] | None:
    """An AttributeValue as DynamoDB's JSON says it; None for anything else (the shape walk then decides)."""
    try:
        return _attribute(value, serializer)
    except _NotPlain:
        return None


def _attribute(value: Any, serializer: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.keys() <= _MEMBERS:
        raise _NotPlain
    return {kind: _member(kind, inner, serializer) for kind, inner in value.items() if inner is not None}


def _member(kind: str, inner: Any, serializer: Any) -> Any:
    if kind in _STRINGS:
        return str(inner)
    if kind in _STRING_SETS:
        return [str(v) for v in inner]
    if kind == "B":
        return serializer._base64(inner)
    if kind == "BS":
        return [serializer._base64(v) for v in inner]
    if kind == "M":
        return {k: _attribute(v, serializer) for k, v in inner.items()}
    if kind == "L":
        return [_attribute(v, serializer) for v in inner]
    return inner  # BOOL, NULL
