"""get_port sees every edit of the manifest on the very next call, whatever the way of editing.

Edits are made the ways users and tools make them: in place, by rename, through a hard link, from
another process, by moving folders, through symlinks, from other threads, around a fork and from
a signal handler. The same-tick cases (a stamp that cannot change) are in test_file_cache.py and,
on a real coarse-timestamp filesystem, at the end of this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recio_setup.runtime.manifest_cache import cached_manifest, clear_cache
from recio_setup.runtime.ports import ManifestError, ManifestMissing
from tests.conftest import REPO, ROOT_ON_LINUX, mounted

TEMPLATE = REPO / "templates/MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
LOOKUPS = 9  # a service looks up more than once: each edit below comes after a warm cache


def manifest_text(main_app: int) -> str:
    document = json.loads(TEMPLATE.read_text())
    document["core_services"]["main_app"]["port"] = main_app
    return json.dumps(document)  # 3000..3999 all give the same length


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path.resolve() / "project" / MANIFEST_REL
    path.parent.mkdir(parents=True)
    path.write_text(manifest_text(3000))
    return path


def port(path: Path | str) -> int:
    return cached_manifest(path).port("main_app")


def warm(path: Path | str, expected: int = 3000) -> None:
    for _ in range(LOOKUPS):
        assert port(path) == expected


def test_edit_in_place_with_the_mtime_put_back(manifest: Path) -> None:
    warm(manifest)
    before = manifest.stat()
    manifest.write_text(manifest_text(3001))  # same size
    os.utime(manifest, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert manifest.stat().st_size == before.st_size
    assert port(manifest) == 3001


def test_replace_by_rename_with_same_size_and_mtime(manifest: Path) -> None:
    warm(manifest)
    before = manifest.stat()
    replacement = manifest.with_name("incoming.json")
    replacement.write_text(manifest_text(3002))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, manifest)  # a new inode
    assert port(manifest) == 3002
    warm(manifest, expected=3002)
    manifest.write_text(manifest_text(3003))
    assert port(manifest) == 3003


def test_edit_through_a_hard_link_in_another_folder(manifest: Path) -> None:
    other = manifest.parents[3] / "elsewhere.json"
    os.link(manifest, other)
    warm(manifest)
    with other.open("r+") as handle:  # in place, so both names keep the same inode
        handle.write(manifest_text(3004))
    assert port(manifest) == 3004


def test_edit_by_another_process(manifest: Path) -> None:
    warm(manifest)
    code = f"import pathlib; pathlib.Path({str(manifest)!r}).write_text({manifest_text(3005)!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert port(manifest) == 3005


def test_goes_bad_then_missing_then_back(manifest: Path) -> None:
    warm(manifest)
    manifest.write_text('{"core_services": {"main_app": {"port": "3000"}}}')
    with pytest.raises(ManifestError, match=r"core_services\.main_app\.port"):
        port(manifest)
    manifest.unlink()
    with pytest.raises(ManifestMissing):
        port(manifest)
    manifest.write_text(manifest_text(3006))
    assert port(manifest) == 3006
    warm(manifest, expected=3006)
    manifest.write_text(manifest_text(3007))
    assert port(manifest) == 3007


def test_a_folder_above_is_moved_away_and_back(manifest: Path) -> None:
    project = manifest.parents[3]
    warm(manifest)
    moved = project.with_name("moved")
    project.rename(moved)
    with pytest.raises(ManifestMissing):
        port(manifest)
    (moved / MANIFEST_REL).write_text(manifest_text(3008))
    moved.rename(project)
    assert port(manifest) == 3008


def test_the_config_folder_is_replaced(manifest: Path) -> None:
    warm(manifest)
    config = manifest.parent
    config.rename(config.with_name("config.old"))
    config.mkdir()
    manifest.write_text(manifest_text(3009))
    assert port(manifest) == 3009
    warm(manifest, expected=3009)
    manifest.write_text(manifest_text(3010))
    assert port(manifest) == 3010


def test_manifest_replaced_by_a_symlink_is_followed(manifest: Path) -> None:
    warm(manifest)
    target = manifest.parents[3] / "shared.json"
    target.write_text(manifest_text(3011))
    link = manifest.with_name("link.tmp")
    link.symlink_to(target)
    os.replace(link, manifest)
    assert port(manifest) == 3011
    warm(manifest, expected=3011)
    target.write_text(manifest_text(3012))
    assert port(manifest) == 3012


def test_an_edit_behind_a_symlinked_folder_is_seen(tmp_path: Path) -> None:
    real = tmp_path.resolve() / "real"
    (real / MANIFEST_REL).parent.mkdir(parents=True)
    (real / MANIFEST_REL).write_text(manifest_text(3000))
    (tmp_path / "via").symlink_to(real)
    through_link = tmp_path.resolve() / "via" / MANIFEST_REL
    warm(through_link)
    (real / MANIFEST_REL).write_text(manifest_text(3013))
    assert port(through_link) == 3013


def test_a_folder_of_the_path_switched_by_symlink_is_followed(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    rec = root / "rec"
    manifest = rec / MANIFEST_REL
    manifest.parent.mkdir(parents=True)
    manifest.write_text(manifest_text(3000))
    warm(manifest)
    for number in (1, 2):
        release = root / "releases" / str(number) / MANIFEST_REL
        release.parent.mkdir(parents=True)
        release.write_text(manifest_text(3000 + number))
    rec.rename(root / "rec.old")
    rec.symlink_to(root / "releases" / "1")
    assert port(manifest) == 3001
    link = root / "rec.new"
    link.symlink_to(root / "releases" / "2")
    os.replace(link, rec)  # ln -sfn: a rename in the project's parent folder
    assert port(manifest) == 3002


def test_a_path_with_dot_dot_sees_edits(tmp_path: Path) -> None:
    real = tmp_path.resolve() / "p"
    (real / MANIFEST_REL).parent.mkdir(parents=True)
    (real / MANIFEST_REL).write_text(manifest_text(3000))
    (tmp_path / "x").mkdir()
    dotted = f"{tmp_path.resolve()}/x/../p/{MANIFEST_REL}"
    warm(dotted)
    (real / MANIFEST_REL).write_text(manifest_text(3007))
    assert port(dotted) == 3007


def test_an_edit_through_a_surviving_hard_link_after_a_switch(manifest: Path) -> None:
    # A release farm: the manifest is a hard link into releases/N, switched like `ln -f`.
    releases = manifest.parents[3] / "releases"
    for number in (1, 2):
        (releases / str(number)).mkdir(parents=True)
        (releases / str(number) / "manifest.json").write_text(manifest_text(3000 + number))
    os.link(releases / "1" / "manifest.json", manifest.with_name("switch.tmp"))
    os.replace(manifest.with_name("switch.tmp"), manifest)
    warm(manifest, expected=3001)
    os.link(releases / "2" / "manifest.json", manifest.with_name("switch.tmp"))
    os.replace(manifest.with_name("switch.tmp"), manifest)
    assert port(manifest) == 3002
    with (releases / "2" / "manifest.json").open("r+") as handle:  # a hot fix, in place
        handle.write(manifest_text(3003))
    assert port(manifest) == 3003


def test_many_threads_never_see_an_edit_late(manifest: Path) -> None:
    warm(manifest)
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
def test_a_forked_child_and_its_parent_both_see_an_edit(manifest: Path) -> None:
    warm(manifest)
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
    assert port(manifest) == 3014


def test_a_signal_handler_may_look_up_during_a_lookup(manifest: Path) -> None:
    # The handler runs on the thread that is inside a lookup: a lock there would hang.
    code = f"""
import os, signal, sys, time
from recio_setup.runtime.manifest_cache import cached_manifest
path, text = {str(manifest)!r}, {manifest_text(3000)!r}
seen = []
signal.signal(signal.SIGALRM, lambda *_: seen.append(cached_manifest(path).port("main_app")))
signal.setitimer(signal.ITIMER_REAL, 0.003, 0.003)
end = time.monotonic() + 1.5
while time.monotonic() < end:
    with open(path + ".new", "w") as handle:
        handle.write(text)
    os.replace(path + ".new", path)  # a new file, so the next lookup reads and parses it
    cached_manifest(path).port("main_app")
signal.setitimer(signal.ITIMER_REAL, 0)
print(len(seen))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 0


# -- on real mounts (root on Linux) -------------------------------------------------------------
@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to mount ramfs")
def test_a_same_size_edit_in_the_same_timestamp_tick_is_seen(tmp_path: Path) -> None:
    # ramfs keeps coarse timestamps: an edit right after a read keeps the whole stat stamp.
    mount_point = tmp_path / "ramfs"
    mount_point.mkdir()
    with mounted("-t", "ramfs", "ramfs", str(mount_point)):
        manifest = mount_point / "p" / MANIFEST_REL
        manifest.parent.mkdir(parents=True)
        manifest.write_text(manifest_text(3000))
        warm(manifest)
        stale = []
        for value in range(3001, 3201):
            port(manifest)  # read, then edit within the same tick
            with manifest.open("r+") as handle:
                handle.write(manifest_text(value))
            if port(manifest) != value:
                stale.append(value)
        assert not stale, f"{len(stale)} of 200 edits unseen"


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to bind-mount")
def test_a_bind_mount_over_the_config_folder_is_seen(manifest: Path) -> None:
    other = manifest.parents[3] / "other-config"
    other.mkdir()
    (other / manifest.name).write_text(manifest_text(3999))
    warm(manifest)
    with mounted("--bind", str(other), str(manifest.parent)):
        assert port(manifest) == 3999
    assert port(manifest) == 3000


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to mount tmpfs")
def test_a_filesystem_mounted_over_a_folder_is_seen(manifest: Path) -> None:
    warm(manifest)
    backend = manifest.parents[2]
    with mounted("-t", "tmpfs", "tmpfs", str(backend)):
        with pytest.raises(ManifestMissing):
            port(manifest)
        manifest.parent.mkdir(parents=True)
        manifest.write_text(manifest_text(3103))
        warm(manifest, expected=3103)
        manifest.write_text(manifest_text(3104))
        assert port(manifest) == 3104
