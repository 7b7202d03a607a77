"""Redactions reaching the archive, on ``MockClock`` with an in-process store: the tombstone
object is written before any covered byte is deleted, covered recordings leave the archive
and are never uploaded again, ``list_tombstones`` reads them back, and a recording
redacted before its upload is never sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.archive import tombstones
from nvr.archive.layout import recording_keys
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from tests.support.determinism import T0
from tests.support.memstore import MemoryStore
from tests.unit.archive.test_uploader import _recorded, _uploader

SEC = UNITS_PER_SEC

pytestmark = pytest.mark.usefixtures("inline_seam")


class _LoggingStore(MemoryStore):
    """Remembers the order of PUTs and DELETEs."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def put(self, key: str, *a: object, **kw: object) -> None:  # type: ignore[override]
        super().put(key, *a, **kw)  # type: ignore[arg-type]
        self.log.append(f"put {key}")

    def delete(self, key: str) -> None:
        if key in self.objects:
            self.log.append(f"delete {key}")
        super().delete(key)


async def test_a_redaction_writes_its_tombstone_then_deletes_what_it_covers(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    db = env.db
    aid = db.archive_by_name("a").id
    sid = env.stream_ids[0]
    recs = db.list_recordings_by_time(sid, 0, 1 << 62)
    store = _LoggingStore()
    up = _uploader(env, store, clocks)
    while await up.run_once():
        pass
    assert len(db.archived_in(aid, sid)) == 3
    cam = db.cameras[db.streams[sid].camera_id]
    mid = recs[1]
    r = db.add_redaction(sid, mid.start_time_90k + SEC, mid.start_time_90k + 2 * SEC,
                         "a face", user_id=None, username="ann")
    store.log.clear()
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)  # woken by the redaction
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    key = tombstones.tombstone_key("p/", db.uuid, r.id)
    sample_key, desc_key = recording_keys("p/", cam.uuid, "main", mid.composite_id)
    assert store.log == [f"put {key}", f"delete {desc_key}", f"delete {sample_key}"]
    assert [h.composite_id for h in db.archived_in(aid, sid)] == [
        recs[0].composite_id, recs[2].composite_id]
    # hidden locally, so it is neither backlog nor uploaded again
    assert db.archive_backlog(aid).recordings == 0
    assert not await up.run_once() and sample_key not in store.objects
    (t,) = tombstones.list_tombstones(store, "p/")
    assert (t.database_uuid, t.redaction_id, t.camera_uuid, t.stream_type) == (
        db.uuid, r.id, cam.uuid, "main")
    assert (t.start_time_90k, t.end_time_90k, t.reason, t.username) == (
        r.start_time_90k, r.end_time_90k, "a face", "ann")
    assert t.covers(cam.uuid, "main", mid.start_time_90k,
                    mid.start_time_90k + mid.wall_duration_90k)
    assert not tombstones.covered([t], cam.uuid, "main", recs[0].start_time_90k,
                                  recs[0].start_time_90k + recs[0].wall_duration_90k)
    assert not t.covers(cam.uuid, "sub", mid.start_time_90k, mid.start_time_90k + SEC)
    env.close()


async def test_a_tombstone_that_cannot_be_written_deletes_nothing_and_is_retried(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=30)
    db = env.db
    aid = db.archive_by_name("a").id
    sid = env.stream_ids[0]
    store = _LoggingStore()
    up = _uploader(env, store, clocks)
    while await up.run_once():
        pass
    (rec,) = db.list_recordings_by_time(sid, 0, 1 << 62)
    db.add_redaction(sid, rec.start_time_90k, rec.start_time_90k + SEC, "plate",
                     user_id=None, username=None)
    store.log.clear()
    store.faults = [errors.Unavailable("down")] * 3  # three failures in a row
    start = trio.current_time()
    await up.run_once()
    assert trio.current_time() - start == 1 + 2 + 4
    assert store.log[0].startswith("put p/tombstones/")
    assert all(x.startswith("delete") for x in store.log[1:]) and len(store.log) == 3
    assert not db.archived_in(aid, sid)
    env.close()


async def test_a_recording_redacted_before_its_upload_is_never_sent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    db = env.db
    sid = env.stream_ids[0]
    recs = db.list_recordings_by_time(sid, 0, 1 << 62)
    db.add_redaction(sid, recs[0].start_time_90k, recs[0].start_time_90k + 10,
                     "reason", user_id=None, username=None)
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    while await up.run_once():
        pass
    cam = db.cameras[db.streams[sid].camera_id]
    assert recording_keys("p/", cam.uuid, "main", recs[0].composite_id)[0] not in store.objects
    assert up.uploaded == 2
    assert len(tombstones.list_tombstones(store, "p/")) == 1
    env.close()


def test_a_tombstone_object_that_does_not_parse_is_data_loss() -> None:
    store = MemoryStore()
    store.objects["p/tombstones/x/0000000001.json"] = b"{}"
    with pytest.raises(errors.DataLoss, match="not a tombstone"):
        tombstones.list_tombstones(store, "p/")
