"""The host other machines reach this one at, found from the interface list.

REC.IO v2 "detected" the host by connecting a UDP socket to 8.8.8.8; this module sends nothing to
any address. It reads the interfaces through psutil (net_if_addrs, net_if_stats: the same code
on Linux and macOS, imported only when detection runs) and picks from them with a pure function
the tests drive with made-up lists:
down, loopback, link-local and container-bridge interfaces are skipped, private addresses come
first, and `localhost` is the fallback. TRADING_SYSTEM_HOST overrides detection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from recio_setup.errors import UsageError
from recio_setup.runtime.paths import HOST_ENV

FALLBACK = "localhost"
# Container, VM and VPN plumbing: an address there is not where a colleague reaches us.
VIRTUAL_PREFIXES = (
    "docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "weave", "vxlan", "kube",
    "podman", "lxc", "lxd", "vmnet", "vboxnet", "tun", "tap", "utun", "awdl", "llw", "bridge",
    "gif", "stf", "anpi", "ap1", "zt",
)  # fmt: skip
LOOPBACK_NAME = re.compile(r"lo[0-9]*")
HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Explicit, because ipaddress's is_private also counts documentation and reserved blocks.
PRIVATE_NETWORKS = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("fc00::/7"),
)


@dataclass(frozen=True)
class Interface:
    name: str
    address: str
    up: bool = True
    loopback: bool = False


def _rank(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """Lower is better: private IPv4 (RFC 1918), other IPv4, unique-local IPv6, other IPv6."""
    private = any(address in network for network in PRIVATE_NETWORKS)
    return (2 if address.version == 6 else 0) + (0 if private else 1)


def _usable(interface: Interface) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not interface.up or interface.loopback:
        return None
    if LOOPBACK_NAME.fullmatch(interface.name) or interface.name.startswith(VIRTUAL_PREFIXES):
        return None
    try:
        address = ipaddress.ip_address(interface.address.split("%")[0])
    except ValueError:
        return None
    if address.is_loopback or address.is_link_local or address.is_unspecified:
        return None
    if address.is_multicast or address.is_reserved:
        return None
    return address


def candidates_from_interfaces(interfaces: list[Interface]) -> list[str]:
    """Every address worth offering, best first, ending with `localhost`."""
    usable = [(addr, i) for i, iface in enumerate(interfaces) if (addr := _usable(iface))]
    ordered = sorted(usable, key=lambda pair: (_rank(pair[0]), pair[1]))
    candidates: list[str] = []
    for address, _ in ordered:
        if str(address) not in candidates:
            candidates.append(str(address))
    return [*candidates, FALLBACK]


# -- reading the interfaces ------------------------------------------------------------------
def read_interfaces() -> list[Interface]:
    """This machine's IP addresses with their interface's state: no command run, no packet sent.
    An empty list when the OS will not tell (detection then falls back to localhost)."""
    import socket

    import psutil  # ~10 ms: only when detection runs, never for a host that is given

    try:
        stats = psutil.net_if_stats()
        addresses = psutil.net_if_addrs()
    except (OSError, psutil.Error):
        return []
    interfaces = []
    for name, entries in addresses.items():
        up = name in stats and stats[name].isup
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            text = entry.address.partition("%")[0]  # fe80::1%en0: the zone is not the address
            try:
                loopback = ipaddress.ip_address(text).is_loopback
            except ValueError:
                continue
            interfaces.append(Interface(name, text, up, loopback))
    return interfaces


def detect_candidates() -> list[str]:
    return candidates_from_interfaces(read_interfaces())


def detect_host(environ: Mapping[str, str], candidates: list[str] | None = None) -> tuple[str, str]:
    """(host, source): TRADING_SYSTEM_HOST ("environment"), else detected, else localhost."""
    given = environ.get(HOST_ENV, "").strip()
    if given:
        return validate_host(given, origin=HOST_ENV), "environment"
    found = detect_candidates() if candidates is None else candidates
    best = found[0] if found else FALLBACK
    return (best, "detected") if best != FALLBACK else (FALLBACK, "default")


def validate_host(text: str, *, origin: str = "the host") -> str:
    """An IP literal or an RFC 1123 hostname; anything else is refused with a hint."""
    host = text.strip()
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    labels = host.rstrip(".").split(".")
    # An all-digit last label would be a mistyped IP address (e.g. 192.168.1.300).
    if (
        0 < len(host) <= 253
        and all(HOSTNAME_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    ):
        return host
    raise UsageError(
        f"{origin} {text!r} is neither an IP address nor a hostname",
        hint="give an address such as 192.168.1.20 or a name such as trading-box.local "
        "(letters, digits, '-' and '.', no spaces)",
    )
