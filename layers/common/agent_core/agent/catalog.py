"""Which models a task may use, what they cost, and which of them can see images."""

from __future__ import annotations

import json
from typing import Any

from ..config import get_settings
from ..errors import InvalidRequest

# USD per million tokens (input, output). OPENAI_PRICES_JSON overrides or extends: {"model": [in, out]}.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}
# Tokens a request may hold (prompt and answer together), and the most a model answers, by family. A model not
# listed gets the common 128k window. The agent's context budget (agent/context.py) stays below window - answer.
CONTEXT_WINDOWS: dict[str, tuple[int, int]] = {
    "gpt-4o-mini": (128_000, 16_384),
    "gpt-4o": (128_000, 16_384),
    "gpt-4.1-mini": (1_047_576, 32_768),
    "gpt-4.1": (1_047_576, 32_768),
    "gpt-4-turbo": (128_000, 4_096),
    "gpt-4": (8_192, 2_048),
    "gpt-3.5-turbo": (16_385, 4_096),
}
DEFAULT_WINDOW = (128_000, 16_384)
_VISION_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4")


def _match(model: str, table: dict[str, Any]) -> Any:
    """The entry for the longest name that prefixes `model` (dated snapshots price like their family)."""
    for name in sorted(table, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return table[name]
    return None


def prices() -> dict[str, tuple[float, float]]:
    override = get_settings().openai_prices_json
    extra = {k: (float(v[0]), float(v[1])) for k, v in json.loads(override).items()} if override else {}
    return {**PRICES_PER_MILLION, **extra}


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price = _match(model, prices()) or (0.0, 0.0)
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, 8)


def context_window(model: str) -> tuple[int, int]:
    """(window, largest answer) in tokens."""
    found: tuple[int, int] | None = _match(model, CONTEXT_WINDOWS)
    return found or DEFAULT_WINDOW


def context_budget(model: str) -> int:
    """Tokens one request may hold: CONTEXT_BUDGET_TOKENS, never more than the model's window minus its answer."""
    window, answer = context_window(model)
    return max(1_000, min(get_settings().context_budget_tokens, window - answer))


def can_see_images(model: str) -> bool:
    return model.startswith(_VISION_PREFIXES)


def choose_model(additional_input: dict[str, Any] | None) -> str:
    """The task's `additional_input.model` if it is allowed, else the configured default."""
    settings = get_settings()
    wanted = (additional_input or {}).get("model")
    if wanted is None:
        return settings.openai_model
    if not isinstance(wanted, str) or wanted not in settings.openai_allowed_models:
        raise InvalidRequest(
            f"model {wanted!r} is not allowed",
            field="additional_input.model",
            allowed=list(settings.openai_allowed_models),
        )
    return wanted


MAX_IMAGE_URLS = 10
# The model's provider fetches these itself: https only (as the README says), or the image inline.
IMAGE_URL_PREFIXES = ("https://", "data:image/")


def check_agent_options(additional_input: dict[str, Any]) -> None:
    """The options the agent reads from a task's additional_input: `model` (allowed) and `images` (URLs)."""
    choose_model(additional_input)
    images = additional_input.get("images")
    if images is None:
        return
    ok = (
        isinstance(images, list)
        and len(images) <= MAX_IMAGE_URLS
        and all(isinstance(u, str) and u.startswith(IMAGE_URL_PREFIXES) for u in images)
    )
    if not ok:
        raise InvalidRequest(
            f"images must be a list of at most {MAX_IMAGE_URLS} https:// or data:image/ URLs",
            field="additional_input.images",
        )
