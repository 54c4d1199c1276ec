"""The JavaScript client (clients/js): installed and built with npm as a user would, then its own tests
(`node --test`) against the dev server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.http
JS = Path(__file__).resolve().parents[2] / "clients" / "js"


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=JS, capture_output=True, text=True, timeout=600, env=env)


def test_the_built_package_passes_its_tests_against_the_dev_server(live_server: str) -> None:
    installed = npm("ci", "--no-audit", "--no-fund")
    assert installed.returncode == 0, installed.stderr[-2000:]
    built = npm("run", "build")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]

    tested = npm("test", env={**os.environ, "AUTOGPT_BASE_URL": live_server.removesuffix("/ap/v1/agent")})

    assert tested.returncode == 0, tested.stdout[-4000:]
    assert "# pass 6" in tested.stdout and "# fail 0" in tested.stdout
    assert (JS / "dist" / "esm" / "index.d.ts").is_file() and (JS / "dist" / "cjs" / "index.js").is_file()
