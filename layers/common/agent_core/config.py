"""Settings, read once from the environment the template sets (and the dev server copies from the template)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


# The GPT-3.5 and GPT-4 families the spec names, and their current successors.
DEFAULT_ALLOWED_MODELS = "gpt-4o-mini,gpt-4o,gpt-4.1,gpt-4.1-mini,gpt-4-turbo,gpt-4,gpt-3.5-turbo"


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
    # The agent (see README "Configuration"). No key and no key parameter: the offline model answers.
    openai_api_key: str | None
    openai_api_key_parameter: str | None
    openai_base_url: str | None
    openai_model: str
    openai_allowed_models: tuple[str, ...]
    openai_timeout_s: float
    openai_max_retries: int
    openai_prices_json: str | None
    budget_usd: float | None
    step_lease_s: int
    # run_python's sandbox (agent/tools/sandbox.py): wall clock, address space, bytes kept of each of stdout and stderr,
    # and the largest file copied in or saved from output/. The timeout must leave room in the API's 29 s for the model.
    sandbox_timeout_s: float
    sandbox_memory_mb: int
    sandbox_max_output_bytes: int
    sandbox_max_file_bytes: int
    # fetch_url (agent/tools/web.py): seconds for the whole fetch, redirects included, and bytes of body read.
    fetch_timeout_s: float
    fetch_max_bytes: int


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "agent-table"),
        bucket_name=os.environ.get("BUCKET_NAME", "agent-artifacts"),
        max_json_body_bytes=_int("MAX_JSON_BODY_BYTES", 256 * 1024),
        max_input_chars=_int("MAX_INPUT_CHARS", 65_536),
        max_additional_input_bytes=_int("MAX_ADDITIONAL_INPUT_BYTES", 65_536),
        max_page_size=100,
        openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
        openai_api_key_parameter=os.environ.get("OPENAI_API_KEY_PARAMETER") or None,
        openai_base_url=os.environ.get("OPENAI_BASE_URL") or None,
        openai_model=os.environ.get("OPENAI_MODEL") or "gpt-4o-mini",
        openai_allowed_models=tuple(
            m.strip()
            for m in (os.environ.get("OPENAI_ALLOWED_MODELS") or DEFAULT_ALLOWED_MODELS).split(",")
            if m.strip()
        ),
        # One step must end inside API Gateway's 29 s: two tries of 12 s plus backoff by default.
        openai_timeout_s=float(os.environ.get("OPENAI_TIMEOUT_S") or 12),
        openai_max_retries=_int("OPENAI_MAX_RETRIES", 1),
        openai_prices_json=os.environ.get("OPENAI_PRICES_JSON") or None,
        budget_usd=float(os.environ["OPENAI_BUDGET_USD"]) if os.environ.get("OPENAI_BUDGET_USD") else None,
        step_lease_s=_int("STEP_LEASE_SECONDS", 60),
        sandbox_timeout_s=float(os.environ.get("SANDBOX_TIMEOUT_S") or 20),
        sandbox_memory_mb=_int("SANDBOX_MEMORY_MB", 512),
        sandbox_max_output_bytes=_int("SANDBOX_MAX_OUTPUT_BYTES", 64 * 1024),
        sandbox_max_file_bytes=_int("SANDBOX_MAX_FILE_BYTES", 10 * 1024 * 1024),
        fetch_timeout_s=float(os.environ.get("FETCH_TIMEOUT_S") or 10),
        fetch_max_bytes=_int("FETCH_MAX_BYTES", 1024 * 1024),
    )
