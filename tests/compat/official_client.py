"""Drives the API with the official Agent Protocol client (agent-protocol-client, unmodified): every call it makes
must parse into its own models. Runs in a venv of its own (the client needs pydantic 1); tests/integration/
test_official_client.py starts it against the dev server.

Usage: python tests/compat/official_client.py http://127.0.0.1:8000
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from agent_protocol_client import AgentApi, ApiClient, Configuration, StepRequestBody, TaskRequestBody


async def main(host: str) -> None:
    async with ApiClient(Configuration(host=host)) as client:
        api = AgentApi(client)
        task = await api.create_agent_task(task_request_body=TaskRequestBody(input="Summarise the sales file"))
        assert task.task_id and task.artifacts == [], task

        listed = await api.list_agent_tasks(current_page=1, page_size=5)
        assert listed.pagination.current_page == 1 and listed.pagination.page_size == 5, listed.pagination
        assert listed.pagination.total_items >= 1 and all(t.task_id for t in listed.tasks)

        with tempfile.TemporaryDirectory() as tmp:  # the client uploads a file by its path
            path = Path(tmp) / "sales.csv"
            path.write_bytes(b"month,amount\nJan,10\nFeb,32\n")
            uploaded = await api.upload_agent_task_artifacts(task_id=task.task_id, file=str(path), relative_path="data")
        assert uploaded.agent_created is False and uploaded.relative_path.startswith("data"), uploaded
        artifacts = await api.list_agent_task_artifacts(task_id=task.task_id)
        assert [a.artifact_id for a in artifacts.artifacts] == [uploaded.artifact_id], artifacts
        data = await api.download_agent_task_artifact(task_id=task.task_id, artifact_id=uploaded.artifact_id)
        assert bytes(data) == b"month,amount\nJan,10\nFeb,32\n", data

        step = await api.execute_agent_task_step(task_id=task.task_id, step_request_body=StepRequestBody(input="go"))
        assert step.status in ("created", "running", "completed") and step.is_last is False, step
        for _ in range(6):
            if step.is_last:
                break
            step = await api.execute_agent_task_step(task_id=task.task_id, step_request_body=StepRequestBody())
        assert step.is_last is True, step

        steps = await api.list_agent_task_steps(task_id=task.task_id, current_page=1, page_size=10)
        assert steps.pagination.total_items == len(steps.steps) >= 2, steps.pagination
        again = await api.get_agent_task_step(task_id=task.task_id, step_id=step.step_id)
        assert again.step_id == step.step_id and again.output == step.output
        final = await api.get_agent_task(task_id=task.task_id)
        assert final.artifacts and any(a.agent_created for a in final.artifacts), final.artifacts
    print(f"official client: task {task.task_id} ran {steps.pagination.total_items} steps; every response parsed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
