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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_core.sandbox.cleanup import empty_dir, remove_tree
from agent_core.sandbox.isolation import NOBODY, Bubblewrap, FunctionBoundary, choose

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


# Root ignores mode bits, so as root the code below becomes nobody first (after its imports: the interpreter may be
# under root's 0700 home).
DROP = """
import json, logging, os, sys
from pathlib import Path
from agent_core.sandbox.cleanup import empty_dir
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
"""
# empty_dir as the sandbox function's unprivileged user runs it: the scratch directory's entries, the logged failures,
# and what it returned.
EMPTY_AS_USER = """
logging.basicConfig(level=logging.ERROR, format="LOG %(message)s")
left = empty_dir(Path(sys.argv[1]))
print(json.dumps({"left": left, "entries": sorted(os.listdir(sys.argv[1]))}))
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory nobody owns, in a place nobody can reach (pytest's tmp_path is root's 0700)."""
    path = Path(tempfile.mkdtemp(prefix="cleanup-test-"))
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        remove_tree(path)  # as root, whatever the test left


def as_user(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DROP + code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "layers" / "common")},
        check=False,
    )


def test_cleanup_opens_up_mode_000_directories_at_any_depth(scratch: Path) -> None:
    build = (
        "os.chdir(sys.argv[1])\n"
        "os.makedirs('a/b/c/d')\nopen('a/b/c/d/f', 'w').write('x')\nopen('a/b/c/g', 'w').write('x')\n"
        "for d in ('a/b/c/d', 'a/b/c', 'a/b'):\n    os.chmod(d, 0)\n"
        "os.makedirs('top000/x')\nos.chmod('top000/x', 0)\nos.chmod('top000', 0)\n"
    )
    made = as_user(build, str(scratch))
    assert made.returncode == 0, made.stderr

    done = as_user(EMPTY_AS_USER, str(scratch))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"left": [], "entries": []}
    assert "LOG" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make what the unprivileged user cannot remove")
def test_cleanup_never_raises_and_names_what_it_could_not_remove(scratch: Path) -> None:
    (scratch / "locked").mkdir()
    (scratch / "locked" / "root-file").write_text("x")  # root's, in root's 0755 directory: nobody cannot remove it
    (scratch / "gone" / "deep").mkdir(parents=True)
    for path in (scratch / "gone", scratch / "gone" / "deep"):
        os.chown(path, NOBODY, NOBODY)
    (scratch / "gone").chmod(0)

    done = as_user(EMPTY_AS_USER, str(scratch))

    assert done.returncode == 0, done.stderr  # no exception
    assert json.loads(done.stdout.splitlines()[-1]) == {"left": ["locked"], "entries": ["locked"]}
    assert "LOG cleanup: could not remove" in done.stderr and "locked" in done.stderr


def test_the_function_boundary_answers_when_cleanup_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from agent_core.sandbox import cleanup

    def refuse(*args: object) -> list[str]:
        raise PermissionError("taken")

    monkeypatch.setattr(cleanup, "end_other_processes", refuse)  # never the real one here: it would end our user's
    monkeypatch.setattr(cleanup, "remove_tree", refuse)
    monkeypatch.setattr(cleanup, "protect_parent_memory", lambda: False)  # not for the test process
    (tmp_path / "stuck").mkdir()
    boundary = FunctionBoundary("lambda", clean=True, scratch=tmp_path)

    boundary.start_invocation()
    boundary.end_invocation()

    assert "could not remove" in caplog.text and "stuck" in caplog.text
    assert "ending the user's other processes failed" in caplog.text
