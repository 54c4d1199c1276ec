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
- A Query reads its partition. moto answers it by listing and sorting every item of the table, then keeping those
  of the partition asked for: the list page's counts, one Query per counter shard, took 11 s each at 10,000 tasks.
  Here a Query of the table lists that partition's items alone, and a Query of an index the items under that
  index's key, from a map of the index's partitions made once per state of the table (any write makes it anew, at
  the first Query after it). And moto sorts all of those and walks them to the Query's Limit: here they come to it
  already narrowed to the key condition's range and cut to the Limit (plus one, so that moto still says there is
  more), so a page of the task list costs what the page holds, not what the table or the partition holds.
- An update expression parsed once. moto tokenises and parses an UpdateExpression at every update (a task's create
  updates three counter items with the same few expressions); the tree is only ever read, by validators that work
  on a copy of it, so one parse per expression serves every update that uses it.
"""

from __future__ import annotations

import bisect
import threading
from functools import cache, lru_cache
from typing import Any

from moto.core import responses, utils
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
from moto.dynamodb.parsing.expressions import UpdateExpressionParser

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
        parse = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]
        UpdateExpressionParser.make = classmethod(lru_cache(maxsize=512)(parse))  # type: ignore[method-assign,arg-type]
        Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
        Table.all_items = _partition_items(Table.all_items)  # type: ignore[method-assign]
        for name in _WRITES:
            setattr(DynamoDBBackend, name, _counted_write(getattr(DynamoDBBackend, name)))


_querying = threading.local()  # what a Query on this thread is reading (_Asked)
# Table.query's parameters after hash_key, in order (moto passes some by position, some by name)
_QUERY_PARAMETERS = ("range_comparison", "range_objs", "limit", "exclusive_start_key", "scan_index_forward")
_INDEX_NAME_AT = 6
_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items", "execute_transaction")
_writes = [0]  # DynamoDB writes so far in this process: an index map made after the last one is current


def _counted_write(write: Any) -> Any:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return write(self, *args, **kwargs)
        finally:
            _writes[0] += 1  # after the write (a failed one too: it may have changed items before failing)

    return counted


class _Asked:
    """A Query of the table or of one of its indexes: its partition, and what narrows it."""

    def __init__(self, table: Table, hash_key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        given = dict(zip(_QUERY_PARAMETERS, args, strict=False)) | kwargs
        index_name = kwargs.get("index_name", args[_INDEX_NAME_AT] if len(args) > _INDEX_NAME_AT else None)
        self.table, self.hash_key, self.index = table, hash_key, None
        self.range_key = table.range_key_attr
        if index_name:
            schema = next((i.schema for i in table.all_indexes() if i.name == index_name), [])
            self.index = next((k["AttributeName"] for k in schema if k["KeyType"] == "HASH"), None)
            self.range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
        self.comparison = given.get("range_comparison")
        self.bounds = [getattr(b, "value", b) for b in given.get("range_objs") or []]
        self.limit = given.get("limit")
        self.forward = given.get("scan_index_forward") is not False
        # Narrowed only where moto's answer cannot differ: no start key, no old-style filters (other keywords), one
        # attribute in each key condition.
        self.narrow = (
            not given.get("exclusive_start_key")
            and len(given.get("hash_key_conditions") or [None]) == 1
            and len(given.get("range_key_conditions") or [None]) == 1
            and not set(kwargs) - {"hash_key_conditions", "range_key_conditions", "index_name"}
            and (index_name is None or self.index is not None)
        )

    def narrowed(self, ordered: _Ordered | None, items: list[Any]) -> list[Any]:
        """The items the Query can answer from: in its range, to its Limit and one more (moto orders them again).
        `ordered`: the partition sorted by the range key, when every item has a string there (else moto's walk)."""
        if not self.narrow or ordered is None:
            return items
        found = _span(ordered.keys, self.comparison, [str(b) for b in self.bounds])
        if found is None:
            return items
        low, high = found
        if self.limit:
            if self.forward:
                high = min(high, low + self.limit + 1)
            else:
                low = max(low, high - self.limit - 1)
        return ordered.items[low:high]


def _span(keys: list[str], comparison: str | None, bounds: list[str]) -> tuple[int, int] | None:
    """Where the sorted `keys` meet a key condition, as a slice (None: a condition not known here)."""
    left, right = bisect.bisect_left, bisect.bisect_right
    match comparison, bounds:
        case None, _:
            return 0, len(keys)
        case "<", [b]:
            return 0, left(keys, b)
        case "<=", [b]:
            return 0, right(keys, b)
        case ">", [b]:
            return right(keys, b), len(keys)
        case ">=", [b]:
            return left(keys, b), len(keys)
        case (("=" | "EQ"), [b]):
            return left(keys, b), right(keys, b)
        case "BETWEEN", [a, b]:
            return left(keys, a), right(keys, b)
        case "BEGINS_WITH", [b]:
            return left(keys, b), left(keys, b + "\U0010ffff")
    return None


class _Ordered:
    """A partition's items sorted by a range key, with the keys beside them for bisecting."""

    def __init__(self, items: list[Any], range_key: str) -> None:
        pairs = sorted(((i.attrs[range_key].value, id(i), i) for i in items), key=lambda p: (p[0], p[1]))
        self.keys = [k for k, _, _ in pairs]
        self.items = [i for _, _, i in pairs]

    @staticmethod
    def of(items: list[Any], range_key: str | None) -> _Ordered | None:
        if range_key is None or not all(getattr(i.attrs.get(range_key), "type", None) == "S" for i in items):
            return None
        return _Ordered(items, range_key)


def _partition_query(query: Any) -> Any:
    def partition_query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        _querying.partition = _Asked(self, hash_key, args, kwargs)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _querying.partition = None

    return partition_query


def _partition_items(all_items: Any) -> Any:
    def partition_items(self: Table) -> list[Any]:
        asked: _Asked | None = getattr(_querying, "partition", None)
        if asked is None or asked.table is not self:
            return all_items(self)  # type: ignore[no-any-return]
        if asked.index is not None:
            items, ordered = _index_partition(self, asked, all_items)
            return asked.narrowed(ordered, items)
        held = self.items.get(asked.hash_key)  # .get: the table's defaultdict must not grow an empty partition
        if held is None:
            return []
        if not self.range_key_attr:
            return [held]
        items = sorted(held.values(), key=lambda item: item.range_key)
        return asked.narrowed(_Ordered.of(items, asked.range_key) if asked.narrow else None, items)

    return partition_items


def _index_partition(table: Table, asked: _Asked, all_items: Any) -> tuple[list[Any], _Ordered | None]:
    """The items under the asked key of the index, and them ordered by its range key, as of the latest write: each
    index's partitions are made once per state of the table."""
    assert asked.index is not None
    made: dict[tuple[str, str | None], tuple[int, dict[Any, list[Any]], dict[Any, _Ordered | None]]]
    made = table.__dict__.setdefault("_index_partitions", {})
    current = made.get((asked.index, asked.range_key))
    if current is None or current[0] != _writes[0]:
        partitions: dict[Any, list[Any]] = {}
        for item in all_items(table):
            value = getattr(item, "attrs", {}).get(asked.index)
            if value is not None:
                partitions.setdefault(value, []).append(item)
        current = made[(asked.index, asked.range_key)] = (_writes[0], partitions, {})
    _, partitions, ordered = current
    items = partitions.get(asked.hash_key, [])
    if asked.hash_key not in ordered:
        ordered[asked.hash_key] = _Ordered.of(items, asked.range_key)
    return items, ordered[asked.hash_key]


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
