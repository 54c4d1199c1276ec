"""One agent turn: rebuild the conversation, call the model once, run the tools it asks for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..storage.records import StepRecord, TaskRecord
from .catalog import IMAGE_URL_PREFIXES, can_see_images
from .context import sendable, shorten_arguments
from .llm import ChatModel, Turn, parse_arguments
from .tools.base import Tool, ToolContext, ToolResult, openai_schema, truncate
from .tools.files import IMAGE_TYPES, MAX_INLINE_IMAGE_BYTES, guess_type, image_part

# What a step's `output` shows of each tool result, and of the whole step (docs/agent.md, "A step").
OUTPUT_CHARS_PER_TOOL = 1_500
OUTPUT_CHARS = 6_000
# What additional_output.tool_calls shows of each call's arguments: enough to see what was asked (the start of the
# code, a file's path); the whole call stays in the conversation the model sees.
ARGUMENT_CHARS = 1_000
MAX_TOOL_CALLS_PER_TURN = 8
MAX_IMAGES = 5

SYSTEM_PROMPT = """You are an autonomous agent working on one task for a user, through tools.
Work in small steps: each of your answers is one step; call tools to act. The task's files are yours to read
and write (list_files, read_file, write_file); run_python runs plain Python (standard library only) in a
sandbox holding copies of the files; fetch_url reads public web pages. When the task is done, or cannot be
done, call finish with a short summary for the user. Answer in the user's language."""


@dataclass
class StepOutcome:
    turn: Turn
    output: str
    name: str
    is_last: bool
    messages: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None  # the first tool whose own machinery failed
    context: dict[str, Any] = field(default_factory=dict)  # additional_output.context (agent/context.py)


MAX_LISTED_FILES = 50


def _task_text(task: TaskRecord, files: list[dict[str, Any]] | None = None) -> str:
    extra = {k: v for k, v in task.additional_input.items() if k not in ("model", "images", "auto_run")}
    text = task.input
    if extra:
        text += "\n\nAdditional input:\n" + json.dumps(extra, ensure_ascii=False, indent=2)
    if files:
        lines = [f"- {f['relative_path']} ({f.get('file_size') or 0} bytes)" for f in files[:MAX_LISTED_FILES]]
        more = (
            f"\n- ... and {len(files) - MAX_LISTED_FILES} more (list_files shows them all)"
            if len(files) > MAX_LISTED_FILES
            else ""
        )
        text += f"\n\nThe task's files ({len(files)}):\n" + "\n".join(lines) + more
    return text


def request_head(
    task: TaskRecord, files: list[dict[str, Any]], images: list[dict[str, Any]], model: str
) -> list[dict[str, Any]]:
    """What every request starts with: the system prompt, and the task (input, additional_input, files, images)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, _user_message(_task_text(task, files), images, model)]


def image_parts(task: TaskRecord, files: list[dict[str, Any]], read: Any) -> list[dict[str, Any]]:
    """The task's images (its image files, then `additional_input.images` URLs) as OpenAI image parts."""
    parts: list[dict[str, Any]] = []
    for f in files:
        if len(parts) >= MAX_IMAGES:
            break
        kind = guess_type(f["relative_path"])
        if kind in IMAGE_TYPES and (f.get("file_size") or 0) <= MAX_INLINE_IMAGE_BYTES:
            parts.append(image_part(read(f["relative_path"]), kind))
    for url in task.additional_input.get("images") or []:
        if isinstance(url, str) and url.startswith(IMAGE_URL_PREFIXES) and len(parts) < MAX_IMAGES:
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _user_message(text: str, images: list[dict[str, Any]], model: str) -> dict[str, Any]:
    if not images:
        return {"role": "user", "content": text}
    if not can_see_images(model):
        note = (
            f"\n\n[{len(images)} image(s) belong to this task, but the model {model} cannot see images; "
            "choose a vision model such as gpt-4o with additional_input.model to include them.]"
        )
        return {"role": "user", "content": text + note}
    return {"role": "user", "content": [{"type": "text", "text": text}, *images]}


def build_messages(
    *,
    task: TaskRecord,
    history: list[StepRecord],
    step: StepRecord,
    model: str,
    images: list[dict[str, Any]],
    read: Callable[[str], bytes],
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        _user_message(_task_text(task), images, model),
    ]
    for index, earlier in enumerate([*history, step]):
        if earlier.input:
            messages.append({"role": "user", "content": earlier.input})
        latest = index == len(history) - 1  # the turn the model is answering now
        messages.extend(
            sendable(with_images(m, model, read) if latest else _without_images(m)) for m in earlier.messages
        )
    return messages


def with_images(message: dict[str, Any], model: str, read: Callable[[str], bytes]) -> dict[str, Any]:
    """A stored turn's image references (what read_file or fetch_url returned) as image parts again."""
    refs = message.get("image_refs")
    if not refs:
        return message
    parts = []
    for ref in refs:
        if "data_url" in ref:
            parts.append({"type": "image_url", "image_url": {"url": ref["data_url"]}})
            continue
        try:
            parts.append(image_part(read(ref["path"]), guess_type(ref["path"])))
        except FileNotFoundError:
            continue  # deleted since: the tool result above still says what it was
    return _user_message(message["content"], parts, model)


def _without_images(message: dict[str, Any]) -> dict[str, Any]:
    """Older turns keep a note instead of their images: each request carries only the latest ones."""
    refs = message.get("image_refs")
    if not refs:
        return message
    return {"role": message["role"], "content": f"{message['content']} [{len(refs)} image(s) were shown here]"}


def _run_tool(tools: dict[str, Tool], ctx: ToolContext, name: str, raw_args: str) -> tuple[ToolResult, str | None]:
    tool = tools.get(name)
    if tool is None:
        return ToolResult(f"There is no tool {name!r}. Tools: {', '.join(tools)}.", error=True), "unknown tool"
    try:
        args = parse_arguments(raw_args)
    except ValueError as exc:
        return ToolResult(f"Your call to {name} failed: {exc}. Call it again with a JSON object.", error=True), str(exc)
    try:
        return tool.run(ctx, args), None
    except Exception as exc:  # a tool's own bug must not lose the step: the model and the user see it
        message = f"{name} failed: {type(exc).__name__}: {exc}"
        return ToolResult(message, error=True, failure=message), f"{type(exc).__name__}"


def run_turn(
    *,
    chat: ChatModel,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[Tool],
    ctx: ToolContext,
    schemas: list[dict[str, Any]] | None = None,
) -> StepOutcome:
    by_name = {t.name: t for t in tools}
    turn = chat.complete(model=model, messages=messages, tools=schemas or [openai_schema(t) for t in tools])
    recorded: list[dict[str, Any]] = [turn.assistant_message()]
    lines = [turn.content.strip()] if turn.content and turn.content.strip() else []
    calls: list[dict[str, Any]] = []
    artifacts, is_last, late_images = [], False, []
    failure: dict[str, Any] | None = None
    for index, call in enumerate(turn.tool_calls):
        left = ctx.seconds_left()
        error: str | None
        if index >= MAX_TOOL_CALLS_PER_TURN:
            result, error = (
                ToolResult(f"Skipped: at most {MAX_TOOL_CALLS_PER_TURN} tool calls a step.", error=True),
                "skipped",
            )
        elif left is not None and left < 1:
            result, error = ToolResult("Skipped: this step ran out of time; call it again.", error=True), "timeout"
        else:
            result, error = _run_tool(by_name, ctx, call.name, call.arguments)
        recorded.append({"role": "tool", "tool_call_id": call.id, "content": truncate(result.output)})
        shown, shortened = shorten_arguments(call.arguments, ARGUMENT_CHARS)  # still JSON when shortened
        calls.append(
            {
                "id": call.id,
                "name": call.name,
                "arguments": shown,
                **({"arguments_shortened": True, "arguments_chars": len(call.arguments)} if shortened else {}),
                **({"error": error} if error else {}),
            }
        )
        lines.append(f"→ {call.name}: {truncate(result.output, OUTPUT_CHARS_PER_TOOL)}")
        artifacts.extend(result.artifacts)
        late_images.extend(result.images)
        if result.failure and failure is None:
            failure = {"code": "INTERNAL_ERROR", "type": "ToolFailure", "tool": call.name, "message": result.failure}
        is_last = is_last or result.is_last
    if late_images:  # tool messages cannot carry images: a user turn after them does, when the model answers next
        recorded.append(
            {
                "role": "user",
                "content": "The image(s) your tool calls returned:",
                "image_refs": late_images[:MAX_IMAGES],
            }
        )
    names = [c.name for c in turn.tool_calls[:MAX_TOOL_CALLS_PER_TURN]]
    return StepOutcome(
        turn=turn,
        output=truncate("\n".join(lines) or "(the model answered nothing)", OUTPUT_CHARS),
        name="+".join(dict.fromkeys(names)) or "respond",
        is_last=is_last,
        messages=recorded,
        tool_calls=calls,
        artifacts=artifacts,
        error=failure,
    )
