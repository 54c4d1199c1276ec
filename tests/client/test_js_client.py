"""The JavaScript client (clients/js): installed and built with npm as a user would, then its own tests
(`node --test`) against the dev server, and the built bundle in headless Chromium from another origin."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.http
JS = Path(__file__).resolve().parents[2] / "clients" / "js"


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=JS, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture
def built(js_client: Path) -> Path:
    return js_client / "dist"


def against(live_server: str) -> dict[str, str]:
    return {**os.environ, "AUTOGPT_BASE_URL": live_server.removesuffix("/ap/v1/agent")}


def test_the_built_package_passes_its_tests_against_the_dev_server(built: Path, live_server: str) -> None:
    tested = npm("test", env=against(live_server))

    assert tested.returncode == 0, tested.stdout[-4000:]
    assert "# pass 14" in tested.stdout and "# fail 0" in tested.stdout
    assert (built / "esm" / "index.d.ts").is_file() and (built / "cjs" / "index.js").is_file()


def test_the_bundle_works_in_a_browser_from_another_origin(built: Path, live_server: str, chromium: str) -> None:
    ran = npm("run", "test:browser", env={**against(live_server), "CHROMIUM": chromium})

    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["origin"] not in live_server  # a page of another origin: CORS is what let it through
    assert result["steps"][-1] == "finish" and result["report"].startswith("# Task files report")
    assert result["updates"][0] == "created" and result["updates"][-1] == "completed"
    assert result["refused"] == ["TASK_NOT_FOUND", 404]
