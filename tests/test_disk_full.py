"""A full disk at any point: a message naming the disk, never "unexpected error", nothing lost.

The project lives on a real tmpfs, filled until only so much is left, for every amount in turn up
to what a run writes, so the disk runs out at each step of the run in turn. Mounting needs root
(as in CI); elsewhere these tests are skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.test_reset_faults import ENV, INIT, compared, make_ready

DISK_KIB = 512
LEFT_FREE_KIB = range(0, 60, 4)  # a reset --all or an init writes about 50 KiB here


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_KIB}k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(disk: Path, left_kib: int) -> Path:
    """Fill the disk until only left_kib KiB are free."""
    filler = disk / "filler"
    size = shutil.disk_usage(disk).free - left_kib * 1024
    with filler.open("wb") as out:
        out.write(b"\0" * max(size, 0))
    return filler


def assert_reported_as_a_full_disk(run_all: str, code: int, root: Path) -> None:
    assert "unexpected error" not in run_all and "Traceback" not in run_all, run_all
    if code != 0:
        assert code == 1, run_all
        assert f"the disk holding {root} is full" in run_all or "No space left" in run_all


@pytest.mark.slow
def test_reset_all_on_a_full_disk_says_so_and_undo_restores_every_byte(
    small_disk: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template"
    make_ready(template)
    original = compared(template)
    for kib in LEFT_FREE_KIB:
        root = small_disk / "project"
        shutil.copytree(template, root, symlinks=True)
        filler = fill(small_disk, kib)

        reset = Cli(root)("reset", "--all", "--yes", env=ENV)

        assert_reported_as_a_full_disk(reset.all, reset.code, root)
        filler.unlink()
        undo = Cli(root)("reset", "--undo", "--yes", env=ENV)
        assert undo.code == 0 or "no reset to undo" in undo.all, (kib, undo.all)
        assert compared(root) == original, (kib, reset.all, undo.all)
        shutil.rmtree(root)


@pytest.mark.slow
def test_init_on_a_full_disk_says_so(small_disk: Path) -> None:
    for kib in LEFT_FREE_KIB:
        root = small_disk / "project"
        root.mkdir()
        filler = fill(small_disk, kib)

        init = Cli(root)(*INIT, env=ENV)

        assert_reported_as_a_full_disk(init.all, init.code, root)
        filler.unlink()
        shutil.rmtree(root)
