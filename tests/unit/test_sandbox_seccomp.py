"""The child's seccomp filter, without namespaces around it (as inside the sandbox function on Lambda): with the audit
hook switched off, the code still cannot open a socket to loopback (where Lambda's runtime API listens), while what
the standard library needs of Unix sockets keeps working."""

from __future__ import annotations

import errno
import json
import platform
import socket
import struct
import sys
from typing import Any

import pytest

from agent_core.sandbox import process, seccomp
from tests.bare_run import run_bare

DISARM = """
import gc, os
for o in gc.get_objects():
    if callable(o) and getattr(o, "__name__", "") == "_guard":
        o.__code__ = (lambda event, args: None).__code__
def tried(label, fn):
    try:
        print(label, "->", fn())
    except BaseException as exc:
        print(label, "-> refused:", type(exc).__name__, exc)
"""
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")


def run_unisolated(code: str) -> str:
    result = run_bare(DISARM + code)["result"]
    return str(result["stdout"]["text"] + result["stderr"]["text"])


def _ops(machine: str, protected: tuple[int, ...] = ()) -> list[tuple[int, int, int, int]]:
    program = seccomp.program(machine, protected)
    return [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]


def verdict(machine: str, nr: int, arg0: int = 0, arch: int | None = None, protected: tuple[int, ...] = ()) -> int:
    """What the filter answers for one call, run by a small classic-BPF interpreter (the instructions it uses)."""
    arches = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
    data = struct.pack("<iIQ6Q", nr, arches[machine] if arch is None else arch, 0, arg0, 0, 0, 0, 0, 0)
    ops, pc, acc = _ops(machine, protected), 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
            continue
        if code == 0x06:
            return k
        taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
        pc += 1 + (jt if taken else jf)


ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_is_a_well_formed_program(machine: str) -> None:
    ops = _ops(machine)

    assert 10 < len(ops) < 256
    for index, (code, jt, jf, _) in enumerate(ops):
        assert code in (0x20, 0x15, 0x35, 0x45, 0x06)
        if code in (0x15, 0x35, 0x45):  # jumps land on an instruction
            assert index + 1 + max(jt, jf) < len(ops), "a jump past the end"
    assert ops[-1][0] == 0x06  # nothing falls off the end


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("entry", seccomp.TABLE, ids=lambda e: e.name)
def test_each_entry_gets_its_rule(machine: str, entry: seccomp.Entry) -> None:
    nr = seccomp.number(entry, machine)
    if entry.rule == "refuse":
        assert verdict(machine, nr) == EPERM
    elif entry.rule == "enosys":
        assert verdict(machine, nr) == ENOSYS
    elif entry.rule == "unix sockets only":
        assert verdict(machine, nr, arg0=1) == ALLOW and verdict(machine, nr, arg0=2) == EPERM
        assert verdict(machine, nr, arg0=10) == EPERM
    elif entry.rule == "not the handler":
        protected = (4242, 4243)
        for target in (4242, 4243, -1, -7):  # the handler, a thread of it, every process, another group
            assert verdict(machine, nr, arg0=target & 0xFFFFFFFFFFFFFFFF, protected=protected) == EPERM, target
        for target in (0, 1, 99, 4244):  # its own group (kill(0)), processes of its own
            assert verdict(machine, nr, arg0=target, protected=protected) == ALLOW, target
        own = -seccomp.OWN_GROUP_PLACEHOLDER & 0xFFFFFFFF  # what the bootstrap puts there is -pgid: fine as is
        assert verdict(machine, nr, arg0=seccomp.OWN_GROUP_PLACEHOLDER, protected=protected) == ALLOW, own
    else:
        assert verdict(machine, nr, arg0=0x11) == ALLOW  # fork: SIGCHLD
        assert verdict(machine, nr, arg0=0x3D0F00) == ALLOW  # a thread: CLONE_VM|FS|FILES|SIGHAND|THREAD|...
        for flag in seccomp.CLONE_NEW.values():
            assert verdict(machine, nr, arg0=0x11 | flag) == EPERM
            assert verdict(machine, nr, arg0=(1 << 32) | flag) == EPERM  # high bits do not hide it


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_own_group_placeholder_appears_once(machine: str) -> None:
    placeholder = seccomp.OWN_GROUP_PLACEHOLDER.to_bytes(4, "little")
    assert seccomp.program(machine, tuple(range(1, 300))).count(placeholder) == 1
    assert placeholder in process.BOOTSTRAP.encode("unicode_escape").replace(b"\\\\", b"\\").decode(
        "unicode_escape"
    ).encode("latin-1")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_other_calls_and_other_abis(machine: str) -> None:
    assert verdict(machine, 0) == ALLOW and verdict(machine, 57) == ALLOW  # read/io_setup, fork
    assert verdict(machine, 0, arch=0x40000003) == EPERM  # i386
    if machine == "x86_64":
        assert verdict(machine, 0x40000000 | 41) == EPERM  # x32


def test_an_unknown_machine_gets_no_filter() -> None:
    assert seccomp.program("riscv64") == b""


@linux
@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="no filter for this machine")
def test_no_socket_to_loopback_even_with_the_hook_off() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        code = (
            f"import _socket\ntried('inet', lambda: _socket.socket().connect(('127.0.0.1', {port})))\n"
            "tried('inet6', lambda: _socket.socket(_socket.AF_INET6))\n"
            "tried('unix', lambda: _socket.socket(_socket.AF_UNIX).close())\n"
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "tried('ptrace', lambda: (libc.ptrace(0, 0, 0, 0), ctypes.get_errno()))\n"
            "import multiprocessing\nwith multiprocessing.Pool(2) as pool:\n    print('pool', pool.map(abs, [-3]))\n"
        )
        output = run_unisolated(code)
        with pytest.raises(TimeoutError):
            listener.accept()

    assert "inet -> refused: PermissionError [Errno 1] Operation not permitted" in output, output
    assert "inet6 -> refused: PermissionError" in output
    assert "unix -> None" in output and "pool [3]" in output
    assert "ptrace -> (-1, 1)" in output  # EPERM


# Each entry of the table tried inside the sandbox (bubblewrap, the real run path), with the audit hook off and
# arguments the kernel itself would accept, or refuse with another errno than the filter's, where there are such.
TRY_EVERY_ENTRY = r"""
import ctypes, json, os, platform, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = NUMBERS
L, S = ctypes.c_long, ctypes.c_char_p
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(L(NR[name]), *[a if isinstance(a, (L, S)) else L(a) for a in args])
    if r == 0 and name == "clone":
        os._exit(0)  # the child of a clone that went through
    err = ctypes.get_errno()
    if r > 0 and name == "clone":
        os.waitpid(r, 0x40000000)  # __WALL: CLONE_NEWTIME is 0x80, in clone's exit-signal byte
    return [int(r), err]
here = os.getpid()
results = {
    "socket": call("socket", 2, 1, 0),  # AF_INET
    "unix_socket": call("socket", 1, 1, 0),
    "clone": {flag: call("clone", 17 | value, 0, 0, 0, 0) for flag, value in FLAGS.items()},
    "clone3": call("clone3", 0, 0),  # the kernel: EINVAL (size 0)
    "unshare": call("unshare", 0x10000000),
    "setns": call("setns", -1, 0),  # the kernel: EBADF
    "mount": call("mount", S(b"none"), S(b"/tmp"), S(b"tmpfs"), 0, 0),
    "open_tree": call("open_tree", -100, S(b"/"), 0),  # the kernel: a descriptor
    "move_mount": call("move_mount", -1, S(b""), -1, S(b""), 0),
    "fsopen": call("fsopen", S(b"tmpfs"), 0),
    "fsconfig": call("fsconfig", -1, 0, 0, 0, 0),  # the kernel: EINVAL or EBADF
    "fsmount": call("fsmount", -1, 0, 0),
    "fspick": call("fspick", -100, S(b"/"), 0),
    "mount_setattr": call("mount_setattr", -1, S(b""), 0xFFFF, 0, 0),  # the kernel: EINVAL
    "kill": call("kill", -1, 0),  # every process it may signal; the kernel: 0
    "tkill": call("tkill", -1, 0),  # the kernel: EINVAL
    "tgkill": call("tgkill", -1, -1, 0),
    "rt_sigqueueinfo": call("rt_sigqueueinfo", -1, 0, 0),
    "rt_tgsigqueueinfo": call("rt_tgsigqueueinfo", -1, -1, 0, 0),
    # Its own group: here 1, bwrap's, and kill(-1) means every process, so the group is reached as 0.
    "own_group": call("kill", 0, 0),
    "ptrace": call("ptrace", 16, 0, 0, 0),  # PTRACE_ATTACH to pid 0, the kernel: ESRCH
    "process_vm_readv": call("process_vm_readv", here, 0, 0, 0, 0, 0),  # the kernel: 0
    "process_vm_writev": call("process_vm_writev", here, 0, 0, 0, 0, 0),
    "pidfd_open": call("pidfd_open", here, 0),  # the kernel: a descriptor
    "pidfd_getfd": call("pidfd_getfd", -1, 0, 0),  # the kernel: EBADF
    "pidfd_send_signal": call("pidfd_send_signal", -1, 0, 0, 0),
    "shmget": call("shmget", 0, 4096, 0o1600),  # IPC_PRIVATE, IPC_CREAT: the kernel makes one
    "msgget": call("msgget", 0, 0o1600),
    "semget": call("semget", 0, 1, 0o1600),
    "mq_open": call("mq_open", S(b"sandbox-q"), 0o102, 0o600, 0),  # O_CREAT|O_RDWR
    "io_uring_setup": call("io_uring_setup", 1, 0),  # the kernel: EFAULT
    "bpf": call("bpf", 0, 0, 0),
    "userfaultfd": call("userfaultfd", 0),
    "perf_event_open": call("perf_event_open", 0, 0, -1, -1, 0),
    "add_key": call("add_key", 0, 0, 0, 0, 0),
    "request_key": call("request_key", 0, 0, 0, 0),
    "keyctl": call("keyctl", 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
}
pid = os.fork()  # clone without a namespace flag
if pid == 0:
    os._exit(7)
results["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
seen = []
worker = threading.Thread(target=lambda: seen.append(threading.get_native_id()))  # pthread_create: clone3, then clone
worker.start()
worker.join(10)
results["thread"] = len(seen) == 1 and seen[0] != threading.get_native_id()
done = subprocess.run([sys.executable, "-I", "-S", "-c", "print(6 * 7)"], capture_output=True, text=True, timeout=10)
results["posix_spawn"] = done.stdout.strip()  # subprocess: vfork/clone3, then clone
print("RESULTS", json.dumps(results))
"""


@pytest.fixture(scope="module")
def inside(bubblewrap: None) -> dict[str, Any]:
    from agent_core.sandbox import runner
    from agent_core.sandbox.isolation import Bubblewrap
    from agent_core.sandbox.protocol import SandboxLimits, SandboxRequest

    machine = platform.machine()
    numbers = {entry.name: seccomp.number(entry, machine) for entry in seccomp.TABLE}
    code = DISARM + f"NUMBERS = {numbers!r}\nFLAGS = {seccomp.CLONE_NEW!r}\n" + TRY_EVERY_ENTRY
    result = runner.run(SandboxRequest(code=code, limits=SandboxLimits(timeout_s=30)), isolation=Bubblewrap())
    lines = [line for line in result.stdout.text.splitlines() if line.startswith("RESULTS ")]
    assert lines, (result.stdout.text, result.stderr.text, result.error)
    answer: dict[str, Any] = json.loads(lines[0].removeprefix("RESULTS "))
    return answer


known_machine = pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="no filter here")


@linux
@known_machine
@pytest.mark.parametrize("entry", seccomp.TABLE, ids=lambda e: e.name)
def test_each_entry_fails_inside_the_sandbox(inside: dict[str, Any], entry: seccomp.Entry) -> None:
    if entry.rule == "no new namespaces":
        assert inside["clone"] == {flag: [-1, errno.EPERM] for flag in seccomp.CLONE_NEW}
    elif entry.rule == "enosys":
        assert inside[entry.name] == [-1, errno.ENOSYS]
    else:
        assert inside[entry.name] == [-1, errno.EPERM]


@linux
@known_machine
def test_unix_sockets_fork_threads_and_subprocesses_still_work_inside(inside: dict[str, Any]) -> None:
    assert inside["unix_socket"][0] >= 0
    assert inside["own_group"] == [0, 0]
    assert inside["fork"] == 7
    assert inside["thread"] is True
    assert inside["posix_spawn"] == "42"


SIGNAL_THE_HANDLER = r"""
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def raw(nr, *args):
    ctypes.set_errno(0)
    args = [a if isinstance(a, ctypes.Array) else ctypes.c_long(a) for a in args]
    return libc.syscall(ctypes.c_long(nr), *args), ctypes.get_errno()
info = ctypes.create_string_buffer(struct.pack("iii", 0, 0, -1), 128)  # SI_QUEUE, as sigqueue(3) sends
parent = os.getppid()
tried("parent", lambda: os.kill(parent, 0))
tried("parent's group", lambda: os.killpg(os.getpgid(parent), 0))
tried("everyone", lambda: os.kill(-1, 0))
tried("tkill", lambda: raw(NR["tkill"], parent, 0))
tried("tgkill", lambda: raw(NR["tgkill"], parent, parent, 0))
tried("rt_sigqueueinfo", lambda: raw(NR["rt_sigqueueinfo"], parent, 0, info))
tried("rt_tgsigqueueinfo", lambda: raw(NR["rt_tgsigqueueinfo"], parent, parent, 0, info))
tried("own group", lambda: os.killpg(os.getpgid(0), 0))
tried("zero", lambda: os.kill(0, 0))
child = os.fork()
if child == 0:
    os.read(os.open("/dev/null", os.O_RDONLY), 1)
    os._exit(0)
tried("own child", lambda: os.kill(child, 9))
os.waitpid(child, 0)
"""


@linux
@known_machine
def test_the_code_cannot_signal_the_handler_it_runs_beside() -> None:
    numbers = {entry.name: seccomp.number(entry, platform.machine()) for entry in seccomp.TABLE}
    output = run_unisolated(f"NR = {numbers!r}\n" + SIGNAL_THE_HANDLER)

    for label in ("parent", "parent's group", "everyone"):
        assert f"{label} -> refused: PermissionError" in output, output
    for label in ("tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        assert f"{label} -> (-1, 1)" in output, output  # EPERM
    for label in ("own group", "zero", "own child"):
        assert f"{label} -> None" in output, output
