"""The system calls the child gives up before the code runs, as a seccomp filter: the kernel enforces it, it cannot
be removed, and every process the code starts inherits it (unlike the audit hook, which code can switch off).

- Sockets other than Unix ones: no loopback either. Inside the sandbox function that is what keeps the code from the
  Lambda runtime API on 127.0.0.1:9001 (which would let it answer for its invocation, or take the next one's event);
  under bubblewrap the network namespace already has nothing to reach.
- io_uring (it can open sockets without socket(2)), reaching into other processes (ptrace, process_vm_*), and the
  kernel's rarer corners (bpf, userfaultfd, perf_event_open, keyrings, namespaces, mounts).
- Any system call of another ABI (x32, or 32-bit calls through int 0x80, where socketcall(2) would open sockets).

Each refused call fails with EPERM, so Python raises PermissionError and the code can say what it tried.
"""

from __future__ import annotations

import platform
import struct
from functools import cache

_AF_UNIX = 1
_EPERM = 1
_X32_BIT = 0x40000000

# BPF opcodes and seccomp's return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_NR, _ARCH, _ARG0 = 0, 4, 16

_SYSCALLS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {"socket": 41, "io_uring_setup": 425, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
         "bpf": 321, "userfaultfd": 323, "perf_event_open": 298, "add_key": 248, "request_key": 249, "keyctl": 250,
         "unshare": 272, "setns": 308, "mount": 165},
    ),
    "aarch64": (
        0xC00000B7,
        {"socket": 198, "io_uring_setup": 425, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
         "bpf": 280, "userfaultfd": 282, "perf_event_open": 241, "add_key": 217, "request_key": 218, "keyctl": 219,
         "unshare": 97, "setns": 268, "mount": 40},
    ),
}  # fmt: skip


def _op(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


@cache
def program(machine: str | None = None) -> bytes:
    """The filter as struct sock_filter[] bytes; empty where this machine's system calls are not known here."""
    machine = machine or platform.machine()
    known = _SYSCALLS.get(machine)
    if known is None:
        return b""
    arch, numbers = known
    denied = [nr for name, nr in numbers.items() if name != "socket"]
    x86 = machine == "x86_64"
    # Jumps count instructions after the next one. Layout: arch check, load nr, [x32 check], socket (3 ops), one
    # op per denied call, then allow, then deny.
    checks = (1 if x86 else 0) + 3 + len(denied)  # between "load nr" and "allow"
    ops = [
        _op(_LD_W_ABS, 0, 0, _ARCH),
        _op(_JEQ_K, 0, checks + 2, arch),  # another ABI: deny
        _op(_LD_W_ABS, 0, 0, _NR),
    ]
    if x86:
        ops.append(_op(_JGE_K, checks, 0, _X32_BIT))  # x32: deny
    ops += [
        _op(_JEQ_K, 0, 2, numbers["socket"]),
        _op(_LD_W_ABS, 0, 0, _ARG0),  # the domain
        _op(_JEQ_K, len(denied), len(denied) + 1, _AF_UNIX),  # Unix: allow; anything else: deny
    ]
    ops += [_op(_JEQ_K, len(denied) - index, 0, nr) for index, nr in enumerate(denied)]
    ops += [_op(_RET_K, 0, 0, _RET_ALLOW), _op(_RET_K, 0, 0, _RET_ERRNO | _EPERM)]
    return b"".join(ops)
