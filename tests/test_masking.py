"""No secret reaches any output: malformed URLs of every shape, from every source.

Each URL is given the way a user gives it (environment or flag) and the password must appear
nowhere: not in the message, the hint, the JSON envelope or a crash log. A password in a flag URL,
whatever its shape, is refused (exit 2) with nothing written.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from recio_setup.masking import mask_text, redact_url, url_holds_secret
from recio_setup.result import MASK
from tests.conftest import Cli
from tests.pgserver import free_port

BASE = ("--non-interactive", "--skip-db-check", "--json")
PW = "Sekr1tXX"

# (url, the password as it would be decoded, whether DATABASE_URL accepts it)
SHAPES = [
    (f"postgresql:/u:{PW}@h/db", PW, False),  # one slash: no authority
    (f"postgresql:u:{PW}@h/db", PW, False),  # no slash at all
    (f"u:{PW}@h/db", PW, False),  # no scheme
    (f"//u:{PW}@h/db", PW, False),  # no scheme, with slashes
    (f"postgresql://u:{PW}", PW, False),  # no `@host`: reads as host:port
    (f"postgresql://u:{PW}@", PW, True),  # no host: the default one
    (f"postgresql://u:{PW}@h:abc/db", PW, False),  # a bad port
    (f"postgresql://u:12/{PW}@h/db", f"12/{PW}", False),  # unencoded `/`
    (f"postgresql://u:12?{PW}@h/db", f"12?{PW}", False),  # unencoded `?`
    (f"postgresql://u:12#{PW}@h/db", f"12#{PW}", False),  # unencoded `#`
    (f"postgresql://u:p@{PW}@h/db", f"p@{PW}", True),  # unencoded `@`
    (f"postgresql://u:{PW}:x@h/db", f"{PW}:x", True),  # `:` in the password
    (f"postgresql://u:{PW}%zz@h/db", f"{PW}%zz", False),  # a bad %-escape
    ("postgresql://u:Sekr%31tXX@h/db", PW, True),  # percent-encoded
    (f"postgresql://u:{PW}@h/db?sslmode=sometimes", PW, False),
    (f"postgresql://u:{PW}@h/db?application_name=x", PW, False),
    (f"postgresql://u:{PW}@h1,h2/db", PW, False),
    (f"postgresql://u:{PW}@[::1/db", PW, False),
    (f"mysql://u:{PW}@h/db", PW, False),
    (f"host=h password={PW}", PW, False),
]
IDS = [shape[0].replace(PW, "PW") for shape in SHAPES]


def assert_never_shown(project: Path, text: str, *secrets: str) -> None:
    logs = project / "logs"
    logged = "".join(p.read_text() for p in logs.iterdir()) if logs.is_dir() else ""
    for secret in {*secrets, PW, "Sekr%31tXX"}:
        assert secret not in text + logged, f"{secret!r} shown"


@pytest.mark.parametrize(("url", "password", "valid"), SHAPES, ids=IDS)
def test_database_url_in_the_environment_never_shows_its_password(
    cli: Cli, project: Path, url: str, password: str, valid: bool
) -> None:
    run = cli(*BASE, env={"DATABASE_URL": url})
    assert_never_shown(project, run.all, password)
    if valid:
        assert run.code == 0, run.err
        assert dotenv_values(project / ".env")["POSTGRES_PASSWORD"] == password
    else:
        assert run.code == 2, run.err
        assert "DATABASE_URL" in run.err
        assert list(project.iterdir()) == []


def to_loopback(url: str, port: int) -> str:
    """The shape kept, the server moved to a closed loopback port: `h` is no name to look up."""
    return (
        url.replace("@h1,h2", f"@127.0.0.1:{port},127.0.0.2:{port}")
        .replace("@h", f"@127.0.0.1:{port}")
        .replace("host=h ", f"host=127.0.0.1 port={port} ")
    )


@pytest.mark.parametrize(("url", "password", "valid"), SHAPES, ids=IDS)
def test_admin_url_in_the_environment_never_shows_its_password(
    cli: Cli, project: Path, url: str, password: str, valid: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dry run logs in as the admin (read-only): to a closed loopback port, and a name the
    # malformed URL makes up (`u`, or the password itself) is not looked up.
    def no_lookup(host: object, *args: object, **kwargs: object) -> Any:
        raise socket.gaierror(f"the test looks up no name ({host!r} asked)")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    port = str(free_port())
    env = {"POSTGRES_ADMIN_URL": to_loopback(url, int(port)), "PGHOST": "127.0.0.1", "PGPORT": port}
    run = cli(*BASE, "--create-db", "--dry-run", env=env)
    assert run.code in (1, 2), run.err
    assert_never_shown(project, run.all, password)
    assert list(project.iterdir()) == []


@pytest.mark.parametrize("flag", ["--database-url", "--admin-url"])
@pytest.mark.parametrize(("url", "password", "valid"), SHAPES, ids=IDS)
def test_a_flag_url_that_may_hold_a_password_is_refused_unshown(
    cli: Cli, project: Path, flag: str, url: str, password: str, valid: bool
) -> None:
    run = cli(*BASE, "--create-db", flag, url)
    assert run.code == 2, run.err
    # Refused for the password before it is parsed; the message itself is not mangled by masking.
    assert (
        f"{flag} holds what may be a password (text after the user's `:`, or a password or "
        in run.err
    )
    assert_never_shown(project, run.all, password)
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h:5432/db",
        "postgresql://u@[::1]:5432/db?sslmode=require",
        "postgresql:///db",
        "host=::1 user=postgres dbname=x",
    ],
)
def test_a_url_without_a_password_is_not_taken_for_one(url: str) -> None:
    assert redact_url(url) == url
    assert not url_holds_secret(url)


@pytest.mark.parametrize(("url", "password", "valid"), SHAPES, ids=IDS)
def test_redact_url_masks_every_shape(url: str, password: str, valid: bool) -> None:
    shown = redact_url(url)
    assert PW not in shown and password not in shown and MASK in shown
    assert url_holds_secret(url)


@pytest.mark.parametrize(
    "text",
    ["a=" * 100_000, "=:" * 100_000, "?a" * 100_000, "-eyJ" * 50_000, "password=a b " * 20_000],
    ids=["pairs", "colons", "params", "jwt-starts", "secret-pairs"],
)
def test_masking_is_linear_in_a_hostile_line(text: str) -> None:
    # A .env line or a message is masked in one pass: these took minutes when each start of a
    # pattern rescanned the rest of the line.
    started = time.monotonic()
    masked, url = mask_text(text), redact_url(text)
    assert time.monotonic() - started < 10
    assert "password=a" not in masked and "password=a" not in url


@pytest.mark.parametrize("control", ["\t", "\n", "\r"])
def test_a_control_character_in_database_url_is_refused_not_dropped(
    cli: Cli, project: Path, control: str
) -> None:
    url = f"postgresql://u:pa{control}ssW0rd@localhost:5432/db"
    run = cli("--non-interactive", "--skip-db-check", env={"DATABASE_URL": url})
    assert run.code == 2, run.all
    assert "control character" in run.err and "ssW0rd" not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    ("where", "url"),
    [
        ("POSTGRES_ADMIN_URL", "postgresql://u:Sekr1tXQ%ff@h/db"),
        ("--admin-url", "postgresql://admin@h/postgres%ff"),
        ("--admin-url", "postgresql://admin@h/postgres?application_name=%ff"),
    ],
)
def test_an_admin_url_that_does_not_decode_is_bad_input(
    cli: Cli, project: Path, where: str, url: str
) -> None:
    args = ["--non-interactive", "--create-db", "--host", "127.0.0.1", "--dry-run"]
    env = {"POSTGRES_PASSWORD": "pw-admin-url"}
    if where == "--admin-url":
        args += [where, url]
    else:
        env[where] = url
    run = cli(*args, env=env)
    assert run.code == 2, run.all
    assert "is not a valid connection URL" in run.err and "Sekr1tXQ" not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize("source", ["environment", "flag"])
def test_an_encoded_colon_in_the_user_never_shows_what_follows_it(
    cli: Cli, project: Path, source: str
) -> None:
    url = "postgresql://u%3ASekr1tXQ@h/db"
    args = ["--non-interactive", "--skip-db-check", "--dry-run", "--json"]
    env = {"POSTGRES_PASSWORD": "pw-colon"}
    if source == "flag":
        args += ["--database-url", url]
    else:
        env["DATABASE_URL"] = url
    run = cli(*args, env=env)
    assert run.code == 2, run.all
    assert "Sekr1tXQ" not in run.all
