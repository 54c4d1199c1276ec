"""Code given to run_python, through the API, tries what an attacker would; the evidence is read on the host side.

The model is a scripted OpenAI-compatible server, so each step runs the real path: the steps handler, the real
`openai` client, run_python, a Lambda invoke of the sandbox function (moto routes it to the real handler), bubblewrap.
Every attack first switches off the in-process audit hook, so what holds is the operating system's isolation.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_model import FakeModelAPI, completion, tool_call

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("bubblewrap")

# Switches the audit hook off and gets round its import check, as the attacks did; prints what it achieved.
DISARM = r"""
import gc, glob, importlib.machinery, importlib.util, os, sys
for o in gc.get_objects():
    if callable(o) and getattr(o, "__name__", "") == "_guard":
        o.__code__ = (lambda event, args: None).__code__
def alias(name):
    for path in glob.glob(os.path.join(os.path.dirname(os.__file__), "lib-dynload", name + "*.so")):
        loader = importlib.machinery.ExtensionFileLoader("x." + name, path)
        spec = importlib.util.spec_from_file_location("x." + name, path, loader=loader)
        mod = importlib.util.module_from_spec(spec); loader.exec_module(mod); sys.modules[name] = mod
for name in ("_socket", "_posixsubprocess"):
    try:
        __import__(name)
    except Exception:
        alias(name)
def tried(label, fn):
    try:
        print(label, "->", repr(fn())[:300])
    except BaseException as exc:
        print(label, "-> refused:", type(exc).__name__, str(exc)[:120])
"""


@pytest.fixture
def attack(api: Any, model_api: FakeModelAPI) -> Iterator[Any]:
    """Runs code through one step of a new task; returns (status, the step's JSON, run_python's report)."""

    def run(code: str, *, task_id: str | None = None) -> tuple[int, dict[str, Any], str]:
        task_id = task_id or api("POST", "/tasks", json_body={"input": "run it"}).json()["task_id"]
        model_api.side_effect = lambda request: completion(tool_call("run_python", {"code": DISARM + code}))
        response = api("POST", f"/tasks/{task_id}/steps")
        step = response.json()
        return response.status, step, step.get("output", "")

    yield run


def test_the_hook_is_really_off_so_the_os_is_what_holds(attack: Any) -> None:
    code = (
        "def fork():\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n    return 'forked'\n"
        "tried('fork', fork)\nimport _socket\ntried('socket', lambda: _socket.socket())"
    )
    status, _, report = attack(code)

    assert status == 200
    assert "fork -> 'forked'" in report  # the audit hook would have refused it
    assert "socket -> refused: PermissionError [Errno 1]" in report  # the seccomp filter does


def test_no_secret_of_the_servers_environment_reaches_the_code(attack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("SANDBOX_CANARY", canary)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary + "-aws")
    code = r"""
found = [f"{k}={v}" for k, v in os.environ.items()]
def environ(path, **kw):
    fd = os.open(path, os.O_RDONLY, **kw)
    found.append(os.read(fd, 1 << 20).decode("utf-8", "replace")); os.close(fd)
for pid in os.listdir(b"/proc"):
    if pid.isdigit():
        for path in (b"/proc/" + pid + b"/environ", b"//proc/" + pid + b"/environ"):
            tried(path, lambda: environ(path))
os.chdir("/proc")
tried("relative", lambda: [environ(p + "/environ") for p in os.listdir(".") if p.isdigit()])
proc = os.open("/proc", os.O_RDONLY)
tried("dir_fd", lambda: [environ("1/environ", dir_fd=proc), environ("self/environ", dir_fd=proc)])
os.symlink("/proc/1/environ", "/tmp/link")
tried("symlink", lambda: environ("/tmp/link"))
tried("ppid", lambda: environ(f"/proc/{os.getppid()}/environ"))
print("FOUND", " | ".join(found))
"""
    status, step, report = attack(code)

    assert status == 200 and "FOUND" in report, report
    assert canary not in str(step) and "sk-test" not in str(step)


def test_no_network_the_loopback_listener_sees_nothing(attack: Any) -> None:
    hits: list[float] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        code = f"""
import _socket
def connect():
    s = _socket.socket(); s.settimeout(2); s.connect(("127.0.0.1", {port})); return "connected"
tried("connect", connect)
import subprocess
tried("shell", lambda: subprocess.run(["sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/{port}"], timeout=3).returncode)
tried("resolve", lambda: _socket.getaddrinfo("example.com", 443))
"""
        status, _, report = attack(code)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                listener.accept()[0].close()
                hits.append(time.monotonic())
            except TimeoutError:
                pass

    assert status == 200 and "connect -> refused" in report, report
    assert hits == []


def test_host_files_stay_unread_and_unwritten(attack: Any, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    secret = tmp_path / f"secret-{token}.txt"
    secret.write_text(f"hostsecret-{token}")
    home_secret = Path.home() / f".sandbox-test-{token}"
    home_secret.write_text(f"hostsecret-{token}")
    targets = [Path("/tmp") / f"written-{token}", ROOT / f"written-{token}", ROOT / ".venv" / f"written-{token}.pth",
               Path.home() / f"written-{token}", tmp_path / f"written-{token}"]  # fmt: skip
    reads = [secret, home_secret, ROOT / "template.yaml", Path("/etc/shadow")]
    code = "".join(f"tried('read {p}', lambda: open({str(p)!r}).read()[:60])\n" for p in reads)
    code += "".join(f"tried('write {p}', lambda: open({str(p)!r}, 'w').write('x'))\n" for p in targets)
    code += "tried('walk /tmp', lambda: os.listdir('/tmp'))\ntried('walk up', lambda: os.listdir('../..'))\n"
    try:
        status, _, report = attack(code)

        assert status == 200, report
        assert f"hostsecret-{token}" not in report and "AWSTemplateFormatVersion" not in report
        assert "root:" not in report  # /etc/shadow
        assert [p for p in targets if p.exists()] == []
    finally:
        home_secret.unlink()
        for p in targets:
            p.unlink(missing_ok=True)


def test_nothing_outlives_its_step(attack: Any, tmp_path: Path) -> None:
    marker = f"sbx-later-{uuid.uuid4().hex}"
    later = [Path("/tmp") / marker, tmp_path / marker]
    writes = "; ".join(f"echo x > {p}" for p in later)
    code = f"""
import subprocess, time
tried("setsid shell", lambda: subprocess.Popen(["sh", "-c", "sleep 2; {writes}"], start_new_session=True).pid)
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["/bin/sleep", "30", "{marker}"])
    os._exit(0)
print("forked", pid)
"""
    status, _, report = attack(code)
    time.sleep(3)

    assert status == 200 and "forked" in report, report
    assert [p for p in later if p.exists()] == []
    leftovers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert leftovers == []


def test_the_servers_processes_are_out_of_reach(attack: Any) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        code = f"""
import signal
tried("kill bystander", lambda: os.kill({bystander.pid}, signal.SIGKILL))
tried("kill server", lambda: os.kill({os.getpid()}, 0))
tried("kill all", lambda: os.kill(-1, signal.SIGKILL))
"""
        status, _, report = attack(code)

        assert status == 200 and "kill bystander -> refused: ProcessLookupError" in report, report
        assert bystander.poll() is None  # still alive
    finally:
        bystander.kill()
        bystander.wait()


def test_another_tasks_files_stay_unseen_while_its_code_runs(api: Any, model_api: FakeModelAPI) -> None:
    token = uuid.uuid4().hex
    victim = api("POST", "/tasks", json_body={"input": "victim"}).json()["task_id"]
    spy = api("POST", "/tasks", json_body={"input": "spy"}).json()["task_id"]
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="payroll.csv"\r\n\r\n'
        + f"name,pay\nada,{token}\n".encode()
        + b"\r\n--b--\r\n"
    )
    api("POST", f"/tasks/{victim}/artifacts", body=body, headers={"content-type": "multipart/form-data; boundary=b"})
    spy_code = (
        DISARM
        + r"""
import time
seen = []
deadline = time.time() + 4
while time.time() < deadline and not seen:
    for top in ("/", "/tmp", ".."):
        for dirpath, dirs, files in os.walk(top):
            if dirpath.startswith(("/proc", "/sys", "/usr", "/dev")):
                dirs[:] = []
            seen += [open(os.path.join(dirpath, f), errors="replace").read()[:80] for f in files if "payroll" in f]
    time.sleep(0.2)
print("SEEN", seen)
"""
    )

    def script(request: dict[str, Any]) -> Any:
        task_input = request["messages"][1]["content"]
        code = "import time\ntime.sleep(5)\nprint('victim done')" if task_input == "victim" else spy_code
        return completion(tool_call("run_python", {"code": code}))

    model_api.side_effect = script
    results: dict[str, Any] = {}

    def victim_step() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs on the thread's loop, as in a Lambda worker
        results["victim"] = api("POST", f"/tasks/{victim}/steps")

    worker = threading.Thread(target=victim_step)
    worker.start()
    time.sleep(1)
    spied = api("POST", f"/tasks/{spy}/steps").json()
    worker.join(30)

    assert "SEEN []" in spied["output"], spied["output"]
    assert token not in str(spied)
    assert results["victim"].status == 200 and "victim done" in results["victim"].json()["output"]


def test_a_fork_bomb_is_bounded(attack: Any) -> None:
    code = """
import time
children = 0
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(20); os._exit(0)
        children += 1
except OSError as exc:
    print("stopped after", children, type(exc).__name__)
"""
    started = time.monotonic()
    status, _, report = attack(code)

    assert status == 200 and "stopped after" in report, report
    assert int(report.split("stopped after ")[1].split()[0]) < 100
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("label", "code", "reason"),
    [
        ("a name that is not UTF-8", "open(b'output/r-\\xff.txt', 'wb').write(b'x')", "not valid UTF-8"),
        (
            "a 1,200-level tree",
            "os.chdir('output')\nfor i in range(1200):\n    os.mkdir('d'); os.chdir('d')\n"
            "open('deep.txt', 'w').write('x')",
            "deeper than 16 levels",
        ),
        (
            "90,000 files",
            "os.makedirs('output/m')\nfor i in range(90_000):\n"
            "    os.close(os.open(f'output/m/{i}', os.O_CREAT | os.O_WRONLY))",
            "stopped after looking at 5000 entries",
        ),
    ],
)
def test_hostile_output_leaves_the_task_usable(attack: Any, label: str, code: str, reason: str) -> None:
    started = time.monotonic()
    status, step, report = attack(code)
    took = time.monotonic() - started
    task_id = step["task_id"]
    status_next, next_step, _ = attack("print('next')", task_id=task_id)

    assert status == 200 and step["status"] == "completed", (label, report)
    assert reason in report, report
    assert took < 29, took
    assert status_next == 200 and "next" in next_step["output"]
    assert not [p for p in Path("/tmp").glob("run_python-*") if p.stat().st_mtime > time.time() - took - 5]
