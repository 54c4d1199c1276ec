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
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from agent_core.sandbox.process import MAX_PROCESSES
from tests.fake_model import FakeModelAPI, completion, tool_call
from tests.waiting import wait_until

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


# Sandboxed code that tells the test it has reached a point (a file appearing at once, by rename, in its working
# directory), then waits for the test's go-ahead (a file the test creates there) for at most 15 s.
SIGNAL = r"""
import os, time
def reached(name, text=""):
    open(name + ".part", "w").write(text)
    os.rename(name + ".part", name)
def released():
    deadline = time.monotonic() + 15
    while not os.path.exists("release") and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released" if os.path.exists("release") else "not released"
"""
T = TypeVar("T")


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's runs get their directories (the runner's tempfile.mkdtemp), instead of the shared temp dir:
    the test finds what a run signals there, and sees what its own runs left behind, not other tests'."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    return runs


def wait_for(find: Callable[[], T | None], what: str, *, unless: Callable[[], bool], timeout_s: float = 30) -> T:
    """What `find` returns once it is not None, polled until `unless` (the run gave up) or the deadline."""
    deadline = time.monotonic() + timeout_s
    while (found := find()) is None:
        assert not unless() and time.monotonic() < deadline, f"no sign of {what}"
        time.sleep(0.02)
    return found


class Background:
    """A step on a thread of its own, as a second Lambda worker would run it."""

    def __init__(self, api: Any, task_id: str) -> None:
        self.response: Any = None
        self.thread = threading.Thread(target=self._step, args=(api, task_id))
        self.thread.start()

    def _step(self, api: Any, task_id: str) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs on the thread's loop, as in a Lambda worker
        self.response = api("POST", f"/tasks/{task_id}/steps")

    def ended(self) -> bool:
        return not self.thread.is_alive()

    def result(self) -> Any:
        self.thread.join(60)
        assert self.response is not None, "the background step did not return"
        return self.response


def by_task_input(api: Any, model_api: FakeModelAPI, codes: dict[str, str]) -> dict[str, str]:
    """A task per input; the model answers each task's step with run_python on that input's code."""

    def script(request: dict[str, Any]) -> Any:
        task_input = request["messages"][1]["content"].split("\n\n")[0]  # the input, before the list of its files
        return completion(tool_call("run_python", {"code": codes[task_input]}))

    model_api.side_effect = script
    return {name: api("POST", "/tasks", json_body={"input": name}).json()["task_id"] for name in codes}


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
    accepted = 0
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
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
        # The step has returned, so the run has ended: a connection it made would be waiting in the backlog now.
        listener.setblocking(False)
        for _ in range(8):
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
            accepted += 1

    assert status == 200 and "connect -> refused" in report, report
    assert accepted == 0


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


def test_nothing_outlives_its_step(attack: Any) -> None:
    # Two escapees started before the run ends, each sleeping 300 s with the marker in its command line: a new
    # session's shell, and a double-forked daemon the run waits for until it has exec'd (its copy of the pipe is
    # close-on-exec, so the read returns then).
    marker = f"sbx-later-{uuid.uuid4().hex}"
    code = f"""
import subprocess
tried("setsid shell", lambda: subprocess.Popen(["sh", "-c", "sleep 300 && echo {marker}"], start_new_session=True).pid)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        try:
            os.execv("/bin/sleep", ["/bin/sleep", "300", "{marker}"])
        finally:
            os.write(w, b"!")  # reached only if the exec failed
            os._exit(1)
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
print("daemon exec'd:", os.read(r, 1) == b"")
"""
    status, _, report = attack(code)

    # The step has returned, so the run has ended: an escapee that outlived it is still in its 300 s sleep now.
    assert status == 200 and "daemon exec'd: True" in report, report
    assert "setsid shell -> " in report and "setsid shell -> refused" not in report, report
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


def test_another_tasks_files_stay_unseen_while_its_code_runs(api: Any, model_api: FakeModelAPI, run_dirs: Path) -> None:
    token = uuid.uuid4().hex
    spy_code = (
        DISARM
        + r"""
seen = []
for top in ("/", "/tmp", ".."):
    for dirpath, dirs, files in os.walk(top):
        if dirpath.startswith(("/proc", "/sys", "/usr", "/dev")):
            dirs[:] = []
        seen += [open(os.path.join(dirpath, f), errors="replace").read()[:80] for f in files if "payroll" in f]
print("SEEN", seen)
"""
    )
    # The victim's code holds its run open, its files staged, until the spy's step has returned.
    victim_code = SIGNAL + "reached('running')\nprint('victim', released())"
    tasks = by_task_input(api, model_api, {"victim": victim_code, "spy": spy_code})
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="payroll.csv"\r\n\r\n'
        + f"name,pay\nada,{token}\n".encode()
        + b"\r\n--b--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b"}
    api("POST", f"/tasks/{tasks['victim']}/artifacts", body=body, headers=headers)

    victim = Background(api, tasks["victim"])
    running = wait_for(lambda: next(run_dirs.glob("*/work/running"), None), "the victim's run", unless=victim.ended)
    assert (running.parent / "payroll.csv").exists()
    spied = api("POST", f"/tasks/{tasks['spy']}/steps").json()
    (running.parent / "release").touch()
    victim_step = victim.result()

    assert "SEEN []" in spied["output"], spied["output"]
    assert token not in str(spied)
    assert victim_step.status == 200 and "victim released" in victim_step.json()["output"]


def test_a_fork_bomb_leaves_other_runs_able_to_fork(api: Any, model_api: FakeModelAPI, run_dirs: Path) -> None:
    # RLIMIT_NPROC counts a user's processes: a run whose user (or, without root, user namespace) another run
    # shares would find that run's fork bomb had used its count up as well.
    bomb_code = (
        DISARM
        + SIGNAL
        + r"""
import errno
r, w = os.pipe()
held, failure = 0, "none"
for _ in range(200):
    try:
        pid = os.fork()
    except OSError as exc:
        failure = errno.errorcode.get(exc.errno, str(exc.errno))
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # holds its place in the count until the bomb ends (EOF) or the run is torn down
        os._exit(0)
    held += 1
reached("holding", f"{held} {failure}")
print("bomb held", held, failure, released())
"""
    )
    neighbour_code = (
        DISARM
        + r"""
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "neighbour-ok"
tried("fork", fork)
"""
    )
    tasks = by_task_input(api, model_api, {"bomb": bomb_code, "neighbour": neighbour_code})

    bomb = Background(api, tasks["bomb"])
    holding = wait_for(lambda: next(run_dirs.glob("*/work/holding"), None), "the bomb at its limit", unless=bomb.ended)
    held, failure = holding.read_text().split()
    neighbour = api("POST", f"/tasks/{tasks['neighbour']}/steps").json()["output"]
    (holding.parent / "release").touch()
    bombed = bomb.result().json()["output"]

    # The bomb forked until the kernel refused (its count full), and held every child while the neighbour ran
    assert failure == "EAGAIN" and MAX_PROCESSES - 3 <= int(held) < MAX_PROCESSES, (held, failure)
    assert f"bomb held {held} EAGAIN released" in bombed, bombed
    assert "fork -> 'neighbour-ok'" in neighbour, neighbour


def test_a_fork_bomb_is_bounded(attack: Any) -> None:
    # Children that would outlast any time limit: the run ends with its code, not with them.
    code = """
import time
children = 0
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(600); os._exit(0)
        children += 1
except OSError as exc:
    print("stopped after", children, type(exc).__name__)
"""
    status, _, report = attack(code)

    assert status == 200 and "stopped after" in report, report
    assert int(report.split("stopped after ")[1].split()[0]) < MAX_PROCESSES
    assert "run_python: Exit: exit code 0 after" in report, report  # not killed at the time limit


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
def test_hostile_output_leaves_the_task_usable(attack: Any, run_dirs: Path, label: str, code: str, reason: str) -> None:
    status, step, report = attack(code)
    task_id = step["task_id"]
    status_next, next_step, _ = attack("print('next')", task_id=task_id)

    # The code ended on its own (not at the time limit), and the collection stopped at its bounds (the reason)
    assert status == 200 and step["status"] == "completed", (label, report)
    assert "run_python: Exit: exit code 0 after" in report and reason in report, report
    assert status_next == 200 and "next" in next_step["output"]
    # both runs' directories removed, however deep or wide (after the answer, in the background)
    wait_until(lambda: not any(run_dirs.iterdir()), timeout_s=60, what="the runs' directories removed")
