"""Model providers behind one call: `complete(model, messages, tools) -> Turn`. The OpenAI provider uses the official
client (any OpenAI-compatible base_url); without a key the offline provider answers."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, cast

from ..config import get_settings
from ..errors import OpenAIAPIError
from .chat import ChatModel as ChatModel
from .chat import ToolCall as ToolCall
from .chat import Turn as Turn
from .offline import OfflineChat


class OpenAIChat:
    """Chat completions with tools through the official client; its own retries handle 429, 5xx and timeouts."""

    def __init__(self, api_key: str, base_url: str | None, timeout_s: float, max_retries: int) -> None:
        import openai  # imported here: the offline path (and cold starts without a key) never pays for it

        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)

    def complete(self, *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Turn:
        openai = self._openai
        from openai.types.chat import ChatCompletionMessageFunctionToolCall

        try:
            # Plain dicts, as the API takes them: the client's TypedDicts describe the same shapes.
            # No tools at all (a compaction's summary): the request carries no `tools` key.
            extra: dict[str, Any] = {"tools": tools} if tools else {}
            completion = self._client.chat.completions.create(model=model, messages=cast(Any, messages), **extra)
        except openai.APIStatusError as exc:
            raise OpenAIAPIError(
                f"the model API answered {exc.status_code}",
                upstream_status=exc.status_code,
                request_id=exc.request_id,
                upstream_message=_short(exc.message),
            ) from exc
        except openai.APITimeoutError as exc:
            raise OpenAIAPIError("the model API timed out", upstream_status="timeout") from exc
        except openai.APIConnectionError as exc:
            raise OpenAIAPIError("the model API could not be reached", upstream_status="connection") from exc
        choice = completion.choices[0].message
        calls = [  # custom (free-form) tool calls are not ours: only function calls name our tools
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in (choice.tool_calls or [])
            if isinstance(c, ChatCompletionMessageFunctionToolCall)
        ]
        usage = completion.usage
        return Turn(
            model=completion.model or model,
            content=choice.content,
            tool_calls=calls,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            request_id=getattr(completion, "_request_id", None),
        )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def api_key() -> str | None:
    """OPENAI_API_KEY, or in deployed stages the SecureString parameter OPENAI_API_KEY_PARAMETER names
    (cached for five minutes by Powertools)."""
    settings = get_settings()
    if settings.openai_api_key:
        return settings.openai_api_key
    if settings.openai_api_key_parameter:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_parameter(settings.openai_api_key_parameter, decrypt=True, max_age=300))
    return None


@lru_cache(maxsize=4)
def _openai_chat(key: str, base_url: str | None, timeout_s: float, max_retries: int) -> OpenAIChat:
    return OpenAIChat(key, base_url, timeout_s, max_retries)


def chat_model() -> ChatModel:
    key = api_key()
    if not key:
        return OfflineChat()
    settings = get_settings()
    return _openai_chat(key, settings.openai_base_url, settings.openai_timeout_s, settings.openai_max_retries)


def parse_arguments(raw: str) -> dict[str, Any]:
    """The model's arguments as a dict; ValueError with a readable reason when they are not a JSON object."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(value, dict):
        raise ValueError("arguments must be a JSON object")
    return value


def reload() -> None:
    """The key parameter and the client are fetched and built again on the next step (a restart)."""
    if get_settings().openai_api_key_parameter:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
    _openai_chat.cache_clear()
