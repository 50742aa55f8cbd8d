"""The test guard is in pytest itself too, where most CLI tests run in-process: writes to the
real home folder and to the checkout's own data refused, and no kill injection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REAL_HOME, REPO


@pytest.mark.parametrize(
    "place",
    [REAL_HOME, REPO / "backend" / "data", REPO / "logs"],
    ids=["home", "data", "logs"],
)
def test_a_write_to_a_forbidden_place_is_refused_in_pytest(place: Path) -> None:
    # A folder that does not exist below it: without the guard this would only fail to find it.
    probe = place / "recio-guard-probe-missing" / "probe"
    with pytest.raises(PermissionError, match="test guard"):
        os.mkdir(probe)
    with pytest.raises(PermissionError, match="test guard"):
        probe.open("w")


def test_pytest_has_the_guard_but_no_kill_injection() -> None:
    assert getattr(sys, "_recio_test_guard", False)
    assert not getattr(sys, "_recio_test_killer", False)
