"""The web console (console/, built by `make console`) at /console/ on the dev server's own port: hashed assets
cached for a year, index.html revalidated (ETag) at every load. Answered before the API's routes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

DIST = Path(__file__).resolve().parents[1] / "console" / "dist"
PREFIX = "/console"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def serve(request: Request) -> Response | None:
    """The console's answer for a path under /console, or None for any other path (the API's)."""
    path = request.url.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    if request.method not in ("GET", "HEAD"):
        return Response(status_code=405, headers={"Allow": "GET, HEAD"})
    if path == PREFIX:
        return RedirectResponse(PREFIX + "/", status_code=308)
    relative = path[len(PREFIX) + 1 :] or "index.html"
    file = (DIST / relative).resolve()
    if not file.is_relative_to(DIST) or not file.is_file():
        built = (DIST / "index.html").is_file()
        text = "not found" if built else "the console is not built: run `make console` (or `make dev`)"
        return Response(text + "\n", status_code=404, media_type="text/plain")
    body = file.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        # Hashed names change with their content: cached for good. index.html names them: asked again every time.
        "Cache-Control": IMMUTABLE if relative.startswith("assets/") else "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Type": TYPES.get(file.suffix, "application/octet-stream"),
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(body))
    return Response(b"" if request.method == "HEAD" else body, status_code=200, headers=headers)
