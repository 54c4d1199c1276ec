"""A run's working directory: the request's files staged in; the new or changed files under output/ collected out,
within bounds the code cannot stretch (depth, entries looked at, files, bytes, time), never following a symlink."""

from __future__ import annotations

import binascii
import hashlib
import itertools
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .protocol import FILES_LIMIT_TEXT, MAX_OUTPUT_FILES, MAX_PATH_CHARS, SandboxFile, capped_line

OUTPUT_DIR = "output"
MAX_DEPTH = 16  # directory levels under output/ looked into
MAX_ENTRIES = 5_000  # directory entries looked at, files and directories alike
MAX_SKIPS_LISTED = 40
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass
class Staged:
    skipped: list[str] = field(default_factory=list)  # "path (why)"
    # Digests of the task's own files under output/, so a run returns only what it created or changed.
    output_digests: dict[str, str] = field(default_factory=dict)


def safe_relative(path: str) -> PurePosixPath | None:
    """The path when it names a file inside the working directory, else None (absolute, `..`, empty)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or not pure.parts or ".." in pure.parts or "\0" in path:
        return None
    return pure


def stage(files: list[SandboxFile], work: Path, max_file_bytes: int) -> Staged:
    staged = Staged()
    for file in files:
        relative = safe_relative(file.path)
        if relative is None:
            staged.skipped.append(capped_line(f"{file.path} (unsafe path)"))
            continue
        try:
            data = file.data
            if len(data) > max_file_bytes:
                raise ValueError(f"{len(data)} bytes, over the {max_file_bytes}-byte limit")
            target = work / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except (OSError, ValueError, binascii.Error) as exc:  # a file and a folder of the same name, say
            staged.skipped.append(capped_line(f"{file.path} ({exc or type(exc).__name__})"))
            continue
        if relative.parts[0] == OUTPUT_DIR:
            staged.output_digests[str(relative)] = hashlib.sha256(data).hexdigest()
    return staged


@dataclass
class Collected:
    files: list[SandboxFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unlisted: int = 0  # skipped files beyond the ones listed
    stopped: str | None = None  # why the walk ended early


def collect(root: int, staged: Staged, *, max_file_bytes: int, budget_bytes: int, deadline: float) -> Collected:
    """Regular files under work/output/ of the run directory open as `root` that the run created or changed,
    directory by directory in name order.

    Nothing of the code's runs any more, and every component is opened relative to a descriptor with O_NOFOLLOW (the
    run directory's own was opened before the code ran), so a symlink the code planted anywhere on the way, even in
    place of work/ itself, is reported, never followed.
    """
    out = Collected()
    try:
        work = os.open("work", _DIRECTORY, dir_fd=root)
        try:
            top = os.open(OUTPUT_DIR, _DIRECTORY, dir_fd=work)
        finally:
            os.close(work)
    except FileNotFoundError:
        return out
    except OSError:
        out.stopped = f"{OUTPUT_DIR} is not a directory"
        return out
    try:
        _Walk(top, staged, out, max_file_bytes, budget_bytes, deadline).run()
    finally:
        os.close(top)
    return out


class _Walk:
    def __init__(
        self, top: int, staged: Staged, out: Collected, max_file_bytes: int, budget_bytes: int, deadline: float
    ) -> None:
        self.top, self.staged, self.out = top, staged, out
        self.max_file_bytes, self.budget, self.deadline = max_file_bytes, budget_bytes, deadline
        self.seen = 0

    def run(self) -> None:
        pending: list[tuple[PurePosixPath, int]] = [(PurePosixPath(), 0)]
        while pending and self.out.stopped is None:
            relative, depth = pending.pop()
            subdirs = self._directory(relative, depth)
            pending.extend((relative / name, depth + 1) for name in reversed(subdirs))

    def _directory(self, relative: PurePosixPath, depth: int) -> list[str]:
        """Takes the directory's files; returns its subdirectories to walk."""
        fd = os.open(str(relative) if relative.parts else ".", _DIRECTORY, dir_fd=self.top)
        subdirs: list[str] = []
        try:
            with os.scandir(fd) as it:
                entries = sorted(itertools.islice(it, MAX_ENTRIES - self.seen + 1), key=lambda e: e.name)
            for entry in entries:
                self.seen += 1
                if self.seen > MAX_ENTRIES:
                    self.out.stopped = f"stopped after looking at {MAX_ENTRIES} entries under {OUTPUT_DIR}/"
                elif time.monotonic() > self.deadline:
                    self.out.stopped = f"stopped at the time limit while reading {OUTPUT_DIR}/"
                if self.out.stopped:
                    break
                path = str(PurePosixPath(OUTPUT_DIR, relative, entry.name))
                if not _is_utf8(entry.name):
                    self._skip(f"{_shown(path)} (the name is not valid UTF-8)")
                elif entry.is_dir(follow_symlinks=False):
                    if depth + 1 >= MAX_DEPTH:
                        self._skip(f"{path}/ (deeper than {MAX_DEPTH} levels: not looked into)")
                    else:
                        subdirs.append(entry.name)
                else:
                    self._file(path, entry.name, fd)
        finally:
            os.close(fd)
        return subdirs

    def _file(self, path: str, name: str, dirfd: int) -> None:
        data, reason = _read_regular(name, dirfd, self.max_file_bytes)
        if data is not None and self.staged.output_digests.get(path) == hashlib.sha256(data).hexdigest():
            return  # copied in and left alone
        if data is not None and len(path) > MAX_PATH_CHARS:
            data, reason = None, f"a path longer than {MAX_PATH_CHARS} characters"
        if data is not None and len(self.out.files) >= MAX_OUTPUT_FILES:
            data, reason = None, f"over the {MAX_OUTPUT_FILES}-file limit"
        if data is not None:
            file = SandboxFile.of(path, data)
            if file.encoded_size > self.budget:
                data, reason = None, f"over what one run can return ({FILES_LIMIT_TEXT})"
            else:
                self.budget -= file.encoded_size
                self.out.files.append(file)
                return
        self._skip(f"{path} ({reason})")

    def _skip(self, line: str) -> None:
        if len(self.out.skipped) < MAX_SKIPS_LISTED:
            self.out.skipped.append(capped_line(line))
        else:
            self.out.unlisted += 1


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # os.scandir decodes undecodable bytes to lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _read_regular(name: str, dirfd: int, limit: int) -> tuple[bytes | None, str | None]:
    try:
        # O_NONBLOCK: opening a FIFO the code left behind must not hang us.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    except OSError:
        return None, "not a regular file"  # a symlink (ELOOP), or unreadable
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, "not a regular file"
        data = f.read(limit + 1)
    if len(data) > limit:
        return None, f"over the {limit}-byte limit"
    return data, None
