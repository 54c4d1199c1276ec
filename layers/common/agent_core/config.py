"""Settings, read once from the environment the template sets (and the dev server copies from the template)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    # Request limits. JSON bodies larger than this are refused with 413 before parsing.
    max_json_body_bytes: int
    # A task's `input` (characters) and its `additional_input` (bytes of JSON): both live in one DynamoDB item (400 KB).
    max_input_chars: int
    max_additional_input_bytes: int
    max_page_size: int


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "agent-table"),
        bucket_name=os.environ.get("BUCKET_NAME", "agent-artifacts"),
        max_json_body_bytes=_int("MAX_JSON_BODY_BYTES", 256 * 1024),
        max_input_chars=_int("MAX_INPUT_CHARS", 65_536),
        max_additional_input_bytes=_int("MAX_ADDITIONAL_INPUT_BYTES", 65_536),
        max_page_size=100,
    )
