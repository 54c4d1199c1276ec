"""The system calls the child gives up before the code runs, as a seccomp filter: the kernel enforces it, it cannot
be removed, and every process the code starts inherits it (unlike the audit hook, which code can switch off).

Everything refused is in one table, `TABLE`, with the rule each call gets:

- Sockets other than Unix ones: no loopback either. Inside the sandbox function that is what keeps the code from the
  Lambda runtime API on 127.0.0.1:9001 (which would let it answer for its invocation, or take the next one's event);
  under bubblewrap the network namespace already has nothing to reach.
- New namespaces: `unshare` and `setns` refused, `clone` refused when its flags ask for any new namespace
  (CLONE_NEW*), and `clone3` answers ENOSYS, as on a kernel without it: a filter cannot read clone3's flags (they are
  in memory, behind a pointer), and on ENOSYS the C library falls back to `clone`, whose flags it can read. Plain
  fork, threads and posix_spawn keep working.
- Mounts, old API and new (fsopen, fsconfig, fsmount, move_mount, open_tree, fspick, mount_setattr).
- Reaching into other processes: ptrace, process_vm_*, and pidfds (pidfd_open, pidfd_getfd, pidfd_send_signal),
  with which code running as the handler's user could take its descriptors or signal it.
- SysV and POSIX message-queue IPC objects (shmget, msgget, semget, mq_open): they outlive the process that made them,
  so on a warm Lambda environment one run's would be there for the next. multiprocessing's semaphores and
  shared_memory are files in /dev/shm (shm_open is open(2)): under bubblewrap a fresh tmpfs per run; what becomes
  of them on Lambda is not this filter's doing (not checked here).
- Signals (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo) to -1, to another process group than the
  code's own, or to the ids in `protected` (the handler and its ancestors, where the code runs beside them).
- io_uring (it can open sockets without socket(2)), and the kernel's rarer corners (bpf, userfaultfd,
  perf_event_open, keyrings).
- Any system call of another ABI (x32, or 32-bit calls through int 0x80, where socketcall(2) would open sockets).

Each refused call fails with EPERM (clone3 with ENOSYS), so Python raises an OSError and the code can say what it
tried.
"""

from __future__ import annotations

import platform
import struct
from functools import cache
from typing import Literal, NamedTuple

_AF_UNIX = 1
_EPERM, _ENOSYS = 1, 38
_X32_BIT = 0x40000000
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (linux/sched.h): all in the low 32 bits,
# the only ones the kernel reads of clone's flags.
CLONE_NEW = {
    "CLONE_NEWTIME": 0x00000080,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
_CLONE_NEW_MASK = sum(CLONE_NEW.values())

# BPF opcodes and seccomp's return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian on both machines: the
# low 32 bits of args[0] are at 16)
_NR, _ARCH, _ARG0 = 0, 4, 16
_ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# Stands in the program for the code's own process group, negated (kill(-pgid)): the bootstrap, which knows it, puts
# -getpgid(0) in its place before installing the filter (process.py). Appears nowhere else in a program.
OWN_GROUP_PLACEHOLDER = 0x5EC0DE01
MAX_PROTECTED = 200  # ids compared, so every jump stays within a BPF jump's 255 instructions

Rule = Literal["refuse", "enosys", "unix sockets only", "no new namespaces", "not the handler"]


class Entry(NamedTuple):
    name: str
    x86_64: int
    aarch64: int
    rule: Rule


# The one list of what the filter refuses; tests/unit/test_sandbox_seccomp.py tries each entry inside the sandbox.
TABLE: tuple[Entry, ...] = (
    Entry("socket", 41, 198, "unix sockets only"),
    Entry("clone", 56, 220, "no new namespaces"),
    Entry("clone3", 435, 435, "enosys"),
    Entry("unshare", 272, 97, "refuse"),
    Entry("setns", 308, 268, "refuse"),
    Entry("mount", 165, 40, "refuse"),
    Entry("open_tree", 428, 428, "refuse"),
    Entry("move_mount", 429, 429, "refuse"),
    Entry("fsopen", 430, 430, "refuse"),
    Entry("fsconfig", 431, 431, "refuse"),
    Entry("fsmount", 432, 432, "refuse"),
    Entry("fspick", 433, 433, "refuse"),
    Entry("mount_setattr", 442, 442, "refuse"),
    Entry("kill", 62, 129, "not the handler"),
    Entry("tkill", 200, 130, "not the handler"),
    Entry("tgkill", 234, 131, "not the handler"),
    Entry("rt_sigqueueinfo", 129, 138, "not the handler"),
    Entry("rt_tgsigqueueinfo", 297, 240, "not the handler"),
    Entry("ptrace", 101, 117, "refuse"),
    Entry("process_vm_readv", 310, 270, "refuse"),
    Entry("process_vm_writev", 311, 271, "refuse"),
    Entry("pidfd_open", 434, 434, "refuse"),
    Entry("pidfd_getfd", 438, 438, "refuse"),
    Entry("pidfd_send_signal", 424, 424, "refuse"),
    Entry("shmget", 29, 194, "refuse"),
    Entry("msgget", 68, 186, "refuse"),
    Entry("semget", 64, 190, "refuse"),
    Entry("mq_open", 240, 180, "refuse"),
    Entry("io_uring_setup", 425, 425, "refuse"),
    Entry("bpf", 321, 280, "refuse"),
    Entry("userfaultfd", 323, 282, "refuse"),
    Entry("perf_event_open", 298, 241, "refuse"),
    Entry("add_key", 248, 217, "refuse"),
    Entry("request_key", 249, 218, "refuse"),
    Entry("keyctl", 250, 219, "refuse"),
)


def number(entry: Entry, machine: str) -> int:
    return entry.x86_64 if machine == "x86_64" else entry.aarch64


def _op(code: int, jt: int | str, jf: int | str, k: int) -> tuple[int, int | str, int | str, int]:
    return (code, jt, jf, k)


@cache
def program(machine: str | None = None, protected: tuple[int, ...] = ()) -> bytes:
    """The filter as struct sock_filter[] bytes; empty where this machine's system calls are not known here.

    `protected`: the pids and thread ids no signal may reach (the handler's, where the code runs beside it). Signals
    to -1 (every process the user may signal) and to any process group but the code's own are refused as well.
    """
    machine = machine or platform.machine()
    arch = _ARCHES.get(machine)
    if arch is None:
        return b""
    by_rule: dict[Rule, list[int]] = {}
    for entry in TABLE:
        by_rule.setdefault(entry.rule, []).append(number(entry, machine))
    # Jump targets are labels (resolved below) or 0 for "the next instruction".
    ops = [_op(_LD_W_ABS, 0, 0, _ARCH), _op(_JEQ_K, 0, "deny", arch), _op(_LD_W_ABS, 0, 0, _NR)]
    if machine == "x86_64":
        ops.append(_op(_JGE_K, "deny", 0, _X32_BIT))  # x32: deny
    ops += [_op(_JEQ_K, "deny", 0, nr) for nr in by_rule["refuse"]]
    ops += [_op(_JEQ_K, "enosys", 0, nr) for nr in by_rule["enosys"]]
    ops += [_op(_JEQ_K, "socket", 0, nr) for nr in by_rule["unix sockets only"]]
    ops += [_op(_JEQ_K, "clone", 0, nr) for nr in by_rule["no new namespaces"]]
    ops += [_op(_JEQ_K, "signal", 0, nr) for nr in by_rule["not the handler"]]
    labels: dict[str, int] = {}
    tail: list[tuple[str | None, tuple[int, int | str, int | str, int]]] = [
        (None, _op(_RET_K, 0, 0, _RET_ALLOW)),  # none of the table's calls
        ("socket", _op(_LD_W_ABS, 0, 0, _ARG0)),  # the domain
        (None, _op(_JEQ_K, "allow", "deny", _AF_UNIX)),
        ("clone", _op(_LD_W_ABS, 0, 0, _ARG0)),  # the flags' low 32 bits
        (None, _op(_JSET_K, "deny", "allow", _CLONE_NEW_MASK)),
        # The target (a pid_t: the low 32 bits): -1, a protected id, or a group other than the code's own.
        ("signal", _op(_LD_W_ABS, 0, 0, _ARG0)),
        (None, _op(_JEQ_K, "deny", 0, 0xFFFFFFFF)),
        (None, _op(_JEQ_K, "allow", 0, OWN_GROUP_PLACEHOLDER)),
        *((None, _op(_JEQ_K, "deny", 0, pid & 0xFFFFFFFF)) for pid in sorted(set(protected))[:MAX_PROTECTED]),
        (None, _op(_JSET_K, "deny", "allow", 0x80000000)),
        ("allow", _op(_RET_K, 0, 0, _RET_ALLOW)),
        ("deny", _op(_RET_K, 0, 0, _RET_ERRNO | _EPERM)),
        ("enosys", _op(_RET_K, 0, 0, _RET_ERRNO | _ENOSYS)),
    ]
    for label, op in tail:
        if label is not None:
            labels[label] = len(ops)
        ops.append(op)

    def offset(index: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        jump = labels[target] - index - 1  # jumps count instructions after the next one, forward only
        assert 0 <= jump <= 255, (target, jump)
        return jump

    return b"".join(
        struct.pack("=HBBI", code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(ops)
    )
