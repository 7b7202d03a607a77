"""Sample-file directories: the meta file, the open interlock and start-up cleanup."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import struct
import uuid
import zlib
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.database import Database
from nvr.offline.check import check
from nvr.storage import dir as dirmod
from nvr.storage.dir import (
    META_FILE,
    META_SIZE,
    DirMeta,
    OpenRef,
    SampleFileDir,
    file_name,
    open_for_database,
    remove_garbage_and_uncommitted,
)
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.faults import SimulatedCrash
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame

SEC = UNITS_PER_SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


# ----------------------------------------------------------------------------- meta file


def _meta() -> DirMeta:
    return DirMeta(
        uuid.UUID("11111111-2222-3333-4444-555555555555"),
        uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaaa"),
        OpenRef(7, uuid.UUID("bbbbbbbb-cccc-dddd-eeee-ffffffffffff")),
        OpenRef(8, uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")),
    )


@pytest.mark.parametrize("refs", ["none", "last", "both"])
def test_meta_round_trip(refs: str) -> None:
    meta = _meta()
    if refs != "both":
        meta = dataclasses.replace(meta, in_progress_open=None)
    if refs == "none":
        meta = dataclasses.replace(meta, last_complete_open=None)
    data = meta.encode()
    assert len(data) == META_SIZE
    assert DirMeta.decode(data, "x") == meta


def test_meta_layout() -> None:
    data = _meta().encode()
    assert data[:16] == b"nvr-sample-dir\n\0"
    assert data[16:20] == b"\0\0\0\1"
    assert data[20:36] == _meta().db_uuid.bytes
    assert data[36:52] == _meta().dir_uuid.bytes
    assert struct.unpack(">Q", data[52:60]) == (7,)
    assert struct.unpack(">Q", data[76:84]) == (8,)
    assert data[100:508] == bytes(408)
    assert struct.unpack(">I", data[508:]) == (zlib.crc32(data[:508]),)


@pytest.mark.parametrize("pos", [0, 17, 30, 55, 99, 300, 508, 511])
def test_meta_flipped_byte_is_data_loss(pos: int) -> None:
    data = bytearray(_meta().encode())
    data[pos] ^= 0x01
    with pytest.raises(errors.DataLoss, match=r"^/some/dir: meta file is corrupt"):
        DirMeta.decode(bytes(data), "/some/dir")


@pytest.mark.parametrize("size", [0, 511, 513])
def test_meta_wrong_size_is_data_loss(size: int) -> None:
    data = (_meta().encode() + b"\0")[:size]
    with pytest.raises(errors.DataLoss, match=f"meta file is {size} bytes, expected 512"):
        DirMeta.decode(data, "d")


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def test_meta_wrong_magic_and_version() -> None:
    body = _meta().encode()[:-4]
    with pytest.raises(errors.DataLoss, match="not an nvr sample file directory"):
        DirMeta.decode(_with_crc(b"X" + body[1:]), "d")
    with pytest.raises(errors.FailedPrecondition, match="meta file version 2 is unknown"):
        DirMeta.decode(_with_crc(body[:16] + b"\0\0\0\2" + body[20:]), "d")


def test_create_refuses_non_empty_directory(tmp_path: Path) -> None:
    d = tmp_path / "sample"
    d.mkdir()
    (d / "vacation.jpg").write_bytes(b"precious")
    with pytest.raises(errors.FailedPrecondition, match=r"is not empty .*'vacation\.jpg'"):
        SampleFileDir.create(d, uuid.uuid4(), uuid.uuid4())
    assert sorted(p.name for p in d.iterdir()) == ["vacation.jpg"]
    assert (d / "vacation.jpg").read_bytes() == b"precious"


def test_create_takes_empty_directory_and_lost_found(tmp_path: Path) -> None:
    d = tmp_path / "mnt"
    (d / "lost+found").mkdir(parents=True)
    db_u, dir_u = uuid.uuid4(), uuid.uuid4()
    SampleFileDir.create(d, db_u, dir_u)
    assert DirMeta.decode((d / META_FILE).read_bytes(), "d") == DirMeta(db_u, dir_u)
    # Once created it is not empty any more.
    with pytest.raises(errors.FailedPrecondition, match="not empty"):
        SampleFileDir.create(d, db_u, dir_u)
    assert DirMeta.decode((d / META_FILE).read_bytes(), "d") == DirMeta(db_u, dir_u)


def test_open_without_meta(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.FailedPrecondition, match="has no meta file"):
        SampleFileDir.open(tmp_path / "empty", read_only=True)


# ----------------------------------------------------------------------------- interlock


def _open_db(root: Path) -> Database:
    return Database.open(root / "db", tz=dt.UTC, now=lambda: T0)


def _interlock_open(root: Path) -> tuple[int, DirMeta]:
    """Opens the database and its directory read-write through the interlock, as the
    daemon does, then closes both. Returns (open id, the directory's meta)."""
    db = _open_db(root)
    try:
        sdir = open_for_database(db, next(iter(db.dirs)), read_only=False)
        sdir.close()
        assert db.open_id is not None
        return db.open_id, sdir.meta
    finally:
        db.close()


def _refusal(root: Path) -> str:
    """Opens through the interlock, expecting a refusal; returns its message. The refusal
    leaves both locks free: a read-only open of each works right after."""
    db = _open_db(root)
    try:
        with pytest.raises(errors.FailedPrecondition) as e:
            open_for_database(db, next(iter(db.dirs)), read_only=False)
        row = next(iter(db.dirs.values()))
        SampleFileDir.open(row.path, read_only=False).close()
    finally:
        db.close()
    return str(e.value)


def _meta_file(root: Path) -> Path:
    return root / "sample" / META_FILE


def test_interlock_accepts_and_advances(tmp_path: Path) -> None:
    create_env(tmp_path)
    first, meta1 = _interlock_open(tmp_path)
    second, meta2 = _interlock_open(tmp_path)
    assert second == first + 1
    db = _open_db(tmp_path)
    try:
        (row,) = db.dirs.values()
        assert row.last_complete_open_id == second
        expected = OpenRef(second, db.open_uuid_of(second))  # type: ignore[arg-type]
    finally:
        db.close()
    assert meta2 == dataclasses.replace(meta1, last_complete_open=expected, in_progress_open=None)
    assert DirMeta.decode(_meta_file(tmp_path).read_bytes(), "d") == meta2


def test_interlock_refuses_directory_of_another_database(tmp_path: Path) -> None:
    create_env(tmp_path / "a")
    create_env(tmp_path / "b")
    _interlock_open(tmp_path / "a")
    _interlock_open(tmp_path / "b")
    theirs = _meta_file(tmp_path / "b").read_bytes()
    _meta_file(tmp_path / "a").write_bytes(theirs)
    msg = _refusal(tmp_path / "a")
    assert "belongs to another database" in msg
    assert str(DirMeta.decode(theirs, "b").db_uuid) in msg
    assert _meta_file(tmp_path / "a").read_bytes() == theirs  # untouched


def test_interlock_refuses_swapped_directory(tmp_path: Path) -> None:
    create_env(tmp_path)
    _, meta = _interlock_open(tmp_path)
    other_dir = uuid.uuid4()
    _meta_file(tmp_path).write_bytes(dataclasses.replace(meta, dir_uuid=other_dir).encode())
    msg = _refusal(tmp_path)
    assert "is not the directory this database knows" in msg
    assert f"found directory {other_dir}" in msg
    assert "disk swapped" in msg


@pytest.mark.parametrize("opens_before_backup", [1, 0])
def test_interlock_refuses_database_restored_without_directory(
    tmp_path: Path, opens_before_backup: int
) -> None:
    create_env(tmp_path)
    for _ in range(opens_before_backup):
        _interlock_open(tmp_path)
    shutil.copytree(tmp_path / "db", tmp_path / "db-backup")
    _interlock_open(tmp_path)  # the directory's meta moves on
    shutil.rmtree(tmp_path / "db")
    shutil.copytree(tmp_path / "db-backup", tmp_path / "db")
    meta_before = _meta_file(tmp_path).read_bytes()
    msg = _refusal(tmp_path)
    assert "was last opened by open" in msg
    assert "restored from a backup" in msg
    assert _meta_file(tmp_path).read_bytes() == meta_before


def test_interlock_refuses_directory_restored_from_older_meta(tmp_path: Path) -> None:
    create_env(tmp_path)
    first, _ = _interlock_open(tmp_path)
    old_meta = _meta_file(tmp_path).read_bytes()
    second, _ = _interlock_open(tmp_path)
    _meta_file(tmp_path).write_bytes(old_meta)
    msg = _refusal(tmp_path)
    assert f"last opened by open {first}, but the database expects open {second}" in msg
    assert "restored from a backup" in msg


@pytest.mark.parametrize("crash", ["before_commit", "after_commit"])
@pytest.mark.parametrize("first_open", [False, True], ids=["later_open", "first_open"])
def test_interlock_crash_window_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: str, first_open: bool
) -> None:
    """A crash between the interlock's steps leaves the meta naming an open in progress;
    the database names either the previous open (crash before its commit) or that very
    open (after). Both are consistent, so the next open goes ahead."""
    create_env(tmp_path)
    first = None if first_open else _interlock_open(tmp_path)[0]

    def boom(*args: object) -> None:
        raise SimulatedCrash("interlock")

    if crash == "before_commit":
        monkeypatch.setattr(Database, "complete_dir_open", boom)
    else:
        monkeypatch.setattr(dirmod, "finish_open", boom)
    db = _open_db(tmp_path)
    try:
        crashed_open = db.open_id
        with pytest.raises(SimulatedCrash):
            open_for_database(db, next(iter(db.dirs)), read_only=False)
    finally:
        db.close()
    monkeypatch.undo()

    meta = DirMeta.decode(_meta_file(tmp_path).read_bytes(), "d")
    assert (meta.last_complete_open.id if meta.last_complete_open else None) == first
    assert meta.in_progress_open is not None
    assert meta.in_progress_open.id == crashed_open
    with Database.open(tmp_path / "db", read_only=True, tz=dt.UTC, now=lambda: T0) as ro:
        (row,) = ro.dirs.values()
        assert row.last_complete_open_id == (first if crash == "before_commit" else crashed_open)
    assert check(tmp_path / "db").problems == []

    third, meta = _interlock_open(tmp_path)
    assert meta.last_complete_open is not None
    assert meta.last_complete_open.id == third
    assert meta.in_progress_open is None


def test_second_process_on_directory_is_unavailable(tmp_path: Path) -> None:
    create_env(tmp_path)
    db = _open_db(tmp_path)
    try:
        sdir = open_for_database(db, next(iter(db.dirs)), read_only=False)
        try:
            for read_only in (False, True):
                with pytest.raises(errors.Unavailable, match="in use by another nvr process"):
                    SampleFileDir.open(tmp_path / "sample", read_only=read_only)
        finally:
            sdir.close()
    finally:
        db.close()
    r1 = SampleFileDir.open(tmp_path / "sample", read_only=True)
    r2 = SampleFileDir.open(tmp_path / "sample", read_only=True)
    with pytest.raises(errors.Unavailable):
        SampleFileDir.open(tmp_path / "sample", read_only=False)
    r1.close()
    r2.close()


# ----------------------------------------------------------------------------- cleanup


async def test_remove_garbage_and_uncommitted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=2, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    s1, s2 = env.stream_ids
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        # Four 1 s recordings on s1, one on s2.
        await record_run(env, syncer, clocks, s1, frames=120, rotate_every=SEC)
        await record_run(env, syncer, clocks, s2, frames=30, rotate_every=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    db = env.db
    assert (db.streams[s1].cum_recordings, db.streams[s2].cum_recordings) == (4, 1)
    # Move s1's first two recordings to garbage without unlinking their files; then the
    # second file disappears anyway (unlinked just before a crash).
    cam = db.cameras[db.streams[s1].camera_id]
    cfg = dataclasses.replace(db.streams[s1].config, retain_bytes=sum(
        len(synth_frame(i).data) for i in range(60, 120)))
    db.update_camera(cam.id, streams={"main": (env.dir_id, cfg)})
    assert [d.composite_id for d in db.plan_retention(s1)] == [s1 << 32, s1 << 32 | 1]
    assert db.flush("retention").deleted == 2
    env.sdir.unlink(s1 << 32 | 1)
    # Files written but never committed, and files nvr must not touch.
    for cid in (s1 << 32 | 4, s1 << 32 | 9, s2 << 32 | 1):
        fd = env.sdir.create_file(cid)
        env.sdir.write_all(fd, [b"partial"])
        env.sdir.close_file(fd)
    (env.sample_dir / file_name(99 << 32)).write_bytes(b"unknown stream")
    (env.sample_dir / "notes.txt").write_bytes(b"someone's notes")
    env.close()

    db = _open_db(tmp_path)
    try:
        dir_id = next(iter(db.dirs))
        assert db.dirs[dir_id].garbage_needs_unlink == {s1 << 32, s1 << 32 | 1}
        sdir = open_for_database(db, dir_id, read_only=False)
        try:
            assert remove_garbage_and_uncommitted(db, dir_id, sdir) == 4
            assert sdir.list_files() == (
                [s1 << 32 | 2, s1 << 32 | 3, s2 << 32, 99 << 32], ["notes.txt"]
            )
        finally:
            sdir.close()
        assert db.dirs[dir_id].garbage_needs_unlink == set()
        assert db.dirs[dir_id].garbage_unlinked == {s1 << 32, s1 << 32 | 1}
        assert db.list_garbage(dir_id) == [s1 << 32, s1 << 32 | 1]  # until the next flush
        assert db.flush("startup").garbage_removed == 2
        assert db.list_garbage(dir_id) == []
        assert [r.recording_id for r in db.list_recordings_by_time(s1, 0, 1 << 62)] == [2, 3]
    finally:
        db.close()
    assert (env.sample_dir / "notes.txt").read_bytes() == b"someone's notes"
    assert check(tmp_path / "db").problems == [
        f"dir {env.sample_dir}: unexpected entry 'notes.txt'",
        f"dir {env.sample_dir}: file {file_name(99 << 32)} of unknown stream 99",
    ]


def test_write_all_writes_every_piece_in_order_through_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    SampleFileDir.create(tmp_path / "d", uuid.uuid4(), uuid.uuid4())
    sdir = SampleFileDir.open(tmp_path / "d", read_only=False)
    real, calls = os.writev, []

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real(fd, [b"".join(buffers)[:5]])  # never more than 5 bytes at a time

    monkeypatch.setattr(os, "writev", short_writev)
    pieces = [b"first ", b"", b"s", b"econd piece, ", memoryview(b"and a third")]
    try:
        fd = sdir.create_file(1)
        sdir.write_all(fd, pieces)
        sdir.close_file(fd)
    finally:
        sdir.close()
    assert (tmp_path / "d" / file_name(1)).read_bytes() == b"first second piece, and a third"
    assert len(calls) == 7 and calls[0] == 4  # 31 bytes, 5 at a time; empty pieces skipped
