"""Placeholder until the host-detection branch lands (replaced by it)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from recio_setup.errors import UsageError

HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def validate_host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if HOSTNAME.fullmatch(text):
        return text
    raise UsageError(
        f"{text!r} is not an IP address or host name", hint="e.g. 192.168.1.20 or my-mac.local"
    )


def host_candidates() -> list[str]:
    return []


def detect_host(environ: Mapping[str, str]) -> tuple[str, str]:
    candidates = host_candidates()
    return (candidates[0], "detected") if candidates else ("localhost", "default")
