"""Fixtures shared by every test.

- `aws`: a fresh moto for one test, with the template's table and bucket created from template.yaml.
- `api`: calls the real Lambda handlers with API-Gateway-shaped events (routed by the template, like the gateway).
- `live_server`: the dev server started once per session as a user starts it, for tests that speak HTTP.
- `model_api`: a scripted OpenAI-compatible server in place of OpenAI's, for the real `openai` client.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from moto import mock_aws

from agent_core import auth, aws, push
from agent_core.agent import llm
from agent_core.config import get_settings
from agent_core.storage import bucket as bucket_module
from agent_core.storage import table as table_module
from devserver import apigw, lambdas
from devserver.gateway import load_handler
from devserver.lambdas import route_invokes
from devserver.moto_patches import patch_moto
from devserver.resources import LOCAL_CREDENTIALS, create_resources, free_port
from devserver.template import Template
from tests.fake_model import FakeModelAPI
from tests.tools import bubblewrap_missing, chromium_missing, curl_missing, require

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Template()
API = "/ap/v1/agent"


@pytest.fixture(autouse=True, scope="session")
def _process_stays_dumpable() -> Iterator[None]:
    """The sandbox's namespace-less backends make their process non-dumpable; tests run those in processes of their
    own (tests/bare_run.py), never in this one, whose /proc entries other tools may need to read."""
    yield
    if sys.platform.startswith("linux"):
        assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 1, "a test made the test process non-dumpable"


@pytest.fixture(scope="session")
def bubblewrap() -> None:
    """The test needs bubblewrap: skipped without it locally, failed without it in CI (tests/tools.py)."""
    require(bubblewrap_missing())


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of headless Chromium: skipped without it locally, failed without it in CI."""
    require(chromium_missing())
    return str(shutil.which("chromium"))


@pytest.fixture(scope="session")
def curl() -> None:
    """The test needs curl: skipped without it locally, failed without it in CI."""
    require(curl_missing())


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test sees the template's environment with local names, and no real AWS endpoint or credentials."""
    for key, value in {**TEMPLATE.environment(), **LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    """What the functions cache per process is made again for each test, against that test's moto."""
    aws.reset()
    get_settings.cache_clear()
    table_module.get_table.cache_clear()
    bucket_module.get_bucket.cache_clear()
    push.connections.cache_clear()
    push._made.cache_clear()
    push._subscribers_cache = (0.0, [])
    push._owner_of.cache_clear()
    auth.keys.cache_clear()
    auth.forget_cached_keys()


@pytest.fixture
def aws_mock() -> Iterator[None]:
    # Keeping boto3's default session between tests keeps botocore's parsed service models: a fresh session per
    # test re-reads them for every client (most of a test's time). Credentials come from the environment above.
    patch_moto()
    config: Any = {"core": {"reset_boto3_session": False}, "stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config):
        create_resources(TEMPLATE)
        route_invokes(TEMPLATE)
        yield
        _end_executions()


def _end_executions() -> None:
    """Executions run in moto's threads: every one still running is stopped, and the functions they invoked are
    seen to return, before the mock goes (a step left behind would write into the next test's moto)."""
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + 60
    for machine in sfn.list_state_machines()["stateMachines"]:
        arn = machine["stateMachineArn"]
        while running := sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
            for execution in running:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="the test ended")
            assert time.monotonic() < deadline, "executions did not stop"
            time.sleep(0.05)
    while lambdas.in_flight():
        assert time.monotonic() < deadline, "invocations did not return"
        time.sleep(0.05)


class Api:
    """Invokes the function that owns a route, the way API Gateway would, and returns its proxy response."""

    def __init__(self) -> None:
        self.routes = TEMPLATE.routes()
        self.binary_types = TEMPLATE.binary_media_types()
        self.last_event: dict[str, Any] | None = None
        self.function: str | None = None  # the function handling the current call (tests attribute AWS calls)
        # What the authorizer names the caller with (agent_core.auth), as API Gateway passes it; None: none ran.
        self.authorizer: dict[str, str] | None = None

    def as_client(self, client_id: str) -> Api:
        """The same API, called with a client's key (the authorizer's context a client key gets)."""
        other = Api()
        other.authorizer = {"client_id": client_id, "role": "client", "principalId": client_id}
        return other

    def __call__(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        query: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> apigw.ProxyResponse:
        full = API + path
        route, params = next(
            (r, m.groupdict()) for r in self.routes if (m := r.pattern.match(full)) and r.method in (method, "ANY")
        )
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("content-type", "application/json")
        if body is not None:
            headers.setdefault("content-length", str(len(body)))
        event = apigw.rest_event(
            method=method,
            path=full,
            resource=route.path,
            path_parameters=params,
            query=query if isinstance(query, str) else urlencode(query or {}, doseq=True),
            headers=headers,
            body=body or b"",
            binary_types=self.binary_types,
        )
        if self.authorizer is not None:
            event["requestContext"]["authorizer"] = dict(self.authorizer)
        self.last_event = event
        self.function = route.function
        try:
            return apigw.parse_response(load_handler(route)(event, apigw.LambdaContext()))
        finally:
            self.function = None


@pytest.fixture
def api(aws_mock: None) -> Api:
    return Api()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m devserver` on a free port; yields the API's base URL. Its output goes to a file: a pipe nobody
    reads fills up and blocks the server."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))}
    env.update(RATE_LIMIT_PER_MINUTE="0", PYTHONUNBUFFERED="1")
    log = tmp_path_factory.mktemp("devserver") / "output.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}{API}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dev server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/tasks", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"dev server did not start in 60 s: {log.read_text(errors='replace')[-3000:]}")
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


@pytest.fixture
def model_api(monkeypatch: pytest.MonkeyPatch, api: Api) -> Iterator[FakeModelAPI]:
    """The scripted model API in place of OpenAI's, for the handlers' real `openai` client."""
    fake = FakeModelAPI()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "2")
    get_settings.cache_clear()
    llm._openai_chat.cache_clear()
    yield fake
    fake.close()
    llm._openai_chat.cache_clear()
