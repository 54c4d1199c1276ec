"""The address policy behind fetch_url: public unicast addresses only, judged after resolution."""

from __future__ import annotations

import ipaddress
import re
import socket

import pytest

from agent_core.agent.tools.netguard import AddressPolicy, AddressRefused, refusal_reason, vetted_addresses


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata service"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "private"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "cloud metadata service"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback, embedded in an IPv6 address"),
        ("::ffff:10.0.0.1", "private, embedded in an IPv6 address"),
        ("::ffff:169.254.169.254", "cloud metadata service, embedded in an IPv6 address"),
        ("2002:7f00:1::", "loopback, embedded in an IPv6 address"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "cloud metadata service, embedded in an IPv6 address"),  # NAT64
    ],
)
def test_refusal_reason_names_non_public_addresses(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450::1"])
def test_refusal_reason_allows_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_policy_allows_only_the_networks_it_lists() -> None:
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))

    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    assert policy.refusal(ipaddress.ip_address("::1")) == "loopback"


def test_vetted_addresses_refuses_a_name_when_any_of_its_addresses_is_not_public() -> None:
    with pytest.raises(AddressRefused, match=r"localhost resolves to .*, which is not a public address \(loopback\)"):
        vetted_addresses("localhost", 80, AddressPolicy(), timeout_s=2)


def test_vetted_addresses_returns_literal_addresses_unchanged() -> None:
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))

    assert vetted_addresses("127.0.0.1", 80, policy, timeout_s=2) == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("hidden", ["127.0.0.1", "169.254.169.254", "::1", "10.0.0.1"])
def test_vetted_addresses_checks_every_address_not_only_the_first(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    # A public address first: a guard that looked at the first answer alone would let the name through.
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ("93.184.216.34", hidden)
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    refused = rf"mixed\.example resolves to {re.escape(hidden)}, which is not a public address"
    with pytest.raises(AddressRefused, match=refused):
        vetted_addresses("mixed.example", 443, AddressPolicy(), timeout_s=2)
