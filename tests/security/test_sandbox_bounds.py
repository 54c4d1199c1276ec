"""A run is bounded as a whole, not per process or per uid (issue 22, item 3): its disk, its processes, its memory.

Each test runs code through the sandbox's real path (the runner, bubblewrap, the child with its limits and filter),
and reads the evidence on the host. A bound the host does not allow (measured once by `isolation.host_bounds`, the
kernel's own refusal in the reason) skips only the assertion that needs it, saying so; a missing bubblewrap fails in
CI (the `bubblewrap` fixture). Waits are for markers the code writes and for the run's own end, each bounded.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from agent_core.sandbox import isolation, runner
from agent_core.sandbox.process import MAX_PROCESSES
from agent_core.sandbox.protocol import SandboxFile, SandboxLimits, SandboxRequest, SandboxResult
from tests.security.test_sandbox_escapes import DISARM

pytestmark = pytest.mark.usefixtures("bubblewrap")
T = TypeVar("T")

# Tells the test it has reached a point (a file appearing at once, by rename, in /work), then waits at most 15 s for
# the test's go-ahead (a file the test creates there).
SIGNAL = r"""
import errno, os, time
def reached(name, text=""):
    open(name + ".part", "w").write(text)
    os.rename(name + ".part", name)
def released():
    deadline = time.monotonic() + 15
    while not os.path.exists("release") and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released" if os.path.exists("release") else "not released"
"""


def _bounds() -> isolation.HostBounds:
    if not isolation._is_root():
        pytest.skip("the per-run tmpfs and cgroup need root (bubblewrap as a user keeps the per-process limits)")
    return isolation.host_bounds()


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runs' directories (the runner's tempfile.mkdtemp) under this test's own directory."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    return runs


def run(code: str, *, memory_mb: int = 512, timeout_s: float = 20) -> SandboxResult:
    limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    # The audit hook switched off first, as an attacker would: what holds is the operating system's bounds.
    return runner.run(SandboxRequest(code=DISARM + code, limits=limits), isolation=isolation.Bubblewrap())


class Background:
    """A run on a thread of its own, as a second sandbox invocation would be."""

    def __init__(self, code: str) -> None:
        self.result: SandboxResult | None = None
        self.thread = threading.Thread(target=self._run, args=(code,))
        self.thread.start()

    def _run(self, code: str) -> None:
        self.result = run(code)

    def ended(self) -> bool:
        return not self.thread.is_alive()

    def join(self) -> SandboxResult:
        self.thread.join(timeout=40)
        assert self.result is not None, "the background run did not end within 40 s"
        return self.result


def wait_for(find: Callable[[], T | None], what: str, *, unless: Callable[[], bool], timeout_s: float = 30) -> T:
    deadline = time.monotonic() + timeout_s
    while (found := find()) is None:
        assert not unless() and time.monotonic() < deadline, f"no sign of {what}"
        time.sleep(0.02)
    return found


@pytest.fixture
def held() -> Iterator[list[Background]]:
    runs: list[Background] = []
    yield runs
    for background in runs:  # whatever happened, no run outlives its test
        background.thread.join(timeout=40)


def _mount_of(path: Path) -> str | None:
    """The file system type mounted at `path`, per this process's mount table; None when none is."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return fields[fields.index("-") + 1]
    return None


def test_work_is_a_bounded_tmpfs_and_the_hosts_disk_is_untouched(run_dirs: Path, held: list[Background]) -> None:
    bounds = _bounds()
    if bounds.disk_why is not None:
        pytest.skip(f"this host allows no tmpfs of our own for /work (measured: {bounds.disk_why})")
    limit = isolation.disk_bytes()
    code = (
        SIGNAL
        + r"""
written, failure = 0, "none"
try:
    for i in range(10_000):
        with open(f"big-{i}", "wb") as f:
            f.write(b"x" * (1 << 20))
        written += 1 << 20
except OSError as exc:
    failure = errno.errorcode.get(exc.errno, str(exc.errno))
files, inode_failure = 0, "none"
try:
    for i in range(1_000_000):
        os.close(os.open(f"empty-{i}", os.O_CREAT | os.O_WRONLY))
        files += 1
except OSError as exc:
    inode_failure = errno.errorcode.get(exc.errno, str(exc.errno))
os.remove("big-0"); os.remove("empty-0")  # room for the marker
reached("full", f"{written} {failure} {files} {inode_failure}")
print("done", released())
"""
    )
    host_disk = os.statvfs(run_dirs)
    before = host_disk.f_bfree * host_disk.f_frsize
    writer = Background(code)
    held.append(writer)
    full = wait_for(lambda: next(run_dirs.glob("*/work/full"), None), "the run's disk full", unless=writer.ended)
    written, failure, files, inode_failure = full.read_text().split()

    # While the code holds its disk full: it is a tmpfs mounted on the run's directory, not the host's disk.
    assert _mount_of(full.parent) == "tmpfs"
    host_disk = os.statvfs(run_dirs)
    grown = before - host_disk.f_bfree * host_disk.f_frsize
    (full.parent / "release").touch()
    result = writer.join()

    assert failure == "ENOSPC" and inode_failure == "ENOSPC", full.read_text()
    assert limit - (2 << 20) <= int(written) <= limit
    assert int(files) < isolation.WORK_INODES
    # 64 MB were written in the run; the host's file system did not take them (what else runs here may write some).
    assert grown < limit - (16 << 20), f"the host's disk lost {grown} bytes while the run held {written}"
    assert result.exit_code == 0 and "done released" in result.stdout.text, result


def test_work_keeps_staged_files_and_returns_outputs(run_dirs: Path) -> None:
    # The tmpfs gets the task's files copied in, and output/ is read from it as from a plain directory.
    _bounds()
    code = (
        "import os\n"
        "data = open('in/data.txt').read()\n"
        "os.makedirs('output/sub', exist_ok=True)\n"
        "open('output/sub/copy.txt', 'w').write(data.upper())\n"
        "os.symlink('/etc/passwd', 'output/link')\n"
        "open(b'output/bad-\\xff', 'wb').write(b'x')\n"
    )
    files = [SandboxFile.of("in/data.txt", b"hello"), SandboxFile.of("output/kept.txt", b"same")]
    request = SandboxRequest(code=code, files=files, limits=SandboxLimits())
    result = runner.run(request, isolation=isolation.Bubblewrap())

    assert result.exit_code == 0, result
    assert {f.path: f.data for f in result.outputs} == {"output/sub/copy.txt": b"HELLO"}
    assert any("output/link (not a regular file)" in line for line in result.skipped_outputs), result.skipped_outputs
    assert any("not valid UTF-8" in line for line in result.skipped_outputs), result.skipped_outputs


BOMB = (
    SIGNAL
    + r"""
r, w = os.pipe()
held, failure = 0, "none"
for _ in range(500):
    try:
        pid = os.fork()
    except OSError as exc:
        failure = errno.errorcode.get(exc.errno, str(exc.errno))
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # holds its place until the bomb ends (EOF) or the run is torn down
        os._exit(0)
    held += 1
reached("holding", f"{held} {failure}")
print("bomb held", held, failure, released())
"""
)

NEIGHBOUR = r"""
import os
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "neighbour-ok"
print(fork())
"""


def test_a_fork_bomb_in_one_run_leaves_a_concurrent_run_able_to_fork(run_dirs: Path, held: list[Background]) -> None:
    bounds = _bounds()
    bomb = Background(BOMB)
    held.append(bomb)
    holding = wait_for(lambda: next(run_dirs.glob("*/work/holding"), None), "the bomb at its limit", unless=bomb.ended)
    count, failure = holding.read_text().split()

    neighbour = run(NEIGHBOUR)  # while the bomb holds every process it may
    (holding.parent / "release").touch()
    bombed = bomb.join()

    assert failure == "EAGAIN" and int(count) < MAX_PROCESSES, holding.read_text()
    assert neighbour.exit_code == 0 and "neighbour-ok" in neighbour.stdout.text, neighbour
    assert "bomb held" in bombed.stdout.text and "released" in bombed.stdout.text, bombed
    if bounds.cgroups is not None:  # the run's cgroup is gone with it
        assert not list(bounds.cgroups.pids.glob(f"{isolation.CGROUP_PREFIX}*"))


# Eight processes each try to hold 64 MB at once, 512 MB in all, in a run allowed 128 MB: each process is within its
# own address-space limit, so only a bound on the run as a whole stops them.
HOG = r"""
import os, select, time
report_r, report_w = os.pipe()
go_r, go_w = os.pipe()
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        os.close(report_r); os.close(go_w)
        block = b"\1" * (64 << 20)  # touched, so resident
        os.write(report_w, os.getpid().to_bytes(4, "little"))
        os.read(go_r, 1)  # holds it until the parent lets go
        os._exit(0)
    children.append(pid)
os.close(report_w); os.close(go_r)
reported, alive, peak = set(), set(children), 0
deadline = time.monotonic() + 15
while alive - reported and time.monotonic() < deadline:
    if select.select([report_r], [], [], 0.05)[0]:
        data = os.read(report_r, 64)
        reported |= {int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)}
    for pid in list(alive):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            alive.discard(pid)
            print("killed", os.WTERMSIG(status)) if os.WIFSIGNALED(status) else print("exited")
    peak = max(peak, len(alive & reported))
    print("holding", len(alive & reported), flush=True)
os.close(go_w)
for pid in alive:
    os.waitpid(pid, 0)
print("peak", peak, "of", len(children), flush=True)
"""


def test_memory_is_bounded_for_the_run_as_a_whole(run_dirs: Path) -> None:
    bounds = _bounds()
    if bounds.cgroups is None:
        pytest.skip(
            "this host gives no cgroup with pids and memory to a run (measured: "
            f"{bounds.cgroups_why}): memory is bounded per process only, {MAX_PROCESSES} x SANDBOX_MEMORY_MB"
        )
    result = run(HOG, memory_mb=128)
    out = result.stdout.text

    # Killed by the kernel (the run's memory cgroup's OOM killer), never all eight holding their 64 MB.
    assert "killed 9" in out or result.exit_code == -9, (out, result.stderr.text)
    peaks = [int(line.split()[1]) for line in out.splitlines() if line.startswith(("holding", "peak"))]
    assert max(peaks, default=0) * 64 <= 128, out
