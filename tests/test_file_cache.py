"""The stat cache the manifest and .env lookups share: one read per version of the bytes, one
derivation per content, and every edit seen by the next call, even one that keeps the stamp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recio_setup.runtime.file_cache import FileCache


class Counted:
    """A FileCache over real files that counts its reads and derivations."""

    def __init__(self) -> None:
        self.reads = 0
        self.derived = 0
        self.cache: FileCache[bytes] = FileCache(self.read, self.derive)

    def read(self, path: str) -> bytes:
        self.reads += 1
        return Path(path).read_bytes()

    def derive(self, data: bytes, path: str) -> bytes:
        self.derived += 1
        if data == b"bad":
            raise ValueError(path)
        return data


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "file"
    path.write_bytes(b"one")
    return path


@pytest.mark.usefixtures("coarse_timestamps")
def test_a_same_size_edit_within_one_timestamp_tick_is_seen(file: Path) -> None:
    counted = Counted()
    assert counted.cache.get(str(file)) == b"one"
    before = os.stat(file)
    file.write_bytes(b"two")  # in place, same size: the same inode
    after = os.stat(file)
    same = ("st_mtime_ns", "st_ctime_ns", "st_size", "st_ino", "st_dev")
    assert [getattr(after, name) for name in same] == [getattr(before, name) for name in same]
    assert counted.cache.get(str(file)) == b"two"


@pytest.mark.usefixtures("clock_moved_on")
def test_a_settled_unchanged_file_is_read_once(file: Path) -> None:
    counted = Counted()
    for _ in range(10):
        assert counted.cache.get(str(file)) == b"one"
    assert (counted.reads, counted.derived) == (1, 1)
    file.write_bytes(b"two")
    assert counted.cache.get(str(file)) == b"two"
    assert (counted.reads, counted.derived) == (2, 2)


def test_a_young_file_is_read_each_time_but_derived_once_per_content(file: Path) -> None:
    counted = Counted()
    for _ in range(5):
        assert counted.cache.get(str(file)) == b"one"
    os.utime(file)  # a new stamp, the same bytes
    assert counted.cache.get(str(file)) == b"one"
    assert counted.reads == 6
    assert counted.derived == 1


def test_errors_are_not_cached(file: Path) -> None:
    counted = Counted()
    file.write_bytes(b"bad")
    with pytest.raises(ValueError):
        counted.cache.get(str(file))
    file.unlink()
    with pytest.raises(FileNotFoundError):
        counted.cache.get(str(file))
    file.write_bytes(b"fixed")
    assert counted.cache.get(str(file)) == b"fixed"


@pytest.mark.usefixtures("clock_moved_on")
def test_an_older_copy_stored_after_a_newer_one_is_not_trusted(file: Path) -> None:
    # A signal handler (or another thread) looks up while a lookup holds older bytes; the
    # older copy is stored last, as a settled one, yet the next call reads the file again.
    nested: list[bytes] = []

    def read_then_edit(path: str) -> bytes:
        data = Path(path).read_bytes()
        if data == b"one":  # the admin edits just after this read and signals "reload"
            file.write_bytes(b"two")
            nested.append(cache.get(path))
        return data

    cache: FileCache[bytes] = FileCache(read_then_edit, lambda data, _: data)
    assert cache.get(str(file)) == b"one"
    assert nested == [b"two"]
    assert [cache.get(str(file)) for _ in range(3)] == [b"two"] * 3


def test_clear_forgets_every_file(file: Path) -> None:
    counted = Counted()
    counted.cache.get(str(file))
    counted.cache.clear()
    counted.cache.get(str(file))
    assert counted.derived == 2


@pytest.mark.usefixtures("clock_moved_on")
def test_a_call_interrupted_inside_its_read_loses_no_edit(file: Path) -> None:
    # A signal handler that raises (a timeout, Ctrl-C) may interrupt a call anywhere.
    interrupt = [False]

    def read(path: str) -> bytes:
        data = Path(path).read_bytes()
        if interrupt[0]:
            interrupt[0] = False
            raise KeyboardInterrupt  # the bytes were read, and the call dies before using them
        return data

    cache: FileCache[bytes] = FileCache(read, lambda data, _: data)
    assert cache.get(str(file)) == b"one"
    file.write_bytes(b"two")
    interrupt[0] = True
    with pytest.raises(KeyboardInterrupt):
        cache.get(str(file))
    assert cache.get(str(file)) == b"two"
