"""Playback from the archive (issue 18, point 4) over the app with an in-process store:
recordings local retention deleted after they were archived stay listed (``nvrLocation``)
and ``view.mp4``/``view.m4s`` over them, alone or with local ones, have the bytes, ETags
and Range/304 behaviour they had when local; a store that fails mid-body ends the body
short, logged once; a server that reads no archive answers 503 before any byte."""

from __future__ import annotations

import datetime
import io
import logging
import urllib.parse
import zipfile
from pathlib import Path

import pytest
import trio.testing
from quart import Response

from nvr.archive.reader import ArchiveReads
from nvr.archive.restore import restore
from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.db.archives import ArchiveConfig
from nvr.db.database import Database
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.determinism import T0
from tests.support.memstore import MemoryStore
from tests.support.web import VIEW, Recorded, web_context

pytestmark = pytest.mark.usefixtures("inline_web_threads")

QUERIES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("mp4", {"s": "0-2"}, {}),  # crosses archived and local recordings
    ("mp4", {"s": "0"}, {}),
    ("mp4", {"s": "0-1.90000-"}, {}),  # cuts into an archived one
    ("mp4", {"s": "0-2"}, {"Range": "bytes=1000-3000000"}),
    ("m4s", {"s": "1"}, {}),
    ("mp4", {"s": "0-2", "ts": "true"}, {}),
    ("mp4", {"s": "3"}, {}),
]


async def _fetch_all(recorded: Recorded, *, archive_reads: ArchiveReads | None = None
                     ) -> list[tuple[int, str, bytes]]:
    ctx = web_context(recorded) if archive_reads is None else _ctx(recorded, archive_reads)
    return await _fetch_with(ctx, recorded.camera_uuid)


async def _fetch_with(ctx: WebContext, camera_uuid: str) -> list[tuple[int, str, bytes]]:
    c = create_app(ctx).test_client()
    out = []
    for kind, q, headers in QUERIES:
        url = f"/api/cameras/{camera_uuid}/main/view.{kind}"
        r = await c.get(url, query_string=q, headers=headers)
        out.append((r.status_code, r.headers["ETag"], await r.get_data()))
    return out


def _ctx(recorded: Recorded, reads: ArchiveReads) -> WebContext:
    ctx = web_context(recorded)
    ctx.archive_reads = reads
    return ctx


async def _archive_and_delete_first_two(recorded: Recorded) -> tuple[int, MemoryStore]:
    db = recorded.env.db
    a = db.add_archive("a", ArchiveConfig("http://127.0.0.1:9", "bkt", access_key="k",
                                          secret_key="s"))
    store = MemoryStore()
    up = Uploader(db, a.id, store, recorded.env.sdir.open_for_reading, SimulatedClocks(T0))
    while await up.run_once():
        pass
    sid = recorded.stream_id
    dels = list(db.iter_unplanned_oldest(sid))[:2]
    db.add_planned_deletions(sid, dels)
    db.flush("test")
    for d in dels:  # as the syncer would
        assert recorded.env.sdir.unlink(d.composite_id)
    return a.id, store


async def test_archived_recordings_play_as_when_local(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    before = await _fetch_all(recorded)
    assert all(status in (200, 206) for status, _, _ in before)
    aid, store = await _archive_and_delete_first_two(recorded)
    reads = ArchiveReads({aid: store}, window=300_000, ahead=2)
    try:
        c = create_app(_ctx(recorded, reads)).test_client()
        r = await c.get(f"/api/cameras/{recorded.camera_uuid}/main/recordings",
                        query_string={"split90k": "1"})
        rows = (await r.get_json())["recordings"]
        assert [(x["startId"], x["nvrLocation"]) for x in rows] == [
            (0, "archive"), (1, "archive"), (2, "local"), (3, "local")]
        calls = store.calls
        after = await _fetch_all(recorded, archive_reads=reads)
        assert store.calls > calls  # the bytes came from the store
        assert [(s, e) for s, e, _ in after] == [(s, e) for s, e, _ in before]
        for (_, _, a), (_, _, b) in zip(after, before, strict=True):
            assert a == b
        etag = before[0][1]
        url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
        r = await c.get(url, query_string={"s": "0-2"}, headers={"If-None-Match": etag})
        assert r.status_code == 304
        r = await c.get(url, query_string={"s": "0-2"}, headers={"Range": "bytes=999999999-"})
        assert r.status_code == 416
    finally:
        reads.close()


async def test_a_store_failing_mid_body_ends_it_short_and_logs_once(
    recorded: Recorded, autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    aid, store = await _archive_and_delete_first_two(recorded)
    reads = ArchiveReads({aid: store}, window=300_000, ahead=0)
    try:
        c = create_app(_ctx(recorded, reads)).test_client()
        store.faults = [errors.Unavailable("archive down")] * 100
        caplog.set_level(logging.WARNING, "nvr.web.view")
        url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
        r = await c.get(url, query_string={"s": "0-1"}, headers={"Range": "bytes=0-0"})
        size = int(r.headers["Content-Range"].split("/")[1])
        r = await c.get(url, query_string={"s": "0-1"})
        assert r.status_code == 200
        body = await r.get_data()
        assert 0 < len(body) < size  # the header, then nothing
        lines = [x for x in caplog.records if "response ended" in x.getMessage()]
        assert len(lines) == 1 and "archive down" in lines[0].getMessage()
    finally:
        reads.close()


async def test_without_the_archive_it_is_503_before_any_byte(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    await _archive_and_delete_first_two(recorded)
    c = create_app(web_context(recorded)).test_client()
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    r = await c.get(url, query_string={"s": "0-2"})
    assert r.status_code == 503
    assert "only in an archive" in await r.get_data(as_text=True)
    r = await c.get(url, query_string={"s": "2"})  # local ones still play
    assert r.status_code == 200


async def test_archive_retention_forgets_the_archive_only_row(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    db = recorded.env.db
    aid, _ = await _archive_and_delete_first_two(recorded)
    sid = recorded.stream_id
    assert [r.archive_only for r in db.list_recordings_by_id(sid, 0, 4)] == [
        True, True, False, False]
    first = db.list_recordings_by_id(sid, 0, 1)[0].composite_id
    db.forget_archived(aid, [first])
    assert [r.recording_id for r in db.list_recordings_by_id(sid, 0, 4)] == [1, 2, 3]
    db.delete_archive(aid)
    assert [r.recording_id for r in db.list_recordings_by_id(sid, 0, 4)] == [2, 3]


async def test_days_count_archive_only_recordings_as_the_listing_does(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    """``/api/``'s per-day totals (the timeline) keep counting recordings local retention
    deleted once archived, as the listing keeps them; they go when the archive forgets
    them; the totals are stored (``archive_only_day``), so another open reads the same."""
    db = recorded.env.db
    sid = recorded.stream_id
    c = create_app(web_context(recorded)).test_client()

    async def days() -> dict[str, int]:
        r = await c.get("/api/", query_string={"days": "true"})
        (cam,) = [x for x in (await r.get_json())["cameras"]
                  if x["uuid"] == recorded.camera_uuid]
        return {d: v["totalDuration90k"] for d, v in cam["streams"]["main"]["days"].items()}

    def total(ids: range) -> int:
        return sum(r.wall_duration_90k for r in db.list_recordings_by_id(sid, ids[0], ids[-1] + 1))

    before = await days()
    assert sum(before.values()) == total(range(4))
    aid, _ = await _archive_and_delete_first_two(recorded)
    assert await days() == before
    with Database.open(recorded.env.db_dir, read_only=True, lock=False, tz=db.tz,
                       now=lambda: T0) as other:
        assert other.streams[sid].archive_only.days == db.streams[sid].archive_only.days
        assert sum(t.duration_90k for t in other.streams[sid].archive_only.days.values()) == (
            total(range(2)))
    first = db.list_recordings_by_id(sid, 0, 1)[0].composite_id
    db.forget_archived(aid, [first])
    assert sum((await days()).values()) == total(range(1, 4))
    db.delete_archive(aid)
    assert sum((await days()).values()) == total(range(2, 4))
    assert not db.streams[sid].archive_only.days


async def test_restored_from_the_archive_alone_everything_plays_as_before(
    recorded: Recorded, autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The disk lost (a new, empty database, no sample file directory): ``restore`` from
    the archive's objects only, then every recording plays with the same bytes and ETags;
    restoring again adds nothing."""
    before = await _fetch_all(recorded)
    db = recorded.env.db
    a = db.add_archive("a", ArchiveConfig("http://127.0.0.1:9", "bkt", prefix="site1/",
                                          access_key="k", secret_key="s"))
    store = MemoryStore()
    up = Uploader(db, a.id, store, recorded.env.sdir.open_for_reading, SimulatedClocks(T0))
    while await up.run_once():
        pass
    cam = db.cameras[db.streams[recorded.stream_id].camera_id]
    Database.create(tmp_path / "new", T0)
    new = Database.open(tmp_path / "new", tz=datetime.UTC, now=lambda: T0 + 10**9)
    try:
        na = new.add_archive("a", a.config, [])
        report = restore(new, na.id, store, T0 + 10**9)
        assert report.problems == [] and report.hidden == 0
        assert (report.result.restored, report.result.cameras, report.result.streams) == (
            4, 1, 1)
        # the restored recordings are counted in the day totals (the timeline)
        assert new.streams[recorded.stream_id].archive_only.days == db.streams[
            recorded.stream_id].committed.days
        assert new.cameras[new.streams[recorded.stream_id].camera_id].uuid == cam.uuid
        again = restore(new, na.id, store, T0 + 10**9)
        assert (again.result.restored, again.result.present) == (0, 4)
        reads = ArchiveReads({na.id: store})
        try:
            ctx = WebContext(db=new, dirs={}, clocks=SimulatedClocks(T0), bind=VIEW,
                             time_zone_name="UTC", archive_reads=reads)
            after = await _fetch_with(ctx, recorded.camera_uuid)
        finally:
            reads.close()
        assert [(s, e) for s, e, _ in after] == [(s, e) for s, e, _ in before]
        assert [b for _, _, b in after] == [b for _, _, b in before]
    finally:
        new.close()


async def _export_members(ctx: WebContext, camera_uuid: str) -> dict[str, bytes]:
    """The ``.mp4`` members of an export of the first 150 s (read as the server reads a
    body: after the request's context is gone)."""
    app = create_app(ctx)
    q = urllib.parse.urlencode({"camera": camera_uuid, "range": f"{T0}-{T0 + 150 * 90_000}"})
    async with app.test_request_context(f"/api/export?{q}"):
        await app.preprocess_request()
        resp = await app.dispatch_request()
        assert isinstance(resp, Response)
    assert resp.status_code == 200
    async with resp.response as body:
        data = b"".join([chunk async for chunk in body])
    zf = zipfile.ZipFile(io.BytesIO(data))
    return {n: zf.read(n) for n in zf.namelist() if n.endswith(".mp4")}


async def test_an_export_reads_archived_recordings_from_the_archive(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    before = await _export_members(web_context(recorded), recorded.camera_uuid)
    assert before and all(before.values())
    aid, store = await _archive_and_delete_first_two(recorded)
    reads = ArchiveReads({aid: store}, window=300_000, ahead=2)
    try:
        calls = store.calls
        after = await _export_members(_ctx(recorded, reads), recorded.camera_uuid)
        assert store.calls > calls
    finally:
        reads.close()
    assert after == before
