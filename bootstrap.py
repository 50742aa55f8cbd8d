#!/usr/bin/env python3
"""Launcher for recio-setup: `python bootstrap.py [options] [command ...]`.

Standard library only, and written in syntax that old Pythons still parse (no f-strings, no
annotations), so that a Python below 3.10 prints a one-line error instead of a SyntaxError.

It makes ./venv (or --venv DIR), installs this project into it, and re-executes
`venv/bin/python -m recio_setup` with the remaining arguments. A venv whose stamp matches the
checkout is reused without calling pip, so later runs start in milliseconds.
"""

import os
import sys
import time

# shutil, subprocess and threading are imported only when a venv must be built: the common case
# (a current venv) should cost as little as possible before the exec.

MIN_PYTHON = (3, 10)
PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
# key=value lines: reading it needs neither json nor re, which a no-op start would pay for.
STAMP_NAME = ".recio-setup-stamp"
OLD_STAMP_NAME = ".recio-setup-stamp.json"
PYPROJECT = os.path.join(PROJECT_DIR, "pyproject.toml")
# Bumped when the way the launcher installs changes, so existing venvs are updated in place.
INSTALL_SCHEME = 2
# A plain path entry instead of setuptools' import-hook finder, which costs ~20 ms per start.
EDITABLE = ["--config-settings", "editable_mode=compat", "-e"]
INSTALL_LOG_NAME = "recio-setup-install.log"
# The package defines it in recio_setup/runtime/paths.py; importing that here would cost the
# launcher dataclasses and pathlib before the exec, so tests/test_layout.py keeps the two equal.
LAUNCHER_ROOT_ENV = "RECIO_SETUP_LAUNCHER_ROOT"

LAUNCHER_HELP = """\
Launcher options (handled by bootstrap.py before the recio-setup command runs):
  --venv DIR    build and use the virtual environment in DIR (default: ./venv)
  --no-venv     use this interpreter as it is (the package must already be installed)
"""


class LauncherError(Exception):
    """A problem the user can fix; printed as one paragraph, exit code attached."""

    def __init__(self, message, code=1):
        Exception.__init__(self, message)
        self.code = code


def say(message):
    sys.stderr.write("bootstrap: " + message + "\n")
    sys.stderr.flush()


def check_python_version():
    if sys.version_info[:2] < MIN_PYTHON:
        sys.stderr.write(
            "bootstrap: recio-setup needs Python %d.%d or newer, but this is %d.%d (%s). "
            "Run it with a newer python, e.g. `python3.11 bootstrap.py`.\n"
            % (MIN_PYTHON + tuple(sys.version_info[:2]) + (sys.executable,))
        )
        sys.exit(2)


def split_launcher_args(argv):
    """Take --venv/--no-venv out of argv; everything else goes to recio_setup untouched."""
    venv_dir = os.path.join(PROJECT_DIR, "venv")
    use_venv = True
    rest = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--no-venv":
            use_venv = False
        elif arg == "--venv":
            if i + 1 >= len(argv):
                raise LauncherError("--venv needs a folder, e.g. --venv .venv", code=2)
            venv_dir = os.path.abspath(argv[i + 1])
            i += 1
        elif arg.startswith("--venv="):
            venv_dir = os.path.abspath(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return use_venv, venv_dir, rest


def project_version():
    """The version in pyproject.toml, read without tomllib so that old Pythons get here."""
    with open(os.path.join(PROJECT_DIR, "pyproject.toml")) as handle:
        for line in handle:
            stripped = line.strip()
            if stripped.startswith("version") and "=" in stripped:
                return stripped.split("=", 1)[1].strip().strip("\"'")
    raise LauncherError("pyproject.toml has no version line; is this a recio-setup checkout?")


def pyproject_digest():
    import hashlib

    with open(PYPROJECT, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def pyproject_state():
    """Size and mtime: when both match the stamp, the file need not be hashed."""
    st = os.stat(PYPROJECT)
    return str(st.st_size), str(st.st_mtime_ns)


def wanted_stamp(extras):
    size, mtime = pyproject_state()
    return {
        "version": project_version(),
        "pyproject_sha256": pyproject_digest(),
        "pyproject_size": size,
        "pyproject_mtime_ns": mtime,
        "project_dir": PROJECT_DIR,
        "extras": ",".join(sorted(extras)),
        "install_scheme": str(INSTALL_SCHEME),
    }


def venv_python(venv_dir):
    return os.path.join(venv_dir, "bin", "python")


def read_stamp(venv_dir):
    try:
        with open(os.path.join(venv_dir, STAMP_NAME)) as handle:
            pairs = [line.rstrip("\n").split("=", 1) for line in handle if "=" in line]
    except OSError:
        return None
    return dict(pairs) if pairs else None


def write_stamp(venv_dir, extras):
    path = os.path.join(venv_dir, STAMP_NAME)
    with open(path + ".tmp", "w") as handle:
        for key, value in sorted(wanted_stamp(extras).items()):
            handle.write("%s=%s\n" % (key, value))
    os.replace(path + ".tmp", path)


def stamp_extras(stamp):
    return set(filter(None, (stamp or {}).get("extras", "").split(",")))


def stamp_problem(stamp, extras):
    """Why a stamped venv is out of date, or None."""
    if not set(extras) <= stamp_extras(stamp):
        return "out of date: it lacks the extras " + ", ".join(sorted(extras))
    if stamp.get("version") != project_version():
        return "out of date: the version changed"
    if stamp.get("project_dir") != PROJECT_DIR:
        return "out of date: the project folder changed"
    if stamp.get("install_scheme") != str(INSTALL_SCHEME):
        return "out of date: the launcher changed"
    size, mtime = pyproject_state()
    unchanged = (stamp.get("pyproject_size"), stamp.get("pyproject_mtime_ns")) == (size, mtime)
    if not unchanged and stamp.get("pyproject_sha256") != pyproject_digest():
        return "out of date: pyproject.toml changed"
    return None


def package_installed(venv_dir):
    """True when the venv's site-packages holds our dist-info (a half install has none)."""
    lib = os.path.join(venv_dir, "lib")
    try:
        pythons = os.listdir(lib)
    except OSError:
        return False
    for name in pythons:
        site = os.path.join(lib, name, "site-packages")
        try:
            entries = os.listdir(site)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith("recio_setup-") and entry.endswith(".dist-info"):
                return True
    return False


def venv_problem(venv_dir, extras):
    """Why the venv cannot be used as it is, or None when it is current."""
    if os.path.lexists(venv_dir) and not os.path.isdir(venv_dir):
        return "broken: not a folder"
    if not os.path.isdir(venv_dir):
        return "missing"
    python = venv_python(venv_dir)
    if not (os.path.exists(python) and os.access(python, os.X_OK)):
        return "broken: its python is gone"
    stamp = read_stamp(venv_dir)
    if stamp is None:
        if os.path.exists(os.path.join(venv_dir, OLD_STAMP_NAME)):
            return "out of date: the launcher changed"
        return "broken: a previous install did not finish"
    problem = stamp_problem(stamp, extras)
    if problem:
        return problem
    if not package_installed(venv_dir):
        return "broken: recio-setup is not installed in it"
    return None


def remove_old_venv(venv_dir):
    if not os.path.lexists(venv_dir):
        return
    import shutil

    if os.path.islink(venv_dir) or not os.path.isfile(os.path.join(venv_dir, "pyvenv.cfg")):
        raise LauncherError(
            "%s exists but is not a virtual environment; refusing to replace it. "
            "Move it away or pass --venv DIR to use another folder." % venv_dir,
            code=2,
        )
    shutil.rmtree(venv_dir)


class Ticker(object):
    """Shows elapsed time on a terminal while a slow step runs; one line otherwise."""

    def __init__(self, label):
        self.label = label
        self.done = None
        self.started = time.time()
        self.thread = None

    def __enter__(self):
        import threading

        self.done = threading.Event()
        if sys.stderr.isatty():
            self.thread = threading.Thread(target=self._run)
            self.thread.daemon = True
            self.thread.start()
        else:
            say(self.label + " ...")
        return self

    def _run(self):
        frames = "|/-\\"
        count = 0
        while not self.done.wait(0.2):
            elapsed = int(time.time() - self.started)
            sys.stderr.write("\rbootstrap: %s %s %ds " % (self.label, frames[count % 4], elapsed))
            sys.stderr.flush()
            count += 1

    def __exit__(self, *exc):
        if self.done is not None:
            self.done.set()
        if self.thread is not None:
            self.thread.join()
            sys.stderr.write("\r\033[K")
        return False


def run_logged(command, log_path, label):
    import subprocess

    with open(log_path, "ab") as log:
        log.write(("\n$ " + " ".join(command) + "\n").encode())
        log.flush()
        with Ticker(label):
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_DIR)
    if code != 0:
        raise LauncherError(
            "%s failed (exit %d). Last lines of %s:\n%s\n"
            "Check your network access to the package index, then run bootstrap.py again."
            % (label, code, log_path, tail(log_path))
        )


def tail(path, lines=15):
    try:
        with open(path, "rb") as handle:
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in data.splitlines()[-lines:])


def base_python():
    """The interpreter to make venvs with: never a venv's own python, which may be deleted."""
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        base = getattr(sys, "_base_executable", None)
        if base and os.path.exists(base) and not base.startswith(sys.prefix + os.sep):
            return base
        for name in ("python3", "python"):
            candidate = os.path.join(sys.base_prefix, "bin", name)
            if os.path.exists(candidate):
                return candidate
    return sys.executable


def needs_fresh_venv(problem):
    """A missing or broken venv is made anew; an out-of-date one is updated in place."""
    return problem == "missing" or problem.startswith("broken")


def build_venv(venv_dir, extras, reason):
    started = time.time()
    say("setting up %s (%s)" % (venv_dir, reason))
    import shutil

    fresh = needs_fresh_venv(reason)
    if not fresh:
        # Keep what an earlier run installed (e.g. the test extra) when updating in place.
        extras = set(extras) | stamp_extras(read_stamp(venv_dir))
    uv = shutil.which("uv")
    target = "." if not extras else ".[%s]" % ",".join(sorted(extras))
    log_path = os.path.join(PROJECT_DIR, INSTALL_LOG_NAME)
    if os.path.exists(log_path):
        os.remove(log_path)
    if fresh:
        remove_old_venv(venv_dir)
        if uv:
            create = [uv, "venv", "--python", base_python(), venv_dir]
        else:
            create = [base_python(), "-m", "venv", venv_dir]
        run_logged(create, log_path, "creating venv")
    stamp_path = os.path.join(venv_dir, STAMP_NAME)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    if uv:
        install = [uv, "pip", "install", "--python", venv_python(venv_dir)] + EDITABLE + [target]
    else:
        install = [venv_python(venv_dir), "-m", "pip", "install", "--disable-pip-version-check"]
        install += EDITABLE + [target]
    run_logged(install, log_path, "installing recio-setup and its dependencies")
    # The stamp is written last: a venv without it is by definition half-built.
    write_stamp(venv_dir, extras)
    if os.path.exists(os.path.join(venv_dir, OLD_STAMP_NAME)):
        os.remove(os.path.join(venv_dir, OLD_STAMP_NAME))
    say("venv ready in %.0fs (log: %s)" % (time.time() - started, log_path))


def ensure_venv(venv_dir, extras=()):
    """Return the venv's python, building or rebuilding the venv first when needed."""
    problem = venv_problem(venv_dir, extras)
    if problem is not None:
        build_venv(venv_dir, extras, problem)
    return venv_python(venv_dir)


# The package and the modules it imports at start-up (the others are checked when needed).
REQUIRED_MODULES = ("recio_setup", "dotenv", "rich", "questionary", "psycopg")


def check_installed_here():
    """With --no-venv, say plainly (no traceback) when this interpreter lacks the package."""
    import importlib.util

    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LauncherError(
            "--no-venv uses %s, which lacks %s. Install the project into it "
            "(`%s -m pip install .`) or run without --no-venv."
            % (sys.executable, ", ".join(missing), sys.executable),
            code=2,
        )


def wanted_extras(args):
    """The PostgreSQL server binaries (the localdb extra, ~42 MB) only for the commands that run
    them: `--local-db` and `db start|stop`, not a dry run. A first run without them does not
    download them."""
    if "--dry-run" in args:
        return ()
    if "--local-db" in args or ("db" in args and ("start" in args or "stop" in args)):
        return ("localdb",)
    return ()


def exec_module(python, args):
    os.environ.setdefault(LAUNCHER_ROOT_ENV, PROJECT_DIR)
    command = [python, "-m", "recio_setup"] + list(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, command)


def main(argv=None):
    check_python_version()
    try:
        use_venv, venv_dir, rest = split_launcher_args(sys.argv[1:] if argv is None else argv)
        if rest in (["-h"], ["--help"]):
            sys.stdout.write(LAUNCHER_HELP + "\n")
        if use_venv:
            python = ensure_venv(venv_dir, wanted_extras(rest))
        else:
            check_installed_here()
            python = sys.executable
        exec_module(python, rest)
    except LauncherError as error:
        say("error: " + str(error))
        return error.code
    except KeyboardInterrupt:
        say("interrupted; run it again to finish (a half-built venv is rebuilt)")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
