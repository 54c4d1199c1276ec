"""One HTTP GET to an address fetch_url has already vetted: no DNS here, one deadline for everything, a capped body."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import Message
from functools import lru_cache

from .netguard import IPAddress

USER_AGENT = "agent-protocol-fetch_url/0.5.1 (+https://agentprotocol.ai)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class FetchTimeout(Exception):
    """The fetch did not finish before its deadline."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str  # http or https
    host: str  # ASCII (IDNA), no brackets: what the Host header, SNI and the certificate check use
    port: int
    request_path: str  # path and query, percent-encoded
    host_header: str


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Message
    body: bytes
    truncated: bool  # the body went on past max_bytes


def get(target: Target, addresses: list[IPAddress], *, deadline: float, max_bytes: int) -> Response:
    """GETs `target` from the first of `addresses` that accepts a connection; never resolves the host name again."""
    last_error: OSError = OSError(f"no address to connect to for {target.host}")
    for ip in addresses:
        if time.monotonic() >= deadline:
            break
        conn = _PinnedConnection(target, ip, deadline)
        try:
            conn.connect()
        except OSError as exc:  # refused, unreachable, timed out, TLS failed: the next address may do better
            conn.close()
            conn.disarm()
            last_error = exc
            continue
        try:
            return _exchange(conn, target, max_bytes)
        except (OSError, http.client.HTTPException) as exc:
            if conn.aborted or time.monotonic() >= deadline:
                raise FetchTimeout(target.url) from exc
            raise
        finally:
            conn.close()
            conn.disarm()
    if time.monotonic() >= deadline:
        raise FetchTimeout(target.url) from last_error
    raise last_error


def _exchange(conn: _PinnedConnection, target: Target, max_bytes: int) -> Response:
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8",
        # No compression: what we count against max_bytes is what we get, and no decompression bomb.
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    conn.request("GET", target.request_path, headers=headers)
    with contextlib.closing(conn.getresponse()) as response:
        if response.status in REDIRECT_STATUSES:
            body, truncated = b"", False  # only the Location header matters
        else:
            body, truncated = _read_capped(response, max_bytes)
    if conn.aborted:  # the watchdog closed the socket mid-read: what we have is not the whole body
        raise FetchTimeout(target.url)
    return Response(response.status, response.reason, response.headers, body, truncated)


def _read_capped(response: http.client.HTTPResponse, max_bytes: int) -> tuple[bytes, bool]:
    body = bytearray()
    while len(body) < max_bytes:
        # read1: at most one socket read per call, so a trickling server cannot hold one call past the deadline.
        chunk = response.read1(min(_CHUNK, max_bytes - len(body)))
        if not chunk:
            return bytes(body), False
        body += chunk
    return bytes(body), bool(response.read1(1))


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to one given IP, with the URL's host name in the Host header, the TLS SNI and the certificate check.

    A watchdog shuts the socket down at the deadline: socket timeouts bound each read, not the sum of them.
    """

    def __init__(self, target: Target, ip: IPAddress, deadline: float) -> None:
        super().__init__(str(ip), target.port, timeout=max(0.001, deadline - time.monotonic()))
        self._target, self._ip, self._deadline = target, ip, deadline
        self._watchdog: threading.Timer | None = None
        self._abort_handle: socket.socket | None = None
        self.aborted = False

    def connect(self) -> None:
        sock = socket.create_connection((str(self._ip), self.port), timeout=self.timeout)
        # A second handle on the same socket: shutting it down wakes a blocked read, TLS or not (SSLSocket has no dup).
        self._abort_handle = sock.dup()
        self._watchdog = threading.Timer(max(0.0, self._deadline - time.monotonic()), self._abort)
        self._watchdog.daemon = True
        self._watchdog.start()
        if self._target.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=self._target.host)
        self.sock = sock

    def _abort(self) -> None:
        self.aborted = True
        if self._abort_handle is not None:
            with contextlib.suppress(OSError):
                self._abort_handle.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> None:
        # Not in close(): getresponse() closes the connection early when the server says "Connection: close", while
        # the response still reads from the socket.
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._abort_handle is not None:
            self._abort_handle.close()
            self._abort_handle = None


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Certificate and host name checks on (the defaults); loaded once, since loading the CA store costs milliseconds.
    return ssl.create_default_context()
