"""Collecting output/ after the code ran: bounded whatever the code left, and never led elsewhere by a symlink."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent_core.sandbox.workspace import MAX_DEPTH, Staged, collect
from tests.bare_run import run_bare


def collect_from(tmp_path: Path, **overrides: float) -> tuple[list[str], list[str], str | None]:
    root = os.open(tmp_path, os.O_RDONLY)
    try:
        options = {"max_file_bytes": 1000, "budget_bytes": 10_000, "deadline": time.monotonic() + 5, **overrides}
        out = collect(root, Staged(), **options)  # type: ignore[arg-type]
    finally:
        os.close(root)
    return [f.path for f in out.files], out.skipped, out.stopped


def test_files_over_the_budget_are_named_not_returned(tmp_path: Path) -> None:
    (tmp_path / "work" / "output").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (tmp_path / "work" / "output" / name).write_bytes(b"x" * 900)

    files, skipped, _ = collect_from(tmp_path, budget_bytes=2_600)

    assert files == ["output/a", "output/b"]
    assert skipped == ["output/c (over what one run can return (about 4.3 MB of files in all))"]


def test_collection_stops_at_its_deadline(tmp_path: Path) -> None:
    (tmp_path / "work" / "output").mkdir(parents=True)
    (tmp_path / "work" / "output" / "late.txt").write_text("x")

    files, _, stopped = collect_from(tmp_path, deadline=time.monotonic() - 1)

    assert files == [] and stopped == "stopped at the time limit while reading output/"


def test_collection_looks_only_so_deep(tmp_path: Path) -> None:
    deep = tmp_path / "work" / "output"
    for _ in range(MAX_DEPTH + 3):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("x")
    (tmp_path / "work" / "output" / "top.txt").write_text("x")

    files, skipped, _ = collect_from(tmp_path)

    assert files == ["output/top.txt"]
    assert any("deeper than 16 levels" in line for line in skipped)


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="POSIX")
def test_a_run_directory_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    # Where the code can reach its run directory's path (no namespaces), it may swap work/ for a symlink to
    # somewhere with an output/ of interest: the collection keeps to the directory it made.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "output").mkdir(parents=True)
    (elsewhere / "output" / "secret.txt").write_text("hostsecret")
    code = (
        "import os\nroot = os.path.dirname(os.getcwd())\nos.chdir('/')\n"
        f"os.rename(root + '/work', root + '/gone')\nos.symlink({str(elsewhere)!r}, root + '/work')\n"
    )

    result = run_bare(code)["result"]

    assert result["exit_code"] == 0, result["stderr"]
    assert result["outputs"] == []
    assert result["skipped_outputs"] == ["the rest of output/ (output is not a directory)"]
    assert (elsewhere / "output" / "secret.txt").read_text() == "hostsecret"  # and the removal left it alone
