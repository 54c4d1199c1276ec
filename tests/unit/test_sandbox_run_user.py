"""The user ids runs get as root: one run's at a time, across processes too, from a range no account uses."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agent_core.sandbox import run_user

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")
pytestmark = linux_only


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The offsets the next draws return, in order."""
    planned: list[int] = []
    monkeypatch.setattr(run_user.secrets, "randbelow", lambda n: planned.pop(0))
    yield planned


def test_a_held_id_is_not_handed_out_again_until_closed(draws: list[int]) -> None:
    draws += [7, 7, 8, 7]

    with run_user.lease() as first:
        second = run_user.lease()  # drew 7 again, then 8
    third = run_user.lease()  # 7 is free once the first run is over

    assert (first.uid, second.uid, third.uid) == (run_user.FIRST_UID + 7, run_user.FIRST_UID + 8, first.uid)
    second.close()
    third.close()


def test_an_id_another_process_holds_is_skipped(draws: list[int]) -> None:
    # Another server on the host holds FIRST_UID + 5 (its socket bound in a process of its own)
    name = run_user.name(run_user.FIRST_UID + 5)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
         f"s.bind({name!r})\nprint('bound', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "bound\n"
        draws += [5, 6]

        with run_user.lease() as user:
            assert user.uid == run_user.FIRST_UID + 6
    finally:
        holder.communicate("")  # EOF: it exits, and its name is free


def test_ids_come_from_the_dedicated_range_below_2_31() -> None:
    with run_user.lease() as user:
        assert run_user.FIRST_UID <= user.uid < run_user.FIRST_UID + run_user.UID_COUNT < 2**31
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with probe, pytest.raises(OSError):
            probe.bind(run_user.name(user.uid))  # held while the lease is
