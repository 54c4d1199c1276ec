"""Local servers that answer from a script and record what they were asked, for the clients' tests that need no
dev server: an HTTP API (`ScriptedAPI`) and a WebSocket endpoint (`ScriptedSocket`), each on a free port of
127.0.0.1, in a thread of the test's process, stopped when the `with` block ends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from websockets.sync.server import Server, ServerConnection, serve

Answer = tuple[int, Any]  # (status, JSON body)


@dataclass
class Asked:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: Any  # the JSON sent, or None


class ScriptedAPI:
    """Answers each request with `answer(method, path)`; `asked` lists the requests in order."""

    def __init__(self, answer: Callable[[str, str], Answer]) -> None:
        self.asked: list[Asked] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                scripted.asked.append(Asked(self.command, self.path, headers, json.loads(raw) if raw else None))
                status, body = answer(self.command, self.path.split("?")[0].removeprefix("/ap/v1/agent"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class ScriptedSocket:
    """A WebSocket endpoint: a handshake is refused with `refuse` (status, JSON body) when given, else accepted and
    sent `messages`, then closed. `handshakes` lists each handshake's (path with query, headers)."""

    def __init__(self, messages: list[dict[str, Any]], refuse: Answer | None = None) -> None:
        self.handshakes: list[tuple[str, dict[str, str]]] = []

        def check(connection: ServerConnection, request: Any) -> Any:
            self.handshakes.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
            if refuse is not None:
                response = connection.respond(refuse[0], json.dumps(refuse[1]))
                del response.headers["Content-Type"]
                response.headers["Content-Type"] = "application/json"
                return response
            return None

        def handler(connection: ServerConnection) -> None:
            for message in messages:
                connection.send(json.dumps(message))

        self.server: Server = serve(handler, "127.0.0.1", 0, process_request=check)
        self.base_url = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedSocket:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def envelope(status_code: str, message: str = "", **details: Any) -> dict[str, Any]:
    """The spec's error envelope."""
    message = message or status_code.lower()
    return {
        "success": False,
        "message": message,
        "error": {"code": status_code, "message": message, "details": details},
    }
