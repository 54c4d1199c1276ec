"""How the child is isolated, chosen by SANDBOX_ISOLATION:

- `bubblewrap` (locally: the dev server, the tests, CI): the child runs under bwrap in new user, PID, network,
  mount, IPC and UTS namespaces, sees the system's directories read-only, a fresh /tmp and only its run's directory
  writable, with an empty environment; when it ends, the kernel ends every process it started. Its processes count
  against RLIMIT_NPROC apart from every other run's (see `_namespaces`), so a fork bomb exhausts its own run only.
- `lambda` (inside the sandbox function on AWS, where namespaces are not available): the function itself is the
  barrier (no permissions, no network, no secrets); each invocation starts and ends by ending every other process
  of its user and emptying /tmp.
- `none`: the child with its limits and nothing else, for people who accept that the code can read and change
  everything their user can. Never chosen by itself.
- `auto` (the default): `lambda` inside the Lambda runtime, `bubblewrap` anywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

from . import cleanup, run_user
from .process import bootstrap_args
from .protocol import SandboxLimits

log = logging.getLogger(__name__)

SCRIPT_IN_SANDBOX = "/code/main.py"
WORK_IN_SANDBOX = "/work"
NOBODY = 65534
TMP_BYTES = 64 * 1024 * 1024  # each of the fresh /tmp and /dev/shm under bubblewrap, in memory
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Not secrets, and needed to start the interpreter as we were started (a shared libpython) and to keep local time.
_PASSED_THROUGH = ("LD_LIBRARY_PATH", "TZ")

INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install bubblewrap`; "
    "Arch: `sudo pacman -S bubblewrap`) and restart the server. On macOS or Windows run the dev server in a Linux "
    "VM or container. To run the code without isolation instead, accepting that it can read and change everything "
    "your user can, set SANDBOX_ISOLATION=none."
)


@dataclass(frozen=True)
class RunDir:
    """One run's directory on the host: the script, the working directory (task files, output/) and a /tmp."""

    root: Path

    @property
    def script(self) -> Path:
        return self.root / "main.py"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    # Entered before the child starts, left once it has ended: what the run holds as its own (its user id as root).
    held: contextlib.AbstractContextManager[object] = field(default_factory=contextlib.nullcontext)


class Isolation(Protocol):
    name: str

    def unavailable(self) -> str | None:
        """Why code cannot run here, with what to do about it; None when it can."""
        ...

    def command(self, run: RunDir, limits: SandboxLimits) -> Command: ...

    def exit_code(self, returncode: int) -> int:
        """The code's exit status as subprocess reports a direct child's: negative for a signal."""
        ...

    def start_invocation(self) -> None: ...

    def after_child(self) -> None:
        """Called once the child has been ended, before its files are read."""
        ...

    def end_invocation(self) -> None: ...


def _python() -> str:
    # The real interpreter, not a venv's symlink to it: run with -I -S it sees its standard library only.
    return os.path.realpath(sys.executable)


def _passed_through() -> dict[str, str]:
    return {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}


class Bubblewrap:
    name = "bubblewrap"

    def __init__(self, bwrap: str | None = None) -> None:
        self.bwrap = bwrap or shutil.which("bwrap")

    def unavailable(self) -> str | None:
        if self.bwrap is None:
            return f"run_python cannot isolate code here: bubblewrap (bwrap) is not installed. {INSTALL_HINT}"
        return _probe(self.bwrap)

    def command(self, run: RunDir, limits: SandboxLimits) -> Command:
        user = run_user.lease() if _is_root() else None
        try:
            if user is not None:
                _give(run.work, user.uid)
            argv = self._argv(run, limits, None if user is None else user.uid)
        except BaseException:
            if user is not None:
                user.close()
            raise
        # bwrap itself gets nothing of our environment either: its own /proc entry is visible inside as pid 1.
        return Command(argv, run.root, {"PATH": os.defpath}, held=user or contextlib.nullcontext())

    def _argv(self, run: RunDir, limits: SandboxLimits, uid: int | None) -> list[str]:
        return [
            self.bwrap or "bwrap",
            *_namespaces(),
            *("--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"),
            *_system_binds(),
            *("--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"),
            # multiprocessing's locks are POSIX semaphores, files in /dev/shm.
            *("--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm"),
            *("--perms", "0755", "--dir", os.path.dirname(SCRIPT_IN_SANDBOX)),
            *("--ro-bind", str(run.script), SCRIPT_IN_SANDBOX),
            *("--bind", str(run.work), WORK_IN_SANDBOX, "--chdir", WORK_IN_SANDBOX),
            *("--setenv", "LANG", "C.UTF-8", "--setenv", "TMPDIR", "/tmp", "--setenv", "HOME", WORK_IN_SANDBOX),
            *(arg for name, value in _passed_through().items() for arg in ("--setenv", name, value)),
            "--",
            _python(),
            *bootstrap_args(SCRIPT_IN_SANDBOX, limits, user=uid),
        ]

    def exit_code(self, returncode: int) -> int:
        # bwrap exits with 128 + N when the code dies of signal N, as a shell does (so does `exit(137)`, rarely).
        return -(returncode - 128) if 128 < returncode < 128 + 65 else returncode

    def start_invocation(self) -> None:
        pass

    def after_child(self) -> None:
        pass  # the PID namespace is gone with its first process: nothing of the child's is left

    def end_invocation(self) -> None:
        pass


def _is_root() -> bool:
    return os.geteuid() == 0


def _give(work: Path, uid: int) -> None:
    """The working directory and the staged files to `uid`, so the code can write there as that user."""
    for dirpath, dirnames, filenames in os.walk(work):
        os.lchown(dirpath, uid, uid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def _namespaces() -> list[str]:
    """As a user, a user namespace maps us to nobody. As root, a user namespace would leave the code root to the
    kernel (owner of root's files, exempt from RLIMIT_NPROC): instead bwrap keeps only the capabilities to change
    user, and the bootstrap becomes the run's own user (run_user.py), for real, before the code runs.

    Either way each run's processes have a count of their own against RLIMIT_NPROC. As root, by their user id. As a
    user, every run is our uid, but since Linux 5.14 the kernel counts a user's processes per user namespace (each
    namespace's count against its own limit, and the sum against the limit its creator had), and each run has its
    own namespace; before 5.14 the count was one per uid on the host, shared by all runs of the user.
    """
    if _is_root():
        privileges = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        privileges = ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    return [*privileges, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]


@cache  # the same for every run of this process
def _system_binds() -> tuple[str, ...]:
    """The system's directories read-only (merged-/usr symlinks as symlinks), the interpreter's prefix, and the two
    files of /etc the dynamic loader and local time read. Nothing else of the host: not /etc, /home, /root, /tmp."""
    args: list[str] = []
    covered: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            covered.append(path)
    extra = [os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(_python()))]
    extra += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    for path in dict.fromkeys(extra):
        if not any(path == c or path.startswith(c + "/") for c in covered) and os.path.isdir(path):
            # Directories bwrap makes on the way get mode 0700: the code, as nobody, must walk through them.
            for parent in reversed(Path(path).parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
            covered.append(path)
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    return tuple(args)


@cache
def _probe(bwrap: str) -> str | None:
    """One trivial run, once per process: namespaces may be refused even where bwrap is installed."""
    try:
        done = subprocess.run(
            [bwrap, *_namespaces(), "--die-with-parent", *_system_binds(), "--", _python(), "-I", "-S", "-c", ""],
            capture_output=True,
            timeout=20,
            env={"PATH": os.defpath},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"run_python cannot isolate code here: bubblewrap failed to start ({exc}). {INSTALL_HINT}"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()[:300] or f"exit code {done.returncode}"
        return (
            f"run_python cannot isolate code here: bubblewrap is installed but cannot create its namespaces "
            f"({reason}). Unprivileged user namespaces may be turned off (sysctl kernel.unprivileged_userns_clone, "
            f"or an AppArmor restriction on Ubuntu 24.04 and later). {INSTALL_HINT}"
        )
    return None


class FunctionBoundary:
    """The child as a plain process; `clean` also ends every other process of the user around each invocation.

    On AWS (`lambda`) RLIMIT_NPROC, counted per user, is a count per run all the same: each execution environment is
    a microVM with a kernel of its own, and the sandbox function gives it one invocation at a time. With `none` every
    run is the server's user and shares its count (none at all for root, whom the limit does not bind).
    """

    def __init__(self, name: str, *, clean: bool, scratch: Path | None = None) -> None:
        self.name, self.clean, self.scratch = name, clean, scratch

    def unavailable(self) -> str | None:
        return None

    def command(self, run: RunDir, limits: SandboxLimits) -> Command:
        run.tmp.mkdir(exist_ok=True)  # its TMPDIR (bubblewrap gives the code a fresh /tmp of its own instead)
        # The code runs beside us, as our user: no signal of its may reach us or our ancestors (bubblewrap's PID
        # namespace does that for the other backend).
        argv = [_python(), *bootstrap_args(str(run.script), limits, protect=cleanup.handler_ids())]
        # Built from nothing, never filtered from ours: our environment holds the AWS credentials.
        env = {"LANG": "C.UTF-8", "TMPDIR": str(run.tmp), **_passed_through()}
        return Command(argv, run.work, env)

    def exit_code(self, returncode: int) -> int:
        return returncode

    def start_invocation(self) -> None:
        cleanup.protect_parent_memory()
        self._clean()

    def after_child(self) -> None:
        if self.clean:
            cleanup.end_other_processes()

    def end_invocation(self) -> None:
        self._clean()

    def _clean(self) -> None:
        """Never raises: what it could not end or remove is logged, and the invocation still answers."""
        if not self.clean:
            return
        try:
            cleanup.end_other_processes()
        except Exception:
            log.exception("cleanup: ending the user's other processes failed")
        if self.scratch is not None:
            left = cleanup.empty_dir(self.scratch)
            if left:
                log.error("cleanup: %d entries of %s could not be removed: %s", len(left), self.scratch, left[:20])


def choose(setting: str) -> Isolation:
    mode = setting.strip().lower() or "auto"
    if mode == "auto":
        mode = "lambda" if os.environ.get("AWS_LAMBDA_RUNTIME_API") else "bubblewrap"
    if mode == "bubblewrap":
        return Bubblewrap()
    if mode == "lambda":
        return FunctionBoundary("lambda", clean=True, scratch=Path("/tmp"))
    if mode == "none":
        return FunctionBoundary("none", clean=False)
    raise ValueError(f"SANDBOX_ISOLATION must be auto, bubblewrap, lambda or none, not {setting!r}")
