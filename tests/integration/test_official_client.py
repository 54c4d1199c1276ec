"""An unmodified official Agent Protocol client against the dev server: tasks, pagination, artifacts (upload,
list, download through the redirect), steps to `is_last`. Every response must parse into the client's models."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / ".venv-compat"


@pytest.fixture(scope="session")
def official_client_python() -> Path:
    """A venv holding requirements-compat.txt, made once and kept (the client needs pydantic 1, we use 2)."""
    python = COMPAT / "bin" / "python"
    stamp = COMPAT / ".installed"
    wanted = (ROOT / "requirements-compat.txt").read_text()
    if not (stamp.exists() and stamp.read_text() == wanted):
        venv.create(COMPAT, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements-compat.txt")], check=True
        )
        stamp.write_text(wanted)
    return python


def test_official_client_runs_a_task_end_to_end(official_client_python: Path, live_server: str) -> None:
    host = live_server.removesuffix("/ap/v1/agent")
    run = subprocess.run(
        [str(official_client_python), str(ROOT / "tests/compat/official_client.py"), host],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "every response parsed" in run.stdout
