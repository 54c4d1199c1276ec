"""Cold start: how long each function's handler module takes to import in a fresh interpreter, next to a bare
FastAPI + Mangum "hello" app measured in the same run (what our code and dependencies add on top of the framework).

Functions, handlers, layers and environment variables are read from template.yaml, so new functions are picked up
without touching this file. Each sample is a new `python` process with the function's code directory and its
layers on sys.path (as Lambda's /var/task and /opt/python) and the template's environment; the targets are
interleaved run by run so drift hits them alike. One warm-up run per target is not counted (it writes .pyc files,
which a deployed package also ships or caches after the first init).

Usage: python -m benchmarks.cold_start [--runs 7] [--no-breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devserver.template import ROOT, Template

# Runs in the fresh interpreter: imports the module, reads the handler attribute, reports the time and module count.
PROBE = """
import importlib, json, sys, time
paths, module, attr = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[:0] = paths
started = time.perf_counter()
handler = getattr(importlib.import_module(module), attr)
elapsed = time.perf_counter() - started
assert callable(handler)
print(json.dumps({"import_ms": elapsed * 1000, "modules": len(sys.modules)}))
"""

HELLO_APP = '''"""The baseline: FastAPI and Mangum with one route, nothing else."""
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


handler = Mangum(app, lifespan="off")
'''


@dataclass
class Target:
    name: str
    handler: str  # module.attribute
    paths: list[str]
    env: dict[str, str]
    label: str
    import_ms: list[float] = field(default_factory=list)
    process_ms: list[float] = field(default_factory=list)
    modules: int = 0

    def _probe(self, *flags: str) -> subprocess.CompletedProcess[str]:
        module, attr = self.handler.rsplit(".", 1)
        done = subprocess.run(
            [sys.executable, *flags, "-c", PROBE, json.dumps(self.paths), module, attr],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: import failed\n{done.stderr}")
        return done

    def run(self) -> None:
        started = time.perf_counter()
        done = self._probe()
        wall = (time.perf_counter() - started) * 1000
        result = json.loads(done.stdout.strip().splitlines()[-1])
        self.import_ms.append(result["import_ms"])
        self.process_ms.append(wall)
        self.modules = result["modules"]

    def packages(self) -> Counter[str]:
        """Import self time (ms) by top-level package, from one run under `python -X importtime`. A standard
        library module counts for the package that imported it (multiprocessing for s3transfer, say)."""
        lines = [x for x in self._probe("-X", "importtime").stderr.splitlines() if x.startswith("import time:")]
        module = self.handler.rsplit(".", 1)[0]
        spent: Counter[str] = Counter()
        stack: list[str] = []  # top-level names from the root import down to the current one
        for line in reversed(lines):  # the output is post-order: reversed, a parent comes before its children
            own, _, name = line.removeprefix("import time:").split("|")
            if not own.strip().isdigit():
                continue  # the header
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            stack = [*stack[:depth], name.strip().split(".")[0]]
            owner = next((n for n in reversed(stack) if n not in sys.stdlib_module_names and n != module), "stdlib")
            spent[owner] += int(own) / 1000
        return spent


def _base_env() -> dict[str, str]:
    """A Lambda-like environment: no credentials, no endpoint overrides, only what the interpreter needs."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", PYTHONHASHSEED="0")
    return env


def _variables(template: Template, props: dict[str, Any]) -> dict[str, str]:
    globals_ = ((template.doc.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    merged = {**(globals_.get("Variables") or {}), **((props.get("Environment") or {}).get("Variables") or {})}
    resolved = {k: template.resolve(v) for k, v in merged.items()}
    return {k: str(v) for k, v in resolved.items() if v is not None}


def _layer_paths(template: Template, props: dict[str, Any]) -> list[str]:
    layers = props.get("Layers") or ((template.doc.get("Globals") or {}).get("Function") or {}).get("Layers") or []
    paths = []
    for layer in layers:
        name = layer.get("Ref") if isinstance(layer, dict) else None
        content = ((template.resources.get(name or "") or {}).get("Properties") or {}).get("ContentUri")
        if isinstance(content, str):
            paths.append(str(ROOT / content))
    return paths


def function_targets(template: Template | None = None) -> list[Target]:
    """One target per function of the template that has Python code (CodeUri + Handler)."""
    template = template or Template()
    targets = []
    for name, props in template.of_type("AWS::Serverless::Function").items():
        if not isinstance(props.get("CodeUri"), str) or not props.get("Handler"):
            continue
        code = ROOT / props["CodeUri"]
        targets.append(
            Target(
                name=name,
                handler=props["Handler"],
                paths=[str(code), *_layer_paths(template, props)],
                env={**_base_env(), **_variables(template, props)},
                label=f"{props['CodeUri'].rstrip('/')}/{props['Handler']}",
            )
        )
    return targets


def baseline_target(directory: Path) -> Target:
    (directory / "hello.py").write_text(HELLO_APP)
    return Target(
        name="bare FastAPI+Mangum",
        handler="hello.handler",
        paths=[str(directory)],
        env=_base_env(),
        label="hello.handler (1 route)",
    )


def measure(targets: list[Target], runs: int) -> None:
    for target in targets:  # warm-up: bytecode caches, file system caches
        target.run()
        target.import_ms.clear()
        target.process_ms.clear()
    for _ in range(runs):
        for target in targets:
            target.run()


def report(targets: list[Target], runs: int) -> str:
    baseline = targets[0]
    base_import = statistics.median(baseline.import_ms)
    name_w = max(len("function"), *(len(t.name) for t in targets))
    label_w = max(len("handler"), *(len(t.label) for t in targets))
    header = (
        f"{'function':<{name_w}} {'handler':<{label_w}} {'import ms':>10} {'vs bare':>9} "
        f"{'min-max ms':>15} {'process ms':>11} {'modules':>8}"
    )
    lines = [
        f"Cold start: handler import in a fresh interpreter, median of {runs} runs "
        f"(Python {sys.version.split()[0]}, {sys.platform})",
        header,
        "-" * len(header),
    ]
    for target in targets:
        median = statistics.median(target.import_ms)
        delta = "-" if target is baseline else f"{median - base_import:+.1f}"
        spread = f"{min(target.import_ms):.1f}-{max(target.import_ms):.1f}"
        lines.append(
            f"{target.name:<{name_w}} {target.label:<{label_w}} {median:>10.1f} {delta:>9} {spread:>15} "
            f"{statistics.median(target.process_ms):>11.1f} {target.modules:>8}"
        )
    lines.append("import ms: time of `import <module>` + reading the handler; process ms: interpreter start to exit.")
    return "\n".join(lines)


def breakdown(targets: list[Target], runs: int = 3, top: int = 6) -> str:
    """Where each target's import time goes: self time by top-level package, median of a few runs."""
    name_w = max(len(t.name) for t in targets)
    lines = [
        f"Where it goes (python -X importtime, median of {runs} runs): ms by top-level package, with the standard "
        f"library modules it imports; top {top}"
    ]
    for target in targets:
        samples = [target.packages() for _ in range(runs)]
        spent = Counter({name: statistics.median(s.get(name, 0.0) for s in samples) for name in set().union(*samples)})
        parts = ", ".join(f"{name} {ms:.0f}" for name, ms in spent.most_common(top))
        lines.append(f"  {target.name:<{name_w}} {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="samples per target (default 7)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false", help="skip the per-package table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        targets = [baseline_target(Path(tmp)), *function_targets()]
        measure(targets, args.runs)
        table = report(targets, args.runs)
        if args.breakdown:
            table += "\n\n" + breakdown(targets)
    print(table)
    return table


if __name__ == "__main__":
    main()
