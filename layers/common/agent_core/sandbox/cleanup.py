"""Leaving nothing behind: directory trees removed without recursion (within a time budget where the caller has one,
or moved aside and removed later), and (inside the sandbox function only) every process of ours but ourselves and our
ancestors ended, so nothing an earlier run started lives on in a warm Lambda environment."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
# Where a run's tree is moved before the answer (a directory of its own next to it, 0700, made by mkdtemp).
GRAVEYARD_PREFIX = ".run_python-graveyard-"
# How long the sweep of the user's processes may take before it gives up, logging what it could not end.
SWEEP_S = 0.5
# The deadline of tree removals run inside `removal_budget` (empty_dir and remove_tree take it when given none).
_deadline: ContextVar[float | None] = ContextVar("cleanup_deadline", default=None)


class _OutOfTime(Exception):
    pass


@contextlib.contextmanager
def removal_budget(seconds: float) -> Iterator[None]:
    """Tree removals inside stop after `seconds` (from now), leaving the rest where it is for a later call."""
    token = _deadline.set(time.monotonic() + max(0.0, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def remove_tree(path: Path, deadline: float | None = None) -> bool:
    """Removes `path` and everything under it, however deep or wide, without following symlinks; False when the
    deadline (time.monotonic(); the ambient `removal_budget` when None) came first, leaving a smaller tree in place.

    The code may have left a tree thousands of levels deep: recursion (shutil.rmtree, os.fwalk) would overflow
    Python's stack, and holding a descriptor per level would run out of them. Instead each pass empties the top
    directory: files go at once, and each subdirectory's own subdirectories are moved up into the top one, so two
    descriptors are enough and every entry is touched a bounded number of times per level. Stopped at any point, what
    is left is still one tree under `path`, which the next call takes on.
    """
    if deadline is None:
        deadline = _deadline.get()
    _open_up(path)
    try:
        top = os.open(path, _DIRECTORY)
    except FileNotFoundError:
        return True
    except OSError:  # a symlink or a file where a directory was expected
        path.unlink(missing_ok=True)
        return True
    try:
        while _empty_one_level(top, deadline):
            pass
    except _OutOfTime:
        return False
    finally:
        os.close(top)
    os.rmdir(path)
    return True


def empty_dir(path: Path, deadline: float | None = None, *, owner: int | None = None) -> list[str]:
    """Removes everything inside `path` (with `owner`, only the entries of that uid: a directory shared with
    others, such as /dev/shm), keeping `path` itself; never raises.

    Returns the names it could not remove (each logged), so a warm environment's next invocation still runs: an entry
    the code made unremovable must not turn every later invocation into an error. Within a deadline (or the ambient
    `removal_budget`), what it had no time for is logged and left in place, not returned: the next call takes it on.
    """
    if deadline is None:
        deadline = _deadline.get()
    try:
        if owner is None:  # a directory shared with others keeps its mode
            _open_up(path)
        with os.scandir(path) as entries:
            names = [e.name for e in entries]
    except OSError:
        log.exception("cleanup: could not list %s", path)
        return [str(path)]
    left: list[str] = []
    unfinished: list[str] = []
    for name in names:
        if deadline is not None and time.monotonic() >= deadline:
            unfinished.append(name)
            continue
        try:
            if owner is not None and os.lstat(path / name).st_uid != owner:
                continue
            if not remove_tree(path / name, deadline):
                unfinished.append(name)
        except Exception:
            log.exception("cleanup: could not remove %s", path / name)
            left.append(name)
    if unfinished:
        log.warning(
            "cleanup: out of time, %d entries of %s left for the next cleanup: %s",
            len(unfinished),
            path,
            unfinished[:20],
            extra={"path": str(path), "unfinished": len(unfinished)},
        )
    return left


def bury(path: Path) -> Path | None:
    """Moves the tree at `path` aside, into a graveyard of its own next to it (one rename, whatever its size), so the
    caller can answer before it is removed; returns the graveyard, or None when the move failed (logged, the tree
    left where it is). The graveyard is 0700 and named GRAVEYARD_PREFIX..., so nothing takes it for a live run."""
    try:
        graveyard = Path(tempfile.mkdtemp(prefix=GRAVEYARD_PREFIX, dir=path.parent))
    except OSError:
        log.exception("cleanup: could not make a graveyard next to %s", path)
        return None
    try:
        os.rename(path, graveyard / "tree")
    except FileNotFoundError:
        os.rmdir(graveyard)
        return None
    except OSError:
        log.exception("cleanup: could not move %s aside", path)
        with contextlib.suppress(OSError):
            os.rmdir(graveyard)
        return None
    return graveyard


_later: queue.SimpleQueue[Path] = queue.SimpleQueue()
_later_lock = threading.Lock()
_later_thread: threading.Thread | None = None


def remove_later(path: Path) -> None:
    """Removes the tree at `path` in a background thread of this process (one for all), never raising: for the
    servers that go on after an answer (the dev server, tests). Not for the sandbox function on Lambda, whose
    environment is frozen between invocations: there the next invocation's start removes it, within a budget."""
    global _later_thread
    _later.put(path)
    with _later_lock:
        if _later_thread is None or not _later_thread.is_alive():
            _later_thread = threading.Thread(target=_remove_queued, name="sandbox-cleanup", daemon=True)
            _later_thread.start()


def _remove_queued() -> None:
    while True:
        path = _later.get()
        try:
            remove_tree(path, float("inf"))  # no budget of its own, whatever the caller's thread had
        except Exception:
            log.exception("cleanup: could not remove %s", path)


def _open_up(path: Path | str, *, dir_fd: int | None = None) -> None:
    """Gives a directory back its owner's read, write and search bits (the code may have taken them: chmod 000), so
    it can be listed, emptied and moved; leaves symlinks and files alone, and whatever it cannot change."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            os.chmod(path, stat.S_IRWXU, dir_fd=dir_fd)


def _empty_one_level(top: int, deadline: float | None) -> bool:
    """Deletes the files in `top` and moves its grandchildren up; True while anything was left to do. Raises
    _OutOfTime when the deadline passes, between two entries (every state it leaves is one tree)."""
    with os.scandir(top) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in entries:
        if deadline is not None and time.monotonic() >= deadline:
            raise _OutOfTime
        if not is_dir:
            os.unlink(name, dir_fd=top)
            continue
        if _rmdir_if_empty(name, top):
            continue
        # The code may have taken its own permissions away (chmod 000) before it ended.
        _open_up(name, dir_fd=top)
        sub = os.open(name, _DIRECTORY, dir_fd=top)
        try:
            with os.scandir(sub) as it:
                children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            for child, child_is_dir in children:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _OutOfTime
                if child_is_dir:
                    if _rmdir_if_empty(child, sub):  # most often, and one call instead of a move and its removal
                        continue
                    _open_up(child, dir_fd=sub)  # moving a directory to another parent rewrites its "..": needs w
                    os.rename(child, f".rm-{uuid.uuid4().hex}", src_dir_fd=sub, dst_dir_fd=top)
                else:
                    os.unlink(child, dir_fd=sub)
        finally:
            os.close(sub)
        os.rmdir(name, dir_fd=top)
    return bool(entries)


def _rmdir_if_empty(name: str, dir_fd: int) -> bool:
    """Removes the directory `name` if it is empty (its own mode does not matter, only its parent's); False if not."""
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        return False  # not empty (or not removable as it is): taken apart the long way
    return True


def end_other_processes(timeout_s: float = SWEEP_S) -> int:
    """Ends every process of this user (by real uid: whatever its name, session, group or parent) except this one and
    its ancestors, and returns how many it signalled; never raises, and logs what it ended and what it could not.

    Only for the sandbox function, where the user is the function's own and nothing else of it runs: a process the
    code left behind (setsid, a double fork, a new name) would otherwise be frozen with the environment and thawed
    into the next invocation, another task's. Counted alive while any of its threads is: a thread-group leader that
    ended its own thread shows as a zombie while its other threads run on, and SIGKILL to its id ends them all.
    Stopped and traced processes are ended too (SIGKILL needs no running process). Rounds go on until none is left
    or `timeout_s` has passed, each reading /proc afresh. When our parent is init, kill(-1) ends them all at once (the
    kernel spares the caller and init, and a process with a SIGKILL pending cannot complete a fork, so nothing
    slips through between rounds); elsewhere each is signalled by its id.
    """
    try:
        return _sweep(timeout_s)
    except Exception:
        log.exception("cleanup: ending the user's other processes failed")
        return 0


def _sweep(timeout_s: float) -> int:
    me = os.getpid()
    keep = _ancestors(me)
    uid = os.getuid()
    all_at_once = keep == {me, 1} or me == 1
    deadline = time.monotonic() + timeout_s
    ended: dict[int, str] = {}
    refused: dict[int, str] = {}
    rounds = 0
    while True:
        victims = {pid: _name(pid) for pid in _pids() if pid not in keep and _is_live_process_of(pid, uid)}
        if not victims or time.monotonic() >= deadline:
            break
        rounds += 1
        if all_at_once:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
        for pid, name in victims.items():
            try:
                os.kill(pid, signal.SIGKILL)
                ended.setdefault(pid, name)
            except ProcessLookupError:
                ended.setdefault(pid, name)  # it died meanwhile (of kill(-1), say)
            except OSError as exc:
                refused[pid] = f"{name}: {exc.strerror}"
        _reap(ended)
        # Give the dying a moment to exit before /proc is read again: a yield, then at most 1 ms.
        os.sched_yield()
        if rounds > 2:
            time.sleep(0.001)
    _reap(ended)
    if ended:
        log.warning(
            "cleanup: ended %d leftover processes of uid %d: %s",
            len(ended),
            uid,
            sorted(ended.items())[:20],
            extra={"ended": len(ended), "rounds": rounds},
        )
    if victims:
        survivors = {pid: refused.get(pid, name) for pid, name in victims.items()}
        log.error(
            "cleanup: %d processes of uid %d still alive after %.3f s: %s",
            len(survivors),
            uid,
            timeout_s,
            sorted(survivors.items())[:20],
            extra={"survivors": len(survivors)},
        )
    return len(ended)


def _reap(pids: dict[int, str]) -> None:
    """Collects those of `pids` that are our own children and have exited (elsewhere their parent or init does)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


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


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): state, ppid, ..."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return raw[raw.rindex(b")") + 2 :].decode("ascii", "replace").split()


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")
    except OSError:
        return "?"


def _real_uid(pid: int) -> int | None:
    """The real uid from /proc/<pid>/status (readable by all). Not the owner of /proc/<pid>: that is root for a
    process that made itself non-dumpable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _is_live_process_of(pid: int, uid: int) -> bool:
    """Whether `pid` is a process of real uid `uid` with a thread that has not exited: any state but zombie or dead
    (stopped, traced, asleep, running), of any of its threads, the leader's own being a zombie or not."""
    if _real_uid(pid) != uid:
        return False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False  # gone meanwhile
    for tid in tids:
        try:
            if _stat_fields(f"{pid}/task/{tid}")[0] not in ("Z", "X"):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


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
