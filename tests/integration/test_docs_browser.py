"""/docs in a real browser (headless Chromium), served as a deployed stage serves it, under a prefix: Swagger UI loads
from the API alone (no CDN), and its "Try it out" reaches the API that served the document."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.http
ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "clients" / "js"


@pytest.fixture(scope="module")
def playwright_core() -> Path:
    """The JavaScript client's dev dependencies (playwright-core drives Chromium), installed as its tests do."""
    if not (JS / "node_modules" / "playwright-core").is_dir():
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True)
        assert installed.returncode == 0, installed.stderr[-2000:]
    return JS / "package.json"


def test_swagger_ui_tries_the_api_out_under_a_stage_prefix(live_server: str, chromium: str, playwright_core: Path):
    env = {**os.environ, "LIVE": live_server.removesuffix("/ap/v1/agent"), "CHROMIUM": chromium}
    ran = subprocess.run(
        ["node", str(Path(__file__).with_name("docs_browser.mjs"))],
        env={**env, "JS_PACKAGE": str(playwright_core)},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["outside"] == []  # nothing fetched from any other host
    assert result["requestUrl"].startswith("https://api.example/prod/ap/v1/agent/tasks"), result
    assert result["status"] == "200", result
