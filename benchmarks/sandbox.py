"""What isolating run_python costs: the median and p95 of a trivial script, run N times each way, in one run:

- `none`: the child process with its limits and nothing else (run_python before isolation);
- `bubblewrap`: the same child under bwrap (namespaces, read-only system, fresh /tmp), as the dev server runs it;
- `run_python tool`: the whole tool path as the steps function takes it: the request packed, a Lambda invoke of the
  sandbox function (moto in-process, routed to its real handler), bubblewrap, the result unpacked.

Usage: python -m benchmarks.sandbox [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from devserver.template import ROOT, Template

CODE = "print(sum(range(1000)))"


def _timed(run: Callable[[], object], repeat: int) -> list[float]:
    run()  # warm: imports, the bwrap probe, moto's first request
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox", description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "layers" / "common"))
    template = Template()
    os.environ.update({k: v for k, v in template.environment().items() if k not in os.environ})
    os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

    from moto import mock_aws

    from agent_core.agent.tools.base import ToolContext
    from agent_core.agent.tools.python_exec import RunPython
    from agent_core.sandbox import runner
    from agent_core.sandbox.isolation import choose
    from agent_core.sandbox.protocol import SandboxLimits, SandboxRequest
    from devserver.lambdas import route_invokes
    from devserver.resources import create_resources

    request = SandboxRequest(code=CODE, limits=SandboxLimits(timeout_s=10))
    rows: list[tuple[str, list[float]]] = []
    for mode in ("none", "bubblewrap"):
        isolation = choose(mode)
        why = isolation.unavailable()
        if why is not None:
            print(f"{mode}: skipped ({why[:80]}...)")
            continue
        rows.append((mode, _timed(lambda isolation=isolation: runner.run(request, isolation=isolation), args.repeat)))

    class NoFiles:
        def list(self) -> list[dict[str, object]]:
            return []

        def read(self, relative_path: str) -> bytes:
            raise FileNotFoundError(relative_path)

        def write(self, relative_path: str, data: bytes, content_type: str | None = None) -> dict[str, object]:
            raise AssertionError("nothing is written")

    with mock_aws():
        create_resources(template)
        route_invokes(template)
        tool = RunPython(SandboxLimits(timeout_s=10))
        context = ToolContext("task", "step", NoFiles())
        rows.append(("run_python tool (invoke)", _timed(lambda: tool.run(context, {"code": CODE}), args.repeat)))

    base = statistics.median(rows[0][1])
    lines = [
        f"run_python on a trivial script, {args.repeat} runs each (ms)",
        f"{'path':32}{'median':>10}{'p95':>10}{'vs none':>10}",
    ]
    for name, samples in rows:
        median = statistics.median(samples)
        p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
        lines.append(f"{name:32}{median:10.1f}{p95:10.1f}{median - base:+10.1f}")
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
