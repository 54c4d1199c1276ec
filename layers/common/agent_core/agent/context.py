"""The agent's memory (DESIGN §9, docs/agent.md "Memory"): every request to the model fits a token budget.

What always goes in: the system prompt, the task's input and additional_input, its files, a stored summary of the
steps it covers, and the steps after it, the latest word for word. When that would not fit, two tiers:

1. older tool results become a note of what they were (tool, arguments, length, first lines), oldest first, and
   long arguments of older calls are shortened (still valid JSON): no model call, nothing stored;
2. if that is not enough (or the steps not yet summarised would no longer all be read by the next step), the
   oldest steps are summarised by the model in a chat completion without tools, folded into the stored summary,
   down to a low-water mark so that the next compaction is many steps away.

A single item larger than the budget on its own goes in shortened, with a note of its size and where it is kept.
Tokens are estimated (UTF-8 bytes / 3, which errs high), scaled by what the API reported for the previous request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..storage.records import StepRecord
from .chat import Turn

# Steps a step reads (newest first): every step not yet in the summary is among them, because a compaction folds
# the oldest before they would fall out (storage/steps.py `load_for_step`).
LOAD_STEPS = 24
# After a summary, the request should be at most this share of the budget: the next compaction is steps away.
LOW_WATER = 0.6
# The summary's share of the budget, at most (a longer one is cut, and says so).
SUMMARY_SHARE = 0.2
IMAGE_TOKENS = 1_500  # a high-detail image costs at most about this much
MESSAGE_TOKENS = 4  # each message's own framing
NOTE_LINES = 3
NOTE_LINE_CHARS = 160
OLD_ARGUMENT_CHARS = 400  # older calls' arguments, shortened in tier 1
OLD_CONTENT_CHARS = 2_000  # older assistant text and user input, shortened in tier 1
CALIBRATION_RANGE = (0.25, 2.0)
FIT_MARGIN = 64  # tokens a shortened turn stays under its room by: notes and rounding

SUMMARY_PROMPT = """You maintain the working memory of an autonomous agent that works on one task through tools.
You get the memory so far and the steps to add to it. Write the new memory: one text that replaces both.
Keep every fact learned, decision taken, file name, path, URL, identifier, number, code, error and open question;
copy names, numbers and codes word for word. Say what was tried and what came of it, and what remains to do.
Drop pleasantries and repetition. Write plain text, at most {words} words, nothing else."""


def estimate_text(text: str) -> int:
    """Tokens of a text, erring high: about 3 UTF-8 bytes a token (English runs near 4, code and JSON near 3,
    CJK near one character, i.e. 3 bytes, a token)."""
    return (len(text.encode("utf-8", "surrogatepass")) + 2) // 3


def estimate_message(message: dict[str, Any]) -> int:
    tokens = MESSAGE_TOKENS
    content = message.get("content")
    if isinstance(content, str):
        tokens += estimate_text(content)
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                tokens += estimate_text(str(part.get("text") or ""))
            else:
                tokens += IMAGE_TOKENS
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        tokens += (
            MESSAGE_TOKENS
            + estimate_text(str(function.get("name") or ""))
            + estimate_text(str(function.get("arguments") or ""))
        )
    return tokens


def estimate(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    raw = sum(estimate_message(m) for m in messages)
    return raw + (estimate_text(json.dumps(tools, ensure_ascii=False)) if tools else 0)


# -- shortening, always saying so ----------------------------------------------------------------------------------


def clip(text: str, limit: int, where: str = "") -> str:
    """`text` within about `limit` characters: its head and tail, and a note of what was left out and where it is."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 120)
    head, tail = text[: keep * 2 // 3], text[len(text) - keep // 3 :] if keep // 3 else ""
    note = f"\n[... {len(text) - len(head) - len(tail):,} of {len(text):,} characters left out here{where} ...]\n"
    return head + note + tail


def _shrink_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        if len(value) <= cap + 32:  # shortening would not save more than its note costs
            return value
        return value[:cap] + f"... [{len(value) - cap:,} more characters]"
    if isinstance(value, list):
        return [_shrink_strings(v, cap) for v in value]
    if isinstance(value, dict):
        return {k: _shrink_strings(v, cap) for k, v in value.items()}
    return value


def shorten_arguments(raw: str, limit: int) -> tuple[str, bool]:
    """A tool call's arguments within about `limit` characters, still valid JSON: the string values inside are
    shortened (each says how much it lost). Arguments that were not JSON come back as one JSON string."""
    if len(raw) <= limit:
        return raw, False
    try:
        value = json.loads(raw)
    except ValueError:
        return json.dumps(raw[:limit] + f"... [{len(raw) - limit:,} more characters]", ensure_ascii=False), True
    low, high = 0, limit
    best = json.dumps(_shrink_strings(value, 0), ensure_ascii=False)
    while low <= high:  # the largest cap on string values that keeps the whole within the limit
        cap = (low + high) // 2
        text = json.dumps(_shrink_strings(value, cap), ensure_ascii=False)
        if len(text) <= limit:
            best, low = text, cap + 1
        else:
            high = cap - 1
    if len(best) > limit:  # many short values: the text itself, shortened, as one JSON string
        return json.dumps(raw[:limit] + f"... [{len(raw) - limit:,} more characters]", ensure_ascii=False), True
    return best, True


def water_fill(sizes: list[int], total: int) -> int:
    """The largest cap c with sum(min(size, c)) <= total (every size when they fit)."""
    if sum(sizes) <= total:
        return max(sizes, default=0)
    low, high = 0, max(sizes, default=0)
    while low < high:
        cap = (low + high + 1) // 2
        if sum(min(s, cap) for s in sizes) <= total:
            low = cap
        else:
            high = cap - 1
    return low


# -- what is stored and what is sent -------------------------------------------------------------------------------


@dataclass
class Memory:
    """The stored summary of a task's steps 1..through_seq (storage/steps.py keeps it in an item of its own)."""

    summary: str = ""
    through_seq: int = 0
    compactions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "through_seq": self.through_seq, "compactions": self.compactions}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Memory:
        data = data or {}
        return cls(str(data.get("summary") or ""), int(data.get("through_seq") or 0), int(data.get("compactions") or 0))


@dataclass
class Context:
    messages: list[dict[str, Any]]
    report: dict[str, Any]  # additional_output.context
    memory: Memory | None = None  # a new memory to store: this step compacted
    compaction_turns: list[Turn] = field(default_factory=list)


def sendable(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the API takes it: our own keys (image_refs, _full) left out."""
    return {k: v for k, v in message.items() if k != "image_refs" and not k.startswith("_")}


def _call_names(messages: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    out = {}
    for m in messages:
        for call in m.get("tool_calls") or []:
            function = call.get("function") or {}
            out[str(call.get("id"))] = (str(function.get("name")), str(function.get("arguments") or ""))
    return out


def _first_lines(text: str) -> str:
    lines = [line[:NOTE_LINE_CHARS] for line in text.strip().splitlines()[:NOTE_LINES]]
    return "\n".join(lines)


def result_note(content: str, *, tool: str, arguments: str, seq: int) -> str:
    args, _ = shorten_arguments(arguments, 160)
    return (
        f"[Result of {tool} {args} in step {seq}: {len(content):,} characters, left out here to save context "
        f"(the step keeps it; call the tool again to see it all). It began:\n{_first_lines(content)}]"
    )


def noted_turn(messages: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    """Tier 1: an older turn with its tool results as notes and its long texts and arguments shortened."""
    calls = _call_names(messages)
    out = []
    for m in messages:
        m = dict(m)
        if m.get("role") == "tool":
            tool, arguments = calls.get(str(m.get("tool_call_id")), ("a tool", ""))
            content = str(m.get("content") or "")
            if len(content) > 300:
                m["content"] = result_note(content, tool=tool, arguments=arguments, seq=seq)
        elif m.get("role") == "assistant":
            if isinstance(m.get("content"), str):
                m["content"] = clip(m["content"], OLD_CONTENT_CHARS, f" (step {seq})")
            if m.get("tool_calls"):
                m["tool_calls"] = [_with_arguments(c, OLD_ARGUMENT_CHARS) for c in m["tool_calls"]]
        elif isinstance(m.get("content"), str):
            m["content"] = clip(m["content"], OLD_CONTENT_CHARS, f" (step {seq})")
        out.append(m)
    return out


def _with_arguments(call: dict[str, Any], limit: int) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    function["arguments"], _ = shorten_arguments(str(function.get("arguments") or ""), limit)
    return {**call, "function": function}


def fit_turn(messages: list[dict[str, Any]], tokens: int, seq: int) -> list[dict[str, Any]]:
    """A turn larger than the room left on its own: its long texts and arguments shortened alike (water-filled)
    until it fits, each with a note of its size."""
    texts: list[int] = []
    for m in messages:
        if isinstance(m.get("content"), str):
            texts.append(len(m["content"]))
        for call in m.get("tool_calls") or []:
            texts.append(len(str((call.get("function") or {}).get("arguments") or "")))
    overhead = estimate(messages) - sum((n + 2) // 3 for n in texts)
    cap = max(200, water_fill(texts, max(0, (tokens - overhead) * 3)))
    where = f" (step {seq} keeps it whole)"
    out = []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("content"), str):
            m["content"] = clip(m["content"], cap, where)
        if m.get("tool_calls"):
            m["tool_calls"] = [_with_arguments(c, cap) for c in m["tool_calls"]]
        out.append(m)
    return out


def step_messages(
    step: StepRecord, *, latest: bool, with_images: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """A stored step as messages: its input, then its turn (images only for the latest turn)."""
    out: list[dict[str, Any]] = []
    if step.input:
        out.append({"role": "user", "content": step.input})
    for m in step.messages:
        if m.get("image_refs"):
            m = with_images(m) if latest else _without_images(m)
        out.append(sendable(m))
    return out


def _without_images(message: dict[str, Any]) -> dict[str, Any]:
    refs = message.get("image_refs") or []
    return {"role": message["role"], "content": f"{message['content']} [{len(refs)} image(s) were shown here]"}


def summary_message(memory: Memory) -> dict[str, Any]:
    return {
        "role": "user",
        "content": f"[Memory of steps 1 to {memory.through_seq}, summarised to fit the context budget]\n"
        f"{memory.summary}",
    }


# -- the summary request ---------------------------------------------------------------------------------------------


def render_for_summary(steps: list[StepRecord]) -> list[tuple[str, str]]:
    """(label, text) parts of the steps to fold, in order: the raw material of a summary."""
    parts: list[tuple[str, str]] = []
    for step in steps:
        parts.append((f"## Step {step.seq}", ""))
        if step.input:
            parts.append(("User: ", step.input))
        calls = _call_names(step.messages)
        for m in step.messages:
            role = m.get("role")
            if role == "assistant":
                if m.get("content"):
                    parts.append(("Assistant: ", str(m["content"])))
                for call in m.get("tool_calls") or []:
                    function = call.get("function") or {}
                    parts.append((f"Called {function.get('name')} with ", str(function.get("arguments") or "")))
            elif role == "tool":
                tool, _ = calls.get(str(m.get("tool_call_id")), ("a tool", ""))
                parts.append((f"Result of {tool}: ", str(m.get("content") or "")))
            elif role == "user" and m.get("content"):
                parts.append(("", str(m["content"])))
    return parts


def summary_request(memory: Memory, steps: list[StepRecord], *, room_tokens: int, words: int) -> list[dict[str, Any]]:
    """A chat request (no tools) asking for the new memory: the old summary whole, the steps' texts water-filled
    into the room left (long tool results lose their middles first; the model's own words rarely lose anything)."""
    system = {"role": "system", "content": SUMMARY_PROMPT.format(words=words)}
    head = f"Memory so far (steps 1 to {memory.through_seq}):\n{memory.summary or '(none yet)'}\n\n"
    head += f"Steps {steps[0].seq} to {steps[-1].seq} to add:\n"
    parts = render_for_summary(steps)
    fixed = estimate([system, {"role": "user", "content": head}]) + sum(estimate_text(a) + 1 for a, _ in parts)
    cap = water_fill([len(t) for _, t in parts], max(0, room_tokens - fixed) * 3)
    cap = max(cap, 200)
    body = "\n".join(f"{label}{clip(text, cap)}" if text else label for label, text in parts)
    return [system, {"role": "user", "content": head + body}]


# -- the whole request -----------------------------------------------------------------------------------------------


def calibrate(previous: dict[str, Any] | None) -> float:
    """The ratio of the tokens the API counted to our estimate, from the previous step's record (smoothed)."""
    if not previous:
        return 1.0
    old = float(previous.get("calibration") or 1.0)
    sent, estimated = previous.get("sent_tokens"), previous.get("raw_estimate")
    if not sent or not estimated:
        return old
    seen = float(sent) / float(estimated)
    low, high = CALIBRATION_RANGE
    return round(min(high, max(low, (old + seen) / 2)), 4)


class _Plan:
    """The turns after the memory, each in full or as a note, and what they cost (raw estimated tokens)."""

    def __init__(
        self,
        head: list[dict[str, Any]],
        tail: list[dict[str, Any]],
        turns: list[StepRecord],
        with_images: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        self.head, self.tail, self.turns = head, tail, turns
        last = len(turns) - 1
        self.full = [step_messages(s, latest=i == last, with_images=with_images) for i, s in enumerate(turns)]
        self.full_sizes = [estimate(t) for t in self.full]
        self.base = estimate(head) + estimate(tail)
        self._noted: dict[int, list[dict[str, Any]]] = {}

    def noted(self, i: int) -> list[dict[str, Any]]:
        if i not in self._noted:
            self._noted[i] = noted_turn(self.full[i], self.turns[i].seq)
        return self._noted[i]

    def fit(self, memory: Memory, first: int, room: int) -> tuple[int, int]:
        """(turns noted, raw tokens) with turns[first:] after `memory`: the fewest notes (oldest first) that fit
        `room`, never the latest turn's."""
        tokens = self.base + (estimate([summary_message(memory)]) if memory.summary else 0)
        tokens += sum(self.full_sizes[first:])
        count, last = 0, len(self.turns) - 1
        while tokens > room and first + count < last:
            tokens += estimate(self.noted(first + count)) - self.full_sizes[first + count]
            count += 1
        return count, tokens

    def fold_point(self, room: int, summary_tokens: int) -> int:
        """How many of the oldest turns to summarise: enough that the rest, with a summary of its full share, fits
        the low-water mark and leaves the next step room to read every turn not summarised."""
        placeholder = Memory(summary="x" * (summary_tokens * 3))
        first = 1
        while first < len(self.turns) - 1:
            rest = self.fit(placeholder, first, room)[1]
            if rest <= room * LOW_WATER and len(self.turns) - first + 1 <= LOAD_STEPS // 2:
                break
            first += 1
        return first

    def messages(self, memory: Memory, first: int, noted: int, over: int) -> tuple[list[dict[str, Any]], bool]:
        out = list(self.head)
        if memory.summary:
            out.append(summary_message(memory))
        shortened, last = False, len(self.turns) - 1
        for i in range(first, len(self.turns)):
            if i - first < noted:
                out.extend(self.noted(i))
            elif i == last and over > 0:  # the latest turn, too large on its own: shortened, with notes
                target = max(0, self.full_sizes[i] - over - FIT_MARGIN)
                out.extend(fit_turn(self.full[i], target, self.turns[i].seq))
                shortened = True
            else:
                out.extend(self.full[i])
        return out + self.tail, shortened


def build_context(
    *,
    head: list[dict[str, Any]],
    tail: list[dict[str, Any]],
    memory: Memory,
    history: list[StepRecord],
    tools: list[dict[str, Any]],
    budget: int,
    calibration: float,
    with_images: Callable[[dict[str, Any]], dict[str, Any]],
    summarise: Callable[[list[dict[str, Any]]], Turn] | None,
) -> Context:
    """The messages of one request within `budget` tokens. `head`: system prompt and task; `tail`: this step's input;
    `history`: the latest steps, oldest first; `summarise` asks the model (no tools) for a summary."""
    tools_tokens = estimate_text(json.dumps(tools, ensure_ascii=False)) if tools else 0
    room = max(0, math.floor(budget / calibration) - tools_tokens)  # in raw estimated tokens
    plan = _Plan(head, tail, [s for s in history if s.seq > memory.through_seq], with_images)
    turns = plan.turns
    noted, tokens = plan.fit(memory, 0, room)
    tier = "notes" if noted else None
    new_memory: Memory | None = None
    compaction_turns: list[Turn] = []
    first = 0
    # The next step reads LOAD_STEPS steps: every step not yet summarised (these turns and this one) must be there.
    too_many = len(turns) + 1 > LOAD_STEPS - 1
    if (tokens > room or too_many) and len(turns) > 1 and summarise is not None:
        summary_tokens = max(200, int(budget * SUMMARY_SHARE))
        first = plan.fold_point(room, summary_tokens)
        request = summary_request(
            memory, turns[:first], room_tokens=math.floor(budget / calibration), words=max(50, summary_tokens * 3 // 5)
        )
        turn = summarise(request)
        compaction_turns.append(turn)
        text = clip((turn.content or "").strip(), summary_tokens * 3, " (the summary was longer than its share)")
        new_memory = Memory(summary=text, through_seq=turns[first - 1].seq, compactions=memory.compactions + 1)
        memory, tier = new_memory, "summary"
        noted, tokens = plan.fit(memory, first, room)
    messages, shortened = plan.messages(memory, first, noted, tokens - room)
    raw = estimate(messages) + tools_tokens
    report = {
        "budget_tokens": budget,
        "estimated_tokens": math.ceil(raw * calibration),
        "raw_estimate": raw,
        "calibration": calibration,
        "steps_in_full": len(turns) - first - noted,
        "steps_noted": noted,
        "summary_through_step": memory.through_seq,
        "compacted": tier is not None,
        "tier": tier or "none",  # notes: tier 1 only; summary: the oldest steps were summarised in this step
        **({"latest_step_shortened": True} if shortened else {}),
    }
    return Context(messages=messages, report=report, memory=new_memory, compaction_turns=compaction_turns)


# -- steps that fit in storage ---------------------------------------------------------------------------------------


def shrink_messages(messages: list[dict[str, Any]], limit_bytes: int, where: str) -> list[dict[str, Any]]:
    """A turn's messages within about `limit_bytes` of JSON, for the step's item: the longest texts and arguments
    shortened alike, each saying so; `where` names the object that keeps them whole."""
    texts: list[int] = []
    for m in messages:
        if isinstance(m.get("content"), str):
            texts.append(len(m["content"].encode("utf-8", "surrogatepass")))
        for call in m.get("tool_calls") or []:
            texts.append(len(str((call.get("function") or {}).get("arguments") or "").encode("utf-8", "surrogatepass")))
    overhead = len(json.dumps(messages).encode()) - sum(texts)
    cap = max(500, water_fill(texts, max(0, limit_bytes - overhead - 200 * len(texts))) // 4)  # chars, 4 bytes worst
    out = []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("content"), str):
            m["content"] = clip(m["content"], cap, f" (kept whole in {where})")
        if m.get("tool_calls"):
            m["tool_calls"] = [_with_arguments(c, cap) for c in m["tool_calls"]]
        out.append(m)
    return out
