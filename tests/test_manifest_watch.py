"""get_port sees every edit on the very next call, with the inotify watch and without it.

Each behaviour runs twice: "watch" (Linux: after WATCH_AFTER lookups the manifest is watched and a
lookup is an epoll) and "stat" (REC_MANIFEST_WATCH=0: a stat per lookup, as on macOS). Edits are
made the ways users and tools make them: in place, by rename, through a hard link, from another
process, by moving folders, from another thread, and around a fork.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recio_setup import manifest_cache, manifest_watch
from recio_setup.manifest_cache import clear_cache, lookup_port
from recio_setup.manifest_watch import WATCH_AFTER, status
from recio_setup.ports import ManifestError, ManifestMissing
from recio_setup.watch_eligibility import WATCH_ENV, filesystem_type, refusal
from tests.conftest import REPO

TEMPLATE = REPO / "templates/MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
LINUX = sys.platform.startswith("linux")


def manifest_text(main_app: int) -> str:
    document = json.loads(TEMPLATE.read_text())
    document["core_services"]["main_app"]["port"] = main_app
    return json.dumps(document)  # 3000..3999 all give the same length


@pytest.fixture(params=["watch", "stat"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "stat":
        monkeypatch.setenv(WATCH_ENV, "0")
    elif not LINUX:
        pytest.skip("inotify is Linux-only; other systems keep the stat")
    clear_cache()
    yield request.param
    clear_cache()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path.resolve() / "project" / MANIFEST_REL
    path.parent.mkdir(parents=True)
    path.write_text(manifest_text(3000))
    return path


def port(path: Path) -> int:
    return lookup_port(str(path), "main_app")


def warm(path: Path, mode: str, expected: int = 3000) -> None:
    """Look up often enough that the watch is set up (in "watch" mode), and check that it is."""
    for _ in range(WATCH_AFTER + 1):
        assert port(path) == expected
    wanted = "watched" if mode == "watch" else f"{WATCH_ENV} turns it off"
    assert status(str(path)) == wanted


def test_edit_in_place_with_the_mtime_put_back(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    before = manifest.stat()
    manifest.write_text(manifest_text(3001))  # same size
    os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert manifest.stat().st_size == before.st_size
    assert port(manifest) == 3001


def test_replace_by_rename_with_same_size_and_mtime(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    before = manifest.stat()
    replacement = manifest.with_name("incoming.json")
    replacement.write_text(manifest_text(3002))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, manifest)
    assert port(manifest) == 3002
    # The new file is watched too: a second edit is seen as well.
    warm(manifest, mode, expected=3002)
    manifest.write_text(manifest_text(3003))
    assert port(manifest) == 3003


def test_edit_through_a_hard_link_in_another_folder(manifest: Path, mode: str) -> None:
    other = manifest.parents[3] / "elsewhere.json"
    os.link(manifest, other)
    warm(manifest, mode)
    with other.open("r+") as handle:  # in place, so both names keep the same inode
        handle.write(manifest_text(3004))
    assert port(manifest) == 3004


def test_edit_by_another_process(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    code = f"import pathlib; pathlib.Path({str(manifest)!r}).write_text({manifest_text(3005)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert port(manifest) == 3005


def test_goes_bad_then_missing_then_back(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    manifest.write_text('{"core_services": {"main_app": {"port": "3000"}}}')
    with pytest.raises(ManifestError, match=r"core_services\.main_app\.port"):
        port(manifest)
    manifest.unlink()
    with pytest.raises(ManifestMissing):
        port(manifest)
    manifest.write_text(manifest_text(3006))
    assert port(manifest) == 3006
    warm(manifest, mode, expected=3006)  # and watched again
    manifest.write_text(manifest_text(3007))
    assert port(manifest) == 3007


def test_a_folder_above_is_moved_away_and_back(manifest: Path, mode: str) -> None:
    project = manifest.parents[3]
    warm(manifest, mode)
    moved = project.with_name("moved")
    project.rename(moved)
    with pytest.raises(ManifestMissing):
        port(manifest)
    (moved / MANIFEST_REL).write_text(manifest_text(3008))
    moved.rename(project)
    assert port(manifest) == 3008


def test_the_config_folder_is_replaced(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    config = manifest.parent
    config.rename(config.with_name("config.old"))
    config.mkdir()
    manifest.write_text(manifest_text(3009))
    assert port(manifest) == 3009
    warm(manifest, mode, expected=3009)
    manifest.write_text(manifest_text(3010))
    assert port(manifest) == 3010


def test_manifest_replaced_by_a_symlink_is_followed_by_stat(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    target = manifest.parents[3] / "shared.json"
    target.write_text(manifest_text(3011))
    link = manifest.with_name("link.tmp")
    link.symlink_to(target)
    os.replace(link, manifest)
    assert port(manifest) == 3011
    for _ in range(WATCH_AFTER + 1):
        assert port(manifest) == 3011
    if mode == "watch":
        assert status(str(manifest)).startswith("the manifest is a symlink")
    target.write_text(manifest_text(3012))  # no watched folder hears this: the stat must
    assert port(manifest) == 3012


def test_a_symlink_in_the_path_is_never_watched(tmp_path: Path, mode: str) -> None:
    real = tmp_path.resolve() / "real"
    (real / MANIFEST_REL).parent.mkdir(parents=True)
    (real / MANIFEST_REL).write_text(manifest_text(3000))
    (tmp_path / "via").symlink_to(real)
    through_link = tmp_path.resolve() / "via" / MANIFEST_REL
    for _ in range(WATCH_AFTER + 1):
        assert port(through_link) == 3000
    if mode == "watch":
        assert status(str(through_link)) == "a symlink in the path"
    (real / MANIFEST_REL).write_text(manifest_text(3013))
    assert port(through_link) == 3013


def test_many_threads_never_see_an_edit_late(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    published = [3000]  # the last port whose write has completed
    failures: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            floor = published[0]
            try:
                seen = port(manifest)
            except Exception as exc:  # reported by the test, not lost in a thread
                failures.append(repr(exc))
                return
            if seen < floor:
                failures.append(f"saw {seen} after {floor} was written")
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        incoming = manifest.with_name("incoming.json")
        for value in range(3001, 3061):  # as a deploy would: never a half-written file
            incoming.write_text(manifest_text(value))
            os.replace(incoming, manifest)
            published[0] = value
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    assert port(manifest) == 3060


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_steal_the_parents_events(manifest: Path, mode: str) -> None:
    warm(manifest, mode)
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait for the edit, look up first, report
        try:
            os.read(to_child_r, 1)
            os.write(to_parent_w, str(port(manifest)).encode())
        finally:
            os._exit(0)
    manifest.write_text(manifest_text(3014))
    os.write(to_child_w, b"x")
    child_saw = int(os.read(to_parent_r, 16))
    os.waitpid(pid, 0)
    for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
        os.close(fd)
    assert child_saw == 3014
    assert port(manifest) == 3014  # the parent's event was not read by the child


# -- where a watch is set up --------------------------------------------------------------------
MOUNTINFO = """\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /home/dev/nfs\\040share rw,relatime shared:9 - nfs4 server:/export rw
41 22 0:36 / /mnt/fuse rw - fuse.sshfs host: rw
42 22 0:37 / /tmp rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/home/dev/rec/x.json", "ext4"),
        ("/home/dev/nfs share/rec/x.json", "nfs4"),
        ("/home/dev/nfs sharer/x.json", "ext4"),  # a longer name is not inside the mount
        ("/mnt/fuse/x.json", "fuse.sshfs"),
        ("/tmp/x.json", "tmpfs"),
    ],
)
def test_filesystem_type_takes_the_nearest_mount(path: str, kind: str) -> None:
    assert filesystem_type(path, MOUNTINFO) == kind


def test_refusals_name_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WATCH_ENV, raising=False)
    assert refusal("/tmp/x.json", platform="darwin", mountinfo=MOUNTINFO) == "not Linux"
    assert "chdir" in refusal("relative/x.json", platform="linux", mountinfo=MOUNTINFO)
    remote = refusal("/home/dev/nfs share/x.json", platform="linux", mountinfo=MOUNTINFO)
    assert remote.startswith("filesystem nfs4")
    assert "fuse.sshfs" in refusal("/mnt/fuse/x.json", platform="linux", mountinfo=MOUNTINFO)
    assert refusal("/tmp/x.json", platform="linux", mountinfo=MOUNTINFO) == ""
    monkeypatch.setenv(WATCH_ENV, "off")
    turned_off = refusal("/tmp/x.json", platform="linux", mountinfo=MOUNTINFO)
    assert turned_off == f"{WATCH_ENV} turns it off"


def test_a_one_shot_lookup_sets_up_no_watch(manifest: Path) -> None:
    code = (
        "import sys\n"
        "from recio_setup import get_port\n"
        f"assert get_port('main_app', root={str(manifest.parents[3])!r}) == 3000\n"
        "from recio_setup import manifest_watch\n"
        "assert manifest_watch.poll is None, 'a watch for one lookup'\n"
        "assert 'ctypes' not in sys.modules, 'ctypes loaded for one lookup'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_a_watched_lookup_makes_no_stat(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    warm(manifest, "watch")

    def no_stat(*args: object, **kwargs: object) -> None:
        raise AssertionError("stat on a watched lookup")

    monkeypatch.setattr(os, "stat", no_stat)
    assert port(manifest) == 3000
    monkeypatch.undo()
    manifest.write_text(manifest_text(3015))
    assert port(manifest) == 3015
    assert manifest_watch.poll is not None


# -- found by review: each of these gave a stale port or a hang before --------------------------
ROOT_ON_LINUX = LINUX and os.geteuid() == 0


@contextmanager
def mounted(*args: str) -> Iterator[None]:
    target = args[-1]
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", target], check=True)


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to mount ramfs")
def test_a_same_size_edit_in_the_same_timestamp_tick_is_seen(tmp_path: Path, mode: str) -> None:
    # ramfs keeps coarse timestamps: an edit right after a read keeps the whole stat stamp.
    mount_point = tmp_path / "ramfs"
    mount_point.mkdir()
    with mounted("-t", "ramfs", "ramfs", str(mount_point)):
        manifest = mount_point / "p" / MANIFEST_REL
        manifest.parent.mkdir(parents=True)
        manifest.write_text(manifest_text(3000))
        warm(manifest, mode)
        stale = []
        for value in range(3001, 3201):
            port(manifest)  # read, then edit within the same tick
            with manifest.open("r+") as handle:
                handle.write(manifest_text(value))
            if port(manifest) != value:
                stale.append(value)
        assert not stale, f"{len(stale)} of 200 edits unseen"


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to bind-mount")
def test_a_bind_mount_over_the_config_folder_is_seen(manifest: Path, mode: str) -> None:
    other = manifest.parents[3] / "other-config"
    other.mkdir()
    (other / manifest.name).write_text(manifest_text(3999))
    warm(manifest, mode)
    with mounted("--bind", str(other), str(manifest.parent)):
        assert port(manifest) == 3999
    assert port(manifest) == 3000


def test_an_edit_through_a_surviving_hard_link_after_a_switch(manifest: Path, mode: str) -> None:
    # A release farm: the manifest is a hard link into releases/N, switched like `ln -f`.
    releases = manifest.parents[3] / "releases"
    for number in (1, 2):
        (releases / str(number)).mkdir(parents=True)
        (releases / str(number) / "manifest.json").write_text(manifest_text(3000 + number))
    os.link(releases / "1" / "manifest.json", manifest.with_name("switch.tmp"))
    os.replace(manifest.with_name("switch.tmp"), manifest)
    warm(manifest, mode, expected=3001)
    os.link(releases / "2" / "manifest.json", manifest.with_name("switch.tmp"))
    os.replace(manifest.with_name("switch.tmp"), manifest)
    assert port(manifest) == 3002
    with (releases / "2" / "manifest.json").open("r+") as handle:  # a hot fix, in place
        handle.write(manifest_text(3003))
    assert port(manifest) == 3003


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_an_exception_inside_a_lookup_loses_no_edit(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal handler that raises (a timeout, Ctrl-C) may interrupt a lookup anywhere.
    clear_cache()
    warm(manifest, "watch")
    manifest.write_text(manifest_text(3004))
    queue = manifest_watch._queue
    assert queue is not None
    real_read = queue.read

    def interrupted() -> None:
        real_read()  # the events are taken ...
        raise KeyboardInterrupt  # ... and the lookup dies before using them

    monkeypatch.setattr(queue, "read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        port(manifest)
    monkeypatch.undo()
    assert port(manifest) == 3004


def test_a_signal_handler_may_look_up_during_a_lookup(manifest: Path) -> None:
    # The handler runs on the thread that is inside the slow path: a plain lock hung here.
    code = f"""
import os, signal, sys, time
from recio_setup.manifest_cache import lookup_port
path, text = {str(manifest)!r}, {manifest_text(3000)!r}
seen = []
signal.signal(signal.SIGALRM, lambda *_: seen.append(lookup_port(path, "main_app")))
signal.setitimer(signal.ITIMER_REAL, 0.003, 0.003)
end = time.monotonic() + 1.5
while time.monotonic() < end:
    with open(path + ".new", "w") as handle:
        handle.write(text)
    os.replace(path + ".new", path)  # an event, so the next lookup takes the slow path
    lookup_port(path, "main_app")
signal.setitimer(signal.ITIMER_REAL, 0)
print(len(seen))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_descriptors_closed_under_the_library_are_noticed(manifest: Path) -> None:
    # As a daemonising library does: close every descriptor, then open a log (reusing them).
    clear_cache()
    warm(manifest, "watch")
    queue = manifest_watch._queue
    assert queue is not None
    for fd in (queue.fd, queue._epoll.fileno(), queue.mounts, queue.canary, queue._canary_read):
        os.close(fd)
    log = os.open(manifest.parents[3] / "service.log", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        manifest.write_text(manifest_text(3005))
        assert port(manifest) == 3005
        assert os.fstat(log).st_size == 0  # nothing was read from or written to the log
        warm(manifest, "watch", expected=3005)  # and a new queue watches it
        manifest.write_text(manifest_text(3006))
        assert port(manifest) == 3006
    finally:
        os.close(log)


def test_a_path_with_dot_dot_is_not_watched(tmp_path: Path, mode: str) -> None:
    real = tmp_path.resolve() / "p"
    (real / MANIFEST_REL).parent.mkdir(parents=True)
    (real / MANIFEST_REL).write_text(manifest_text(3000))
    (tmp_path / "x").mkdir()
    dotted = f"{tmp_path.resolve()}/x/../p/{MANIFEST_REL}"
    for _ in range(WATCH_AFTER + 1):
        assert lookup_port(dotted, "main_app") == 3000
    if mode == "watch":
        assert status(dotted).startswith("the path is not normalised")
    (real / MANIFEST_REL).write_text(manifest_text(3007))
    assert lookup_port(dotted, "main_app") == 3007


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_a_lookup_nested_in_a_lookup_does_not_leave_the_outer_copy_trusted(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal handler looks up while the outer lookup has read older bytes: the outer copy must
    # not be stored as verified over the newer news the handler took.
    clear_cache()
    warm(manifest, "watch")
    seen_by_handler: list[int] = []
    signal.signal(signal.SIGUSR1, lambda *_: seen_by_handler.append(port(manifest)))
    real_read = manifest_cache.read_manifest_bytes  # type: ignore[attr-defined]
    edits = [3102]

    def read_then_edit(path: str) -> bytes:
        data = bytes(real_read(path))
        if edits:  # an admin edits just after the read and signals "reload"
            manifest.write_text(manifest_text(edits.pop()))
            os.kill(os.getpid(), signal.SIGUSR1)
        return data

    monkeypatch.setattr(manifest_cache, "read_manifest_bytes", read_then_edit)
    manifest.write_text(manifest_text(3101))
    try:
        port(manifest)
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    assert seen_by_handler == [3102]
    assert [port(manifest) for _ in range(3)] == [3102, 3102, 3102]


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_a_folder_of_the_path_turned_into_a_symlink_is_refused(tmp_path: Path) -> None:
    clear_cache()
    root = tmp_path.resolve()
    (root / "releases" / "1").mkdir(parents=True)
    (root / "releases" / "2").mkdir(parents=True)
    rec = root / "rec"
    manifest = rec / MANIFEST_REL
    manifest.parent.mkdir(parents=True)
    manifest.write_text(manifest_text(3000))
    warm(manifest, "watch")
    for number in (1, 2):
        release = root / "releases" / str(number) / MANIFEST_REL
        release.parent.mkdir(parents=True)
        release.write_text(manifest_text(3000 + number))
    rec.rename(root / "rec.old")
    rec.symlink_to(root / "releases" / "1")
    assert port(manifest) == 3001
    assert status(str(manifest)) == "a symlink in the path"
    link = root / "rec.new"
    link.symlink_to(root / "releases" / "2")
    os.replace(link, rec)  # ln -sfn: a rename in the project's parent folder
    assert port(manifest) == 3002


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to mount tmpfs")
def test_a_filesystem_mounted_over_a_folder_is_watched_afresh(manifest: Path) -> None:
    clear_cache()
    warm(manifest, "watch")
    backend = manifest.parents[2]
    with mounted("-t", "tmpfs", "tmpfs", str(backend)):
        with pytest.raises(ManifestMissing):
            port(manifest)
        manifest.parent.mkdir(parents=True)
        manifest.write_text(manifest_text(3103))
        warm(manifest, "watch", expected=3103)
        manifest.write_text(manifest_text(3104))
        assert port(manifest) == 3104


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_writes_to_other_files_beside_the_manifest_cost_no_re_read(
    manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    warm(manifest, "watch")
    reads: list[str] = []
    real_read = manifest_cache.read_manifest_bytes  # type: ignore[attr-defined]

    def counted(path: str) -> bytes:
        reads.append(path)
        return bytes(real_read(path))

    monkeypatch.setattr(manifest_cache, "read_manifest_bytes", counted)
    sibling = manifest.with_name("config.json")
    for number in range(50):
        sibling.write_text(f'{{"n": {number}}}')
        (manifest.parents[3] / ".env").touch()
        assert port(manifest) == 3000
    assert reads == []
    manifest.write_text(manifest_text(3105))
    assert port(manifest) == 3105 and len(reads) == 1


@pytest.mark.skipif(not LINUX, reason="inotify is Linux-only")
def test_watches_do_not_pile_up_when_deploys_keep_old_folders(manifest: Path) -> None:
    clear_cache()
    warm(manifest, "watch")
    queue = manifest_watch._queue
    assert queue is not None

    def watches() -> int:
        info = Path(f"/proc/self/fdinfo/{queue.fd}").read_text()
        return sum(line.startswith("inotify") for line in info.splitlines())

    start = watches()
    kept = manifest.parents[3] / "kept"
    kept.mkdir()
    for number in range(40):
        manifest.parent.rename(kept / f"config.{number}")
        manifest.parent.mkdir()
        manifest.write_text(manifest_text(3000 + number))
        assert port(manifest) == 3000 + number
    assert watches() <= start + 2
