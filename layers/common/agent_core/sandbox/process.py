"""Starts the child that runs the code, reads its output within limits, and ends it (and whatever it started).

Knows processes and limits only: which command wraps the child (bubblewrap, or nothing inside the sandbox function)
is isolation.py's choice, which files it sees is the runner's.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import seccomp
from .protocol import SandboxLimits

# Set inside the child before the code runs, then the code runs in the same interpreter. First, as root inside
# bubblewrap, the child becomes its run's own user for real (isolation.py). Limits are set here rather than in a
# preexec_fn because preexec_fn may deadlock when the parent has threads (the dev server's workers). Hard limits equal
# soft ones, so the code cannot raise them back; the CPU limit keeps one second of slack so SIGXCPU (reported as such)
# arrives before the kernel's SIGKILL; RLIMIT_NPROC stops a fork bomb (the kernel counts it per user, and each run's
# processes have a count of their own: isolation.py). Then the seccomp filter (seccomp.py) takes sockets and the like
# away for good. runpy makes the code a real __main__ module (pickle and multiprocessing work); the traceback starts at
# the code's first frame, without runpy's or ours.
#
# The audit hook is defence in depth only, never the barrier: Python's own documentation says audit hooks are not a
# sandbox, and code can switch this one off. The operating system's isolation (isolation.py) is what holds.
BOOTSTRAP = """\
import builtins, os, resource, runpy, sys, traceback
script, memory, cpu, fsize, nproc, user = sys.argv[1], *map(int, sys.argv[2:7])
# The code's own process group in place of the filter's placeholder (seccomp.OWN_GROUP_PLACEHOLDER), as -pgid.
own_group = (-os.getpgid(0) & 0xFFFFFFFF).to_bytes(4, "little")
syscalls = bytes.fromhex(sys.argv[7]).replace(b"\\x01\\xde\\xc0\\x5e", own_group)
if user >= 0:
    os.setgroups([])
    os.setgid(user)
    os.setuid(user)
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
if syscalls:
    import ctypes
    class _Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]
    _libc = ctypes.CDLL(None, use_errno=True)
    # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER; without the filter the code does not run.
    if _libc.prctl(38, 1, 0, 0, 0) or _libc.prctl(22, 2, ctypes.byref(_Program(len(syscalls) // 8, syscalls)), 0, 0):
        sys.exit(f"run_python: the sandbox could not install its system-call filter (errno {ctypes.get_errno()})")
    for _name in [m for m in sys.modules if m.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[_name]  # importing it again goes through the audit hook below
    del ctypes, _Program, _libc
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
# -X utf8: stdout is UTF-8 whatever the (absent) locale says. -B: the runtime's directories are read-only.
PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
MAX_PROCESSES = 32
_READ_CHUNK = 64 * 1024
# How often the read loop looks whether the child has exited while something else (a background grandchild) still
# holds its stdout open.
_EXIT_POLL_S = 0.05


def bootstrap_args(
    script: str, limits: SandboxLimits, *, user: int | None = None, protect: tuple[int, ...] = ()
) -> list[str]:
    """The interpreter's arguments after the interpreter itself: flags, the bootstrap, the script, the limits and
    the user to become first (root inside bubblewrap only); `protect`: ids no signal of the code may reach."""
    memory = limits.memory_mb * 1024 * 1024
    numbers = (memory, limits.cpu_s, limits.max_file_bytes, MAX_PROCESSES, -1 if user is None else user)
    return [*PYTHON_FLAGS, "-c", BOOTSTRAP, script, *map(str, numbers), seccomp.program(None, protect).hex()]


@dataclass
class Captured:
    data: bytearray = field(default_factory=bytearray)
    total: int = 0  # bytes the stream carried, kept or not


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    timed_out: bool
    elapsed_s: float
    stdout: Captured
    stderr: Captured


def run_child(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    keep: int,
) -> ChildRun:
    """Runs argv to its end or the timeout, then kills its whole process group; never raises for what it does."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        # Its own process group, so a timeout kills whatever it started too.
        start_new_session=True,
    )
    try:
        stdout, stderr, timed_out = _collect(proc, started + timeout_s, keep)
    finally:
        _kill_group(proc)
    return ChildRun(proc.returncode, timed_out, time.monotonic() - started, stdout, stderr)


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
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
