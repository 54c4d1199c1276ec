"""The agent's memory over a long task: 100 steps whose tool results are 8,000 characters each (read_file of a log),
through the real step code (agent_core.steps on an in-process moto) and the real `openai` client against a local
fake model that counts a token per 4 characters of the messages it is sent (as tiktoken roughly would). Prints the
tokens sent every tenth step, the total over the run, and the same without memory management (the whole history
every step, as before issue 23), with the cost at gpt-4o-mini and gpt-4o prices.

Usage: python -m benchmarks.long_run [--steps 100] [--budget 32000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from benchmarks.local_model import send_completion, serve
from devserver.template import Template

RESULT_CHARS = 8_000
COMPLETION_TOKENS = 30
FACT = "FACT: the vault code is ZEBRA-42"


def tokens(messages: list[dict[str, Any]]) -> int:
    return max(1, len(json.dumps(messages, ensure_ascii=False)) // 4)


class LongRunModel(BaseHTTPRequestHandler):
    """Step n reads data/log-n.txt; a request without tools (a compaction) gets every FACT it was sent back."""

    requests: ClassVar[list[tuple[bool, int]]] = []  # (is a compaction, prompt tokens)

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        messages = body["messages"]
        prompt = tokens(messages)
        if not body.get("tools"):
            LongRunModel.requests.append((True, prompt))
            facts = dict.fromkeys(re.findall(r"FACT: [^\\\n\"]+", json.dumps(messages)))
            message = {"role": "assistant", "content": "Summary so far.\n" + "\n".join(facts)}
        else:
            LongRunModel.requests.append((False, prompt))
            n = sum(1 for r in LongRunModel.requests if not r[0])
            call = {"name": "read_file", "arguments": json.dumps({"path": f"data/log-{n}.txt"})}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function", "function": call}],
            }
        send_completion(self, body["model"], message, prompt, COMPLETION_TOKENS)


def log_file(n: int) -> bytes:
    head = (FACT + "\n") if n == 1 else f"log {n}: all quiet\n"
    return (head + f"line of log {n}, nothing to see\n" * 400)[:RESULT_CHARS].encode()


def run(steps: int) -> tuple[list[int], list[int], list[int]]:
    """(tokens sent per step with memory management, compaction tokens per step, tokens per step without)."""
    from agent_core import artifacts, tasks
    from agent_core.agent.loop import build_messages
    from agent_core.steps import execute_step
    from agent_core.storage.table import get_table

    task = tasks.create_task(input="Audit the nightly logs, one a step; keep the vault code.", additional_input={})
    task_id = task.task_id
    for n in range(1, steps + 1):
        artifacts.write_agent_file(task_id, f"data/log-{n}.txt", log_file(n), "text/plain", None)
    sent, compaction = [], []
    for _ in range(steps):
        before = len(LongRunModel.requests)
        step = execute_step(task_id, input=None, additional_input={})
        assert not step.additional_output.get("error"), step.additional_output
        made = LongRunModel.requests[before:]
        sent.append(sum(p for c, p in made if not c))
        compaction.append(sum(p for c, p in made if c))
    state, history = get_table().load_task_with_steps(task_id)
    assert state is not None
    without = []
    for n in range(1, steps + 1):  # the whole history every step: what the code before issue 23 sent
        messages = build_messages(
            task=state.task, history=history[: n - 1], step=history[n - 1], model="gpt-4o-mini", images=[],
            read=lambda path: b"",
        )  # fmt: skip
        without.append(tokens(messages))
    last = json.dumps(LongRunModel.requests and history[-1].additional_output.get("context"))
    print(f"last step's additional_output.context: {last}")
    return sent, compaction, without


def cost(prompt: int, completion: int, price: tuple[float, float]) -> float:
    return (prompt * price[0] + completion * price[1]) / 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--budget", type=int, default=32_000)
    args = parser.parse_args()
    template = Template()
    server = serve(LongRunModel, template)
    os.environ.update(CONTEXT_BUDGET_TOKENS=str(args.budget), OPENAI_MODEL="gpt-4o-mini")
    from moto import mock_aws

    with mock_aws():
        from agent_core.config import get_settings
        from devserver.resources import create_resources

        get_settings.cache_clear()
        create_resources(template)
        sent, compaction, without = run(args.steps)
    server.shutdown()
    from agent_core.agent.catalog import PRICES_PER_MILLION

    print(f"\n{args.steps} steps, {RESULT_CHARS:,}-character tool results, CONTEXT_BUDGET_TOKENS={args.budget:,}")
    print(f"{'step':>5}{'sent (tokens)':>15}{'of which summary':>18}{'without memory':>16}")
    for n in range(10, args.steps + 1, 10):
        i = n - 1
        print(f"{n:>5}{sent[i] + compaction[i]:>15,}{compaction[i]:>18,}{without[i]:>16,}")
    managed = sum(sent) + sum(compaction)
    completions = COMPLETION_TOKENS * (args.steps + sum(1 for c in compaction if c))
    plain = sum(without)
    print(f"\ncompactions (summary requests): {sum(1 for c in compaction if c)}")
    print(f"largest request: {max(sent):,} tokens with memory management, {max(without):,} without")
    print(f"total prompt tokens: {managed:,} with memory management, {plain:,} without ({plain / managed:.1f}x)")
    for model in ("gpt-4o-mini", "gpt-4o"):
        price = PRICES_PER_MILLION[model]
        with_cost = cost(managed, completions, price)
        without_cost = cost(plain, COMPLETION_TOKENS * args.steps, price)
        print(f"cost at {model} prices: ${with_cost:.4f} with, ${without_cost:.4f} without")


if __name__ == "__main__":
    main()
