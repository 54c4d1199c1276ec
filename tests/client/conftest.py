"""Fixtures of the client tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tools import require

JS = Path(__file__).resolve().parents[2] / "clients" / "js"


@pytest.fixture(scope="session")
def js_client() -> Path:
    """clients/js installed (`npm ci`) and built with npm, as the README says; once per session, whichever test
    asks first."""
    require(None if shutil.which("node") and shutil.which("npm") else "no node and npm here (the JS client needs them)")
    for args in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        done = subprocess.run(["npm", *args], cwd=JS, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"npm {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return JS
