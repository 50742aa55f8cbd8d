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

from tests.conftest import Cli
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
    env = {**os.environ, "REC_PROJECT_ROOT": str(project), "REC_MANIFEST_WATCH": "0"}
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
