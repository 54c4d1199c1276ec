"""The README's API examples, run as written: every fenced shell block that speaks to the API (`$B`) is executed
by bash against the dev server, with real ids in `$TASK_ID` and `$STEP_ID` and the files it names in its working
directory. Every request it makes must succeed, so the examples cannot drift from the API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.http
README = Path(__file__).resolve().parents[2] / "README.md"
# A curl line that may be refused as the README says, and why (the status it may answer).
MAY_REFUSE = {
    # the run may have ended by itself before the cancel arrives: 400, "no run is in progress"
    "/cancel": {400},
}


def _api_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text[: found.start()].count("\n") + 1, found.group(1))
        for found in re.finditer(r"```(?:sh|bash)\n(.*?)```", text, re.S)
        if "$B" in found.group(1)
    ]


BLOCKS = _api_blocks()


def _requests(stderr: str) -> list[tuple[int, str, str]]:
    return [(int(code), method, url) for code, method, url in re.findall(r"^HTTP (\d+) (\S+) (\S+)$", stderr, re.M)]


@pytest.mark.usefixtures("curl")
@pytest.mark.parametrize(
    ("line", "block"), _api_blocks(), ids=lambda value: f"README.md:{value}" if isinstance(value, int) else ""
)
def test_readme_example_runs_as_written(live_server: str, tmp_path: Path, line: int, block: str) -> None:
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
        env={"PATH": "/usr/bin:/bin", "TASK_ID": task_id, "STEP_ID": step_id, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, f"README.md:{line}: {done.stderr[-2000:]}"
    made = _requests(done.stderr)
    assert made, f"README.md:{line} made no request"
    for code, method, url in made:
        allowed = next((codes for part, codes in MAY_REFUSE.items() if part in url), set())
        assert code < 400 or code in allowed, f"README.md:{line}: {method} {url} answered {code}\n{done.stdout[-2000:]}"
