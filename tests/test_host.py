"""Host detection from injected interface lists, the override, and validation of typed hosts."""

from __future__ import annotations

import json

import pytest

from recio_setup.errors import UsageError
from recio_setup.runtime.host import (
    Interface,
    candidates_from_interfaces,
    detect_host,
    parse_ifconfig,
    parse_ip_json,
    read_interfaces,
    validate_host,
)


def test_prefers_private_and_skips_loopback_down_link_local_and_bridges() -> None:
    interfaces = [
        Interface("lo", "127.0.0.1", loopback=True),
        Interface("docker0", "172.17.0.1"),
        Interface("br-1a2b", "172.18.0.1"),
        Interface("veth12", "10.9.9.9"),
        Interface("virbr0", "192.168.122.1"),
        Interface("eth1", "10.0.0.9", up=False),
        Interface("eth0", "169.254.3.4"),
        Interface("eth0", "fe80::1%eth0"),
        Interface("eth0", "203.0.113.50"),  # not RFC 1918
        Interface("wlan0", "192.168.86.42"),
        Interface("eth0", "2001:db8::5"),
    ]
    candidates = candidates_from_interfaces(interfaces)
    assert candidates[0] == "192.168.86.42"
    assert candidates[-1] == "localhost"
    for skipped in ("127.0.0.1", "172.17.0.1", "172.18.0.1", "10.9.9.9", "192.168.122.1"):
        assert skipped not in candidates
    assert "10.0.0.9" not in candidates and "169.254.3.4" not in candidates
    assert not any(c.startswith("fe80") for c in candidates)
    assert candidates.index("203.0.113.50") < candidates.index("2001:db8::5")


def test_nothing_usable_falls_back_to_localhost() -> None:
    assert candidates_from_interfaces([Interface("lo0", "127.0.0.1", loopback=True)]) == [
        "localhost"
    ]
    assert candidates_from_interfaces([]) == ["localhost"]


def test_environment_overrides_detection() -> None:
    assert detect_host({"TRADING_SYSTEM_HOST": "box.local"}, ["10.0.0.2", "localhost"]) == (
        "box.local",
        "environment",
    )
    assert detect_host({}, ["10.0.0.2", "localhost"]) == ("10.0.0.2", "detected")
    assert detect_host({}, ["localhost"]) == ("localhost", "default")
    with pytest.raises(UsageError, match="TRADING_SYSTEM_HOST"):
        detect_host({"TRADING_SYSTEM_HOST": "a b"}, [])


@pytest.mark.parametrize(
    "good", ["192.168.1.20", "::1", "2001:db8::5", "localhost", "trading-box.local", "a.b-c.d."]
)
def test_valid_hosts(good: str) -> None:
    assert validate_host(good)


@pytest.mark.parametrize(
    "bad", ["a b", "", "-lead.example", "under_score.com", "192.168.1.300", "x" * 64, "http://x"]
)
def test_invalid_hosts_get_a_hint(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_host(bad)
    assert info.value.hint and "hostname" in info.value.message


def test_parse_ip_json() -> None:
    text = json.dumps(
        [
            {
                "ifname": "lo",
                "flags": ["LOOPBACK", "UP"],
                "addr_info": [{"family": "inet", "local": "127.0.0.1"}],
            },
            {
                "ifname": "eth0",
                "flags": ["BROADCAST", "UP", "LOWER_UP"],
                "operstate": "UP",
                "addr_info": [
                    {"family": "inet", "local": "10.1.2.3"},
                    {"family": "inet6", "local": "fe80::1"},
                ],
            },
            {"ifname": "eth1", "flags": ["BROADCAST"], "operstate": "DOWN", "addr_info": []},
        ]
    )
    interfaces = parse_ip_json(text)
    assert Interface("lo", "127.0.0.1", True, True) in interfaces
    assert Interface("eth0", "10.1.2.3", True, False) in interfaces
    assert candidates_from_interfaces(interfaces) == ["10.1.2.3", "localhost"]


def test_parse_macos_ifconfig() -> None:
    text = """\
lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tether 3c:22:fb:00:00:00
\tinet6 fe80::10c4:1%en0 prefixlen 64 secured scopeid 0x4
\tinet 192.168.1.77 netmask 0xffffff00 broadcast 192.168.1.255
en1: flags=8822<BROADCAST,SMART,SIMPLEX,MULTICAST> mtu 1500
\tinet 10.0.0.5 netmask 0xffffff00
utun3: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
\tinet 100.64.0.3 --> 100.64.0.3 netmask 0xffffffff
"""
    interfaces = parse_ifconfig(text)
    assert Interface("en0", "192.168.1.77", True, False) in interfaces
    assert Interface("en1", "10.0.0.5", False, False) in interfaces
    assert candidates_from_interfaces(interfaces) == ["192.168.1.77", "localhost"]


def test_reading_this_machine_gives_interfaces_or_nothing() -> None:
    # The real OS layer: whatever it finds must be well-formed; it sends no packet.
    for interface in read_interfaces():
        assert interface.name and interface.address
