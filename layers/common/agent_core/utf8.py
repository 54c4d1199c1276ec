"""Text that can be encoded: JSON (a model's answer, a sandbox result) may carry lone surrogates, which neither
DynamoDB nor an HTTP response can take. They are kept as their escapes (\\ud800) instead of failing the write."""

from __future__ import annotations

from typing import Any


def clean(value: Any) -> Any:
    """`value` with every string in it (keys, nested values) encodable as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
