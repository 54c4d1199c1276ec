"""HTML reduced to the text a reader sees, with links kept as [text](url) so the model can follow them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# Never shown to a reader; script and style are the ones that would flood the model with code.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object"})
# Paragraph-like elements get a blank line around them; list items, rows and breaks start a new line.
_PARAGRAPHS = frozenset(
    {
        "address", "article", "aside", "blockquote", "div", "dl", "figcaption", "figure", "footer", "form", "h1",
        "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "table", "title",
        "ul",
    }
)  # fmt: skip
_LINES = frozenset({"br", "dd", "dt", "li", "tr"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_STRAY_SPACE = re.compile(r"^ (?=\S)")


class _Reader(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.parts: list[str] = []
        self.hidden = 0  # depth inside hidden elements
        self.pre = 0
        self.href: str | None = None
        self.link_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        else:
            self._break(tag)
        if tag == "pre":
            self.pre += 1
        elif tag == "a" and not self.hidden:
            self.href, self.link_start = dict(attrs).get("href"), len(self.parts)
        elif tag in ("td", "th") and not self.hidden:
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>: a self-closing tag opens nothing, so it must not enter a hidden element.
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _PARAGRAPHS:
            self.parts.append("\n\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        elif tag == "a" and self.href is not None:
            self._close_link()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data if self.pre else _SPACES.sub(" ", data.replace("\n", " ")))

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in _LINES:
            self.parts.append("\n")

    def _close_link(self) -> None:
        url = urljoin(self.base_url, self.href or "")
        text = "".join(self.parts[self.link_start :]).strip()
        if text and urlsplit(url).scheme in ("http", "https"):
            self.parts[self.link_start :] = [f"[{text}]({url})"]
        self.href = None


def html_to_text(html: str, base_url: str = "") -> str:
    reader = _Reader(base_url)
    reader.feed(html)
    reader.close()
    # Collapsed text leaves at most one stray leading space; deeper indentation comes from <pre> and stays.
    lines = (_STRAY_SPACE.sub("", line.rstrip()) for line in "".join(reader.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
