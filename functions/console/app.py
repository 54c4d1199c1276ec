"""The web console's files at /console/ on the REST API, open to all (a browser loads the page before it has a key;
the page holds no data, the API it calls asks for the key). `sam build` builds the console into this function's
package (functions/console/Makefile); the dev server serves console/dist through this same handler. index.html is
revalidated at every load (ETag), the content-hashed assets cached for a year. The page learns where the API and
its WebSocket are from two meta tags: the request's own address (the stage, or a custom domain's base path) and
CONSOLE_WEBSOCKET_URL."""

from __future__ import annotations

import base64
import hashlib
import html
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# In the function's package, `static/` beside this file; in the project (the dev server, the tests), console/dist.
STATIC = next((p for p in (HERE / "static", HERE.parents[1] / "console" / "dist") if p.is_dir()), HERE / "static")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
TEXT = {"text/html", "text/javascript", "text/css", "application/json", "image/svg+xml", "text/plain"}
IMMUTABLE = "public, max-age=31536000, immutable"
# The page loads nothing from elsewhere; its API may be another origin (a custom domain, the WebSocket API).
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # No plugins, no <base> or form that sends elsewhere, no framing. Scripts are not restricted by the policy:
    # accessibility tools (axe-core) and extensions inject inline scripts, and the page writes every text it shows
    # as text (no innerHTML), so a step's output cannot become markup.
    "Content-Security-Policy": "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@lru_cache(maxsize=64)
def _read(file: Path, modified_ns: int, meta: tuple[tuple[str, str], ...]) -> bytes:
    """The file's bytes, read once per version of it (a rebuild while the dev server runs is seen at once)."""
    body = file.read_bytes()
    if file.name == "index.html":  # its empty <meta name=... content=""> filled in
        for name, value in meta:
            empty = f'<meta name="{name}" content=""'.encode()
            body = body.replace(empty, f'<meta name="{name}" content="{html.escape(value)}"'.encode(), 1)
    return body


def answer(
    method: str, relative: str, if_none_match: str = "", *, root: Path = STATIC, meta: dict[str, str] | None = None
) -> Answer:
    """The answer for `relative`, a path under /console/ ("" is the page), with `meta` tags added to the page."""
    if method not in ("GET", "HEAD"):
        return Answer(405, {"Allow": "GET, HEAD", **SECURITY})
    try:
        file = (root / (relative or "index.html")).resolve()
        found = file.is_relative_to(root.resolve()) and file.is_file()
    except (OSError, ValueError):  # a name the file system refuses (a NUL byte, too long): no such file
        found = False
    if not found:
        built = (root / "index.html").is_file()
        text = "not found" if built else "the console is not built: run `make console` (or `make dev`)"
        return Answer(404, {"Content-Type": "text/plain; charset=utf-8", **SECURITY}, text.encode() + b"\n")
    body = _read(file, file.stat().st_mtime_ns, tuple(sorted((meta or {}).items())))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        # Hashed names change with their content: cached for good. index.html names them: asked again every time.
        "Cache-Control": IMMUTABLE if relative.startswith("assets/") else "no-cache",
        "Content-Type": TYPES.get(file.suffix, "application/octet-stream"),
        **SECURITY,
    }
    if etag in if_none_match:
        return Answer(304, headers)
    headers["Content-Length"] = str(len(body))
    return Answer(200, headers, b"" if method == "HEAD" else body)


def _meta(event: dict[str, Any]) -> dict[str, str]:
    """Where the API is: this request's host and the path before /console (the stage, or a custom domain's base)."""
    context = event.get("requestContext") or {}
    full, path = context.get("path") or "", event.get("path") or ""
    prefix = full[: len(full) - len(path)] if path and full.endswith(path) else ""
    domain = context.get("domainName") or ""
    return {
        "autogpt-api": f"https://{domain}{prefix}" if domain else "",
        "autogpt-ws": os.environ.get("CONSOLE_WEBSOCKET_URL", ""),
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path: str = event.get("path") or "/console"
    if path == "/console":  # relative names in the page need a directory: console/index.html, under any prefix
        return {"statusCode": 308, "headers": {"Location": "console/index.html", **SECURITY}, "body": ""}
    relative = path.removeprefix("/console/")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    done = answer(event.get("httpMethod", "GET"), relative, headers.get("if-none-match", ""), meta=_meta(event))
    binary = done.headers.get("Content-Type", "").split(";")[0] not in TEXT  # fonts and images go base64-encoded
    return {
        "statusCode": done.status,
        "headers": done.headers,
        "body": base64.b64encode(done.body).decode() if binary else done.body.decode(),
        "isBase64Encoded": binary,
    }
