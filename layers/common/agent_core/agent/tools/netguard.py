"""Which addresses fetch_url may connect to: public unicast ones only, judged on the resolved IPs, never on names."""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges named explicitly because `is_global` misses them or changed its mind about them across Python versions.
_NAMED_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "'this network'"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("198.18.0.0/15", "benchmarking"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("fec0::/10", "site-local"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Refused anyway (link-local or private); named so the model is told plainly what it tried to reach.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address fetch_url must not reach."""


def refusal_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be reached (loopback, private, link-local, ...), or None for a public unicast address."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = refusal_reason(embedded)
        if inner is not None:
            return f"{inner}, embedded in an IPv6 address"
    checks = (
        (ip in _METADATA, "cloud metadata service"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
    )
    for hit, label in checks:
        if hit:
            return label
    for network, label in _NAMED_RANGES:
        if ip.version == network.version and ip in network:
            return label
    return None if ip.is_global else "not globally routable"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), which is what it reaches."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, except networks listed here (empty in production; tests allow 127.0.0.0/8)."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> str | None:
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return None
        return refusal_reason(ip)


def vetted_addresses(host: str, port: int, policy: AddressPolicy, timeout_s: float) -> list[IPAddress]:
    """Every address `host` resolves to, when all of them are allowed; AddressRefused when any is not.

    All, not some: a name that resolves to a public and a private address is somebody's trick, and the caller connects
    to these very IPs, so a second lookup (DNS rebinding) never gets a say.
    """
    addresses = _resolve(host, port, timeout_s)
    for ip in addresses:
        reason = policy.refusal(ip)
        if reason is not None:
            where = f"{ip} is" if host == str(ip) else f"{host} resolves to {ip}, which is"
            raise AddressRefused(f"{where} not a public address ({reason})")
    return addresses


def _resolve(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    # getaddrinfo takes no timeout, so it runs in a helper thread that is abandoned if the resolver hangs.
    outcome: list[list[IPAddress] | OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append(list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos)))
        except (OSError, UnicodeError) as exc:
            outcome.append(OSError(f"cannot resolve {host}: {exc}"))

    worker = threading.Thread(target=lookup, name="fetch_url-resolve", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if not outcome:
        raise TimeoutError(f"resolving {host} took longer than {timeout_s:.1f} s")
    if isinstance(outcome[0], OSError):
        raise outcome[0]
    if not outcome[0]:
        raise OSError(f"{host} has no address")
    return outcome[0]
