"""bootstrap.py: old-Python syntax, venv staleness, and a real fresh clone."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", REPO / "bootstrap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launcher_parses_as_old_python() -> None:
    source = (REPO / "bootstrap.py").read_text()
    # Python 3.4's grammar: no f-strings, no annotations, no walrus.
    ast.parse(source, feature_version=(3, 4))


def test_old_python_gets_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = load_bootstrap()
    monkeypatch.setattr(bootstrap.sys, "version_info", (3, 8, 10, "final", 0))
    with pytest.raises(SystemExit) as exit_info:
        bootstrap.check_python_version()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs Python 3.10" in err and "3.8" in err and err.count("\n") == 1


def test_launcher_flags_are_taken_out(tmp_path: Path) -> None:
    bootstrap = load_bootstrap()
    use_venv, venv_dir, rest = bootstrap.split_launcher_args(
        ["--venv", str(tmp_path / "v"), "check", "--json"]
    )
    assert use_venv and venv_dir == str(tmp_path / "v") and rest == ["check", "--json"]
    assert bootstrap.split_launcher_args(["--no-venv", "ports"])[0] is False


def test_venv_problems_are_named(tmp_path: Path) -> None:
    bootstrap = load_bootstrap()
    venv = tmp_path / "venv"
    assert bootstrap.venv_problem(str(venv), ()) == "missing"
    (venv / "bin").mkdir(parents=True)
    assert "python is gone" in bootstrap.venv_problem(str(venv), ())
    python = venv / "bin" / "python"
    python.symlink_to(sys.executable)
    assert "did not finish" in bootstrap.venv_problem(str(venv), ())
    bootstrap.write_stamp(str(venv), ())
    assert "not installed" in bootstrap.venv_problem(str(venv), ())
    site = venv / "lib" / "python3.x" / "site-packages" / "recio_setup-0.1.0.dist-info"
    site.mkdir(parents=True)
    assert bootstrap.venv_problem(str(venv), ()) is None
    assert "extras" in bootstrap.venv_problem(str(venv), ("test",))
    stamp_file = venv / bootstrap.STAMP_NAME
    text = stamp_file.read_text()
    # Touched but identical content: still current (size and mtime differ, the hash matches).
    stamp_file.write_text(text.replace("pyproject_mtime_ns=", "pyproject_mtime_ns=1"))
    assert bootstrap.venv_problem(str(venv), ()) is None
    changed = "\n".join(
        "pyproject_sha256=old" if line.startswith("pyproject_sha256=") else line
        for line in stamp_file.read_text().splitlines()
    )
    stamp_file.write_text(changed + "\n")
    assert "pyproject.toml changed" in bootstrap.venv_problem(str(venv), ())


def test_refuses_to_replace_a_folder_that_is_not_a_venv(tmp_path: Path) -> None:
    bootstrap = load_bootstrap()
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(bootstrap.LauncherError):
        bootstrap.remove_old_venv(str(precious))
    assert (precious / "keep.txt").read_text() == "mine"


def fresh_clone(dest: Path) -> Path:
    """The checkout's tracked and new files, as a fresh clone of this working state would have."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in listed:
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


@pytest.mark.slow
def test_fresh_clone_builds_venv_then_starts_fast(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.pop("PYTHONPATH", None)  # pip in the new venv must not load the test guard's hook
    env.update({"HOME": str(tmp_path / "home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    python = shutil.which("python3") or sys.executable
    first = subprocess.run(
        [python, "bootstrap.py", "--help"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    assert "usage: python3 bootstrap.py" in first.stdout  # help names the command as launched
    assert (clone / "venv" / "bin" / "python").exists()
    log = clone / "recio-setup-install.log"
    before = log.stat().st_mtime_ns

    started = time.monotonic()
    second = subprocess.run(
        [python, "bootstrap.py", "--version"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0 and second.stdout.startswith("recio-setup ")
    assert "setting up" not in second.stderr
    assert log.stat().st_mtime_ns == before, "a current venv must not call pip again"
    assert time.monotonic() - started < 30  # sanity only; the real figure is in benchmarks/

    # The whole set-up from the fresh clone, supervisord.conf included, generated and portable.
    setup = subprocess.run(
        [python, "bootstrap.py", "--non-interactive", "--skip-db-check"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    conf = (clone / "backend" / "supervisord.conf").read_text()
    assert conf.count("[program:") == 10
    assert str(clone) not in conf and "/tmp" not in conf and "password" not in conf.lower()

    # A broken venv (its python gone) is detected, rebuilt and reported.
    (clone / "venv" / "bin" / "python").unlink()
    third = subprocess.run(
        [python, "bootstrap.py", "--version"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert third.returncode == 0, third.stderr
    assert "python is gone" in third.stderr and third.stdout.startswith("recio-setup ")


def test_no_venv_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    # The system interpreter, isolated from site-packages (-S): nothing of ours is importable.
    done = subprocess.run(
        [sys.executable, "-S", str(REPO / "bootstrap.py"), "--no-venv", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    assert "--no-venv" in done.stderr and "Traceback" not in done.stderr
    assert "recio_setup" in done.stderr or "rich" in done.stderr


def test_the_launcher_sets_up_its_own_folder_whatever_rec_project_root_says(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "bootstrap.py", checkout / "bootstrap.py")
    other = tmp_path / "other"
    other.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "REC_PROJECT_ROOT": str(other),
        "POSTGRES_PASSWORD": "pw",
    }
    done = subprocess.run(
        [sys.executable, "bootstrap.py", "--no-venv", "--non-interactive", "--skip-db-check"],
        capture_output=True,
        text=True,
        cwd=checkout,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (checkout / ".env").is_file()
    assert list(other.iterdir()) == []
    assert f"REC_PROJECT_ROOT={other} is not used" in done.stderr
    assert f"--root {other}" in done.stderr
