"""fetch_url: what it refuses (before any connection), and real fetches from a local server the test allows."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent_core.agent.tools.base import ToolContext, ToolResult, openai_schema
from agent_core.agent.tools.netguard import AddressPolicy
from agent_core.agent.tools.web import FetchLimits, FetchUrl
from agent_core.config import get_settings

LOOPBACK_ALLOWED = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
LIMITS = FetchLimits(timeout_s=5, max_bytes=100_000)
PAGE = b"""<!doctype html><html><head><title>Quarterly report</title>
<style>body { color: red }</style><script>var token = "from-a-script";</script></head>
<body><h1>Sales</h1><p>North sold <b>10</b> units &amp; south 32.</p><a href="/details">Details</a></body></html>"""


PNG_BYTES = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 100


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.hits.append((url.path, self.headers.get("Host") or ""))
        route = getattr(self, "route_" + url.path.strip("/").replace("-", "_"), None)
        if route is None:
            self._send(404, "text/plain", b"no such page")
        else:
            route(parse_qs(url.query))

    def route_page(self, query: dict[str, list[str]]) -> None:
        self._send(200, "text/html; charset=utf-8", PAGE)

    def route_redirect(self, query: dict[str, list[str]]) -> None:
        self.send_response(302)
        self.send_header("Location", query["to"][0])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_loop(self, query: dict[str, list[str]]) -> None:
        self.route_redirect({"to": ["/loop"]})

    def route_big(self, query: dict[str, list[str]]) -> None:
        size = 3 * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            for _ in range(size // 65536):
                self.wfile.write(b"a" * 65536)
        except OSError:
            pass  # the client stopped reading at its limit

    def route_slow(self, query: dict[str, list[str]]) -> None:
        # Answers when the test is over (or after 30 s): a client that waited for this answer returns after it.
        self.server.release.wait(30)
        self.server.answered.append("/slow")
        with contextlib.suppress(OSError):  # the client is long gone
            self._send(200, "text/plain", b"too late")

    def route_trickle(self, query: dict[str, list[str]]) -> None:
        # Headers at once, then one byte every 100 ms: no single read waits long, the whole takes 100 s.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                if self.server.release.wait(0.1):
                    return
                self.wfile.write(b"t")
                self.wfile.flush()
        except OSError:
            return  # the client went away
        self.server.answered.append("/trickle")  # the whole body went out

    def route_image(self, query: dict[str, list[str]]) -> None:
        self._send(200, "image/png", PNG_BYTES)

    def route_archive(self, query: dict[str, list[str]]) -> None:
        self._send(200, "application/zip", b"PK\x03\x04" + b"\0" * 100)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[tuple[str, str]] = []
        self.answered: list[str] = []  # the slow handlers that sent their whole answer
        self.release = threading.Event()  # ends the slow handlers at teardown


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def port_of(srv: _Server) -> int:
    return int(srv.server_address[1])


def fetch(url: str, policy: AddressPolicy | None = None, limits: FetchLimits = LIMITS) -> ToolResult:
    return FetchUrl(limits, policy).run(ToolContext("task-1", "step-1", _NoFiles()), {"url": url})


class _NoFiles:
    def list(self) -> list[dict[str, Any]]:
        return []

    def read(self, relative_path: str) -> bytes:
        raise FileNotFoundError(relative_path)

    def write(self, relative_path: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        raise AssertionError("fetch_url writes no files")


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str | tuple[str, ...]]]], list[str]]:
    """Makes the given names resolve to the given answers in turn (one per lookup; a tuple is one answer of several
    addresses, in that order); returns the lookups' log."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def install(answers: dict[str, list[str | tuple[str, ...]]]) -> list[str]:
        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in answers:
                return real(host, port, *args, **kwargs)
            lookups.append(host)
            answer = answers[host][min(len(lookups), len(answers[host])) - 1]
            ips = (answer,) if isinstance(answer, str) else answer
            return [
                (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def test_fetch_url_reads_a_page_as_text(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/page", LOOPBACK_ALLOWED)

    assert not result.error, result.output
    assert result.output.startswith(f"GET http://127.0.0.1:{port_of(server)}/page → HTTP 200 OK")
    assert "Content-Type: text/html; charset=utf-8" in result.output
    assert "Quarterly report" in result.output
    assert "North sold 10 units & south 32." in result.output
    assert f"[Details](http://127.0.0.1:{port_of(server)}/details)" in result.output
    assert "from-a-script" not in result.output
    assert "color: red" not in result.output


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/page", "127.0.0.1 is not a public address (loopback)"),
        ("http://10.0.0.1/", "10.0.0.1 is not a public address (private)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address (cloud metadata"),
        ("http://[::1]:{port}/page", "::1 is not a public address (loopback)"),
        ("http://localhost:{port}/page", "localhost resolves to"),
        ("http://2130706433:{port}/page", "2130706433 resolves to 127.0.0.1"),
        ("http://[::ffff:127.0.0.1]:{port}/page", "(loopback, embedded in an IPv6 address)"),
        ("http://0.0.0.0:{port}/page", "(unspecified)"),
        ("http://100.64.0.1/", "(shared address space (CGNAT))"),
        ("http://[fe80::1]/", "(link-local)"),
        ("http://[fd00::1]/", "(private)"),
        ("http://224.0.0.1/", "(multicast)"),
    ],
)
def test_fetch_url_refuses_addresses_that_are_not_public(server: _Server, url: str, reason: str) -> None:
    # The default policy, although the local server would answer
    result = fetch(url.format(port=port_of(server)))

    assert result.error
    assert "refused" in result.output
    assert reason in result.output
    assert server.hits == []  # refused before any connection


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/file.txt", "gopher://example.com/", "data:text/plain,hi", "//x/"]
)
def test_fetch_url_refuses_schemes_other_than_http(url: str) -> None:
    result = fetch(url)

    assert result.error
    assert "refused" in result.output
    assert "only http:// and https:// URLs can be fetched" in result.output


def test_fetch_url_refuses_a_name_that_resolves_to_a_private_address(fake_dns: Any) -> None:
    fake_dns({"intranet.example": ["10.1.2.3"]})

    result = fetch("https://intranet.example/admin")

    assert "refused" in result.output
    assert "intranet.example resolves to 10.1.2.3, which is not a public address (private)" in result.output


def test_fetch_url_refuses_a_name_when_a_later_address_is_not_public(server: _Server, fake_dns: Any) -> None:
    # Given a name answering an allowed address first (127.0.0.2 stands in for a public one: the policy allows it,
    # and nothing listens there) and then 127.0.0.1, where the local server listens
    fake_dns({"mixed.example": [("127.0.0.2", "127.0.0.1")]})
    allowed = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))

    # When it is fetched
    result = fetch(f"http://mixed.example:{port_of(server)}/page", allowed)

    # Then the second address refuses the name before any connection: with the first alone vetted, the connection
    # refused there would have fallen through to 127.0.0.1 and brought the page back
    assert result.error
    assert "refused" in result.output
    assert "mixed.example resolves to 127.0.0.1, which is not a public address (loopback)" in result.output
    assert server.hits == []


@pytest.mark.parametrize("target", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "file:///etc/x"])
def test_fetch_url_refuses_a_redirect_to_a_forbidden_target(server: _Server, target: str) -> None:
    start = f"http://127.0.0.1:{port_of(server)}/redirect?to={target}"

    result = fetch(start, LOOPBACK_ALLOWED)

    assert result.error
    assert f"refused {start}: the redirect from {start} to {target}:" in result.output
    assert [path for path, _ in server.hits] == ["/redirect"]


def test_fetch_url_follows_redirects_it_has_vetted(server: _Server) -> None:
    base = f"http://127.0.0.1:{port_of(server)}"

    result = fetch(f"{base}/redirect?to=/page", LOOPBACK_ALLOWED)

    assert not result.error, result.output
    assert f"Redirected: {base}/redirect?to=/page → {base}/page" in result.output
    assert "Quarterly report" in result.output


def test_fetch_url_follows_at_most_three_redirects(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/loop", LOOPBACK_ALLOWED)

    assert result.error
    assert "more than 3 redirects" in result.output
    assert len(server.hits) == 4  # the first request and three redirects


def test_fetch_url_connects_to_the_address_it_vetted(server: _Server, fake_dns: Any) -> None:
    # Given a name whose second lookup would answer a private address (DNS rebinding)
    lookups = fake_dns({"pinned.example": ["127.0.0.1", "10.0.0.1"]})

    # When it is fetched
    result = fetch(f"http://pinned.example:{port_of(server)}/page", LOOPBACK_ALLOWED)

    # Then the name was looked up once, the vetted IP was connected to, and the server saw the name as Host
    assert not result.error, result.output
    assert lookups == ["pinned.example"]
    assert server.hits == [("/page", f"pinned.example:{port_of(server)}")]


def test_fetch_url_reads_at_most_max_bytes(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/big", LOOPBACK_ALLOWED)

    assert not result.error
    assert "Size: 100000 bytes (the body is longer: only the first 100000 bytes were read)" in result.output


def test_fetch_url_gives_up_at_the_time_limit(server: _Server) -> None:
    result = fetch(
        f"http://127.0.0.1:{port_of(server)}/slow", LOOPBACK_ALLOWED, FetchLimits(timeout_s=0.5, max_bytes=1000)
    )

    assert result.error
    assert "no full answer within 0.5 s" in result.output
    assert [path for path, _ in server.hits] == ["/slow"]
    assert server.answered == []  # it did not wait for the answer, which comes only once the test is over
    assert "too late" not in result.output


def test_fetch_url_time_limit_covers_a_trickling_body(server: _Server) -> None:
    # Every read returns within 100 ms, so only a deadline for the whole fetch stops this one.
    result = fetch(
        f"http://127.0.0.1:{port_of(server)}/trickle", LOOPBACK_ALLOWED, FetchLimits(timeout_s=0.5, max_bytes=10_000)
    )

    assert result.error
    assert "no full answer within 0.5 s" in result.output
    assert server.answered == []  # it did not read the whole body, whose last byte goes out after 100 s


def test_fetch_url_does_not_show_binary_content(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/archive", LOOPBACK_ALLOWED)

    assert "(application/zip content, not text: not shown)" in result.output
    assert "PK" not in result.output.split("\n\n", 1)[1] and result.images == []


def test_fetch_url_shows_an_image_to_the_model(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/image", LOOPBACK_ALLOWED)

    assert not result.error and "(image/png image)" in result.output and "shown to you as an image" in result.output
    assert result.images == [{"data_url": "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()}]


def test_fetch_url_reports_http_errors(server: _Server) -> None:
    result = fetch(f"http://127.0.0.1:{port_of(server)}/missing", LOOPBACK_ALLOWED)

    assert result.error
    assert "HTTP 404 Not Found" in result.output
    assert "no such page" in result.output


def test_fetch_url_uses_the_host_name_for_tls(tmp_path: Path, fake_dns: Any) -> None:
    # Given an HTTPS server on 127.0.0.1 with a self-signed certificate, recording the SNI it is sent
    context, server_names = _tls_server_context(tmp_path)
    listener = context.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)
    accepted = threading.Thread(target=_accept_once, args=(listener,), daemon=True)
    accepted.start()
    fake_dns({"secure.example": ["127.0.0.1"]})

    # When fetch_url connects to it by name
    result = fetch(f"https://secure.example:{listener.getsockname()[1]}/", LOOPBACK_ALLOWED)
    accepted.join(5)
    listener.close()

    # Then the name went out as SNI, and the untrusted certificate was refused
    assert server_names == ["secure.example"]
    assert result.error
    assert "CERTIFICATE_VERIFY_FAILED" in result.output


def _tls_server_context(tmp_path: Path) -> tuple[ssl.SSLContext, list[str]]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "secure.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_names: list[str] = []
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name) and None
    return context, server_names


def _accept_once(listener: ssl.SSLSocket) -> None:
    try:
        conn, _ = listener.accept()  # the handshake fails on the client's side
        conn.close()
    except OSError:
        pass


def test_fetch_url_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCH_TIMEOUT_S", "4")
    monkeypatch.setenv("FETCH_MAX_BYTES", "2048")
    get_settings.cache_clear()

    tool = FetchUrl()

    assert tool.limits == FetchLimits(timeout_s=4, max_bytes=2048)
    assert tool.policy == AddressPolicy()
    assert "Limits: 4 s, the first 2 KB of the body" in tool.description


def test_fetch_url_schema_takes_one_url() -> None:
    function = openai_schema(FetchUrl(LIMITS))["function"]

    assert function["name"] == "fetch_url"
    assert function["parameters"]["required"] == ["url"]
    assert function["parameters"]["properties"]["url"]["type"] == "string"
    assert function["parameters"]["additionalProperties"] is False
