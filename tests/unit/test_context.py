"""The agent's memory (agent/context.py): the budget's arithmetic, both tiers of compaction, the stored summary and
its reuse, items larger than the budget, images in old turns, the offline summary, and shortened arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_core.agent import catalog
from agent_core.agent.chat import Turn
from agent_core.agent.context import (
    LOAD_STEPS,
    Memory,
    build_context,
    calibrate,
    estimate,
    estimate_text,
    shorten_arguments,
    shrink_messages,
    water_fill,
)
from agent_core.agent.offline import LABEL, OfflineChat
from agent_core.config import get_settings
from agent_core.storage.records import StepRecord

HEAD = [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": "Audit the logs, INPUT-7"}]


def step(seq: int, result: str, *, arguments: str = '{"code": "print(1)"}', images: int = 0) -> StepRecord:
    call_id = f"call_{seq}"
    messages: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "run_python", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]
    if images:
        refs = [{"data_url": "data:image/png;base64,AAAA"}] * images
        messages.append({"role": "user", "content": "The image(s) your tool calls returned:", "image_refs": refs})
    return StepRecord(
        task_id="t",
        step_id=f"s{seq}",
        seq=seq,
        name="run_python",
        status="completed",
        input=None,
        additional_input={},
        created_at="2025-01-01T00:00:00Z",
        modified_at="2025-01-01T00:00:00Z",
        messages=messages,
    )


def result(seq: int, size: int = 8_000) -> str:
    first = f"MARK-{seq}\n"
    return first + "y" * (size - len(first))


class Summariser:
    """Stands for the model's summary request (the real client's path is in tests/integration/test_memory.py)."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def __call__(self, messages: list[dict[str, Any]]) -> Turn:
        self.requests.append(messages)
        facts = sorted({w for w in json.dumps(messages).split() if w.startswith("FACT-")})
        return Turn(model="gpt-4o-mini", content="Summary. " + " ".join(facts), prompt_tokens=100, completion_tokens=10)


def context(history: list[StepRecord], *, budget: int, memory: Memory | None = None, summarise: Any = None) -> Any:
    return build_context(
        head=HEAD,
        tail=[],
        memory=memory or Memory(),
        history=history,
        tools=[],
        budget=budget,
        calibration=1.0,
        with_images=lambda m: {"role": "user", "content": [{"type": "text", "text": m["content"]}]},
        summarise=summarise,
    )


def test_estimates_err_high_and_count_images() -> None:
    assert estimate_text("abc") == 1 and estimate_text("abcd") == 2
    assert estimate_text("日本語") == 3  # one token a CJK character at most
    text_only = estimate([{"role": "user", "content": "hi"}])
    image = estimate([{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]}])
    assert image - text_only >= 1_000


def test_budget_is_the_setting_but_never_more_than_the_window_minus_the_answer(monkeypatch) -> None:
    monkeypatch.setenv("CONTEXT_BUDGET_TOKENS", "500000")
    get_settings.cache_clear()
    try:
        assert catalog.context_budget("gpt-4o-mini") == 128_000 - 16_384
        assert catalog.context_budget("gpt-4-0613") == 8_192 - 2_048  # a dated snapshot: its family's window
        assert catalog.context_budget("some-new-model") == 128_000 - 16_384
    finally:
        monkeypatch.delenv("CONTEXT_BUDGET_TOKENS")
        get_settings.cache_clear()
    assert catalog.context_budget("gpt-4o-mini") == 32_000  # the default


def test_a_request_exactly_at_the_budget_is_sent_whole_and_one_token_over_is_compacted() -> None:
    history = [step(1, result(1, 3_000)), step(2, result(2, 3_000))]
    whole = context(history, budget=10**6).report["raw_estimate"]
    at = context(history, budget=whole)
    assert at.report["tier"] == "none" and at.report["steps_noted"] == 0
    over = context(history, budget=whole - 1)
    assert over.report["tier"] == "notes" and over.report["steps_noted"] == 1
    assert over.report["estimated_tokens"] <= whole - 1


def test_tier_one_notes_old_results_and_keeps_the_latest_word_for_word() -> None:
    history = [step(n, result(n)) for n in range(1, 6)]
    ctx = context(history, budget=6_000)
    text = json.dumps(ctx.messages)
    assert ctx.report["tier"] == "notes" and ctx.memory is None
    assert result(5) in [m.get("content") for m in ctx.messages]  # the previous step's result, whole
    assert "INPUT-7" in text
    notes = [m["content"] for m in ctx.messages if m.get("role") == "tool" and m["content"].startswith("[Result")]
    assert notes and "run_python" in notes[0] and "8,000 characters" in notes[0] and "MARK-1" in notes[0]
    assert ctx.report["estimated_tokens"] <= 6_000


def test_tier_two_summarises_the_oldest_once_and_the_summary_is_reused() -> None:
    first = step(1, "FACT-ZEBRA is the vault code\n" + "z" * 7_000)
    history = [first, *[step(n, result(n)) for n in range(2, 16)]]
    summarise = Summariser()
    ctx = context(history, budget=4_000, summarise=summarise)
    assert len(summarise.requests) == 1 and ctx.report["tier"] == "summary"
    request = summarise.requests[0]
    assert all("tools" not in m for m in request)  # a plain chat request: the caller sends no tools
    assert "FACT-ZEBRA" in json.dumps(request)
    assert ctx.memory is not None and "FACT-ZEBRA" in ctx.memory.summary and ctx.memory.through_seq >= 1
    assert "FACT-ZEBRA" in json.dumps(ctx.messages) and result(15) in [m.get("content") for m in ctx.messages]
    assert ctx.report["estimated_tokens"] <= 4_000
    # The next step reads the stored memory: no new summary until the budget is crossed again.
    memory, later = ctx.memory, 0
    steps = list(history)
    for n in range(16, 19):
        steps.append(step(n, result(n, 1_000)))
        again = context(steps, budget=4_000, memory=memory, summarise=summarise)
        later += again.memory is not None
        assert "FACT-ZEBRA" in json.dumps(again.messages)
    assert len(summarise.requests) == 1 and later == 0


def test_the_summary_request_fits_the_budget_however_many_steps_it_folds() -> None:
    history = [step(n, result(n)) for n in range(1, LOAD_STEPS)]
    summarise = Summariser()
    ctx = context(history, budget=3_000, summarise=summarise)
    assert estimate(summarise.requests[0]) <= 3_000
    assert ctx.report["estimated_tokens"] <= 3_000


def test_too_many_unsummarised_steps_are_folded_even_within_the_budget() -> None:
    history = [step(n, f"small {n}") for n in range(1, LOAD_STEPS)]
    summarise = Summariser()
    ctx = context(history, budget=100_000, summarise=summarise)
    assert ctx.memory is not None and len(history) - ctx.memory.through_seq + 1 <= LOAD_STEPS // 2


def test_a_result_larger_than_the_budget_on_its_own_goes_in_shortened_with_its_size() -> None:
    huge = step(1, "START\n" + "q" * 600_000)
    ctx = context([huge], budget=5_000)
    tool = next(m for m in ctx.messages if m.get("role") == "tool")
    assert tool["content"].startswith("START") and "600,006 characters" in tool["content"]
    assert "step 1 keeps it whole" in tool["content"]
    assert ctx.report["estimated_tokens"] <= 5_000 and ctx.report["latest_step_shortened"] is True


def test_arguments_larger_than_the_budget_stay_json_when_shortened() -> None:
    big = json.dumps({"path": "data/huge.txt", "content": "z" * 600_000})
    ctx = context([step(1, "Wrote data/huge.txt (600000 bytes).", arguments=big)], budget=5_000)
    call = next(m for m in ctx.messages if m.get("tool_calls"))["tool_calls"][0]
    args = json.loads(call["function"]["arguments"])
    assert args["path"] == "data/huge.txt" and "more characters" in args["content"]
    assert ctx.report["estimated_tokens"] <= 5_000


def test_images_go_with_the_latest_turn_only() -> None:
    history = [step(1, "one", images=2), step(2, "two", images=1)]
    ctx = context(history, budget=100_000)
    shown = "The image(s) your tool calls returned: [2 image(s) were shown here]"
    old = [m for m in ctx.messages if m.get("content") == shown]
    latest = [m for m in ctx.messages if isinstance(m.get("content"), list)]
    assert len(old) == 1 and len(latest) == 1
    assert all("image_refs" not in m for m in ctx.messages)


@pytest.mark.parametrize(
    ("raw", "limit"),
    [
        (json.dumps({"code": "x" * 5_000, "path": "a.py"}), 1_000),
        (json.dumps({"nested": {"list": ["y" * 3_000, 7, None], "s": "短" * 2_000}}), 500),
        ("{not json" + "z" * 3_000, 200),
        (json.dumps(["a" * 100] * 100), 300),
    ],
)
def test_shortened_arguments_are_valid_json_within_their_limit(raw: str, limit: int) -> None:
    text, shortened = shorten_arguments(raw, limit)
    assert shortened and len(text) <= limit + 60  # a non-JSON text keeps its note
    json.loads(text)
    assert shorten_arguments('{"a": 1}', 100) == ('{"a": 1}', False)


def test_water_fill_at_its_edges() -> None:
    assert water_fill([10, 20], 30) == 20
    assert water_fill([10, 20], 29) == 19
    assert water_fill([10, 20], 0) == 0
    assert water_fill([], 5) == 0


def test_calibration_learns_from_the_reported_prompt_tokens() -> None:
    assert calibrate(None) == 1.0
    assert calibrate({"calibration": 1.0, "sent_tokens": 500, "raw_estimate": 1_000}) == 0.75
    assert calibrate({"calibration": 1.0, "sent_tokens": 10**6, "raw_estimate": 10}) == 2.0  # bounded
    assert calibrate({"calibration": 0.8, "sent_tokens": 0, "raw_estimate": 100}) == 0.8  # nothing reported


def test_the_offline_model_summarises_deterministically_without_tools() -> None:
    history = [step(1, "FACT-1 first line\nmore"), step(2, "second\nmore")]
    request = [
        {"role": "system", "content": "summarise"},
        {"role": "user", "content": "Memory so far (steps 1 to 0):\n(none yet)\n\nSteps 1 to 2 to add:\n## Step 1\n"
         "Result of run_python: FACT-1 first line\nmore\n## Step 2\nResult of run_python: second"},
    ]  # fmt: skip
    one = OfflineChat().complete(model="offline", messages=request, tools=[])
    two = OfflineChat().complete(model="offline", messages=request, tools=[])
    assert one.content == two.content and one.content is not None and one.content.startswith(LABEL)
    assert "FACT-1" in one.content and not one.tool_calls
    summarise = lambda m: OfflineChat().complete(model="offline", messages=m, tools=[])  # noqa: E731
    history = [step(n, f"FACT-{n} line\n" + "w" * 4_000) for n in range(1, 12)]
    ctx = context(history, budget=1_800, summarise=summarise)
    assert ctx.memory is not None and "FACT-1 " in ctx.memory.summary


def test_a_turn_too_large_for_its_item_is_shrunk_with_a_note_and_stays_json() -> None:
    messages = step(1, "r" * 300_000, arguments=json.dumps({"content": "z" * 600_000})).messages
    small = shrink_messages(messages, 64_000, "the step's stored turn")
    assert len(json.dumps(small).encode()) <= 64_000
    json.loads(small[0]["tool_calls"][0]["function"]["arguments"])
    assert "kept whole in the step's stored turn" in small[1]["content"]
