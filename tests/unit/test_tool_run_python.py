"""run_python: the sandbox's limits, its empty environment, and the task's files in and out."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from agent_core.agent.tools.base import MAX_TOOL_OUTPUT_CHARS, ToolContext, ToolResult, openai_schema
from agent_core.agent.tools.python_exec import RunPython
from agent_core.config import get_settings
from agent_core.sandbox.protocol import SandboxLimits

LIMITS = SandboxLimits(timeout_s=5, memory_mb=256, max_output_bytes=16 * 1024, max_file_bytes=1024 * 1024)
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIATESTSANDBOXLEAK",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-that-must-not-leak",
    "AWS_SESSION_TOKEN": "aws-session-token-that-must-not-leak",
    "OPENAI_API_KEY": "sk-openai-key-that-must-not-leak",
}
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's limits are Linux ones")
# The tool invokes the sandbox function through Lambda's API (moto), which runs the function's real handler.
pytestmark = pytest.mark.usefixtures("aws_mock")


class InMemoryFiles:
    """The TaskFiles contract over a dict (our own interface, not an AWS call), recording writes."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.writes: list[tuple[str, bytes, str | None]] = []

    def list(self) -> list[dict[str, Any]]:
        return [self._artifact(path, data) for path, data in self.files.items()]

    def read(self, relative_path: str) -> bytes:
        if relative_path not in self.files:
            raise FileNotFoundError(relative_path)
        return self.files[relative_path]

    def write(self, relative_path: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        self.files[relative_path] = data
        self.writes.append((relative_path, data, content_type))
        return {**self._artifact(relative_path, data), "agent_created": True}

    @staticmethod
    def _artifact(path: str, data: bytes) -> dict[str, Any]:
        return {
            "artifact_id": f"id-{path}",
            "file_name": path.rsplit("/", 1)[-1],
            "relative_path": path,
            "file_size": len(data),
            "agent_created": False,
            "created_at": "2024-01-01T00:00:00Z",
        }


def run_python(
    code: str, files: dict[str, bytes] | None = None, limits: SandboxLimits | None = LIMITS
) -> tuple[ToolResult, InMemoryFiles]:
    """Runs `code` through the tool with `limits` (None: the settings' own)."""
    task_files = InMemoryFiles(files)
    result = RunPython(limits).run(ToolContext("task-1", "step-1", task_files), {"code": code})
    return result, task_files


def stdout_of(result: ToolResult) -> str:
    return result.output.split("stdout:\n", 1)[1].split("\nstderr:\n", 1)[0]


def test_run_python_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given credentials and the OpenAI key in the parent's environment
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)

    # When the code prints its whole environment
    result, _ = run_python("import json, os\nprint(json.dumps(dict(os.environ)))")

    # Then it saw none of them, nor anything else of ours
    assert not result.error, result.output
    assert set(json.loads(stdout_of(result))) <= {"LANG", "TMPDIR", "HOME", "PWD", "LD_LIBRARY_PATH", "TZ"}
    for value in SECRETS.values():
        assert value not in result.output


@linux_only
def test_run_python_cannot_read_the_parent_environment_through_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused by the child's audit hook whoever runs it (root here; on Lambda the non-dumpable parent refuses too)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS["AWS_SECRET_ACCESS_KEY"])

    code = (
        "import os\n"
        "try:\n    print(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n"
        "except OSError as e:\n    print(e)"
    )
    result, _ = run_python(code)

    assert SECRETS["AWS_SECRET_ACCESS_KEY"] not in result.output
    assert "not allowed in run_python (open)" in result.output


@linux_only
def test_run_python_kills_a_long_loop_at_the_timeout() -> None:
    # Busy for 60 s of wall clock, then a line that only a run let go past its 1 s limit prints
    code = "import time\nprint('started', flush=True)\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n"
    code += "    pass\nprint('finished')"

    result, _ = run_python(code, limits=SandboxLimits(timeout_s=1, memory_mb=256))

    assert result.error
    assert result.output.startswith("Exit: killed at the 1 s time limit")
    assert stdout_of(result).strip() == "started"


@linux_only
@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("a process", "import os\nos.system('echo escaped')"),
        ("a subprocess", "import subprocess\nsubprocess.run(['/bin/echo', 'escaped'])"),
        ("a fork", "import os\nos.fork()"),
        ("ctypes", "import ctypes\nctypes.CDLL(None)"),
        (
            "the network",
            "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9001/2018-06-01/runtime/invocation/next')",
        ),
        ("a raw socket", "import _socket\n_socket.socket()"),
    ],
)
def test_run_python_refuses_processes_network_and_ctypes(what: str, code: str) -> None:
    # When the code tries to leave the sandbox (Lambda's runtime API on 127.0.0.1:9001, a shell, C calls)
    result, _ = run_python(code)

    # Then the audit hook stops it, and the model is told why and what to use instead
    assert result.error, what
    assert "not allowed in run_python" in result.output and "fetch_url" in result.output
    assert "escaped" not in stdout_of(result)


@linux_only
@pytest.mark.parametrize(
    "code",
    [
        "data = bytearray(2 * 1024**3)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))",
    ],
    ids=["one-2GB-allocation", "growing-list"],
)
def test_run_python_stops_a_memory_bomb(code: str) -> None:
    result, _ = run_python(code, limits=SandboxLimits(timeout_s=10, memory_mb=256))

    assert result.error
    assert "MemoryError" in result.output
    # The memory limit stopped it (the code's own exit on the MemoryError), not the 10 s time limit
    assert result.output.startswith("Exit: exit code 1 (out of memory: the limit is 256 MB) after")


@linux_only
@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize("limits", [LIMITS, None], ids=["a-request's-limit", "the-settings'-limit"])
def test_run_python_memory_limit_is_the_configured_one(limits: SandboxLimits | None) -> None:
    # One allocation a sixteenth over the limit, one a quarter under it (the interpreter itself takes ~15 MB of
    # address space): a limit a few times too large or too small fails one of the two.
    memory_mb = RunPython(limits).limits.memory_mb
    over, under = memory_mb + memory_mb // 16, memory_mb * 3 // 4

    def allocating(mb: int) -> str:
        return f"data = bytearray({mb} * 2**20)\nprint('allocated', len(data) >> 20)"

    stopped, _ = run_python(allocating(over), limits=limits)
    fitted, _ = run_python(allocating(under), limits=limits)

    assert stopped.error and "MemoryError" in stopped.output
    assert f"out of memory: the limit is {memory_mb} MB" in stopped.output
    assert "allocated" not in stdout_of(stopped)
    assert not fitted.error, fitted.output
    assert stdout_of(fitted).strip() == f"allocated {under}"


@linux_only
def test_run_python_truncates_huge_output() -> None:
    # 40 MB on stdout and 40 MB on stderr
    code = "import sys\nfor _ in range(40):\n    sys.stdout.write('x' * 2**20)\n    sys.stderr.write('e' * 2**20)"

    result, _ = run_python(code)

    assert not result.error, result.output[:500]
    assert len(result.output) <= MAX_TOOL_OUTPUT_CHARS + 100
    assert f"the program wrote {40 * 2**20} bytes here; only the first {16 * 1024} were kept" in result.output


def test_run_python_sees_the_task_files_and_saves_what_it_writes_to_output() -> None:
    # Given a task with a CSV in a folder and a note
    files = {"data/sales.csv": b"region,amount\nnorth,10\nsouth,32\n", "notes.txt": b"hello"}
    code = """
import csv, json, os, statistics
rows = list(csv.DictReader(open("data/sales.csv")))
amounts = [int(r["amount"]) for r in rows]
print(sorted(os.listdir(".")), sum(amounts), open("notes.txt").read())
json.dump({"total": sum(amounts), "mean": statistics.mean(amounts)}, open("output/summary.json", "w"))
os.makedirs("output/charts")
open("output/charts/bars.txt", "w").write("north ##\\nsouth ######\\n")
open("scratch.txt", "w").write("not kept")
"""
    # When the code reads them and writes two files under output/ (and one elsewhere)
    result, task_files = run_python(code, files)

    # Then it saw the files at their paths, and exactly the output/ files became artifacts
    assert not result.error, result.output
    assert "['data', 'notes.txt', 'output'] 42 hello" in stdout_of(result)
    assert sorted((path, ctype) for path, _, ctype in task_files.writes) == [
        ("output/charts/bars.txt", "text/plain"),
        ("output/summary.json", "application/json"),
    ]
    assert json.loads(task_files.files["output/summary.json"]) == {"total": 42, "mean": 21}
    assert sorted(a["relative_path"] for a in result.artifacts) == ["output/charts/bars.txt", "output/summary.json"]
    assert "output/charts/bars.txt (22 bytes)" in result.output.split("\n")[1]
    assert "scratch.txt" not in result.output


def test_run_python_saves_only_new_or_changed_output_files() -> None:
    files = {"output/same.txt": b"same", "output/edited.txt": b"old"}

    result, task_files = run_python("open('output/edited.txt', 'w').write('new')", files)

    assert [(path, data) for path, data, _ in task_files.writes] == [("output/edited.txt", b"new")]
    assert "output/same.txt" not in result.output


def test_run_python_skips_task_files_over_the_size_limit() -> None:
    limits = SandboxLimits(timeout_s=5, memory_mb=256, max_file_bytes=1000)
    files = {"big.bin": b"x" * 2000, "small.txt": b"ok"}

    result, _ = run_python("import os\nprint(os.path.exists('big.bin'), open('small.txt').read())", files, limits)

    assert stdout_of(result).strip() == "False ok"
    assert "not copied into the working directory: big.bin (2000 bytes, over the 1000-byte limit)" in result.output


def test_run_python_keeps_task_files_inside_its_working_directory() -> None:
    files = {"../escape.txt": b"x", "/etc/hijack.txt": b"y", "fine.txt": b"z"}

    result, _ = run_python("import os\nprint(os.path.exists('../escape.txt'), os.listdir('.'))", files)

    assert "False" in stdout_of(result)
    assert "../escape.txt (unsafe path)" in result.output
    assert "/etc/hijack.txt (unsafe path)" in result.output


@linux_only
def test_run_python_never_saves_symlinks_from_output() -> None:
    # A symlink to the parent's /proc entry would let the parent read its own credentials into an artifact.
    code = (
        "import os\n"
        "os.symlink(f'/proc/{os.getppid()}/environ', 'output/environ.txt')\n"
        "os.symlink('/etc', 'output/etc')\n"
        "os.mkfifo('output/pipe')\n"
    )

    result, task_files = run_python(code)

    assert task_files.writes == []
    assert "output/environ.txt (not a regular file)" in result.output
    assert "output/pipe (not a regular file)" in result.output


def test_run_python_caps_the_number_of_saved_files() -> None:
    code = "for i in range(25):\n    open(f'output/f{i:02}.txt', 'w').write(str(i))"

    result, task_files = run_python(code)

    assert len(task_files.writes) == 20
    assert "output/f20.txt (over the 20-file limit)" in result.output


@linux_only
def test_run_python_limits_the_size_of_files_it_writes() -> None:
    limits = SandboxLimits(timeout_s=5, memory_mb=256, max_file_bytes=1000)
    code = "with open('output/big.bin', 'wb') as f:\n    f.write(b'x' * 5000)"

    result, task_files = run_python(code, limits=limits)

    assert result.error
    assert "File too large" in result.output
    assert all(len(data) <= 1000 for _, data, _ in task_files.writes)


def test_run_python_reports_exceptions_without_its_own_frames() -> None:
    result, _ = run_python("def f():\n    raise ValueError('boom')\nf()")

    assert result.error
    assert result.output.startswith("Exit: exit code 1 after")
    assert "ValueError: boom" in result.output
    assert 'main.py", line 3, in <module>' in result.output
    assert "<string>" not in result.output
    assert "runpy" not in result.output


def test_run_python_reports_syntax_errors_with_the_line() -> None:
    result, _ = run_python("total = 1\ndef f(:\n    pass")

    assert result.error
    assert 'main.py", line 2' in result.output
    assert "SyntaxError" in result.output


def test_run_python_offers_the_standard_library_only() -> None:
    # boto3 is installed where the tests run; the sandbox must not see it (nor pandas on a developer's machine).
    result, _ = run_python("import boto3")

    assert "ModuleNotFoundError: No module named 'boto3'" in result.output


def test_run_python_exit_works_like_in_a_script() -> None:
    result, _ = run_python("print('bye')\nexit(3)")

    assert result.output.startswith("Exit: exit code 3")
    assert stdout_of(result).strip() == "bye"


@pytest.mark.parametrize("args", [{}, {"code": ""}, {"code": 42}])
def test_run_python_refuses_calls_without_code(args: dict[str, Any]) -> None:
    result = RunPython(LIMITS).run(ToolContext("t", "s", InMemoryFiles()), args)

    assert result.error
    assert "needs `code`" in result.output


def test_run_python_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TIMEOUT_S", "7.5")
    monkeypatch.setenv("SANDBOX_MEMORY_MB", "300")
    monkeypatch.setenv("SANDBOX_MAX_OUTPUT_BYTES", "1000")
    monkeypatch.setenv("SANDBOX_MAX_FILE_BYTES", "2097152")
    get_settings.cache_clear()

    tool = RunPython()

    assert tool.limits == SandboxLimits(timeout_s=7.5, memory_mb=300, max_output_bytes=1000, max_file_bytes=2097152)
    assert "Limits: 7.5 s, 300 MB of memory" in tool.description
    assert "of 2 MB each" in tool.description


def test_run_python_schema_takes_one_code_string() -> None:
    function = openai_schema(RunPython(LIMITS))["function"]

    assert function["name"] == "run_python"
    assert function["parameters"]["required"] == ["code"]
    assert function["parameters"]["properties"]["code"]["type"] == "string"
    assert function["parameters"]["additionalProperties"] is False
    assert "numpy, pandas and other packages are NOT installed" in function["description"]
