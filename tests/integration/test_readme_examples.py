"""The documentation's API examples, run as written: every fenced shell block of README.md and docs/*.md that speaks
to the API (`$B`) is executed by bash against the dev server, with real ids in `$TASK_ID` and `$STEP_ID` and the
files it names in its working directory. Every request it makes must succeed, so the examples cannot drift from the
API. And the pages' links hold: every relative link names a file that exists and, with `#`, one of its headings."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A curl line that may be refused as the page says, and why (the status it may answer).
MAY_REFUSE = {
    # the run may have ended by itself before the cancel arrives: 400, "no run is in progress"
    "/cancel": {400},
}
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _api_blocks() -> list[tuple[str, int, str]]:
    """(page, line of the opening fence, the block's text) for every shell block that uses `$B`."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        found += [
            (_name(page), text[: block.start()].count("\n") + 1, block.group(1))
            for block in re.finditer(r"^```(?:sh|bash)\n(.*?)^```", text, re.S | re.M)
            if "$B" in block.group(1)
        ]
    return found


BLOCKS = _api_blocks()


def _requests(stderr: str) -> list[tuple[int, str, str]]:
    return [(int(code), method, url) for code, method, url in re.findall(r"^HTTP (\d+) (\S+) (\S+)$", stderr, re.M)]


def test_the_examples_are_found() -> None:
    """The pages that show the API with curl have their blocks picked up (a changed fence would drop them)."""
    pages = {page for page, _, _ in BLOCKS}
    assert {"README.md", "docs/api.md", "docs/agent.md"} <= pages, pages


@pytest.mark.http
@pytest.mark.usefixtures("curl")
@pytest.mark.parametrize(("page", "line", "block"), BLOCKS, ids=[f"{page}:{line}" for page, line, _ in BLOCKS])
def test_example_runs_as_written(live_server: str, tmp_path: Path, page: str, line: int, block: str) -> None:
    where = f"{page}:{line}"
    root = live_server.removesuffix("/ap/v1/agent")
    task_id = httpx.post(f"{live_server}/tasks", json={"input": "an example's task"}).json()["task_id"]
    step_id = httpx.post(f"{live_server}/tasks/{task_id}/steps", json={}).json()["step_id"]
    (tmp_path / "sales.csv").write_text("month,amount\nJan,10\nFeb,32\n")
    with (tmp_path / "big.parquet").open("wb") as big:
        big.truncate(52_428_800)  # the size the example's ticket announces
    script = "\n".join(
        [
            "set -euo pipefail",
            # each request's status, method and URL on stderr; the example's own output is left as it is
            "curl() { command curl --write-out '%{stderr}HTTP %{http_code} %{method} %{url_effective}\\n' \"$@\"; }",
            f"B={live_server}",
            block.replace("http://localhost:8000", root),
        ]
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        # The operator's key the keys examples send (the dev server here is open: any key passes).
        env={
            "PATH": "/usr/bin:/bin",
            "TASK_ID": task_id,
            "STEP_ID": step_id,
            "HOME": str(tmp_path),
            "ADMIN_API_KEY": "adm",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, f"{where}: {done.stderr[-2000:]}"
    made = _requests(done.stderr)
    assert made, f"{where} made no request"
    for code, method, url in made:
        allowed = next((codes for part, codes in MAY_REFUSE.items() if part in url), set())
        assert code < 400 or code in allowed, f"{where}: {method} {url} answered {code}\n{done.stdout[-2000:]}"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose, re.M):
        slug, n = _slug(heading), 1
        while slug in anchors:  # a repeated heading gets -1, -2, ...
            slug, n = f"{_slug(heading)}-{n}", n + 1
        anchors.add(slug)
    return anchors


def _links(page: Path) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text(encoding="utf-8")))
    return re.findall(r"\]\(([^)\s]+)\)", prose)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_links_between_pages_hold(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {_name(target)}")
    assert not broken, f"{_name(page)}: " + "; ".join(broken)


def test_the_readme_links_every_docs_page() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(ROOT / "README.md")}
    unlinked = [_name(page) for page in PAGES[1:] if page not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"
