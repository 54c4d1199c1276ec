"""Collecting output/ after the code ran: bounded whatever the code left, and never led elsewhere by a symlink."""

from __future__ import annotations

import json
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


# Files that fill what one run may return, then names made of control characters (each 6 bytes of JSON, \u0001) or
# not UTF-8 at all: the case where a result came to 6.76 MB, over Lambda's 6 MB response limit.
FILLED = """
import os
os.makedirs("output", exist_ok=True)
for name, size in (("big0", 3_000_000), ("big1", 1_000_000), ("big2", 300_000), ("big3", 30_000), ("big4", 10_000)):
    with open("output/" + name, "wb") as f:
        f.write(os.urandom(size))
"""
NAMES = {
    "long control-character names": FILLED
    + (
        "d = os.path.join('output', *['\\x01' * 250] * 3)\nos.makedirs(d)\n"
        "for i in range(60):\n    open(os.path.join(d, '\\x02' * 200 + str(i)), 'w').write('x')\n"
    ),
    "paths deeper than a file's path may be": FILLED
    + (
        "d = os.path.join('output', *['\\x01' * 250] * 15)\nos.makedirs(d)\n"
        "for i in range(60):\n    open(os.path.join(d, '\\x02' * 60 + str(i)), 'w').write('x')\n"
    ),
    "names that are not UTF-8": FILLED
    + "for i in range(60):\n    open(b'output/' + b'\\x80' * 240 + str(i).encode(), 'w').write('x')\n",
}


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize("label", NAMES)
def test_the_result_always_fits_lambdas_response(label: str) -> None:
    from agent_core.sandbox import runner
    from agent_core.sandbox.isolation import Bubblewrap
    from agent_core.sandbox.protocol import LAMBDA_PAYLOAD_BYTES, MAX_LINE_JSON_BYTES, SandboxLimits, SandboxRequest

    result = runner.run(
        SandboxRequest(code=NAMES[label], limits=SandboxLimits(timeout_s=30)), isolation=Bubblewrap()
    ).model_dump(mode="json")
    wire = len(json.dumps(result))

    assert result["exit_code"] == 0 and result["error"] is None, (result["stderr"], result["error"])
    assert wire <= LAMBDA_PAYLOAD_BYTES, f"{wire} bytes of JSON"
    assert all(len(json.dumps(line)) <= MAX_LINE_JSON_BYTES for line in result["skipped_outputs"])
    returned = {f["path"] for f in result["outputs"]}
    for name in ("big0", "big1", "big2", "big3", "big4"):  # each returned or named
        assert f"output/{name}" in returned or any(
            line.startswith(f"output/{name} ") for line in result["skipped_outputs"]
        )
    assert len(result["skipped_outputs"]) > 10  # the names that did not fit are listed, cut, not dropped


def test_a_result_over_the_limit_is_cut_to_fit_naming_what_went() -> None:
    from agent_core.sandbox.protocol import SandboxFile, SandboxResult, Stream
    from agent_core.sandbox.runner import fit

    result = SandboxResult(
        exit_code=0,
        stdout=Stream(text="\ufffd" * 300_000, kept=300_000, total=300_000),  # 1.8 MB of JSON
        outputs=[SandboxFile.of(f"output/{i}", bytes(1_000_000)) for i in range(4)],  # 1.33 MB each
        skipped_outputs=["output/x (why)"],
    )

    fitted = fit(result, limit=1_000_000).model_dump(mode="json")

    assert len(json.dumps(fitted)) <= 1_000_000
    assert len(fitted["outputs"]) == 0 and 0 < fitted["stdout"]["kept"] < fitted["stdout"]["total"] == 300_000
    assert [line.split(" (")[0] for line in fitted["skipped_outputs"][:4]] == [f"output/{i}" for i in (3, 2, 1, 0)]
