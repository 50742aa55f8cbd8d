"""Where and as whom to connect: DbSettings, checked when made, so a bad value is bad input (exit
2) before anything is written, not a connection error later."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recio_setup.errors import UsageError
from recio_setup.runtime.database import SSLMODES

# PostgreSQL truncates longer identifiers silently, which would create a role nobody asked for.
MAX_IDENTIFIER_BYTES = 63


def _check_text(label: str, value: str) -> None:
    if "\x00" in value:
        raise UsageError(f"{label} contains a NUL character, which PostgreSQL cannot take")


def _check_identifier(label: str, value: str) -> None:
    _check_text(label, value)
    if not value:
        raise UsageError(f"{label} is empty")
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(
            f"{label} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would truncate it",
            hint=f"choose a shorter {label}",
        )


@dataclass(frozen=True)
class DbSettings:
    """Where and as whom to connect. The password never shows in repr()."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None = field(repr=False)
    sslmode: str = "prefer"
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.sslmode not in SSLMODES:
            raise UsageError(
                f"unknown sslmode {self.sslmode!r}", hint=f"use one of: {', '.join(SSLMODES)}"
            )
        if not (math.isfinite(self.connect_timeout) and 1 <= self.connect_timeout <= 3600):
            raise UsageError(
                f"the database timeout must be between 1 and 3600 seconds, not "
                f"{self.connect_timeout!r}"
            )
        if not 1 <= self.port <= 65535:
            raise UsageError(f"POSTGRES_PORT must be between 1 and 65535, not {self.port}")
        _check_text("POSTGRES_HOST", self.host)
        if "," in self.host:
            raise UsageError("POSTGRES_HOST must name one host, not a list")
        _check_identifier("POSTGRES_DB", self.dbname)
        _check_identifier("POSTGRES_USER", self.user)
        if self.password is not None and "\x00" in self.password:
            raise UsageError("POSTGRES_PASSWORD contains a NUL character, which libpq cannot take")

    @classmethod
    def from_values(
        cls, values: Mapping[str, str], *, sslmode: str = "prefer", connect_timeout: float = 5.0
    ) -> DbSettings:
        """From resolved POSTGRES_HOST/PORT/DB/USER/PASSWORD values (PASSWORD may be absent)."""
        required = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER")
        missing = [key for key in required if not values.get(key)]
        if missing:
            raise UsageError(f"{', '.join(missing)} not set", hint="set them in .env or the flags")
        port_text = values["POSTGRES_PORT"].strip()
        if not port_text.isdigit():
            raise UsageError(f"POSTGRES_PORT must be a number, not {port_text!r}")
        return cls(
            host=values["POSTGRES_HOST"],
            port=int(port_text),
            dbname=values["POSTGRES_DB"],
            user=values["POSTGRES_USER"],
            password=values.get("POSTGRES_PASSWORD"),
            sslmode=sslmode,
            connect_timeout=connect_timeout,
        )

    def params(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
        }
