"""A user id of its own for each run bubblewrap starts as root, held while the run's child lives.

RLIMIT_NPROC counts the processes of a real user id, so runs sharing one share one count: one run's fork bomb would
make every other run's fork fail with EAGAIN. Ids are drawn at random from a range no account uses, so an id rarely
comes back soon after its last run (whose processes the kernel may still be reaping after a timeout).

A lease is an abstract Unix socket bound to a name made of the id: the kernel lets one socket at a time hold a name
across every process on the host (within its network namespace), and frees it when the socket is closed or its
process dies, so two servers on one host never hand out the same id either, and a crash leaves nothing to clean up.
The code never sees these names: under bubblewrap it has a network namespace of its own.
"""

from __future__ import annotations

import secrets
import socket

# 0x70000000: systemd's conventions leave 1879048192-2147352575 unused (above nspawn's container ranges, below 2**31,
# where some tools misread ids as negative); 2**24 ids from there.
FIRST_UID = 0x7000_0000
UID_COUNT = 1 << 24
_ATTEMPTS = 32  # each draw collides with probability (runs held) / 2**24


class RunUser:
    """The id `uid` (also used as the group id), no other run's until close()."""

    def __init__(self, uid: int, hold: socket.socket) -> None:
        self.uid, self._hold = uid, hold

    def close(self) -> None:
        self._hold.close()

    def __enter__(self) -> RunUser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lease() -> RunUser:
    for _ in range(_ATTEMPTS):
        uid = FIRST_UID + secrets.randbelow(UID_COUNT)
        hold = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            hold.bind(name(uid))
        except OSError:  # EADDRINUSE: a run in this or another process holds it
            hold.close()
            continue
        return RunUser(uid, hold)
    raise RuntimeError(f"no free run user id after {_ATTEMPTS} draws")


def name(uid: int) -> bytes:
    """The abstract socket name (leading NUL) that holds `uid`."""
    return f"\0agent-core-sandbox-uid-{uid}".encode()
