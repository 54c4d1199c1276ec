"""Runs one Python script in a child process with time, memory, CPU, file-size and output limits and no environment.

Knows processes and limits only; which files the script sees and what happens to its output is python_exec's job.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ...config import Settings, get_settings

# Set inside the child before the model's code runs, then the code runs in the same interpreter. Limits are set here
# rather than in a preexec_fn because preexec_fn may deadlock when the parent has threads (FastAPI's sync routes run in
# a thread pool). Hard limits equal soft ones, so the code cannot raise them back; the CPU limit keeps one second of
# slack so SIGXCPU (reported as such) arrives before the kernel's SIGKILL. runpy makes the code a real __main__ module
# (pickle and multiprocessing work); the traceback starts at the code's first frame, without runpy's or ours.
#
# An audit hook (it cannot be removed once added) then refuses what the code has no business doing: the network
# (sockets would reach the Lambda runtime API on 127.0.0.1:9001 and bypass fetch_url's address checks), new
# processes, ctypes (arbitrary C calls would get round the hook), and /proc (other processes' environments).
_BOOTSTRAP = """\
import builtins, resource, runpy, sys, traceback
script, memory, cpu, fsize = sys.argv[1], *map(int, sys.argv[2:5])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
_REFUSED = frozenset((
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.spawn", "os.fork", "os.forkpty", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
    "ctypes.cdata", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at",
))
_REFUSED_MODULES = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "_socket", "socket"))
def _guard(event, args):
    if event in _REFUSED or (event == "import" and args[0] in _REFUSED_MODULES) or (
        event == "open" and isinstance(args[0], str) and args[0].startswith("/proc/")
    ):
        raise PermissionError(
            f"not allowed in run_python ({event}): no network, no processes, no ctypes. "
            "Use fetch_url to read the web."
        )
sys.addaudithook(_guard)
builtins.exit = builtins.quit = sys.exit  # what site.py would have added
del sys.argv[1:]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    raise
except BaseException as exc:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)
    sys.exit(1)
"""

# -I: no PYTHON* variables, no user site, no script directory on sys.path. -S: no site-packages either, so the code
# gets the standard library only, the same on a laptop's venv as on Lambda (where numpy/pandas are not installed).
# -X utf8: stdout is UTF-8 whatever the (absent) locale says. -B: the runtime's directories are read-only on Lambda.
_PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
_READ_CHUNK = 64 * 1024
# How often the read loop looks whether the child has exited while something else (a background grandchild)
# still holds its stdout open.
_EXIT_POLL_S = 0.05
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
_PASSED_THROUGH = ("LD_LIBRARY_PATH", "TZ")


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 20.0
    memory_mb: int = 512
    max_output_bytes: int = 64 * 1024  # kept of each of stdout and stderr; the rest is counted and dropped
    max_file_bytes: int = 10 * 1024 * 1024  # largest file the code may write (RLIMIT_FSIZE)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SandboxLimits:
        s = settings or get_settings()
        return cls(s.sandbox_timeout_s, s.sandbox_memory_mb, s.sandbox_max_output_bytes, s.sandbox_max_file_bytes)

    @property
    def cpu_s(self) -> int:
        # CPU time of one thread cannot outrun the wall clock; this catches threads burning several cores at once.
        return int(self.timeout_s) + 1


@dataclass
class Captured:
    data: bytearray = field(default_factory=bytearray)
    total: int = 0  # bytes the stream carried, kept or not

    @property
    def cut(self) -> bool:
        return self.total > len(self.data)


@dataclass(frozen=True)
class SandboxRun:
    returncode: int
    timed_out: bool
    elapsed_s: float
    stdout: Captured
    stderr: Captured


def run_script(script: Path, workdir: Path, tmpdir: Path, limits: SandboxLimits) -> SandboxRun:
    """Runs `script` with `workdir` as its current directory; never raises for anything the script does."""
    _protect_parent_memory()
    args = [str(script), str(limits.memory_mb * 1024 * 1024), str(limits.cpu_s), str(limits.max_file_bytes)]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, *_PYTHON_FLAGS, "-c", _BOOTSTRAP, *args],
        cwd=workdir,
        env=_child_environment(tmpdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        # Its own process group, so a timeout kills whatever it started too.
        start_new_session=True,
    )
    try:
        stdout, stderr, timed_out = _collect(proc, started + limits.timeout_s, limits.max_output_bytes)
    finally:
        _kill_group(proc)
    return SandboxRun(proc.returncode, timed_out, time.monotonic() - started, stdout, stderr)


def _child_environment(tmpdir: Path) -> dict[str, str]:
    """Built from nothing, never filtered from ours: our environment holds the AWS credentials and the OpenAI key."""
    env = {"LANG": "C.UTF-8", "TMPDIR": str(tmpdir)}
    # Not secrets, and needed to start the interpreter as we were started (a shared libpython) and to keep local time.
    env.update({name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ})
    return env


def _collect(proc: subprocess.Popen[bytes], deadline: float, keep: int) -> tuple[Captured, Captured, bool]:
    """Reads both pipes until the child exits (or closes them), keeping `keep` bytes of each; True on timeout."""
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = Captured(), Captured()
    sinks = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr}
    with selectors.DefaultSelector() as selector:
        for fd in sinks:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return stdout, stderr, True
            ready = selector.select(min(remaining, _EXIT_POLL_S))
            for key, _ in ready:
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                sink = sinks[key.fd]
                sink.total += len(chunk)
                # Keep reading past the cap (and drop it) so a chatty child never blocks on a full pipe.
                sink.data += chunk[: max(0, keep - len(sink.data))]
            if not ready and _has_exited(proc):
                break  # a background grandchild still holds the pipes; it is killed with the group
    while not _has_exited(proc):
        if time.monotonic() >= deadline:
            return stdout, stderr, True
        time.sleep(_EXIT_POLL_S / 5)
    return stdout, stderr, False


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    # WNOWAIT leaves the child a zombie, so its pid (the group's id) cannot be reused before _kill_group has run.
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@lru_cache(maxsize=1)
def _protect_parent_memory() -> bool:
    """Makes this process non-dumpable, so a child running as the same user cannot read /proc/<ppid>/environ or mem.

    An empty environment is not enough on its own: on Lambda the child runs as the same user as the runtime, whose
    initial environment holds the AWS credentials and stays readable through /proc unless the process is non-dumpable.
    The flag only stops core dumps and same-user ptrace of this process. Returns whether the flag is set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
