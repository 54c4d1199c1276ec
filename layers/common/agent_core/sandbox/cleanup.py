"""Leaving nothing behind: directory trees removed without recursion, and (inside the sandbox function only) every
process of ours but ourselves ended, so nothing an earlier run started lives on in a warm Lambda environment."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import stat
import sys
import uuid
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def remove_tree(path: Path) -> None:
    """Removes `path` and everything under it, however deep or wide, without following symlinks.

    The code may have left a tree thousands of levels deep: recursion (shutil.rmtree, os.fwalk) would overflow
    Python's stack, and holding a descriptor per level would run out of them. Instead each pass empties the top
    directory: files go at once, and each subdirectory's own subdirectories are moved up into the top one, so two
    descriptors are enough and every entry is touched a bounded number of times per level.
    """
    _open_up(path)
    try:
        top = os.open(path, _DIRECTORY)
    except FileNotFoundError:
        return
    except OSError:  # a symlink or a file where a directory was expected
        path.unlink(missing_ok=True)
        return
    try:
        while _empty_one_level(top):
            pass
    finally:
        os.close(top)
    os.rmdir(path)


def empty_dir(path: Path) -> list[str]:
    """Removes everything inside `path`, keeping `path` itself; never raises.

    Returns the names it could not remove (each logged), so a warm environment's next invocation still runs: an entry
    the code made unremovable must not turn every later invocation into an error.
    """
    try:
        _open_up(path)
        with os.scandir(path) as entries:
            names = [e.name for e in entries]
    except OSError:
        log.exception("cleanup: could not list %s", path)
        return [str(path)]
    left: list[str] = []
    for name in names:
        try:
            remove_tree(path / name)
        except Exception:
            log.exception("cleanup: could not remove %s", path / name)
            left.append(name)
    return left


def _open_up(path: Path | str, *, dir_fd: int | None = None) -> None:
    """Gives a directory back its owner's read, write and search bits (the code may have taken them: chmod 000), so
    it can be listed, emptied and moved; leaves symlinks and files alone, and whatever it cannot change."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            os.chmod(path, stat.S_IRWXU, dir_fd=dir_fd)


def _empty_one_level(top: int) -> bool:
    """Deletes the files in `top` and moves its grandchildren up; True while anything was left to do."""
    with os.scandir(top) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in entries:
        if not is_dir:
            os.unlink(name, dir_fd=top)
            continue
        # The code may have taken its own permissions away (chmod 000) before it ended.
        _open_up(name, dir_fd=top)
        sub = os.open(name, _DIRECTORY, dir_fd=top)
        try:
            with os.scandir(sub) as it:
                children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            for child, child_is_dir in children:
                if child_is_dir:
                    _open_up(child, dir_fd=sub)  # moving a directory to another parent rewrites its "..": needs w
                    os.rename(child, f".rm-{uuid.uuid4().hex}", src_dir_fd=sub, dst_dir_fd=top)
                else:
                    os.unlink(child, dir_fd=sub)
        finally:
            os.close(sub)
        os.rmdir(name, dir_fd=top)
    return bool(entries)


def end_other_processes() -> int:
    """SIGKILLs every live process of this user except this one and its ancestors; returns how many it signalled.

    Only for the sandbox function, where the user is the function's own and nothing else of it runs: a process the
    code left behind (setsid, a double fork) would otherwise be frozen with the environment and thawed into the next
    invocation, another task's. A few passes catch what forked while the first was being killed.
    """
    keep = _ancestors(os.getpid())
    uid = os.getuid()
    signalled = 0
    for _ in range(5):
        victims = [pid for pid in _pids() if pid not in keep and _is_live_process_of(pid, uid)]
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        signalled += len(victims)
    return signalled


def handler_ids() -> tuple[int, ...]:
    """This process and its ancestors, with their threads' ids: what the code's signals must not reach."""
    ids: set[int] = set()
    for pid in _ancestors(os.getpid()):
        ids.add(pid)
        with contextlib.suppress(OSError):
            ids.update(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if tid.isdigit())
    return tuple(sorted(ids))


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): state, ppid, ..."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return raw[raw.rindex(b")") + 2 :].decode("ascii", "replace").split()


def _is_live_process_of(pid: int, uid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == uid and _stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False  # gone meanwhile


def _ancestors(pid: int) -> set[int]:
    chain = {pid}
    while pid > 1:
        try:
            pid = int(_stat_fields(pid)[1])
        except (OSError, ValueError, IndexError):
            break
        chain.add(pid)
    return chain


@cache
def protect_parent_memory() -> bool:
    """Makes this process non-dumpable, so a child running as the same user cannot read /proc/<ppid>/environ or mem.

    For the backends without namespaces: in the sandbox function the runtime's initial environment holds the
    function's (log-only) credentials, readable through /proc unless the process is non-dumpable. The flag only stops
    core dumps and same-user ptrace of this process. Returns whether the flag is set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
