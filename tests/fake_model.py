"""A scripted OpenAI-compatible server on loopback, so tests exercise the real `openai` client (its HTTP stack,
retries and timeouts included) without a network or a key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer of the fake model API: a status, a JSON body, headers, and an optional delay."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(
    message: dict[str, Any], *, model: str = "gpt-4o-mini", prompt: int = 1000, completion_tokens: int = 100
) -> Reply:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }
    return Reply(200, body, {"x-request-id": "req-ok"})


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}],
    }


def failure(status: int) -> Reply:
    # retry-after-ms keeps the client's backoff short in tests; the client honours it as the API sends it.
    return Reply(
        status,
        {"error": {"message": f"upstream {status}", "type": "server_error"}},
        {"x-request-id": f"req-{status}", "retry-after-ms": "10"},
    )


class FakeModelAPI:
    """An OpenAI-compatible server on loopback that answers from a script, so the real `openai` client (its HTTP
    stack, retries and timeouts included) is what the tests exercise."""

    def __init__(self) -> None:
        self.side_effect: list[Reply] | Callable[[dict[str, Any]], Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the bearer key of each request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                outer.requests.append(body)
                outer.keys.append(self.headers.get("Authorization", "").removeprefix("Bearer "))
                effect = outer.side_effect
                reply = effect(body) if callable(effect) else effect.pop(0)
                time.sleep(reply.delay_s)
                data = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for key, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def call_count(self) -> int:
        return len(self.requests)

    def close(self) -> None:
        self.server.shutdown()
