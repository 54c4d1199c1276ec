"""The web console (console/, at /console/ on the dev server): built with its pinned packages (npm ci), then driven in
headless Chromium by role and accessible name (tests/integration/console_browser.mjs) against a dev server on a free
port: create with a file, run to completed live, the timeline, a download, the list, an unknown task, Chinese, a
phone's width, axe-core; and against a second one with AUTH=keys: the key asked once, refused keys said so.
UPDATE_SCREENSHOT=1 writes the finished task's page to docs/console.png (the README's picture)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devserver import apigw
from devserver.gateway import load_handler
from devserver.resources import free_port
from devserver.template import Template

pytestmark = [pytest.mark.http, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
ADMIN_KEY = "adm-console-test-key"


@pytest.fixture(scope="module")
def built() -> Path:
    """What `make console` makes (done here when pytest runs alone): the pinned packages, then the bundle."""
    if not (CONSOLE / "node_modules" / "axe-core").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=CONSOLE, capture_output=True, text=True, timeout=600
        )
        assert installed.returncode == 0, installed.stderr[-2000:]
    if not (CONSOLE / "dist" / "index.html").is_file():
        done = subprocess.run(["npm", "run", "build"], cwd=CONSOLE, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return CONSOLE / "dist"


@pytest.fixture(scope="module")
def keys_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second dev server on a free port with AUTH=keys and a known operator key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENAI_"))}
    env.update(RATE_LIMIT_PER_MINUTE="0", PYTHONUNBUFFERED="1", AUTH="keys", ADMIN_API_KEY=ADMIN_KEY)
    log = tmp_path_factory.mktemp("devserver-keys") / "output.log"
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dev server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/ap/v1/agent/tasks", timeout=1).status_code == 401:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"dev server did not start in 60 s: {log.read_text(errors='replace')[-3000:]}")
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def test_the_console_serves_hashed_assets_for_good_and_revalidates_its_page(built: Path, live_server: str) -> None:
    base = live_server.removesuffix("/ap/v1/agent")
    page = httpx.get(f"{base}/console/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{base}/console/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert httpx.get(f"{base}/console").headers["location"] == "console/index.html"  # relative: any stage's prefix
    assert httpx.get(f"{base}/console/index.html").content == page.content
    assert '<meta name="autogpt-api" content=""' in page.text  # the dev server's console calls its own origin
    assets = [p.name for p in (built / "assets").iterdir() if p.suffix in (".js", ".css")]
    assert len(assets) == 2 and all(f"./assets/{name}" in page.text for name in assets)
    asset = httpx.get(f"{base}/console/assets/{assets[0]}")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert httpx.get(f"{base}/console/../template.yaml").status_code == 404
    assert httpx.get(f"{base}/console/assets/%2e%2e/%2e%2e/build.mjs").status_code == 404
    assert 'name="viewport"' in page.text and not re.search(
        r'(src|href)="(https?:)?//', page.text
    )  # nothing from elsewhere


def test_the_console_in_a_browser(
    built: Path, live_server: str, keys_server: str, chromium: str, tmp_path: Path
) -> None:
    shot = ROOT / "docs" / "console.png" if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "console.png"
    env = {
        **os.environ,
        "BASE": live_server.removesuffix("/ap/v1/agent"),
        "KEYS_BASE": keys_server,
        "ADMIN_KEY": ADMIN_KEY,
        "CHROMIUM": chromium,
        "SHOT": str(shot),
        "CONSOLE_PACKAGE": str(CONSOLE / "package.json"),
    }
    driver = Path(__file__).with_name("console_browser.mjs")
    ran = subprocess.run(["node", str(driver)], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    failed = {name: s["error"] for name, s in result["steps"].items() if not s["ok"]}
    assert not result.get("fatal") and not failed, (result.get("fatal"), failed)
    s = {name: step["value"] for name, step in result["steps"].items()}

    assert s["open"]["status"] == 200
    assert s["run to completed, live"]["seen"][-1] == "completed" and "running" in s["run to completed, live"]["seen"]
    assert {"list_files", "run_python", "write_file"} <= set(s["timeline with tool calls"]["names"])
    assert s["the report downloads"]["name"] == "report.md" and s["the report downloads"]["head"].startswith(
        "# Task files report"
    )
    assert "/artifacts/" in s["the report downloads"]["href"]  # the API's URL, answered with a 307 to the presigned one
    assert s["live log lines"] > 0
    assert (
        s["axe on the task page"] == []
        and s["axe on the tasks page"] == []
        and s["axe in Chinese at a phone's width"] == []
    )
    assert s["switch to Chinese"] == "zh-CN"
    assert s["phone, Chinese from the browser"] == {"home": 0, "task": 0}
    keys = s["keys: refused, then asked once and kept for the session"]
    assert keys["dialogs"] == 0 and keys["askedAfterReload"] == 0 and keys["download"] == "report.md"
    assert keys["stored"]["session"] == 1 and "autogpt.console.apiKey" not in keys["stored"]["local"]
    assert result["foreign"] == [] and result["pageErrors"] == []
    assert shot.stat().st_size > 10_000


def test_on_aws_the_console_function_serves_the_page_open_to_all_and_tells_it_where_the_api_is(built: Path) -> None:
    # Given the template's console routes, as API Gateway invokes them on a deployed stage
    template = Template()
    routes = [r for r in template.routes() if r.function == "ConsoleFunction"]
    assert {r.path for r in routes} == {"/console", "/console/{file}", "/console/assets/{name}"}
    assert all(r.open and r.method == "GET" for r in routes)  # no key: a browser loads the page before it has one
    function = template.resources["ConsoleFunction"]
    assert function["Metadata"]["BuildMethod"] == "makefile" and "Policies" not in function["Properties"]
    assert "ConsoleUrl" in template.doc["Outputs"]
    handler = load_handler(routes[0])

    def get(path: str, resource: str, **headers: str) -> dict:
        event = apigw.rest_event(method="GET", path=path, resource=resource, headers=headers, stage="Prod")
        event["requestContext"]["domainName"] = "abc123.execute-api.eu-west-1.amazonaws.com"
        return handler(event, apigw.LambdaContext(function_name="console"))

    # When the stage's /console, its page and an asset are asked for
    moved = get("/console", "/console")
    page = get("/console/index.html", "/console/{file}")
    asset_name = next(p.name for p in (built / "assets").iterdir() if p.suffix == ".js")
    asset = get(f"/console/assets/{asset_name}", "/console/assets/{name}")
    again = get("/console/index.html", "/console/{file}", **{"If-None-Match": page["headers"]["ETag"]})
    missing = get("/console/assets/../../../template.yaml", "/console/assets/{name}")  # a file outside the build
    unnamable = get("/console/assets/a\x00b.js", "/console/assets/{name}")  # a name no file system takes

    # Then /console moves to the page below the stage, which names the stage's API and the WebSocket API
    assert moved["statusCode"] == 308 and moved["headers"]["Location"] == "console/index.html"
    assert page["statusCode"] == 200 and page["headers"]["Cache-Control"] == "no-cache"
    assert '<meta name="autogpt-api" content="https://abc123.execute-api.eu-west-1.amazonaws.com/Prod"' in page["body"]
    assert re.search(r'<meta name="autogpt-ws" content="wss://[^"]+"', page["body"])
    # And the hashed asset is cached for good, the page revalidated, nothing outside the build served
    assert asset["statusCode"] == 200 and "immutable" in asset["headers"]["Cache-Control"]
    assert asset["body"] == (built / "assets" / asset_name).read_text() and not asset["isBase64Encoded"]
    assert again["statusCode"] == 304 and again["body"] == ""
    assert unnamable["statusCode"] == 404
    assert missing["statusCode"] == 404 and all(
        page["headers"][h] for h in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")
    )
    assert "frame-ancestors 'none'" in page["headers"]["Content-Security-Policy"]
