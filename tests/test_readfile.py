"""Special files where the manifest or .env belongs: refused with the file named, never a hang.

Each subject runs in its own process with a timeout, so a regression fails the test instead of
hanging the suite, and with a bounded address space, so a read without bound (a manifest linked
to /dev/zero) fails with MemoryError instead of filling the machine's memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from recio_setup.runtime.readfile import TEXT_LIMIT
from tests.conftest import Cli, tree_snapshot
from tests.test_runtime import MANIFEST_REL, install_manifest

MEMORY_CAP = 1 << 30
TIMEOUT = 20


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def service_call(project: Path, call: str) -> subprocess.CompletedProcess[str]:
    """`call` as a service makes it (REC_PROJECT_ROOT set), printing its answer or its error."""
    code = (
        "import recio_setup\n"
        f"try:\n    print('answer', recio_setup.{call})\n"
        "except Exception as exc:\n    print('error', type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "REC_PROJECT_ROOT": str(project)}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        preexec_fn=_cap_memory,
    )


def replace_with_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


CALLS = ["get_port('main_app')", "get_service_url('main_app')", "list_all_ports()"]


@pytest.mark.parametrize("call", CALLS)
def test_a_fifo_as_the_manifest_is_refused_naming_it(project: Path, call: str) -> None:
    replace_with_fifo(install_manifest(project))
    done = service_call(project, call)
    assert done.stdout.startswith("error ManifestError"), done.stdout + done.stderr
    assert str(project / MANIFEST_REL) in done.stdout and "FIFO" in done.stdout


@pytest.mark.parametrize("call", ["get_host()", "get_service_url('main_app')", "get_port_info()"])
def test_a_fifo_as_the_env_file_is_refused_naming_it(project: Path, call: str) -> None:
    install_manifest(project)
    replace_with_fifo(project / ".env")
    done = service_call(project, call)
    assert done.stdout.startswith("error FileRefused"), done.stdout + done.stderr
    assert str(project / ".env") in done.stdout and "FIFO" in done.stdout


def test_a_manifest_linked_to_dev_zero_is_refused_without_reading(project: Path) -> None:
    manifest = install_manifest(project)
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    done = service_call(project, "get_port('main_app')")
    assert done.stdout.startswith("error ManifestError"), done.stdout + done.stderr
    assert "character device" in done.stdout


def test_a_huge_manifest_is_refused_at_the_stated_limit(project: Path) -> None:
    manifest = install_manifest(project)
    with manifest.open("r+b") as handle:
        handle.truncate(8 << 30)  # sparse: 8 GiB of size, no disk
    done = service_call(project, "get_port('main_app')")
    assert done.stdout.startswith("error ManifestError"), done.stdout + done.stderr
    assert "larger than 1 MiB" in done.stdout


def test_ports_names_a_fifo_manifest_or_env_instead_of_hanging(cli: Cli, project: Path) -> None:
    manifest = install_manifest(project)
    replace_with_fifo(manifest)
    run = cli("ports", timeout=TIMEOUT)
    assert run.code == 1 and "FIFO" in run.err and str(manifest) in run.err, run.all
    manifest.unlink()
    install_manifest(project)
    replace_with_fifo(project / ".env")
    run = cli("ports", timeout=TIMEOUT)
    assert run.code == 2 and "FIFO" in run.err and ".env" in run.err, run.all
    assert "Traceback" not in run.all


INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")


def env_of_size(size: int, password: str) -> bytes:
    """A valid .env of exactly `size` bytes whose last line is the password."""
    head = b"TRADING_SYSTEM_HOST=127.0.0.1\n# "
    tail = f"\nPOSTGRES_PASSWORD={password}\n".encode()
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_an_env_over_the_limit_is_refused_whole_and_nothing_is_written(
    cli: Cli, project: Path
) -> None:
    # Byte 1,048,576 falls inside the password: a cut would keep it shortened.
    data = env_of_size(TEXT_LIMIT + 10, "Sekr1t-password-across-the-boundary")
    assert data.index(b"Sekr1t") < TEXT_LIMIT < len(data)
    (project / ".env").write_bytes(data)
    before = tree_snapshot(project)
    run = cli(*INIT)
    assert run.code == 2, run.all
    assert ".env is larger than 1 MiB" in run.err and "Traceback" not in run.all
    assert tree_snapshot(project) == before
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and ".env is larger than 1 MiB" in check.out
    reset = cli("reset")
    assert reset.code == 1 and ".env is larger than 1 MiB" in reset.out, reset.all
    assert (project / ".env").read_bytes() == data


def test_an_env_at_the_limit_is_read_to_its_last_byte(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env={"POSTGRES_PASSWORD": "the-whole-password"}).code == 0
    written = (project / ".env").read_bytes()
    padding = b"# " + b"x" * (TEXT_LIMIT - len(written) - 3) + b"\n"
    (project / ".env").write_bytes(padding + written)  # the password is in the last bytes
    assert (project / ".env").stat().st_size == TEXT_LIMIT
    before = tree_snapshot(project)
    assert cli(*INIT).code == 0
    assert cli("check", "--skip-db-check").code == 0
    assert tree_snapshot(project) == before


def test_init_never_grows_an_env_past_the_limit(cli: Cli, project: Path) -> None:
    (project / ".env").write_bytes(env_of_size(TEXT_LIMIT - 10, "pw-near-the-limit"))
    before = tree_snapshot(project)
    run = cli(*INIT)  # it would append DATABASE_TYPE, POSTGRES_HOST, ...
    assert run.code == 2 and "larger than 1 MiB" in run.err, run.all
    assert tree_snapshot(project) == before
