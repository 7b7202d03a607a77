"""``GET /api/export``: 3 cameras x 2 ranges as one signed zip, streamed in flat memory;
every member decodes frame for frame and is the ``view.mp4`` of the same span; and
``nvr verify-export`` names the member a flipped byte damaged."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import tracemalloc
import urllib.parse
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from quart import Quart, Response

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.cli.command import main
from nvr.db import signing
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.offline.verify_export import verify_export
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web import export
from nvr.web.app import create_app
from tests.support.media import decoded_frames
from tests.support.web import CLIP, SEC, T0, Recorded, client, inline_web_threads, web_context

__all__ = ["inline_web_threads"]

pytestmark = pytest.mark.usefixtures("inline_web_threads")


@pytest.fixture
async def three(tmp_path: Path, autojump_clock: trio.testing.MockClock
                ) -> AsyncIterator[Recorded]:
    """Three cameras recording the fixture clip for 200 s: two runs each (the camera's
    EOF after 6000 packets, 5 s of backoff, then again)."""
    create_env(tmp_path, streams=3, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    packets = load_packets(CLIP)
    opener = ReplayOpener(clocks, {f"rtsp://cam{i}/main": [
        Session(packets, loops=None, end_after=3000), Session(packets, loops=None)]
        for i in range(3)})
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    with inline_blocking():
        async with trio.open_nursery() as nursery:
            await nursery.start(syncer.run)
            with trio.move_on_after(200):
                async with trio.open_nursery() as streams:
                    for sid in env.stream_ids:
                        s = Streamer(db=env.db, stream_id=sid, sdir=env.sdir, sink=syncer,
                                     opener=opener, clocks=clocks,
                                     options=StreamerOptions(jitter=0, initial_backoff=5 * SEC),
                                     open_options=OpenOptions())
                        streams.start_soon(s.run)
            nursery.cancel_scope.cancel()
    cam = env.db.cameras[env.db.streams[env.stream_ids[0]].camera_id]
    yield Recorded(env, str(cam.uuid), env.stream_ids[0])
    env.close()


def _uuids(r: Recorded) -> list[str]:
    return [str(c.uuid) for c in r.env.db.cameras.values()]


#: the first run whole (it ends near T0 + 100 s), and 40 s across the gap between runs
RANGES = [(T0, T0 + 90 * SEC), (T0 + 80 * SEC, T0 + 130 * SEC)]


def _query(r: Recorded) -> list[tuple[str, str]]:
    return ([("camera", u) for u in _uuids(r)]
            + [("range", f"{s}-{e}") for s, e in RANGES])


async def _body(r: Recorded, app: Quart | None = None) -> AsyncIterator[bytes]:
    """The export's body, read chunk by chunk after the request's context is gone, as
    the server reads it. (Quart's test client buffers at most ten body messages before
    the handler returns and would stall on a larger export; real HTTP is benchmarked.)"""
    app = app or create_app(web_context(r))
    path = "/api/export?" + urllib.parse.urlencode(_query(r))
    async with app.test_request_context(path):
        await app.preprocess_request()
        resp = await app.dispatch_request()
        assert isinstance(resp, Response)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/zip"
    async with resp.response as body:
        async for chunk in body:
            yield chunk


async def _export(r: Recorded) -> bytes:
    return b"".join([chunk async for chunk in _body(r)])


async def test_three_cameras_two_ranges(three: Recorded, tmp_path: Path,
                                        autojump_clock: object) -> None:
    data = await _export(three)
    zf = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(zf.read(export.MANIFEST))
    assert manifest["format"] == "nvr-export/1"
    assert manifest["publicKey"] == signing.public_key_of(three.env.db_dir)
    assert [c["uuid"] for c in manifest["cameras"]] == _uuids(three)
    assert manifest["ranges"] == [{"startTime90k": s, "endTime90k": e} for s, e in RANGES]
    assert manifest["noVideo"] == []
    files = manifest["files"]
    # range 1 is within run 1; range 2 spans the gap: a file for each run
    assert [(f["camera"], f["range"]) for f in files] == [
        (u, ri) for u in _uuids(three) for ri in (0, 1, 1)]
    assert zf.namelist() == [f["name"] for f in files] + [export.MANIFEST, export.SIGNATURE]
    c = client(three)
    db = three.env.db
    for f in files:
        member = zf.read(f["name"])
        assert len(member) == f["bytes"]
        assert hashlib.sha256(member).hexdigest() == f["sha256"]
        # the same bytes as view.mp4 of the same span
        ids = [rid for rid, _ in f["recordings"]]
        cam = next(cam for cam in db.cameras.values() if str(cam.uuid) == f["camera"])
        first = db.list_recordings_by_id(cam.streams["main"], ids[0], ids[0] + 1)[0]
        start, end = RANGES[f["range"]]
        rel_s = max(0, start - first.start_time_90k)
        rel_e = end - first.start_time_90k
        view = await c.get(f"/api/cameras/{f['camera']}/main/view.mp4",
                           query_string={"s": f"{ids[0]}-{ids[-1]}.{rel_s}-{rel_e}"})
        assert await view.get_data() == member, f["name"]
        frames = decoded_frames(member, ignore_editlist=True)
        recs = db.list_recordings_by_id(cam.streams["main"], ids[0], ids[-1] + 1)
        if rel_s == 0 and end >= recs[-1].end_time_90k:
            assert len(frames) == sum(r.video_samples for r in recs)
        # frame for frame: consecutive pictures of the clip, no frame lost or repeated
        numbers = [n for _, n, _ in frames]
        assert all(b == a + 1 or b == 0 for a, b in itertools.pairwise(numbers))
    path = tmp_path / "export.zip"
    path.write_bytes(data)
    report = verify_export(path)
    assert report.ok, report.problems
    assert report.files == len(files)
    key = signing.public_key_of(three.env.db_dir)
    assert key is not None
    assert main(["verify-export", str(path), "--public-key", key]) == 0


async def test_a_flipped_byte_names_its_member(three: Recorded, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               autojump_clock: object) -> None:
    data = await _export(three)
    zf = zipfile.ZipFile(io.BytesIO(data))
    key = signing.parse_public_key(signing.public_key_of(three.env.db_dir) or "")
    for info in zf.infolist():
        # the first, a middle and the last byte of each member's data
        header = 30 + len(info.filename.encode()) + len(info.extra)
        for at in (0, info.file_size // 2, info.file_size - 1):
            bad = bytearray(data)
            bad[info.header_offset + header + at] ^= 0x01
            path = tmp_path / "bad.zip"
            path.write_bytes(bytes(bad))
            report = verify_export(path, key)
            assert not report.ok
            assert report.problems[0].startswith(info.filename + ":"), report.problems
            assert main(["verify-export", str(path)]) == 1
            out = capsys.readouterr().out
            assert out.startswith(info.filename + ":")


async def test_another_key_is_refused(three: Recorded, tmp_path: Path,
                                      autojump_clock: object) -> None:
    path = tmp_path / "e.zip"
    path.write_bytes(await _export(three))
    other = tmp_path / "other"
    other.mkdir()
    signing.ensure_key(other)
    report = verify_export(path, signing.load_key(other).public_key())
    assert [p.split(":")[0] for p in report.problems] == ["manifest.json", "manifest.json"]


async def test_streams_in_flat_memory(three: Recorded, monkeypatch: pytest.MonkeyPatch,
                                      autojump_clock: object) -> None:
    """Read the body as a server would, chunk by chunk: the most Python holds at once is
    a few chunks, however large the export (here 64 KiB chunks of a larger zip)."""
    monkeypatch.setattr(export, "CHUNK", 64 << 10)
    total = 0
    # the app (which holds the UI's files in memory) is made before memory is traced
    app = create_app(web_context(three))
    tracemalloc.start()
    try:
        async for chunk in _body(three, app):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 4 << 20
    assert peak < 1 << 20, (peak, total)


@pytest.mark.parametrize(("query", "status", "says"), [
    ([], 400, "at least one camera"),
    ([("camera", "x")], 400, "at least one camera"),
    ([("camera", "nope"), ("range", "1-2")], 404, ""),
    ([("camera", "{0}"), ("range", "2-1")], 400, "reversed"),
    ([("camera", "{0}"), ("range", "1")], 400, "bad range"),
    ([("camera", "{0}"), ("range", "٣-٤")], 400, "bad range"),
    ([("camera", "{0}"), ("range", "1-99999999999999999999999")], 400, ""),
    ([("camera", "{0}"), ("camera", "{0}"), ("range", "1-2")], 400, "twice"),
    ([("camera", "{0}"), ("range", "1-2"), ("stream", "sub")], 404, ""),
    ([("camera", "{0}"), ("range", "1-2")], 404, "no video"),
    ([("camera", "{0}")] + [("range", f"{i}-{i + 1}") for i in range(33)], 400, "at most"),
])
async def test_hostile_input(three: Recorded, query: list[tuple[str, str]], status: int,
                             says: str, autojump_clock: object) -> None:
    u = _uuids(three)[0]
    q = [(k, v.format(u)) for k, v in query]
    resp = await client(three).get("/api/export", query_string=q)
    text = await resp.get_data(as_text=True)
    assert resp.status_code == status, text
    assert says in text and "\n" not in text.strip()


def test_public_key_in_api_and_key_file_private(tmp_path: Path) -> None:
    assert signing.ensure_key(tmp_path)
    assert not signing.ensure_key(tmp_path)
    assert (tmp_path / signing.KEY_FILE).stat().st_mode & 0o777 == 0o600


async def test_api_shows_the_public_key(three: Recorded, autojump_clock: object) -> None:
    out: dict[str, Any] = await (await client(three).get("/api/")).get_json()
    assert out["nvrExportPublicKey"] == signing.public_key_of(three.env.db_dir)
    assert out["nvrExportPublicKey"].startswith("ed25519:")
