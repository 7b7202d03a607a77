"""Redaction: once the tombstone commits, every route treats the range as never
recorded (listing, view.mp4/.m4s, export), and after a reopen too; the list says who,
when and why; hostile bodies are 400s."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from nvr.db.database import Database
from tests.support.web import SEC, T0, Recorded, inline_web_threads, recorded, web_context

__all__ = ["inline_web_threads", "recorded"]

pytestmark = pytest.mark.usefixtures("inline_web_threads")


async def _admin(r: Recorded):  # type: ignore[no-untyped-def]
    from nvr.config import BindConfig
    from nvr.web.app import create_app

    bind = BindConfig(allow_unauthenticated=("viewVideo", "redactVideo"))
    return create_app(web_context(r, bind)).test_client()


async def test_range_hidden_from_every_route(recorded: Recorded, autojump_clock: object,
                                             tmp_path: Path) -> None:
    c = await _admin(recorded)
    base = f"/api/cameras/{recorded.camera_uuid}"
    async def visible() -> list[int]:
        got = (await (await c.get(f"{base}/main/recordings")).get_json())["recordings"]
        return [rid for g in got for rid in range(g["startId"], g.get("endId", g["startId"]) + 1)]

    before = await visible()
    assert before == [0, 1, 2, 3]
    # recording 1 is [T0 + 120 s, T0 + 180 s): redact 10 s inside it
    resp = await c.post(f"{base}/redact", json={
        "startTime90k": T0 + 130 * SEC, "endTime90k": T0 + 140 * SEC, "reason": "privacy"})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    (tomb,) = (await resp.get_json())["redactions"]
    assert (tomb["reason"], tomb["stream"]) == ("privacy", "main")

    assert await visible() == [0, 2, 3]  # hidden whole
    assert (await visible()) != before
    for kind in ("mp4", "m4s"):
        r = await c.get(f"{base}/main/view.{kind}", query_string={"s": "1"})
        assert r.status_code == 404, kind
        r = await c.get(f"{base}/main/view.{kind}", query_string={"s": "0-2"})
        assert r.status_code == 404, kind
    r = await c.get(f"{base}/main/view.mp4", query_string={"s": "0"})
    assert r.status_code == 200
    r = await c.get("/api/export", query_string=[
        ("camera", recorded.camera_uuid), ("range", f"{T0 + 125 * SEC}-{T0 + 150 * SEC}")])
    assert r.status_code == 404  # nothing left in that range
    listed = (await (await c.get(f"{base}/redactions")).get_json())["redactions"]
    assert listed == [tomb]
    # after a reopen (a crash right after the commit) the range stays hidden
    db: Database = recorded.env.db
    db.close()
    with Database.open(db.db_dir,
                       read_only=True, tz=dt.UTC, now=lambda: T0) as again:
        sid = recorded.stream_id
        got = [x.recording_id for x in again.list_recordings_by_time(sid, 0, 1 << 62)]
        assert got == [0, 2, 3]
        assert [x.reason for x in again.list_redactions(sid)] == ["privacy"]


@pytest.mark.parametrize(("body", "says"), [
    ({}, "startTime90k"),
    ({"startTime90k": 1, "endTime90k": 1, "reason": "x"}, "after"),
    ({"startTime90k": 1, "endTime90k": 2}, "reason"),
    ({"startTime90k": 1, "endTime90k": 2, "reason": ""}, "reason"),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x" * 1001}, "reason"),
    ({"startTime90k": -1, "endTime90k": 2, "reason": "x"}, "startTime90k"),
    ({"startTime90k": 1.5, "endTime90k": 2, "reason": "x"}, "startTime90k"),
    ({"startTime90k": True, "endTime90k": 2, "reason": "x"}, "startTime90k"),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x", "more": 1}, "unknown field"),
])
async def test_hostile_bodies(recorded: Recorded, autojump_clock: object,
                              body: dict[str, object], says: str) -> None:
    c = await _admin(recorded)
    r = await c.post(f"/api/cameras/{recorded.camera_uuid}/redact", json=body)
    text = await r.get_data(as_text=True)
    assert r.status_code == 400, text
    assert says in text
    assert recorded.env.db.list_redactions(recorded.stream_id) == []


async def test_a_camera_with_redactions_can_be_removed(
    recorded: Recorded, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The redaction table refers to streams without a cascade: removing the camera (with
    its recordings) takes its tombstones along, each logged; nothing else's go."""
    from nvr.config import BindConfig
    from nvr.web.app import create_app

    bind = BindConfig(allow_unauthenticated=("viewVideo", "redactVideo", "adminConfig"))
    c = create_app(web_context(recorded, bind)).test_client()
    db = recorded.env.db
    resp = await c.post(f"/api/cameras/{recorded.camera_uuid}/redact", json={
        "startTime90k": T0 + 130 * SEC, "endTime90k": T0 + 140 * SEC, "reason": "privacy"})
    assert resp.status_code == 200
    resp = await c.delete(f"/api/nvr/cameras/{recorded.camera_uuid}",
                          json={"deleteRecordings": True})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    assert not db.cameras and not db.streams
    assert "deleted with its redaction" in caplog.text and "'privacy'" in caplog.text
    with db._read("test") as conn:
        assert conn.execute("select count(*) from redaction").fetchone() == (0,)


async def test_after_the_cut_the_rest_plays_and_decodes(
    recorded: Recorded, autojump_clock: object
) -> None:
    """Once the syncer has cut recording 1, both sides of the range are listed again as
    new recordings whose view.mp4 decodes frame for frame; the old id is gone; motion
    search and the export see the same."""
    from nvr.base.clock import SimulatedClocks
    from nvr.syncer import Syncer
    from tests.support.media import decoded_frames

    c = await _admin(recorded)
    env, sid = recorded.env, recorded.stream_id
    base = f"/api/cameras/{recorded.camera_uuid}"
    r1 = env.db.list_recordings_by_id(sid, 1, 2)[0]
    a, b = T0 + 130 * SEC, T0 + 140 * SEC
    assert r1.start_time_90k < a < b < r1.end_time_90k
    resp = await c.post(f"{base}/redact", json={"startTime90k": a, "endTime90k": b,
                                                "reason": "privacy"})
    assert resp.status_code == 200
    await Syncer(env.db, env.dir_id, env.sdir, SimulatedClocks(T0)).run_once()
    got = (await (await c.get(f"{base}/main/recordings")).get_json())["recordings"]
    ids = [g["startId"] for g in got]
    assert ids[0] == 0 and ids[-2:] == [2, 3] and len(ids) == 5
    pieces = env.db.list_recordings_by_id(sid, ids[1], ids[2] + 1)
    assert pieces[0].start_time_90k == r1.start_time_90k and pieces[0].end_time_90k <= a
    assert b <= pieces[1].start_time_90k < b + 2 * SEC  # the clip's key frames: 1 s apart
    assert pieces[1].end_time_90k == r1.end_time_90k
    for p in pieces:
        resp = await c.get(f"{base}/main/view.mp4", query_string={"s": str(p.recording_id)})
        assert resp.status_code == 200
        frames = decoded_frames(await resp.get_data(), ignore_editlist=True)
        assert len(frames) == p.video_samples
        numbers = [n for _, n, _ in frames]
        # consecutive pictures of the clip (its frame counter restarts when it loops)
        assert all(y == x + 1 or y == 0 for x, y in itertools.pairwise(numbers))
    r = await c.get(f"{base}/main/view.mp4", query_string={"s": "1"})
    assert r.status_code == 404
    r = await c.get("/api/export", query_string=[
        ("camera", recorded.camera_uuid), ("range", f"{a}-{b}")])
    assert r.status_code == 404  # nothing in the range itself
    r = await c.get("/api/export", query_string=[
        ("camera", recorded.camera_uuid), ("range", f"{a - 5 * SEC}-{b + 5 * SEC}")])
    assert r.status_code == 200
    assert not env.db.motion_search_rows(sid, bytes([255]) * 32, a - 5 * 60 * SEC, b, a)
