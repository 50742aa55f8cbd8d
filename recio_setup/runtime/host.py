"""The host other machines reach this one at, found from the interface list.

REC.IO v2 "detected" the host by connecting a UDP socket to 8.8.8.8; this module sends nothing to
any address. It reads the interfaces (`ip -j addr` on Linux, ioctl() on Linux without `ip`,
`ifconfig` on macOS) and picks from them with a pure function the tests drive with made-up lists:
down, loopback, link-local and container-bridge interfaces are skipped, private addresses come
first, and `localhost` is the fallback. TRADING_SYSTEM_HOST overrides detection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import struct
import sys
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
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
IFF_UP = 0x1
IFF_LOOPBACK = 0x8


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


# -- reading the interfaces (the thin, OS-specific layer) --------------------------------------
def parse_ip_json(text: str) -> list[Interface]:
    """Interfaces from `ip -j addr`."""
    interfaces = []
    for link in json.loads(text):
        flags = set(link.get("flags", []))
        up = "UP" in flags and link.get("operstate") != "DOWN"
        for info in link.get("addr_info", []):
            if info.get("family") in ("inet", "inet6") and info.get("local"):
                loopback = "LOOPBACK" in flags
                interfaces.append(Interface(link.get("ifname", ""), info["local"], up, loopback))
    return interfaces


IFCONFIG_HEADER = re.compile(r"^(\S+?):? flags=\d+<([^>]*)>")
IFCONFIG_ADDR = re.compile(r"^\s+inet6? (?:addr:)?([0-9A-Fa-f:.%a-z]+)")


def parse_ifconfig(text: str) -> list[Interface]:
    """Interfaces from BSD/macOS `ifconfig` output."""
    interfaces: list[Interface] = []
    name, flags = "", set[str]()
    for line in text.splitlines():
        header = IFCONFIG_HEADER.match(line)
        if header:
            name, flags = header[1], set(header[2].split(","))
            continue
        address = IFCONFIG_ADDR.match(line)
        if address and name:
            up = "UP" in flags and "RUNNING" in flags
            interfaces.append(Interface(name, address[1], up, "LOOPBACK" in flags))
    return interfaces


def _run(command: list[str]) -> str | None:
    try:
        import subprocess  # here, not at the top: validating a host needs none of this

        done = subprocess.run(command, capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _ioctl_interfaces() -> list[Interface]:
    """Linux without `ip`: ask the kernel per interface; the socket is never connected."""
    import fcntl
    import socket

    interfaces = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack("H", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[16:18])[0]
                raw = fcntl.ioctl(sock, SIOCGIFADDR, request)[20:24]
            except OSError:
                continue  # no IPv4 address on this interface
            up, loopback = bool(flags & IFF_UP), bool(flags & IFF_LOOPBACK)
            interfaces.append(Interface(name, socket.inet_ntoa(raw), up, loopback))
    return interfaces


def read_interfaces() -> list[Interface]:
    import shutil  # here: validating a host needs none of detection's imports

    if sys.platform == "darwin" or (not sys.platform.startswith("linux")):
        text = _run(["ifconfig"]) if shutil.which("ifconfig") else None
        return parse_ifconfig(text) if text else []
    text = _run(["ip", "-j", "addr"]) if shutil.which("ip") else None
    if text:
        with contextlib.suppress(ValueError):
            return parse_ip_json(text)
    try:
        return _ioctl_interfaces()
    except OSError:
        return []


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
