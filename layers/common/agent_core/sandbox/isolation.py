"""How the child is isolated, chosen by SANDBOX_ISOLATION:

- `bubblewrap` (locally: the dev server, the tests, CI): the child runs under bwrap in new user, PID, network,
  mount, IPC and UTS namespaces, sees the system's directories read-only, a fresh /tmp and only its run's directory
  writable, with an empty environment; when it ends, the kernel ends every process it started. Its processes count
  against RLIMIT_NPROC apart from every other run's (see `_namespaces`), so a fork bomb exhausts its own run only.
  Where the host allows (measured once, `host_bounds`): the run as a whole in a cgroup of its own (pids and memory),
  and its /work a size- and inode-limited tmpfs (`WorkDisk`), so no run can fill the host's disk.
- `lambda` (inside the sandbox function on AWS, where namespaces are not available): the function itself is the
  barrier (no permissions, no network, no secrets); each invocation starts and ends by ending every other process
  of its user and emptying /tmp.
- `none`: the child with its limits and nothing else, for people who accept that the code can read and change
  everything their user can. Never chosen by itself.
- `auto` (the default): `lambda` inside the Lambda runtime, `bubblewrap` anywhere else.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

from . import cleanup, run_user
from .process import MAX_PROCESSES, bootstrap_args
from .protocol import SandboxLimits
from .workspace import MAX_DEPTH, MAX_ENTRIES, OUTPUT_DIR

log = logging.getLogger(__name__)

SCRIPT_IN_SANDBOX = "/code/main.py"
WORK_IN_SANDBOX = "/work"
NOBODY = 65534
SHARED_MEMORY = Path("/dev/shm")
TMP_BYTES = 64 * 1024 * 1024  # each of the fresh /tmp and /dev/shm under bubblewrap, in memory
DISK_MB = 64  # SANDBOX_DISK_MB's default: what the code may write under /work, beyond the staged files
# Files and directories /work may hold: above the 90,000 files the escape tests flood output/ with, and each costs
# the kernel about 1 KB (charged to the run's memory cgroup where there is one).
WORK_INODES = 131_072
RUN_TASKS = 2 * MAX_PROCESSES  # the run's cgroup's pids.max: its processes and threads, bwrap's two included
CGROUP_PREFIX = "agent-core-run-"
COPY_OUT_S = 3.0  # output/ copied out of the run's tmpfs within this (then read as before)
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

    def bounds(self) -> str:
        """What bounds a run as a whole here (disk, processes, memory), for the dev server's start-up line."""
        ...


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
        host = host_bounds()
        held = contextlib.ExitStack()  # unwound in reverse: the cgroup emptied, /work copied out, the uid freed
        try:
            user = held.enter_context(run_user.lease()) if _is_root() else None
            if user is not None and host.disk_why is None:
                held.callback(WorkDisk.mount(run, user.uid, limits.max_file_bytes).release)
            if user is not None:
                _give(run.work, user.uid)
            argv = self._argv(run, limits, None if user is None else user.uid)
            if host.cgroups is not None:
                group = held.enter_context(host.cgroups.create(limits.memory_mb * 1024 * 1024))
                argv = group.wrap(argv)
        except BaseException:
            held.close()
            raise
        # bwrap itself gets nothing of our environment either: its own /proc entry is visible inside as pid 1.
        return Command(argv, run.root, {"PATH": os.defpath}, held=held)

    def bounds(self) -> str:
        return host_bounds().describe(root=_is_root())

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

    def __init__(self, name: str, *, clean: bool, scratch: Path | None = None, shared: Path | None = None) -> None:
        # scratch: emptied whole; shared: a directory others use too (/dev/shm), of which only this user's entries go
        self.name, self.clean, self.scratch, self.shared = name, clean, scratch, shared

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

    def bounds(self) -> str:
        if self.name == "lambda":
            return "a run as a whole bounded by the function: its memory, 512 MB of /tmp, one invocation at a time"
        return "no bound on a run as a whole: each process's limits only, and every run shares this user's count"

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
        # POSIX shared memory and semaphores (shm_open is open(2), which the filter allows) are files in /dev/shm,
        # where the environment has one: this user's go with the run that made them.
        if self.shared is not None and self.shared.is_dir():
            left = cleanup.empty_dir(self.shared, owner=os.getuid())
            if left:
                log.error("cleanup: %d entries of %s could not be removed: %s", len(left), self.shared, left[:20])


# --- Bounds on a run as a whole (bubblewrap as root) ------------------------------------------------------------
#
# RLIMIT_AS and RLIMIT_FSIZE bound one process and one file: 32 processes may each hold SANDBOX_MEMORY_MB, and any
# number of files may fill the disk. Where the host allows, a run has a cgroup of its own (pids, memory: every
# process, thread and tmpfs page of the run counted together) and its /work is a tmpfs of a fixed size and inode
# count, mounted on the host by us (bwrap's --size has no inode count), so the host's disk is never written by code.

_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def disk_bytes() -> int:
    """SANDBOX_DISK_MB (default 64): what the code may write under /work besides the files staged there."""
    try:
        megabytes = int(os.environ.get("SANDBOX_DISK_MB") or DISK_MB)
    except ValueError:
        megabytes = DISK_MB
    return max(1, megabytes) * 1024 * 1024


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(target: Path, options: str) -> None:
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount tmpfs on {target}: {os.strerror(errno)}")


def _detach(target: Path) -> None:
    if _libc().umount2(os.fsencode(target), _MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"umount {target}: {os.strerror(errno)}")


class WorkDisk:
    """A run's /work as a tmpfs mounted on its work directory (so the host still sees it there while the code runs).

    The files the runner staged are copied in. Once the child has ended, `release` detaches the tmpfs and copies
    output/ out of it into the (empty) directory beneath, within the bounds the collection reads anyway (entries,
    depth, bytes per file, time), never following a symlink; the runner then collects and removes as before, with no
    mount in its way.
    """

    def __init__(self, run: RunDir, max_file_bytes: int) -> None:
        self.run, self.max_file_bytes = run, max_file_bytes

    @classmethod
    def mount(cls, run: RunDir, uid: int, max_file_bytes: int) -> WorkDisk:
        staged = run.root / "staged"
        os.rename(run.work, staged)
        os.mkdir(run.work, 0o700)
        staged_bytes = sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(staged) for f in files)
        options = f"size={disk_bytes() + staged_bytes},nr_inodes={WORK_INODES},mode=0700,uid={uid},gid={uid}"
        _mount_tmpfs(run.work, options)
        disk = cls(run, max_file_bytes)
        try:
            shutil.copytree(staged, run.work, symlinks=True, dirs_exist_ok=True)  # the runner's files, not the code's
            shutil.rmtree(staged)
        except BaseException:
            disk.release()
            raise
        return disk

    def release(self) -> None:
        top = os.open(self.run.work, _DIR)  # the tmpfs's root: it stays readable once detached
        try:
            _detach(self.run.work)
            _copy_out(top, self.run.work, self.max_file_bytes, time.monotonic() + COPY_OUT_S)
        finally:
            os.close(top)  # the last reference: the kernel frees the tmpfs


def _copy_out(top: int, work: Path, max_file_bytes: int, deadline: float) -> None:
    """output/ of the tmpfs open as `top` into work/output, in the collection's order (depth first, names sorted),
    at most as many entries as it looks at, directories below its depth empty, files cut one byte past its limit
    (it still sees them as over), symlinks as symlinks and other files as FIFOs (it reports both, never reads them).
    """
    try:
        source = os.open(OUTPUT_DIR, _DIR, dir_fd=top)
    except FileNotFoundError:
        return
    except OSError:  # a symlink or a file in its place: collection says "not a directory"
        os.close(os.open(work / OUTPUT_DIR, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    os.close(source)
    os.mkdir(work / OUTPUT_DIR, 0o700)
    seen = 0
    pending: list[tuple[bytes, int]] = [(os.fsencode(OUTPUT_DIR), 0)]
    while pending and seen <= MAX_ENTRIES and time.monotonic() < deadline:
        relative, depth = pending.pop()
        src, dst = _open_under(top, relative), os.open(os.fsencode(work) + b"/" + relative, _DIR)
        try:
            with os.scandir(src) as it:
                entries = sorted(itertools.islice(it, MAX_ENTRIES - seen + 1), key=lambda e: e.name)
            subdirs: list[bytes] = []
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES + 1 or time.monotonic() >= deadline:
                    break
                name = os.fsencode(entry.name)
                mode = os.stat(name, dir_fd=src, follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    os.mkdir(name, 0o700, dir_fd=dst)
                    if depth + 1 < MAX_DEPTH:
                        subdirs.append(relative + b"/" + name)
                elif stat.S_ISREG(mode):
                    _copy_file(name, src, dst, max_file_bytes + 1)
                elif stat.S_ISLNK(mode):
                    os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
                else:
                    os.mkfifo(name, 0o600, dir_fd=dst)
            pending.extend((path, depth + 1) for path in reversed(subdirs))
        finally:
            os.close(src)
            os.close(dst)


def _open_under(top: int, relative: bytes) -> int:
    fd = os.dup(top)
    for part in relative.split(b"/"):
        try:
            nxt = os.open(part, _DIR, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def _copy_file(name: bytes, src_dir: int, dst_dir: int, limit: int) -> None:
    try:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
    except OSError:  # unreadable (mode 000 means nothing to root, but be safe): the collection says "not regular"
        os.mkfifo(name, 0o600, dir_fd=dst_dir)
        return
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst_dir)
        try:
            while limit > 0 and (chunk := os.read(src, min(limit, 1 << 20))):
                os.write(dst, chunk)
                limit -= len(chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)


@dataclass(frozen=True)
class Cgroups:
    """Where runs' cgroups go: cgroup v2 (one directory) or v1 (the pids and the memory hierarchies)."""

    version: int
    pids: Path
    memory: Path

    def create(self, memory_bytes: int) -> RunCgroup:
        _remove_leftovers()
        group = RunCgroup(self, f"{CGROUP_PREFIX}{uuid.uuid4().hex}")
        try:
            group.make(memory_bytes)
        except BaseException:
            group.close()
            raise
        return group


_leftover_groups: list[Path] = []


def _remove_leftovers() -> None:
    for path in list(_leftover_groups):
        with contextlib.suppress(OSError):
            os.rmdir(path)
            _leftover_groups.remove(path)


class RunCgroup:
    """One run's cgroup: every process and thread of the run (bwrap's included) and the memory they and their
    tmpfs pages take, counted together. The child enters it before bwrap starts (`wrap`), so nothing escapes it."""

    def __init__(self, cgroups: Cgroups, name: str) -> None:
        self.dirs = list(dict.fromkeys((cgroups.pids / name, cgroups.memory / name)))
        self.version = cgroups.version
        self.pids_dir, self.memory_dir = cgroups.pids / name, cgroups.memory / name

    def make(self, memory_bytes: int) -> None:
        for path in self.dirs:
            os.mkdir(path)
        (self.pids_dir / "pids.max").write_text(str(RUN_TASKS))
        if self.version == 2:
            (self.memory_dir / "memory.max").write_text(str(memory_bytes))
            _write_if_there(self.memory_dir / "memory.swap.max", "0")
            _write_if_there(self.memory_dir / "memory.oom.group", "1")  # the whole run ends, not its largest
        else:
            (self.memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
            _write_if_there(self.memory_dir / "memory.memsw.limit_in_bytes", str(memory_bytes))

    def wrap(self, argv: list[str]) -> list[str]:
        """argv started by a shell that first moves itself into the run's cgroups, then becomes argv."""
        procs = [str(path / "cgroup.procs") for path in self.dirs]
        script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", *procs, "--", *argv]

    def __enter__(self) -> RunCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends whatever is left in it (the child is gone by now), then removes it; within 5 s, never raises."""
        deadline = time.monotonic() + 5
        for path in self.dirs:
            if not path.exists():
                continue
            while True:
                pids = _pids_in(path)
                if not pids:
                    break
                if time.monotonic() >= deadline:
                    log.warning("sandbox cgroup %s still holds %s", path, sorted(pids)[:20])
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.002)  # bounded by the deadline: the kernel needs a moment to reap what was killed
            try:
                os.rmdir(path)
            except OSError:
                log.warning("sandbox cgroup %s not removed yet: retried at the next run", path)
                _leftover_groups.append(path)


def _pids_in(path: Path) -> set[int]:
    try:
        return {int(line) for line in (path / "cgroup.procs").read_text().split()}
    except OSError:
        return set()


def _write_if_there(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        if path.exists():
            path.write_text(value)


@dataclass(frozen=True)
class HostBounds:
    """What this host allows, measured once: None for a bound in force, else why it is not."""

    disk_why: str | None
    cgroups: Cgroups | None
    cgroups_why: str | None

    def describe(self, *, root: bool) -> str:
        disk = (
            f"/work a {disk_bytes() // (1024 * 1024)} MB tmpfs of {WORK_INODES} inodes"
            if self.disk_why is None
            else f"/work on the host's disk, each file within SANDBOX_MAX_FILE_BYTES ({self.disk_why})"
        )
        if self.cgroups is not None:
            procs = (
                f"processes and memory by a cgroup v{self.cgroups.version} (pids.max {RUN_TASKS}, SANDBOX_MEMORY_MB)"
            )
        else:
            procs = (
                f"processes by a uid per run ({MAX_PROCESSES}), memory per process only ({self.cgroups_why})"
                if root
                else f"processes by a user namespace per run, memory per process only ({self.cgroups_why})"
            )
        return f"per run: {disk}; {procs}"


@cache
def host_bounds() -> HostBounds:
    if not _is_root():
        why = "not root: no tmpfs of our own"
        return HostBounds(why, None, "not root: no cgroup of our own")
    cgroups, cgroups_why = _probe_cgroups()
    return HostBounds(_probe_tmpfs(), cgroups, cgroups_why)


def _probe_tmpfs() -> str | None:
    target = Path(tempfile.mkdtemp(prefix="sandbox-probe-"))
    try:
        _mount_tmpfs(target, "size=4096,nr_inodes=16,mode=0700")
        _detach(target)
    except OSError as exc:
        return f"mounting a tmpfs failed: {exc.strerror}"
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(target)
    return None


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, type, super options) of each cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            dash = fields.index("-")
            fstype, options = fields[dash + 1], set(fields[dash + 3].split(","))
            if fstype in ("cgroup", "cgroup2"):
                found.append((fields[4], fstype, options))
    return found


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _probe_cgroups() -> tuple[Cgroups | None, str]:
    """cgroup v2 with pids and memory where this process's cgroup can have children with both, else v1's pids and
    memory hierarchies; else None and why (each refusal as the kernel said it)."""
    mounts, own = _mounts(), _own_cgroups()
    reasons: list[str] = []
    for point, fstype, _ in mounts:
        if fstype == "cgroup2" and "" in own:
            found = _try(Cgroups(2, *[Path(point + own[""].rstrip("/"))] * 2), reasons)
            if found is not None:
                return found, "; ".join(reasons)
    v1 = {
        controller: Path(point + own[controller].rstrip("/"))
        for point, fstype, options in mounts
        for controller in ("pids", "memory")
        if fstype == "cgroup" and controller in options and controller in own
    }
    if len(v1) == 2:
        found = _try(Cgroups(1, v1["pids"], v1["memory"]), reasons)
        if found is not None:
            return found, "; ".join(reasons)
    else:
        reasons.append("no cgroup v1 pids and memory hierarchies mounted")
    return None, "; ".join(reasons)


def _try(cgroups: Cgroups, reasons: list[str]) -> Cgroups | None:
    where = f"cgroup v{cgroups.version} at {', '.join(sorted({str(cgroups.pids), str(cgroups.memory)}))}"
    try:
        if cgroups.version == 2:
            here = cgroups.pids
            offered = (here / "cgroup.controllers").read_text().split()
            if not {"pids", "memory"} <= set(offered):
                reasons.append(f"{where} offers {' '.join(offered) or 'no controllers'}, not pids and memory")
                return None
            if not {"pids", "memory"} <= set((here / "cgroup.subtree_control").read_text().split()):
                (here / "cgroup.subtree_control").write_text("+pids +memory")
        _probe_group(cgroups)
    except OSError as exc:
        reasons.append(f"{where}: {exc.strerror}")
        return None
    return cgroups


def _probe_group(cgroups: Cgroups) -> None:
    group = RunCgroup(cgroups, f"{CGROUP_PREFIX}probe-{uuid.uuid4().hex}")
    try:
        group.make(64 * 1024 * 1024)
    finally:
        for path in group.dirs:
            with contextlib.suppress(OSError):
                os.rmdir(path)


def choose(setting: str) -> Isolation:
    mode = setting.strip().lower() or "auto"
    if mode == "auto":
        mode = "lambda" if os.environ.get("AWS_LAMBDA_RUNTIME_API") else "bubblewrap"
    if mode == "bubblewrap":
        return Bubblewrap()
    if mode == "lambda":
        return FunctionBoundary("lambda", clean=True, scratch=Path("/tmp"), shared=SHARED_MEMORY)
    if mode == "none":
        return FunctionBoundary("none", clean=False)
    raise ValueError(f"SANDBOX_ISOLATION must be auto, bubblewrap, lambda or none, not {setting!r}")
