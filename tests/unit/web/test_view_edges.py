"""Edges of the media routes that independent checks found (issue 12, point 14): ``s=``
ranges a frame or less long, ``If-Modified-Since``, and the ``Content-Type`` of a file
with the timestamp subtitle track."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.db.recording import VideoIndexEncoder
from nvr.storage.dir import file_name
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.web.app import WebContext, create_app
from tests.support.determinism import T0
from tests.support.web import VIEW, Recorded, client

pytestmark = pytest.mark.usefixtures("inline_web_threads")

FRAME = 3000
FRAMES = 600
#: the camera's clock ran slow: 20 s of media took 20.03 s of wall time (the most the
#: recorder corrects is 500 ppm; this is 1500 ppm, to make rounding visible)
WALL_EXTRA = 2700


@dataclass
class Slow:
    env: RecordingEnv
    path: str  # view.mp4
    media: int
    wall: int


@pytest.fixture
def slow_clock(tmp_path: Path) -> Iterator[Slow]:
    """One committed recording of 600 frames of 3000 ticks (a key frame every 30) whose
    wall duration exceeds its media duration; its sample file is arbitrary bytes."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    env = open_env(tmp_path, now=lambda: T0)
    try:
        enc = VideoIndexEncoder()
        for i in range(FRAMES):
            enc.add(FRAME, 100, i % 30 == 0)
        sid = env.stream_ids[0]
        rec = env.db.add_recording(sid, run_offset=0, start_time_90k=T0,
                                   video_sample_entry_id=env.entry_id)
        rec.video_index, rec.sample_file_bytes = enc.data, enc.total_bytes
        rec.video_samples, rec.video_sync_samples = enc.frames, enc.key_frames
        rec.media_duration_90k = enc.media_duration
        rec.wall_duration_90k = enc.media_duration + WALL_EXTRA
        (env.sample_dir / file_name(rec.composite_id)).write_bytes(os.urandom(enc.total_bytes))
        env.db.mark_done(rec)
        env.db.mark_synced(rec.composite_id)
        env.db.flush("test")
        cam = env.db.cameras[env.db.streams[sid].camera_id]
        yield Slow(env, f"/api/cameras/{cam.uuid}/main/view.mp4", enc.media_duration,
                   enc.media_duration + WALL_EXTRA)
    finally:
        env.close()


def slow_client(s: Slow):  # type: ignore[no-untyped-def]
    ctx = WebContext(db=s.env.db, dirs={s.env.dir_id: s.env.sdir},
                     clocks=SimulatedClocks(T0), bind=VIEW)
    return create_app(ctx).test_client()


def segments_of(txt: str) -> list[str]:
    """The segment lines of a ``.txt`` dump."""
    lines = txt.splitlines()
    start = lines.index("segments:") + 1
    return [line.strip() for line in lines[start : lines.index("", start)]]


@pytest.mark.parametrize(
    ("s", "frames"),
    [
        # the first tick of wall time covers part of frame 0 (it used to select no video)
        ("0.0-1", "frames 0+1"),
        ("0.1-2", "frames 0+1"),
        # a frame's worth of wall time: media [2995, 5992), parts of frames 0 and 1
        (f"0.{FRAME}-{2 * FRAME}", "frames 0+2"),
        # the last tick of wall time: the last frame, from its GOP's key frame
        (f"0.{FRAMES * FRAME + WALL_EXTRA - 1}-{FRAMES * FRAME + WALL_EXTRA}", "frames 570+30"),
    ],
)
async def test_a_range_covering_part_of_a_frame_selects_it(
    slow_clock: Slow, autojump_clock: trio.testing.MockClock, s: str, frames: str
) -> None:
    r = await slow_client(slow_clock).get(slow_clock.path + ".txt", query_string={"s": s})
    text = await r.get_data(as_text=True)
    assert r.status_code == 200, text
    (segment,) = segments_of(text)
    assert frames in segment, segment


def view_mp4(r: Recorded) -> str:
    return f"/api/cameras/{r.camera_uuid}/main/view.mp4"


async def test_if_modified_since_answers_304_from_last_modified_on(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    c, url = client(recorded), view_mp4(recorded)
    first = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-0"})
    last_modified = first.headers["Last-Modified"]
    stamp = email.utils.parsedate_to_datetime(last_modified).timestamp()

    def date(delta: int) -> str:
        return email.utils.formatdate(stamp + delta, usegmt=True)

    for since, status in [(last_modified, 304), (date(1), 304), (date(-1), 200),
                          ("yesterday", 200), ("", 200)]:
        r = await c.get(url, query_string={"s": "0"}, headers={"If-Modified-Since": since})
        assert r.status_code == status, since
        if status == 304:
            assert await r.get_data() == b""
            assert r.headers["ETag"] == first.headers["ETag"]
    # If-None-Match, when present, decides instead (RFC 9110 13.1.3)
    r = await c.get(url, query_string={"s": "0"},
                    headers={"If-Modified-Since": last_modified, "If-None-Match": '"other"'})
    assert r.status_code == 200
    # a file without Last-Modified (an init segment) ignores it
    entry_id = next(iter(recorded.env.db.video_sample_entries))
    r = await c.get(f"/api/init/{entry_id}.mp4", headers={"If-Modified-Since": date(10**6)})
    assert r.status_code == 200


async def test_timestamp_subtitles_are_in_the_content_type(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    c, url = client(recorded), view_mp4(recorded)
    plain = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-0"})
    assert plain.content_type == 'video/mp4; codecs="avc1.64001e"'
    ts = await c.get(url, query_string={"s": "0", "ts": "true"}, headers={"Range": "bytes=0-0"})
    assert ts.content_type == 'video/mp4; codecs="avc1.64001e, tx3g"'
    assert ts.headers["ETag"] != plain.headers["ETag"]
