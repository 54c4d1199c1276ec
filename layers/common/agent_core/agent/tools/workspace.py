"""run_python's working directory: copies of the task's files go in, new or changed files under output/ come out."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .base import TaskFiles

OUTPUT_DIR = "output"
# Copying in happens before the code runs and saving after, both inside the step's time budget (S3 calls).
MAX_INPUT_FILES = 100
MAX_INPUT_TOTAL_BYTES = 64 * 1024 * 1024
MAX_OUTPUT_FILES = 20
MAX_OUTPUT_TOTAL_BYTES = 64 * 1024 * 1024


@dataclass
class Staged:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path (why)"
    # Digests of the task's own files under output/, so a run saves only what it created or changed.
    output_digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the working directory, e.g. output/chart.svg
    data: bytes | None  # None when skipped
    skipped: str | None = None


def safe_relative(path: str) -> PurePosixPath | None:
    """The path when it names a file inside the working directory, else None (absolute, `..`, empty)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or not pure.parts or ".." in pure.parts or "\0" in path:
        return None
    return pure


def stage_inputs(files: TaskFiles, workdir: Path, max_file_bytes: int) -> Staged:
    staged, total = Staged(), 0
    for artifact in files.list():
        name = str(artifact.get("relative_path") or "")
        relative, size = safe_relative(name), int(artifact.get("file_size") or 0)
        reason, data = _refuse_input(relative, size, max_file_bytes, len(staged.copied), total), b""
        if reason is None and relative is not None:
            try:
                data = _copy_in(files, name, workdir / relative, max_file_bytes)
            except (OSError, ValueError) as exc:  # gone meanwhile, or a file and a folder of the same name
                reason = str(exc) or type(exc).__name__
        if reason is not None or relative is None:
            staged.skipped.append(f"{name} ({reason})")
            continue
        staged.copied.append(name)
        total += len(data)
        if relative.parts[0] == OUTPUT_DIR:
            staged.output_digests[str(relative)] = hashlib.sha256(data).hexdigest()
    return staged


def _copy_in(files: TaskFiles, name: str, target: Path, max_file_bytes: int) -> bytes:
    data = files.read(name)
    if len(data) > max_file_bytes:  # the artifact record's size was stale
        raise ValueError(f"{len(data)} bytes, over the {max_file_bytes}-byte limit")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def _refuse_input(relative: PurePosixPath | None, size: int, max_file_bytes: int, count: int, total: int) -> str | None:
    if relative is None:
        return "unsafe path"
    if size > max_file_bytes:
        return f"{size} bytes, over the {max_file_bytes}-byte limit"
    if count >= MAX_INPUT_FILES:
        return f"over the {MAX_INPUT_FILES}-file limit"
    if total + size > MAX_INPUT_TOTAL_BYTES:
        return f"over the {MAX_INPUT_TOTAL_BYTES}-byte total"
    return None


def collect_outputs(workdir: Path, staged: Staged, max_file_bytes: int) -> Iterator[OutputFile]:
    """Regular files under output/ that the run created or changed, in path order; symlinks and the like never.

    The code may have planted a symlink to a file only this process can read (/proc/<our pid>/environ holds the
    credentials), so directories are walked by file descriptor and files opened with O_NOFOLLOW, never by path.
    """
    root = workdir / OUTPUT_DIR
    count = total = 0
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            relative = str(PurePosixPath(OUTPUT_DIR, Path(dirpath).relative_to(root), name))
            data, reason = _read_regular(name, dirfd, max_file_bytes)
            if data is not None and staged.output_digests.get(relative) == hashlib.sha256(data).hexdigest():
                continue  # copied in and left alone
            if data is not None and count >= MAX_OUTPUT_FILES:
                data, reason = None, f"over the {MAX_OUTPUT_FILES}-file limit"
            if data is not None and total + len(data) > MAX_OUTPUT_TOTAL_BYTES:
                data, reason = None, f"over the {MAX_OUTPUT_TOTAL_BYTES}-byte total"
            if data is None:
                yield OutputFile(relative, None, reason)
                continue
            count, total = count + 1, total + len(data)
            yield OutputFile(relative, data)


def _read_regular(name: str, dirfd: int, limit: int) -> tuple[bytes | None, str | None]:
    try:
        # O_NONBLOCK: opening a FIFO the code left behind must not hang us.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    except OSError:
        return None, "not a regular file"  # a symlink (ELOOP), or unreadable
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        data = f.read(limit + 1)
    if len(data) > limit:
        return None, f"over the {limit}-byte limit"
    return data, None
