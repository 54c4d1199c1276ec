"""The benchmarks' local OpenAI-compatible model server, and the environment that points the functions at it and at
an in-process moto."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devserver.template import ROOT, Template


def send_completion(
    handler: BaseHTTPRequestHandler, model: str, message: dict[str, Any], prompt: int, out: int
) -> None:
    data = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out},
        }
    ).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def serve(handler: type[BaseHTTPRequestHandler], template: Template) -> ThreadingHTTPServer:
    """Starts the model server; the template's environment, local credentials and the model's URL for the functions
    run in this process (against `mock_aws`), without the metrics' EMF lines, which would bury the tables."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update(template.environment())
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1",
        POWERTOOLS_LOG_LEVEL="ERROR",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    return server
