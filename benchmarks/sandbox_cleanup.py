"""What a step waits for the cleanup of its run's tree, before and after moving it aside (issue 22, item 4).

A run's code leaves a tree of 62,000 empty directories (flat: one directory holding them all; nested: 250 directories
of 248) in its working directory. Printed for each shape:
- before: the tree removed before the answer (what the runner did: remove_tree of the run's directory);
- local after: the tree moved aside before the answer (one rename), removed by the background thread after it;
- lambda after: moved aside, then the end of the invocation empties the scratch directory within END_CLEANUP_S, and
  each next start within START_CLEANUP_S until nothing is left.
Figures, not a timed test: `.venv/bin/python benchmarks/sandbox_cleanup.py [directories]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "common"))

from agent_core.sandbox import cleanup
from agent_core.sandbox.runner import END_CLEANUP_S, START_CLEANUP_S


def make_run(parent: Path, count: int, nested: bool) -> Path:
    root = Path(tempfile.mkdtemp(prefix="run_python-", dir=parent))
    flood = root / "work" / "flood"
    flood.mkdir(parents=True)
    (root / "main.py").write_text("print('x')\n")
    if nested:
        per = 248
        for i in range(0, count, per):
            group = flood / str(i // per)
            group.mkdir()
            for j in range(min(per, count - i)):
                os.mkdir(group / str(j))
    else:
        for i in range(count):
            os.mkdir(flood / str(i))
    return root


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 62_000
    base = Path(tempfile.mkdtemp(prefix="cleanup-bench-"))
    try:
        for nested in (False, True):
            shape = "nested 250x248" if nested else "flat"
            print(f"{count} empty directories, {shape}:")

            root = make_run(base, count, nested)
            started = time.perf_counter()
            cleanup.remove_tree(root)
            print(f"  before:       the step waits {ms(time.perf_counter() - started)} (removed before the answer)")

            root = make_run(base, count, nested)
            started = time.perf_counter()
            graveyard = cleanup.bury(root)
            waited = time.perf_counter() - started
            assert graveyard is not None
            started = time.perf_counter()
            cleanup.remove_later(graveyard)
            while graveyard.exists():
                time.sleep(0.005)
            background = time.perf_counter() - started
            print(f"  local after:  the step waits {ms(waited)} (moved aside); background removal {ms(background)}")

            scratch = base / "scratch"
            scratch.mkdir()
            root = make_run(scratch, count, nested)
            started = time.perf_counter()
            cleanup.bury(root)
            with cleanup.removal_budget(END_CLEANUP_S):
                cleanup.empty_dir(scratch)
            waited = time.perf_counter() - started
            starts = []
            while any(scratch.iterdir()):
                started = time.perf_counter()
                with cleanup.removal_budget(START_CLEANUP_S):
                    cleanup.empty_dir(scratch)
                starts.append(time.perf_counter() - started)
            print(
                f"  lambda after: the step waits {ms(waited)} at its end (budget {END_CLEANUP_S * 1000:.0f} ms); "
                f"next starts wait {', '.join(ms(s).strip() for s in starts) or 'nothing'} "
                f"(budget {START_CLEANUP_S * 1000:.0f} ms each)"
            )
            scratch.rmdir()
    finally:
        cleanup.remove_tree(base)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    main()
