"""The child's seccomp filter, without namespaces around it (as inside the sandbox function on Lambda): with the audit
hook switched off, the code still cannot open a socket to loopback (where Lambda's runtime API listens), while what
the standard library needs of Unix sockets keeps working."""

from __future__ import annotations

import platform
import socket
import struct
import sys

import pytest

from agent_core.sandbox import seccomp
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


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_is_a_well_formed_program(machine: str) -> None:
    program = seccomp.program(machine)
    ops = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]

    assert len(program) % 8 == 0 and 10 < len(ops) < 40
    assert ops[-2] == (0x06, 0, 0, 0x7FFF0000) and ops[-1] == (0x06, 0, 0, 0x00050001)  # allow, then EPERM
    for index, (code, jt, jf, _) in enumerate(ops):
        if code in (0x15, 0x35):  # jumps land on an instruction
            assert index + 1 + max(jt, jf) < len(ops), "a jump past the end"
        if code == 0x06:
            assert index >= len(ops) - 2


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
