#!/usr/bin/env python3
"""The test command: `python3 tests/run.py [pytest arguments]`.

Standard library only. It builds (or reuses) ./venv with the test extra through bootstrap.py,
then runs pytest there: ruff, mypy --strict and the whole suite, against a throwaway PostgreSQL.
"""

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    spec = importlib.util.spec_from_file_location("bootstrap", os.path.join(REPO, "bootstrap.py"))
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    bootstrap.check_python_version()
    try:
        python = bootstrap.ensure_venv(os.path.join(REPO, "venv"), ("test",))
    except bootstrap.LauncherError as error:
        sys.stderr.write("tests/run.py: %s\n" % error)
        return error.code
    os.chdir(REPO)
    os.execv(python, [python, "-m", "pytest"] + sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
