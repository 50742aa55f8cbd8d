"""Host detection from injected interface lists, the override, and validation of typed hosts."""

from __future__ import annotations

import ipaddress

import pytest

from recio_setup.errors import UsageError
from recio_setup.runtime.host import (
    Interface,
    candidates_from_interfaces,
    detect_host,
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


def test_reading_this_machine_finds_its_loopback_and_no_zone_ids() -> None:
    # The real OS layer (psutil): no command, no packet; every address parses as an IP.
    interfaces = read_interfaces()
    assert any(i.address == "127.0.0.1" and i.loopback and i.up for i in interfaces)
    for interface in interfaces:
        assert interface.name and "%" not in interface.address
        assert ipaddress.ip_address(interface.address).is_loopback == interface.loopback
