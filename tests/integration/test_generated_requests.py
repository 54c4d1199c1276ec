"""Generated requests (schemathesis) against the dev server, from the API's own OpenAPI document: for every
operation, up to EXAMPLES_PER_OPERATION cases (about 450 in all: bounded for the suite's time), valid and invalid
by the document, half of them on a real task. No 5xx, every answer as the document says (status, content type,
schema), every error in the spec's envelope."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

pytestmark = pytest.mark.http
DOCUMENT = Path(__file__).resolve().parents[2] / "layers" / "common" / "agent_core" / "openapi.json"
# 25 keeps this file near a minute of the suite; FUZZ_EXAMPLES=500 makes a longer run (about 9,000 cases).
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SPEC_CODES = {
    "INVALID_REQUEST", "TASK_NOT_FOUND", "STEP_NOT_FOUND", "ARTIFACT_NOT_FOUND", "TASK_ALREADY_RUNNING",
    "INSUFFICIENT_RESOURCES", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "OPENAI_API_ERROR", "INTERNAL_ERROR",
    "RUN_NOT_FOUND", "UNAUTHORIZED", "FORBIDDEN", "KEY_NOT_FOUND",
}  # fmt: skip

# The document names its server relative to itself ("Try it out" from /docs); schemathesis would read that as a path
# prefix, so it gets the root, and the paths (which carry /ap/v1/agent) are joined with the dev server's address.
# The document's keys (security) are left out: this dev server runs open (no AUTH=keys), as `make dev` does, so made-up
# keys would be ignored, not refused. Every route's 401 and 403 with keys on are tested in
# tests/integration/test_devserver_keys.py and tests/integration/test_tenancy.py.
_document = {**json.loads(DOCUMENT.read_text()), "servers": [{"url": "/"}]}
_document.pop("security")
schema = schemathesis.openapi.from_dict(_document)
# Checks left out, and why:
# - positive_data_acceptance expects every request the document allows to succeed; some are refused by rules a
#   schema cannot state (page and current_page that disagree, cancel with no run under way, an Idempotency-Key
#   sent again with another body): 400 is the answer, in the envelope, as documented.
EXCLUDED: list[Any] = [positive_data_acceptance]


class RealTask:
    """A task that exists, for half of the examples (the others name tasks that do not); made again when an example
    deleted it."""

    def __init__(self, base: str) -> None:
        self.base, self.task_id = base, ""

    def id(self) -> str:
        if not self.task_id or httpx.get(f"{self.base}/tasks/{self.task_id}").status_code == 404:
            self.task_id = httpx.post(f"{self.base}/tasks", json={"input": "fuzzed"}).json()["task_id"]
        return self.task_id


@pytest.fixture(scope="module")
def real_task(live_server: str) -> RealTask:
    return RealTask(live_server)


def _envelope(response: Any) -> None:
    body = json.loads(response.content)
    assert body["success"] is False and isinstance(body["message"], str), body
    error = body["error"]
    assert error["code"] in SPEC_CODES and isinstance(error["message"], str), body
    assert isinstance(error["details"], dict), body


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests on every run: a failure can be replayed
)
def test_generated_requests(case: Any, live_server: str, real_task: RealTask) -> None:
    if "task_id" in (case.path_parameters or {}) and zlib.crc32(json.dumps(case.path_parameters).encode()) % 2:
        case.path_parameters["task_id"] = real_task.id()
    excluded = EXCLUDED
    if case.path.endswith("/artifacts/uploads"):
        # GET .../artifacts/uploads is GET .../artifacts/{artifact_id} with an id that is not one: 400, not 405.
        excluded = [*EXCLUDED, unsupported_method]
    response = case.call_and_validate(base_url=live_server.removesuffix("/ap/v1/agent"), excluded_checks=excluded)
    if response.status_code >= 400:
        _envelope(response)
