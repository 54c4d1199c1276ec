"""The README's two quick-starts, run as written against the dev server, each in a folder holding the offline demo's
sales.csv: the Python one with this venv's Python and the client from clients/python/src, the JavaScript one with
Node as an ES module against the client built in clients/js (npm, as a user builds it; imported through a
node_modules/@autogpt/client link to it). Each must end well, and its task must hold the upload where the
quick-start asked (`data/sales.csv`) and the report the agent wrote."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.http
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
JS = ROOT / "clients" / "js"
SALES = "month,amount\nJan,10\nFeb,32\n"
INPUT = "分析销售数据"  # the quick-starts' task


def quick_start(language: str, server_root: str) -> str:
    """The fenced block right after the README's `<!-- quick-start: LANGUAGE -->` marker, pointed at `server_root`."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^<!-- quick-start: {language} -->\n```{language}\n(.*?)^```", text, re.S | re.M)
    assert found, f"README.md has no ```{language} block after <!-- quick-start: {language} -->"
    code = found.group(1)
    assert "http://localhost:8000" in code, "the quick-start no longer names the dev server's URL"
    return code.replace("http://localhost:8000", server_root)


def newest_tasks(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/tasks", params={"page": 1, "size": 100})
    assert answer.status_code == 200, answer.text
    tasks: list[dict[str, Any]] = answer.json()["tasks"]
    return tasks


def the_quick_starts_task(http: httpx.Client, before: list[dict[str, Any]]) -> dict[str, Any]:
    """The one task created since `before` was read (tasks are listed newest first)."""
    known = {task["task_id"] for task in before}
    made = [task for task in newest_tasks(http) if task["task_id"] not in known]
    assert len(made) == 1 and made[0]["input"] == INPUT, made
    return made[0]


def check_the_task(http: httpx.Client, task: dict[str, Any], output: str) -> None:
    task = http.get(f"/tasks/{task['task_id']}").json()
    assert task["status"] == "completed", task
    uploads = [a for a in task["artifacts"] if not a["agent_created"]]
    # relative_path without a trailing `/` is the file's path and name, whatever the file was called
    assert [(a["relative_path"], a["file_name"]) for a in uploads] == [("data/sales.csv", "sales.csv")], uploads
    assert any(a["agent_created"] and a["relative_path"] == "report.md" for a in task["artifacts"]), task
    lines = output.splitlines()
    assert "data/sales.csv" in lines, output  # what the upload answered, as the quick-start prints it
    assert "# Task files report" in lines, output  # the report, downloaded
    assert "## data/sales.csv" in lines, output  # ... which the agent wrote about the uploaded file


def test_the_python_quick_start_runs_as_written(live_server: str, http: httpx.Client, tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(quick_start("python", live_server.removesuffix("/ap/v1/agent")), encoding="utf-8")
    (tmp_path / "sales.csv").write_text(SALES)
    before = newest_tasks(http)

    done = subprocess.run(
        [sys.executable, script.name],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "clients" / "python" / "src")},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == "data/sales.csv", done.stdout
    assert re.search(r"^completed 1(\.0)? ", done.stdout, re.M), done.stdout  # the watch saw the task end
    check_the_task(http, the_quick_starts_task(http, before), done.stdout)


def test_the_javascript_quick_start_runs_as_written(
    live_server: str, http: httpx.Client, tmp_path: Path, js_client: Path
) -> None:
    script = tmp_path / "quickstart.mjs"
    script.write_text(quick_start("js", live_server.removesuffix("/ap/v1/agent")), encoding="utf-8")
    (tmp_path / "sales.csv").write_text(SALES)
    (tmp_path / "node_modules" / "@autogpt").mkdir(parents=True)
    (tmp_path / "node_modules" / "@autogpt" / "client").symlink_to(js_client, target_is_directory=True)
    before = newest_tasks(http)

    done = subprocess.run(
        ["node", script.name], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=180
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "27/27 bytes" in done.stdout.splitlines(), done.stdout  # onProgress saw the whole file go
    assert re.search(r"^completed 1$", done.stdout, re.M), done.stdout  # the watch saw the task end
    assert done.stdout.splitlines()[-1] == "TASK_NOT_FOUND 404", done.stdout  # errors are AutoGPTError
    check_the_task(http, the_quick_starts_task(http, before), done.stdout)
