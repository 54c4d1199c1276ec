"""Leaving nothing behind: trees of any shape removed, and the sandbox function's clean start and end.

Ending "every other process of the user" is what the sandbox function does on Lambda, where nothing else of its user
runs. Here it runs inside a PID namespace of its own (bubblewrap, as the tests' harness), so that "every other
process" is the test's own processes and never the machine's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_core.sandbox.cleanup import empty_dir, remove_tree
from agent_core.sandbox.isolation import Bubblewrap, choose

ROOT = Path(__file__).resolve().parents[2]
needs_bwrap = pytest.mark.usefixtures("bubblewrap")


def test_remove_tree_takes_a_tree_deeper_than_python_can_recurse(tmp_path: Path) -> None:
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(2_500):  # deeper than PATH_MAX allows by path, and than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)

    remove_tree(top)

    assert not top.exists()


def test_remove_tree_takes_wide_trees_and_taken_permissions(tmp_path: Path) -> None:
    top = tmp_path / "wide"
    (top / "many").mkdir(parents=True)
    for i in range(5_000):
        (top / "many" / str(i)).touch()
    locked = top / "locked" / "inner"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    locked.chmod(0)
    (top / "locked").chmod(0)

    remove_tree(top)

    assert not top.exists()


def test_remove_tree_never_follows_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    top = tmp_path / "run"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "link").symlink_to(outside)
    (top / "link").symlink_to(outside / "keep.txt")

    remove_tree(top)

    assert not top.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_empty_dir_keeps_the_directory(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "f").write_text("x")

    empty_dir(tmp_path)

    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_isolation_is_chosen_by_setting_and_by_where_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    assert choose("auto").name == "bubblewrap"
    assert choose("none").name == "none"
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    assert choose("auto").name == "lambda" and choose("").name == "lambda"
    with pytest.raises(ValueError, match="SANDBOX_ISOLATION"):
        choose("docker")


def test_bubblewrap_missing_is_refused_with_how_to_get_it() -> None:
    missing = Bubblewrap()
    missing.bwrap = None

    message = missing.unavailable()

    assert message is not None
    assert "apt-get install bubblewrap" in message and "SANDBOX_ISOLATION=none" in message


# Runs in a PID namespace, with a private scratch directory standing for Lambda's /tmp (SCRATCH, also TMPDIR):
# starts what an earlier run could have left (a setsid process, a double-forked one, files), then does what the
# sandbox function does, and reports what is left.
HARNESS = r"""
import json, os, subprocess, sys, time
from pathlib import Path
from agent_core.sandbox.isolation import FunctionBoundary
from agent_core.sandbox import runner
from agent_core.sandbox.protocol import SandboxLimits, SandboxRequest

def others():
    mine = {os.getpid(), 1}
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine
                  and open(f"/proc/{p}/stat").read().split(")")[1].split()[0] not in "ZX")

scratch = Path(os.environ["SCRATCH"])
lambda_env = FunctionBoundary("lambda", clean=True, scratch=scratch)
report = {}
subprocess.Popen(["sleep", "60"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "60"])
    os._exit(0)
os.wait()
(scratch / "left-by-an-earlier-run").write_text("secret")
(scratch / "dir" / "sub").mkdir(parents=True)
time.sleep(0.2)
report["before"] = len(others())
lambda_env.start_invocation()
time.sleep(0.2)
report["after_start"] = {"processes": others(), "tmp": os.listdir(scratch)}

code = '''
import gc, os
for o in gc.get_objects():
    if callable(o) and getattr(o, "__name__", "") == "_guard":
        o.__code__ = (lambda event, args: None).__code__
import subprocess
subprocess.Popen(["sleep", "60"], start_new_session=True)
open(os.environ["TMPDIR"] + "/../../note", "w").write("x")
print("left things behind")
'''
result = runner.run(SandboxRequest(code=code, limits=SandboxLimits(timeout_s=5)), isolation=lambda_env)
time.sleep(0.2)
report["run"] = result.stdout.text + result.stderr.text
report["after_run"] = {"processes": others(), "tmp": os.listdir(scratch)}
print(json.dumps(report))
"""


@needs_bwrap
def test_the_sandbox_function_starts_and_ends_every_invocation_clean(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "common"), "SCRATCH": str(scratch), "TMPDIR": str(scratch)}
    harness = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(scratch), "--unshare-pid", "--proc", "/proc"]
    done = subprocess.run(
        [*harness, "--die-with-parent", "--", sys.executable, "-c", HARNESS],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["before"] >= 2  # the leftovers were running
    assert report["after_start"] == {"processes": [], "tmp": []}
    assert "left things behind" in report["run"]
    assert report["after_run"] == {"processes": [], "tmp": []}
