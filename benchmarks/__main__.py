"""`venv/bin/python -m benchmarks`: print every performance figure beside its reference.

Each module in benchmarks/ named bench_*.py has `run() -> list[Figure]`. Nothing here fails a
build: a slow machine gives a worse ratio, and the target is printed next to it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from benchmarks.common import Figure


def main(selected: list[str]) -> int:
    import benchmarks

    figures: list[Figure] = []
    for module in pkgutil.iter_modules(benchmarks.__path__):
        if not module.name.startswith("bench_"):
            continue
        if selected and module.name not in selected:
            continue
        print(f"running {module.name} ...", file=sys.stderr, flush=True)
        figures += importlib.import_module(f"benchmarks.{module.name}").run()
    width = max((len(f.name) for f in figures), default=10)
    print(
        f"{'figure'.ljust(width)}  {'measured':>12}  {'reference':>12}  {'ratio':>8}  target  met"
    )
    for figure in figures:
        print(figure.line(width))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
