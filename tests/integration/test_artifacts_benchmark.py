"""benchmarks/artifacts keeps working (run small, in a process of its own: it starts a dev server in-process)."""

from __future__ import annotations

import subprocess
import sys

from devserver.template import ROOT


def test_artifacts_benchmark_prints_a_row_per_size_and_path() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.artifacts", "--sizes", "0.01,5", "--repeat", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines()[3:]]
    # 10 kB fits the API's payload limit, 5 MB does not: only the presigned path for it
    assert [(r[0], r[2]) for r in rows] == [("0.01", "API"), ("0.01", "presigned"), ("5", "presigned")]
    assert all(float(r[-1]) > 0 for r in rows)
