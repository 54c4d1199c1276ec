"""Tools some tests need from the machine (bubblewrap, Chromium, curl). Where one is missing, a test that needs it
is skipped locally, with the reason; in CI (`CI=true`) it fails instead, so a green CI run has really tested the
sandbox, the browser and the documented curl commands."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require(missing: str | None) -> None:
    """Skips (locally) or fails (in CI) the calling test when `missing` names what is not there."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"{missing} (CI=true: a missing tool fails the run instead of skipping tests)", pytrace=False)
    pytest.skip(missing)


def bubblewrap_missing() -> str | None:
    if not sys.platform.startswith("linux"):
        return "bubblewrap is Linux's"
    from agent_core.sandbox.isolation import Bubblewrap

    reason = Bubblewrap().unavailable()
    return None if reason is None else f"bubblewrap cannot run here (make installs it): {reason}"


def chromium_missing() -> str | None:
    found = shutil.which("chromium")
    return None if found else "no chromium here (make test installs Debian's: scripts/install_chromium.sh)"


def curl_missing() -> str | None:
    return None if shutil.which("curl") else "no curl here (the documented examples use curl)"
