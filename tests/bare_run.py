"""Runs code through the sandbox's runner without namespaces (isolation `none`, the child as the sandbox function
runs it on Lambda), in a fresh interpreter: that backend makes its process non-dumpable, which must not happen to the
test process itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_RUN = """
import ctypes, json, sys
from agent_core.sandbox import runner
from agent_core.sandbox.isolation import FunctionBoundary
from agent_core.sandbox.protocol import SandboxLimits, SandboxRequest
result = runner.run(SandboxRequest(code=sys.stdin.read(), limits=SandboxLimits(timeout_s=10)),
                    isolation=FunctionBoundary("none", clean=False))
print(json.dumps({"result": result.model_dump(mode="json"), "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)}))
"""


def run_bare(code: str) -> dict[str, Any]:
    """The runner's result for `code`, and whether the runner's process stayed dumpable (`dumpable`, 0 or 1)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "common")}
    done = subprocess.run(
        [sys.executable, "-c", _RUN], input=code, capture_output=True, text=True, timeout=60, env=env, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
