"""A month of history recorded through the real writer and syncer on a simulated clock,
for the real daemon to serve (the timeline's month test, issue 15).

``record_month`` makes a database with one camera (stream mode ``off``: the daemon
serves it and records nothing) and feeds ``RecordingWriter`` and the ``Syncer`` a key
frame every ``frame_sec`` of virtual time, ``days`` days ending at ``end90k``: every
``every_min`` minutes one run of ``run_min`` minutes cut into recordings of ``rec_min``
minutes, ended as a camera disconnect (so every gap has an end reason). The clock is
trio's ``MockClock`` with autojump and ``run_blocking`` runs inline, and the sample
files are not fsynced (``os.fsync`` is a no-op while it fills: these files need no
durability, and the fsyncs took most of the time), so a month takes seconds. The frames are a
real H.264 key frame of ``fixtures/h264-640x360.mp4`` (thumbnails decode).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import av
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.codec import h264
from nvr.db.database import Database
from nvr.storage.dir import open_for_database
from nvr.storage.writer import RecordingWriter, Run
from nvr.syncer import Syncer
from tests.support.daemon import CameraSpec, Layout, create_db
from tests.support.paths import FIXTURES

U = UNITS_PER_SEC


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    pts: int
    is_key: bool


def key_frame() -> tuple[bytes, bytes, bytes]:
    """The fixture's first key frame (length-prefixed NALs, as sample files hold them)
    and its SPS and PPS."""
    with av.open(str(FIXTURES / "h264-640x360.mp4")) as c:
        stream = c.streams.video[0]
        sps, pps, _ = h264.parse_avcc_record(bytes(stream.codec_context.extradata or b""))
        for packet in c.demux(stream):
            if packet.is_keyframe and packet.size:
                return bytes(packet), sps[0], pps[0]
    raise AssertionError("no key frame in the fixture")


def record_month(
    root: Path,
    *,
    end90k: int,
    days: int = 30,
    every_min: int = 120,
    run_min: int = 20,
    rec_min: int = 5,
    frame_sec: int = 150,
) -> Layout:
    """Fills ``root`` (see the module docstring); returns the layout for the daemon."""
    layout = create_db(
        root,
        {"month": CameraSpec("rtsp://127.0.0.1:9/off")},
        flush_if_sec=6 * 3600,
        retain_bytes=1 << 40,
    )
    sid = layout.stream_ids["month"]
    data, sps, pps = key_frame()
    start90k = end90k - days * 86400 * U
    start90k -= start90k % (3600 * U)  # runs start on an hour (UTC)

    async def fill() -> None:
        clocks = SimulatedClocks(start90k)
        with Database.open(layout.db_dir, tz=dt.UTC, now=clocks.realtime) as db:
            s = db.streams[sid]
            db.update_camera(
                s.camera_id,
                streams={"main": (s.sample_file_dir_id, dataclasses.replace(s.config, mode="off"))},
            )
            entry = db.insert_video_sample_entry(h264.sample_entry(sps, pps))
            dir_id = s.sample_file_dir_id
            assert dir_id is not None
            sdir = open_for_database(db, dir_id, read_only=False)
            try:
                syncer = Syncer(db, dir_id, sdir, clocks)
                async with trio.open_nursery() as nursery:
                    await nursery.start(syncer.run)
                    every = every_min * 60 * U
                    while clocks.realtime() + every <= end90k:
                        begun = clocks.realtime()
                        await one_run(db, sdir, syncer, clocks, entry)
                        await clocks.sleep(begun + every - clocks.realtime())
                    await clocks.sleep(U)
                    nursery.cancel_scope.cancel()
            finally:
                sdir.close()

    async def one_run(
        db: Database, sdir: object, syncer: Syncer, clocks: SimulatedClocks, entry: int
    ) -> None:
        run = Run()
        writer: RecordingWriter | None = None
        per_rec = rec_min * 60 // frame_sec
        frames = run_min * 60 // frame_sec
        for i in range(frames):
            pts = i * frame_sec * U
            if writer is not None and i % per_rec == 0:
                await writer.close(pts)
                writer = None
            if writer is None:
                writer = RecordingWriter(
                    db=db,
                    sdir=sdir,
                    sink=syncer,  # type: ignore[arg-type]
                    stream_id=sid,
                    run=run,
                    video_sample_entry_id=entry,
                )
            await writer.write([Frame(data, pts, True)], clocks.realtime())
            await clocks.sleep(frame_sec * U)
        assert writer is not None
        await writer.close(frames * frame_sec * U, "camera disconnected")

    with inline_blocking(), mock.patch("os.fsync", lambda fd: None):
        trio.run(fill, clock=trio.testing.MockClock(autojump_threshold=0))
    return layout
