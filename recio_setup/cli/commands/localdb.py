"""The project-local PostgreSQL as `init --local-db` and `db` use it: its folder (made through
the tree's safe operations), its port (clear of the manifest's), creating and starting it under
the run lock, and the role and database the services use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recio_setup.db.cluster import LISTEN_ADDRESS, SUPERUSER, LocalCluster, PortTaken
from recio_setup.errors import StepFailed, UsageError
from recio_setup.result import ActionRecord, Check, Value
from recio_setup.runtime.paths import DATA_REL, LOCAL_DB_REL
from recio_setup.tree.fsentry import UnsafePath
from recio_setup.tree.fsops import Tree

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.db.cluster import Status
    from recio_setup.db.server import ServerBinaries
    from recio_setup.db.target import DbSettings

SOURCE = "flag --local-db"
FOLDER_MODE = 0o700


def cluster_of(ctx: Context) -> LocalCluster:
    return LocalCluster(ctx.paths.root / LOCAL_DB_REL)


def reserved_ports(tree: Tree, ctx: Context) -> set[int]:
    """The services' ports and the avoided ones, from the manifest (the template's when there
    is none yet: init installs it)."""
    from recio_setup.tree.supervisor import manifest_for

    manifest = manifest_for(tree, ctx.paths, template_if_missing=True)
    if isinstance(manifest, str):
        manifest = manifest_for(tree, ctx.paths, template_if_missing=True, template=True)
    assert not isinstance(manifest, str)  # noqa: S101 (the packaged template is valid)
    return set(manifest.ports().values()) | set(manifest.avoid)


def planned_port(ctx: Context, tree: Tree) -> int:
    """The cluster's port: the one it has, else 5432 or the next free port not reserved."""
    from recio_setup.db.cluster import choose_port

    return cluster_of(ctx).configured_port() or choose_port(reserved_ports(tree, ctx))


def real_folder(tree: Tree, *, repair: bool = True) -> bool:
    """Whether backend/data/postgres/ is there: a real folder (never a symlink to another
    project's cluster, nor through one), put back to 0700 if its mode was changed (`repair`)."""
    found = tree.inspect(LOCAL_DB_REL)
    if found.kind == "missing":
        return False
    if found.kind != "dir":
        raise UnsafePath(
            f"{LOCAL_DB_REL} is not a real folder ({found.describe()}); refusing to use a "
            "local PostgreSQL through it",
            hint="move it away, then run the command again",
        )
    if repair and (found.mode or 0) & 0o7777 != FOLDER_MODE:
        tree.chmod(LOCAL_DB_REL, FOLDER_MODE, found)
    return True


def ensure_running(ctx: Context, tree: Tree, port: int) -> list[ActionRecord]:
    """Create the cluster on `port` when there is none, start it when it is stopped. The caller
    holds the run lock."""
    from recio_setup.db.server import find_binaries

    binaries = find_binaries()
    cluster = cluster_of(ctx)
    actions = []
    if not (real_folder(tree) and cluster.exists()):
        cluster.preflight(binaries)
        tree.ensure_dirs(DATA_REL, 0o755)
        if not real_folder(tree):
            tree.make_dir(LOCAL_DB_REL, FOLDER_MODE)
        with ctx.output.progress(f"creating a project-local PostgreSQL in {LOCAL_DB_REL}"):
            cluster.initialise(binaries, port)
        actions.append(
            ActionRecord(
                "create", LOCAL_DB_REL, f"local PostgreSQL on {LISTEN_ADDRESS}:{port}", "done"
            )
        )
    if cluster.status().state != "running":
        start(ctx, cluster, binaries)
        actions.append(ActionRecord("start", LOCAL_DB_REL, "local PostgreSQL", "done"))
    return actions


def start(ctx: Context, cluster: LocalCluster, binaries: ServerBinaries) -> Status:
    """Start it; a taken port is said with what holds it."""
    from recio_setup.cli.listening import port_owners

    try:
        with ctx.output.progress("starting the project-local PostgreSQL"):
            return cluster.start(binaries)
    except PortTaken as taken:
        owner = port_owners([taken.port])[taken.port]
        raise StepFailed(
            f"{taken.message} ({owner.text()})",
            hint=taken.hint,
            cause=taken.cause,
        ) from None


def planned_actions(ctx: Context, port: int, who: str) -> list[ActionRecord]:
    """What ensure_running and a new cluster's provisioning would do, for --dry-run (`who`:
    USER@DATABASE)."""
    status = cluster_of(ctx).status()
    actions = []
    if status.state == "absent":
        actions.append(
            ActionRecord(
                "create", LOCAL_DB_REL, f"local PostgreSQL on {LISTEN_ADDRESS}:{port}", "planned"
            )
        )
        actions.append(ActionRecord("provision", who, "role and database: to create", "planned"))
    if status.state != "running":
        actions.append(ActionRecord("start", LOCAL_DB_REL, "local PostgreSQL", "planned"))
    return actions


def provision_local(ctx: Context, settings: DbSettings) -> list[Check]:
    """The role and database in the local cluster, as its superuser: nothing when the
    services' login works already; the role's password set to .env's when it does not."""
    from recio_setup.db.probe import probe
    from recio_setup.db.provision import AdminSettings, provision

    outcome = probe(settings)
    if outcome.ok:
        return []
    cluster = cluster_of(ctx)
    password = cluster.superuser_password()
    ctx.output.add_secret(password)
    admin = AdminSettings(
        url=f"postgresql://{SUPERUSER}@{settings.host}:{settings.port}/postgres", password=password
    )
    with ctx.output.progress("creating the database role and database"):
        report = provision(
            admin,
            settings,
            reset_password=outcome.cause == "auth_failed" and settings.user != SUPERUSER,
            timeout=settings.connect_timeout,
        )
    return report.to_checks()


def points_at_local(ctx: Context, host: str, port: str | int) -> bool:
    """Whether these settings name the project's own cluster."""
    cluster = cluster_of(ctx)
    loopback = host in (LISTEN_ADDRESS, "localhost")
    return loopback and cluster.exists() and cluster.configured_port() == int(port)


def set_local_values(ctx: Context, values: dict[str, Value]) -> None:
    """POSTGRES_HOST and POSTGRES_PORT of the project's own cluster (its port once it exists);
    the environment may not say otherwise, since `check` would test what it says."""
    with Tree(ctx.paths.root) as tree:
        port = planned_port(ctx, tree)
    local = {"POSTGRES_HOST": LISTEN_ADDRESS, "POSTGRES_PORT": str(port)}
    for key, wanted in local.items():
        given = values.get(key)
        if given and given.source.startswith("environment") and given.value != wanted:
            loopback = key == "POSTGRES_HOST" and given.value == "localhost"
            if not loopback:
                where = given.source.removeprefix("environment ")
                raise UsageError(
                    f"{where} in the environment says {key} {given.value}, and --local-db "
                    f"runs the server at {wanted}",
                    hint=f"unset {where}, or drop --local-db to use that server",
                )
        values[key] = Value(key, wanted, SOURCE)
    if values["POSTGRES_USER"].value == SUPERUSER:
        raise UsageError(
            f"POSTGRES_USER {SUPERUSER} is the local cluster's superuser; the services get a "
            "role of their own",
            hint="choose another name (the default is rec_io_user): --postgres-user NAME",
        )
