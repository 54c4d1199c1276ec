"""fetch_url: web browsing over http(s), public addresses only, each redirect vetted, with size and time limits."""

from __future__ import annotations

import codecs
import http.client
import re
import time
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from ...config import Settings, get_settings
from .base import ToolContext, ToolResult, truncate
from .files import IMAGE_TYPES, image_part
from .html_text import html_to_text
from .http_fetch import REDIRECT_STATUSES, FetchTimeout, Response, Target, get
from .netguard import AddressPolicy, AddressRefused, vetted_addresses

MAX_REDIRECTS = 3
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript", "application/x-yaml"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Characters left as they are when percent-encoding a path the model wrote with spaces or non-ASCII letters.
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"url": {"type": "string", "description": "An http:// or https:// URL of a public web page."}},
    "required": ["url"],
    "additionalProperties": False,
}

_DESCRIPTION = (
    "Fetch a public web page or file over http(s) and read it: HTML comes back as readable text with links as "
    "[text](url), other text as it is. Redirects are followed (up to {redirects}). Limits: {timeout:g} s, the first "
    "{kb} KB of the body; long text is cut. Local, private and cloud-metadata addresses are refused."
)


class FetchRefused(Exception):
    """The URL, or a redirect, points somewhere fetch_url must not go."""


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float = 10.0  # the whole fetch, redirects included
    max_bytes: int = 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> FetchLimits:
        s = settings or get_settings()
        return cls(s.fetch_timeout_s, s.fetch_max_bytes)


@dataclass(frozen=True)
class Page:
    urls: list[str]  # the URL asked for, then each redirect's target
    response: Response


MAX_KEPT_IMAGE_BYTES = 96 * 1024


class FetchUrl:
    name = "fetch_url"
    capabilities = ("web_browsing",)

    def __init__(self, limits: FetchLimits | None = None, policy: AddressPolicy | None = None) -> None:
        self.limits = limits or FetchLimits.from_settings()
        # Injectable so tests can reach a server on 127.0.0.1; the default refuses every non-public address.
        self.policy = policy or AddressPolicy()
        self.parameters = PARAMETERS
        self.description = _DESCRIPTION.format(
            redirects=MAX_REDIRECTS, timeout=self.limits.timeout_s, kb=self.limits.max_bytes // 1024
        )

    def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        url = args.get("url")
        if not isinstance(url, str) or not url.strip():
            return ToolResult("fetch_url needs `url`: an http:// or https:// URL.", error=True)
        url = url.strip()
        try:
            page = fetch(url, self.limits, self.policy)
        except FetchRefused as exc:
            return ToolResult(f"fetch_url refused {url}: {exc}.", error=True)
        except FetchTimeout:
            return ToolResult(
                f"fetch_url gave up on {url}: no full answer within {self.limits.timeout_s:g} s.", error=True
            )
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return ToolResult(f"fetch_url could not fetch {url}: {exc or type(exc).__name__}", error=True)
        response = page.response
        kind = response.headers.get_content_type()
        if response.status < 400 and kind in IMAGE_TYPES and response.body and not response.truncated:
            # A picture is shown to the model (vision models see it; others get a note), not described as bytes.
            # Kept inline, so only small ones: the step's history must fit its DynamoDB item.
            if len(response.body) > MAX_KEPT_IMAGE_BYTES:
                note = f"The image is too large to show you (at most {MAX_KEPT_IMAGE_BYTES // 1024} KB)."
                return ToolResult(f"{_report(page, self.limits)}\n{note}")
            url = image_part(response.body, kind)["image_url"]["url"]
            return ToolResult(
                f"{_report(page, self.limits)}\nIt is shown to you as an image.", images=[{"data_url": url}]
            )
        return ToolResult(_report(page, self.limits), error=response.status >= 400)


def fetch(url: str, limits: FetchLimits, policy: AddressPolicy) -> Page:
    """GETs `url`, following redirects itself so that every hop's address is vetted before it is connected to."""
    deadline = time.monotonic() + limits.timeout_s
    urls = [url]
    while True:
        try:
            target = parse_target(urls[-1])
            addresses = vetted_addresses(target.host, target.port, policy, deadline - time.monotonic())
        except (FetchRefused, AddressRefused) as exc:
            hop = f"the redirect from {urls[-2]} to {urls[-1]}: " if len(urls) > 1 else ""
            raise FetchRefused(f"{hop}{exc}") from exc
        except TimeoutError as exc:  # the resolver hung
            raise FetchTimeout(urls[-1]) from exc
        response = get(target, addresses, deadline=deadline, max_bytes=limits.max_bytes)
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or not location:
            return Page(urls, response)
        if len(urls) > MAX_REDIRECTS:
            raise http.client.HTTPException(f"more than {MAX_REDIRECTS} redirects ({' → '.join(urls)} → ...)")
        urls.append(urljoin(urls[-1], location.strip()))


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"only http:// and https:// URLs can be fetched, not {parts.scheme or 'scheme-less'} ones")
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except (UnicodeError, ValueError) as exc:
        raise FetchRefused(f"the URL's host or port is not valid ({exc})") from exc
    if not host:
        raise FetchRefused("the URL has no host")
    shown = f"[{host}]" if ":" in host else host
    default_port = parts.port is None or parts.port == (443 if parts.scheme == "https" else 80)
    path = quote(parts.path or "/", safe=_URL_SAFE) + (f"?{quote(parts.query, safe=_URL_SAFE)}" if parts.query else "")
    return Target(url, parts.scheme, host, port, path, shown if default_port else f"{shown}:{port}")


def _report(page: Page, limits: FetchLimits) -> str:
    response = page.response
    lines = [f"GET {page.urls[-1]} → HTTP {response.status} {response.reason}".rstrip()]
    if len(page.urls) > 1:
        lines.append("Redirected: " + " → ".join(page.urls))
    lines.append(f"Content-Type: {response.headers.get('Content-Type') or '(none)'}")
    size = f"{len(response.body)} bytes"
    if response.truncated:
        size += f" (the body is longer: only the first {limits.max_bytes} bytes were read)"
    lines.append(f"Size: {size}")
    return truncate("\n".join(lines) + "\n\n" + _readable(response, page.urls[-1]))


def _readable(response: Response, url: str) -> str:
    content_type, body = response.headers.get_content_type(), response.body
    if not body:
        return "(empty body)"
    textual = (
        content_type.startswith("text/") or content_type in _TEXT_TYPES or content_type.endswith(("+json", "+xml"))
    )
    if content_type in IMAGE_TYPES:
        return f"({content_type} image)"
    if not textual or b"\0" in body[:1024]:
        return f"({content_type} content, not text: not shown)"
    html = content_type in _HTML_TYPES
    text = body.decode(_charset(response.headers, body if html else b""), errors="replace")
    return html_to_text(text, url) if html else text


def _charset(headers: Message, html: bytes) -> str:
    declared = headers.get_content_charset()
    if declared is None and html:
        match = _META_CHARSET.search(html[:4096])
        declared = match.group(1).decode("ascii") if match else None
    try:
        return codecs.lookup(declared or "utf-8").name
    except LookupError:
        return "utf-8"
