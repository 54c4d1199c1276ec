"""Nothing a run starts survives its invocation of the sandbox function on the `lambda` backend (issue 22, item 1).

The sandbox function's handler runs in a process of its own, as a warm Lambda environment would: one process serving
invocation after invocation, as an unprivileged user of its own (SURVIVOR_UID), with the `lambda` backend and a
private /tmp, in a PID namespace (bubblewrap as the harness), so that "every other process of the user" is the test's
and never the machine's. Its parent is the namespace's init (as on Lambda, where kill(-1) can end everything at once)
or a process in between (where each process must be found and ended by its id). Each attack plants something in one
invocation; after each answer the harness lists the live processes of the user besides its own chain, and a victim
invocation then looks for them itself and for anything written into its output/.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SURVIVOR_UID = 64321  # no account's, and no other test's (bubblewrap's runs use 65534 and 0x70000000 up)
pytestmark = pytest.mark.usefixtures("bubblewrap")

# The handler's process: imports as root (the interpreter lives under /root), becomes SURVIVOR_UID for good, then
# answers one invocation per line of stdin, with the answer and the user's other live processes after it.
HOST = r"""
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(levelname)s %(message)s")
sys.path[:0] = [os.environ["LAYER"], os.environ["FUNCTION"]]
import app
uid = int(os.environ["SURVIVOR_UID"])
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

def states(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        raw = open(f"/proc/{pid}/task/{tid}/stat", "rb").read()
        yield raw[raw.rindex(b")") + 2 :].split()[0].decode()

def chain():
    pid, mine = os.getpid(), set()
    while pid > 0:
        mine.add(pid)
        raw = open(f"/proc/{pid}/stat", "rb").read()
        pid = int(raw[raw.rindex(b")") + 2 :].split()[1])
    return mine

def survivors():
    # Independent of agent_core.sandbox.cleanup: by real uid, alive while any thread is.
    found, mine = [], chain()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            uids = [l for l in open(f"/proc/{name}/status") if l.startswith("Uid:")][0].split()
            if int(uids[1]) == uid and any(s not in "ZX" for s in states(name)):
                found.append([int(name), open(f"/proc/{name}/comm").read().strip(), sorted(set(states(name)))])
        except (OSError, IndexError):
            pass
    return found

class Context:
    def get_remaining_time_in_millis(self):
        return 60_000

for line in sys.stdin:
    result = app.handler(json.loads(line), Context())
    out.write(json.dumps({"result": result, "survivors": survivors()}) + "\n")
    out.flush()
"""
IN_BETWEEN = "import subprocess, sys\nsys.exit(subprocess.call(sys.argv[1:]))"

# Switches the audit hook off (the OS is what must hold), and what every attack uses: `haunt` writes into any other
# run's output/ it finds in /tmp, for ever; `until` polls a condition of the code's own for at most 10 s.
DISARM = r"""
import gc, glob, os, signal, sys, threading, time
for o in gc.get_objects():
    if callable(o) and getattr(o, "__name__", "") == "_guard":
        o.__code__ = (lambda event, args: None).__code__
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
MINE = os.path.dirname(os.getcwd())
def haunt(ready=None):
    if ready is not None:
        os.write(ready, b"x")
    while True:
        for out in glob.glob("/tmp/run_python-*/work/output"):
            if not out.startswith(MINE + "/"):
                try:
                    open(out + "/pwned.txt", "w").write("a survivor of an earlier run was here")
                except OSError:
                    pass
        time.sleep(0.001)
def state(pid):
    raw = open(f"/proc/{pid}/stat", "rb").read()
    return raw[raw.rindex(b")") + 2 :].split()[0].decode()
def until(check, what):
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"not planted: {what}")
        time.sleep(0.005)
"""

ZOMBIE_LEADER = r"""
SYS_EXIT = {"x86_64": 60, "aarch64": 93}[os.uname().machine]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    threading.Thread(target=haunt, args=(w,)).start()
    libc.syscall(SYS_EXIT, 0)  # ends the main thread only: the leader shows as a zombie, its thread lives on
    os._exit(1)
os.read(r, 1)
until(lambda: state(pid) == "Z", "the leader a zombie")
print("planted", pid, state(pid), sorted(os.listdir(f"/proc/{pid}/task")))
"""
STOPPED = r"""
pid = os.fork()
if pid == 0:
    os.setsid()
    os.kill(os.getpid(), signal.SIGSTOP)
    haunt()  # should anything ever let it go on
until(lambda: state(pid) == "T", "the child stopped")
print("planted", pid, state(pid))
"""
ORPHAN = r"""
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        haunt(w)
    os._exit(0)
os.waitpid(pid, 0)
os.read(r, 1)
print("planted: double-forked into a new session, its parent gone")
"""
RENAMED = r"""
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    libc.prctl(15, b"bootstrap", 0, 0, 0)  # PR_SET_NAME: the name the Lambda runtime's own process has
    haunt(w)
os.read(r, 1)
until(lambda: open(f"/proc/{pid}/comm").read().strip() == "bootstrap", "the new name")
print("planted", pid, "as bootstrap")
"""
NOT_DUMPABLE = r"""
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: the files of /proc/<pid> (and on some kernels the directory)
    haunt(w)                   # are root's from now on
os.read(r, 1)
until(lambda: os.stat(f"/proc/{pid}/status").st_uid == 0, "/proc/<pid>/status owned by root")
print("planted", pid, "non-dumpable")
"""
SHARED_MEMORY = r"""
fd = os.open("/dev/shm/left-behind", os.O_CREAT | os.O_WRONLY, 0o644)  # what shm_open(3) does
os.write(fd, b"a secret for the next run")
os.close(fd)
print("planted", [n for n in os.listdir("/dev/shm") if n == "left-behind"])
"""
ATTACKS = {
    "shared memory left behind": SHARED_MEMORY,
    "zombie leader": ZOMBIE_LEADER,
    "stopped child": STOPPED,
    "double-forked orphan": ORPHAN,
    "renamed": RENAMED,
    "not dumpable": NOT_DUMPABLE,
}

# The next task's run: which processes of its user it can see besides its own chain, with the states of their threads.
VICTIM = r"""
def chain():
    pid, mine = os.getpid(), set()
    while pid > 0:
        mine.add(pid)
        raw = open(f"/proc/{pid}/stat", "rb").read()
        pid = int(raw[raw.rindex(b")") + 2 :].split()[1])
    return mine
seen = []
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) not in chain():
        try:
            uid = int([l for l in open(f"/proc/{name}/status") if l.startswith("Uid:")][0].split()[1])
            tasks = [state(f"{name}/task/{t}") for t in os.listdir(f"/proc/{name}/task")]
        except (OSError, IndexError):
            continue
        if uid == os.getuid() and any(s not in "ZX" for s in tasks):
            seen.append(name)
open("output/victim.txt", "w").write("mine")
shm = [n for n in os.listdir("/dev/shm") if os.lstat("/dev/shm/" + n).st_uid == os.getuid()]
print("seen", seen, "shm", shm)
"""


class Environment:
    """One warm sandbox environment: the handler's process, invoked line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.answers: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stdout, self.answers.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.log.append), daemon=True).start()

    @staticmethod
    def _read(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)
        sink("")  # the end: the harness is gone

    def invoke(self, code: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"code": code, "limits": {"timeout_s": 20}}) + "\n")
        self.proc.stdin.flush()
        try:
            answer = self.answers.get(timeout=60)
        except queue.Empty:
            raise AssertionError("no answer within 60 s:\n" + "".join(self.log)[-3000:]) from None
        assert answer, "the handler's process ended:\n" + "".join(self.log)[-3000:]
        return json.loads(answer)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["init's child", "init's grandchild"])
def environment(request: pytest.FixtureRequest) -> Iterator[Environment]:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the handler as a user of its own")
    python = sys.executable
    pyenv = os.path.realpath(sys.base_prefix)
    binds = ["--dev-bind", "/", "/", "--perms", "1777", "--tmpfs", "/tmp"]

    def show(path: str, top: str) -> list[str]:
        """`path` bound again inside `top`, a tmpfs hiding it, with the directories on the way traversable (bwrap
        would make them 0700)."""
        parents = [str(p) for p in reversed(Path(path).parents) if p.is_relative_to(top) and str(p) != top]
        return [a for p in parents for a in ("--perms", "0755", "--dir", p)] + ["--ro-bind", path, path]

    if pyenv.startswith("/root/"):  # root's home is 0700: the interpreter is shown to the user, and nothing else
        binds += ["--perms", "0755", "--tmpfs", "/root", *show(pyenv, "/root")]
    if ROOT.is_relative_to("/tmp"):  # a checkout in /tmp (its venv too) stays visible under the fresh /tmp
        binds += show(str(ROOT), "/tmp")
    harness = ["bwrap", *binds, "--unshare-pid", "--proc", "/proc", "--die-with-parent", "--"]
    host = [python, "-c", HOST]
    if request.param == "init's grandchild":
        host = [python, "-c", IN_BETWEEN, *host]
    env = {
        **os.environ,
        "LAYER": str(ROOT / "layers" / "common"),
        "FUNCTION": str(ROOT / "functions" / "sandbox"),
        "SURVIVOR_UID": str(SURVIVOR_UID),
        "SANDBOX_ISOLATION": "lambda",
        "TMPDIR": "/tmp",
    }
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    sandbox = Environment([*harness, *host], env)
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_nothing_a_run_starts_survives_its_invocation(environment: Environment, attack: str) -> None:
    planted = environment.invoke(DISARM + ATTACKS[attack])
    victim = environment.invoke(DISARM + VICTIM)

    log = "".join(environment.log)[-3000:]
    result = planted["result"]
    assert "planted" in result["stdout"]["text"], (result, log)  # the attack really set itself up
    assert planted["survivors"] == [], log  # gone before the handler answered
    assert "seen [] shm []" in victim["result"]["stdout"]["text"], (victim, log)  # and before the next run started
    assert victim["survivors"] == [], log
    assert [f["path"] for f in victim["result"]["outputs"]] == ["output/victim.txt"], (victim, log)
    assert "still alive" not in log
    assert attack == "shared memory left behind" or "cleanup: ended" in log
