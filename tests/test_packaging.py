"""The wheel: templates/ at the top of the repo is the one copy, and an installed wheel carries it.

Built and installed for real (not editable) into a fresh venv outside the repo, then used on a
new project folder, as a service image that pip-installs recio-setup would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_templates_have_one_home() -> None:
    assert sorted(p.name for p in (REPO / "templates").iterdir()) == [
        "MASTER_PORT_MANIFEST.json",
        "config.json",
    ]
    assert not (REPO / "recio_setup" / "templates").exists()


@pytest.mark.slow
def test_an_installed_wheel_sets_up_a_project_from_its_own_templates(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(REPO)], check=True)
    (wheel,) = wheels.glob("recio_setup-*.whl")
    fresh = tmp_path / "fresh-venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", str(wheel)], check=True)
    project = tmp_path / "new-project"
    project.mkdir()

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "POSTGRES_PASSWORD": "pw"}
    init = ["--non-interactive", "--skip-db-check", "--host", "127.0.0.1"]
    done = subprocess.run(
        [fresh / "bin" / "recio-setup", "--root", str(project), *init],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    installed = project / "backend/core/config/MASTER_PORT_MANIFEST.json"
    assert installed.read_bytes() == (REPO / "templates/MASTER_PORT_MANIFEST.json").read_bytes()
    found = subprocess.run(
        [python, "-c", "import recio_setup; print(recio_setup.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert str(fresh) in found.stdout  # the wheel's copy, not the checkout's
