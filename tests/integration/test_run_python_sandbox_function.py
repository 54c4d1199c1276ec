"""run_python as the steps function sees the sandbox function: through Lambda's Invoke API (moto, routed to the
real handler), within Lambda's payload limits, and when the function itself fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_core.agent.tools.base import ToolContext
from agent_core.agent.tools.python_exec import RunPython
from agent_core.sandbox.protocol import LAMBDA_PAYLOAD_BYTES, SandboxLimits
from devserver import lambdas
from tests.bare_run import run_bare
from tests.unit.test_tool_run_python import InMemoryFiles

LIMITS = SandboxLimits(timeout_s=5, memory_mb=256)
pytestmark = pytest.mark.usefixtures("aws_mock")


def run(code: str, files: dict[str, bytes] | None = None) -> tuple[Any, InMemoryFiles]:
    task_files = InMemoryFiles(files)
    return RunPython(LIMITS).run(ToolContext("task-1", "step-1", task_files), {"code": code}), task_files


def test_files_beyond_the_payload_are_named_not_sent() -> None:
    # 3 MB and 2.5 MB do not both fit in one 6 MB invoke once base64-encoded: the smaller goes, the larger is named.
    files = {"small.csv": b"a,b\n1,2\n", "big.bin": b"x" * 3_000_000, "bigger.bin": b"y" * 3_500_000}
    limits = SandboxLimits(timeout_s=5, memory_mb=256, max_file_bytes=4 * 1024 * 1024)

    result = RunPython(limits).run(
        ToolContext("t", "s", InMemoryFiles(files)), {"code": "import os\nprint(sorted(os.listdir('.')))"}
    )

    assert "['big.bin', 'output', 'small.csv']" in result.output
    assert "bigger.bin (over what one run can carry" in result.output


def test_outputs_beyond_the_payload_are_named_not_lost_silently() -> None:
    code = "for i in range(3):\n    open(f'output/part{i}.bin', 'wb').write(bytes(2_000_000))"

    result, task_files = run(code)

    assert len(task_files.writes) == 2
    assert "output/part2.bin (over what one run can return" in result.output


def test_the_invoke_stays_within_lambdas_payload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = lambdas._invoke

    def measured(name: str, body: Any, headers: dict[str, str]) -> bytes:
        sizes.append(len(body))
        answer = original(name, body, headers)
        sizes.append(len(answer))
        return answer

    monkeypatch.setattr(lambdas, "_invoke", measured)
    files = {f"f{i}.bin": bytes(900_000) for i in range(8)}
    code = (
        "import os, shutil\n"
        "for name in os.listdir('.'):\n"
        "    if name.endswith('.bin'):\n"
        "        shutil.copy(name, 'output/a' + name)\n"
        "        shutil.copy(name, 'output/b' + name)"
    )

    result, task_files = run(code, files)

    assert sizes and max(sizes) <= LAMBDA_PAYLOAD_BYTES, sizes
    assert "not copied into the working directory" in result.output  # not all 7.2 MB went in
    assert 0 < len(task_files.writes) < 8 and "over what one run can return" in result.output


def test_a_failing_sandbox_function_is_a_tool_error_not_a_failed_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("out of disk")

    monkeypatch.setitem(lambdas._handlers, "SandboxFunction", broken)

    result, _ = run("print(1)")

    assert result.error
    assert "run_python could not run the code: the sandbox function failed (RuntimeError)" in result.output


def test_an_unknown_sandbox_function_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_FUNCTION_NAME", "no-such-function")
    from agent_core.config import get_settings

    get_settings.cache_clear()

    result, _ = run("print(1)")

    assert result.error and "the sandbox function refused the run: ResourceNotFoundException" in result.output


def test_the_sandbox_refuses_a_malformed_request() -> None:
    from agent_core import aws

    answer = aws.client("lambda").invoke(FunctionName="SandboxFunction", Payload=json.dumps({"code": 42}).encode())
    body = json.loads(answer["Payload"].read())

    assert "FunctionError" not in answer
    assert body["exit_code"] is None and "the sandbox refused the request (invalid: code, limits)" in body["error"]


def test_without_bubblewrap_run_python_refuses_and_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    from agent_core.config import get_settings

    get_settings.cache_clear()

    result, _ = run("print('ran')")

    assert result.error
    assert "bubblewrap (bwrap) is not installed" in result.output and "SANDBOX_ISOLATION=none" in result.output
    assert "ran" not in result.output


def test_the_unisolated_child_runs_only_when_asked_for_and_shields_its_parent() -> None:
    # SANDBOX_ISOLATION=none: no namespaces, so the runner's process is made non-dumpable (its /proc/<pid>/environ,
    # the credentials on Lambda, unreadable by the child of the same user).
    answer = run_bare("import os\nprint('ran as a child of', os.getppid() > 1)")

    assert answer["result"]["stdout"]["text"] == "ran as a child of True\n"
    assert answer["dumpable"] == 0


def test_a_sandbox_failure_completes_the_step_with_the_error_and_the_task_stays_usable(
    api: Any, model_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_model import completion, tool_call

    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise MemoryError

    monkeypatch.setitem(lambdas._handlers, "SandboxFunction", broken)
    model_api.side_effect = [
        completion(tool_call("run_python", {"code": "print(1)"})),
        completion({"content": "carrying on"}),
    ]
    task_id = api("POST", "/tasks", json_body={"input": "compute"}).json()["task_id"]

    step = api("POST", f"/tasks/{task_id}/steps")
    after = api("POST", f"/tasks/{task_id}/steps")

    assert step.status == 200 and step.json()["status"] == "completed"
    error = step.json()["additional_output"]["error"]
    assert error["tool"] == "run_python" and "the sandbox function failed (MemoryError)" in error["message"]
    assert api("GET", f"/tasks/{task_id}").json()["status"] != "failed"
    assert after.status == 200 and after.json()["output"] == "carrying on"
