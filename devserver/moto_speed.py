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
- A Query of the table reads its partition. moto answers it by listing and sorting every item of the table, then
  keeping those of the partition asked for: the list page's counts, one Query per counter shard, took 11 s each at
  10,000 tasks. Here it lists that partition's items alone (an index Query still goes through every item).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from moto.core import responses, utils
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.table import Table
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
        Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
        Table.all_items = _partition_items(Table.all_items)  # type: ignore[method-assign]


_querying = threading.local()  # the (table, partition key) a Query of the table is reading, on this thread
_INDEX_NAME_AT = 6  # Table.query's positional parameters after hash_key: ..., projection_expressions, index_name


def _partition_query(query: Any) -> Any:
    def partition_query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index_name", args[_INDEX_NAME_AT] if len(args) > _INDEX_NAME_AT else None)
        if index or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        _querying.partition = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _querying.partition = None

    return partition_query


def _partition_items(all_items: Any) -> Any:
    def partition_items(self: Table) -> list[Any]:
        asked = getattr(_querying, "partition", None)
        if asked is None or asked[0] is not self:
            return all_items(self)  # type: ignore[no-any-return]
        held = self.items.get(asked[1])  # .get: the table's defaultdict must not grow an empty partition
        if held is None:
            return []
        return sorted(held.values(), key=lambda item: item.range_key) if self.range_key_attr else [held]

    return partition_items


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
