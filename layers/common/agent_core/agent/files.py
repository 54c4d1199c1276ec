"""The task's artifacts as the tools see them (the TaskFiles contract), remembering what this step wrote."""

from __future__ import annotations

from typing import Any

from .. import artifacts


class ArtifactFiles:
    def __init__(self, task_id: str, step_id: str) -> None:
        self.task_id, self.step_id = task_id, step_id
        self.written: dict[str, dict[str, Any]] = {}  # relative_path -> artifact; a rewrite replaces

    def list(self) -> list[dict[str, Any]]:
        return artifacts.list_task_files(self.task_id)

    def read(self, relative_path: str) -> bytes:
        return artifacts.read_task_file(self.task_id, relative_path)

    def write(self, relative_path: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        artifact = artifacts.write_agent_file(self.task_id, relative_path, data, content_type, self.step_id)
        self.written[artifact["relative_path"]] = artifact
        return artifact
